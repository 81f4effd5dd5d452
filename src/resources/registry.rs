//! The ECR repository `lew-<app>-worker` that holds the worker image: scanned on push, with a
//! lifecycle rule that keeps the last few images so old pushes do not pile up storage costs.
//! Also what `push-image` asks ECR: where the repository is, a registry login, and the digest
//! ECR holds for a tag.

use std::fmt;

use anyhow::{Context as _, Result, bail};
use aws_sdk_ecr::error::SdkError;
use aws_sdk_ecr::operation::create_repository::CreateRepositoryError;
use aws_sdk_ecr::operation::delete_repository::DeleteRepositoryError;
use aws_sdk_ecr::operation::describe_images::DescribeImagesError;
use aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesError;
use aws_sdk_ecr::operation::get_lifecycle_policy::GetLifecyclePolicyError;
use aws_sdk_ecr::types::{
    AuthorizationData, ImageIdentifier, ImageScanningConfiguration, ImageTagMutability, Repository,
    Tag,
};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{Deployment, Mode, Outcome, Removal, Removed, not_ours, same_policy};

/// What this resource is called in reports.
pub const KIND: &str = "ecr repository";

/// Images kept by the lifecycle rule.
pub const KEEP_IMAGES: u32 = 10;

pub fn lifecycle_policy() -> Value {
    json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("keep the last {KEEP_IMAGES} worker images"),
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": KEEP_IMAGES,
            },
            "action": {"type": "expire"},
        }]
    })
}

pub async fn find(d: &Deployment) -> Result<Option<Repository>> {
    let name = &d.names.repository;
    match d
        .aws
        .ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
    {
        Ok(out) => Ok(out.repositories.unwrap_or_default().into_iter().next()),
        Err(SdkError::ServiceError(e))
            if matches!(
                e.err(),
                DescribeRepositoriesError::RepositoryNotFoundException(_)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("cannot look up ECR repository {name}")),
    }
}

/// The repository's URI as ECR names it (`registry-host/name`): images are pushed there and
/// task definitions run them from there. ECR's own answer, not one built from the account and
/// region, so any endpoint ECR uses (another partition, an emulator's registry) is honoured.
pub fn uri(d: &Deployment, repo: &Repository) -> String {
    repo.repository_uri()
        .map(str::to_string)
        .unwrap_or_else(|| d.repository_uri())
}

/// A login to the account's registry from ECR: where `docker login` goes, as whom, and the
/// password (a token valid for 12 hours), which `Debug` never shows.
pub struct Login {
    pub registry: String,
    pub user: String,
    password: String,
}

impl Login {
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("registry", &self.registry)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A fresh login (GetAuthorizationToken). `repository_uri` names the registry when ECR gives no
/// proxy endpoint.
pub async fn login(d: &Deployment, repository_uri: &str) -> Result<Login> {
    let out = d
        .aws
        .ecr
        .get_authorization_token()
        .send()
        .await
        .context("cannot get an ECR login token")?;
    let data = out
        .authorization_data()
        .first()
        .context("ECR returned no authorization data")?;
    login_from(data, repository_uri)
}

/// The token decodes to `user:password`; the proxy endpoint is the registry's URL, of which
/// `docker login` takes the host.
fn login_from(data: &AuthorizationData, repository_uri: &str) -> Result<Login> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.authorization_token().unwrap_or_default())
        .context("ECR returned a token that is not base64")?;
    let decoded = String::from_utf8(decoded).context("ECR returned a token that is not text")?;
    let Some((user, password)) = decoded.split_once(':') else {
        bail!("ECR returned a token without a user name");
    };
    let registry = match data.proxy_endpoint() {
        Some(endpoint) => endpoint
            .split_once("://")
            .map_or(endpoint, |(_, rest)| rest)
            .trim_end_matches('/')
            .to_string(),
        None => repository_uri
            .split_once('/')
            .map_or(repository_uri, |(host, _)| host)
            .to_string(),
    };
    Ok(Login {
        registry,
        user: user.to_string(),
        password: password.to_string(),
    })
}

/// The digest ECR holds for `tag` in the repository, if it holds the tag.
pub async fn image_digest(d: &Deployment, tag: &str) -> Result<Option<String>> {
    let out = d
        .aws
        .ecr
        .describe_images()
        .repository_name(&d.names.repository)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await;
    match out {
        Ok(out) => Ok(out
            .image_details()
            .first()
            .and_then(|i| i.image_digest())
            .map(str::to_string)),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), DescribeImagesError::ImageNotFoundException(_)) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).context("cannot look up the worker image in ECR"),
    }
}

pub async fn owned(d: &Deployment, repo: &Repository) -> Result<bool> {
    let tags = tags_of(d, repo.repository_arn().unwrap_or_default()).await?;
    Ok(d.owns(tags.iter().map(|t| (t.key(), t.value()))))
}

async fn tags_of(d: &Deployment, arn: &str) -> Result<Vec<Tag>> {
    Ok(d.aws
        .ecr
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .with_context(|| format!("cannot read the tags of ECR repository {arn}"))?
        .tags
        .unwrap_or_default())
}

fn scan_on_push() -> ImageScanningConfiguration {
    ImageScanningConfiguration::builder()
        .scan_on_push(true)
        .build()
}

pub async fn ensure(d: &Deployment, mode: Mode) -> Result<Outcome> {
    let ecr = &d.aws.ecr;
    let name = d.names.repository.clone();
    let outcome = Outcome::new(KIND, &name);
    // Its tags and lifecycle policy are read with the repository (both follow from the name),
    // not after it: one round trip fewer on the path a no-op setup waits for.
    let arn = d.repository_arn();
    let (found, early_tags, early_lifecycle) = futures::join!(
        find(d),
        tags_of(d, &arn),
        ecr.get_lifecycle_policy().repository_name(&name).send()
    );
    let mut early = Some((early_tags, early_lifecycle));
    let repo = match found? {
        Some(repo) => repo,
        None if mode == Mode::Plan => return Ok(outcome.created()),
        None => {
            if create(d).await? {
                put_lifecycle(d).await?;
                return Ok(outcome.created());
            }
            // Created meanwhile (a concurrent setup): converge the one that is there.
            early = None;
            find(d).await?.with_context(|| {
                format!("ECR repository {name} already exists, yet cannot be found")
            })?
        }
    };
    let (tags, lifecycle) = match early {
        Some(read) => read,
        None => futures::join!(
            tags_of(d, repo.repository_arn().unwrap_or_default()),
            ecr.get_lifecycle_policy().repository_name(&name).send()
        ),
    };
    if !d.owns(tags?.iter().map(|t| (t.key(), t.value()))) {
        return Err(not_ours("ECR repository", &name, &d.cfg.app));
    }

    let mut changes = Vec::new();
    let scanning = repo
        .image_scanning_configuration()
        .is_some_and(|c| c.scan_on_push());
    if !scanning {
        changes.push("scan on push: off → on".to_string());
        if mode == Mode::Apply {
            ecr.put_image_scanning_configuration()
                .repository_name(&name)
                .image_scanning_configuration(scan_on_push())
                .send()
                .await
                .with_context(|| format!("cannot turn on scanning for {name}"))?;
        }
    }
    let lifecycle = match lifecycle {
        Ok(out) => out.lifecycle_policy_text,
        Err(SdkError::ServiceError(e))
            if matches!(
                e.err(),
                GetLifecyclePolicyError::LifecyclePolicyNotFoundException(_)
            ) =>
        {
            None
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read the lifecycle of {name}")),
    };
    if !lifecycle
        .as_deref()
        .is_some_and(|p| same_policy(p, &lifecycle_policy()))
    {
        changes.push(format!(
            "lifecycle policy: {} → keep the last {KEEP_IMAGES} images",
            if lifecycle.is_some() {
                "different"
            } else {
                "none"
            }
        ));
        if mode == Mode::Apply {
            put_lifecycle(d).await?;
        }
    }
    Ok(outcome.with_changes(changes))
}

/// Creates the repository; `false` when it already exists.
async fn create(d: &Deployment) -> Result<bool> {
    let name = &d.names.repository;
    let tags = d
        .tags()
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()?;
    match d
        .aws
        .ecr
        .create_repository()
        .repository_name(name)
        .image_scanning_configuration(scan_on_push())
        .image_tag_mutability(ImageTagMutability::Mutable)
        .set_tags(Some(tags))
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(e))
            if matches!(
                e.err(),
                CreateRepositoryError::RepositoryAlreadyExistsException(_)
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e).with_context(|| format!("cannot create ECR repository {name}")),
    }
}

async fn put_lifecycle(d: &Deployment) -> Result<()> {
    let name = &d.names.repository;
    d.aws
        .ecr
        .put_lifecycle_policy()
        .repository_name(name)
        .lifecycle_policy_text(lifecycle_policy().to_string())
        .send()
        .await
        .with_context(|| format!("cannot put the lifecycle policy of {name}"))?;
    Ok(())
}

/// Deletes the repository with its images, if it is this app's.
pub async fn delete(d: &Deployment) -> Result<Removed> {
    let name = d.names.repository.clone();
    let Some(repo) = find(d).await? else {
        return Ok(Removed::new(KIND, name, Removal::AlreadyGone));
    };
    if !owned(d, &repo).await? {
        return Ok(Removed::new(KIND, name, Removal::NotOwned));
    }
    match d
        .aws
        .ecr
        .delete_repository()
        .repository_name(&name)
        .force(true)
        .send()
        .await
    {
        Ok(_) => Ok(Removed::new(KIND, name, Removal::Deleted)),
        Err(SdkError::ServiceError(e))
            if matches!(
                e.err(),
                DeleteRepositoryError::RepositoryNotFoundException(_)
            ) =>
        {
            Ok(Removed::new(KIND, name, Removal::AlreadyGone))
        }
        Err(e) => Err(e).with_context(|| format!("cannot delete ECR repository {name}")),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecr::Client;
    use aws_sdk_ecr::operation::create_repository::CreateRepositoryOutput;
    use aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesOutput;
    use aws_sdk_ecr::operation::get_lifecycle_policy::GetLifecyclePolicyOutput;
    use aws_sdk_ecr::operation::list_tags_for_resource::{
        ListTagsForResourceError, ListTagsForResourceOutput,
    };
    use aws_sdk_ecr::operation::put_lifecycle_policy::PutLifecyclePolicyOutput;
    use aws_sdk_ecr::types::error::{
        RepositoryAlreadyExistsException, RepositoryNotFoundException,
    };
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::error::messages;
    use crate::resources::mock::{Mocks, lew_tags, meta};
    use crate::resources::{APP_TAG, Action};

    const ARN: &str = "arn:aws:ecr:eu-west-1:123456789012:repository/lew-unit-worker";

    fn not_found() -> Rule {
        mock!(Client::describe_repositories).then_error(|| {
            DescribeRepositoriesError::RepositoryNotFoundException(
                RepositoryNotFoundException::builder()
                    .meta(meta("RepositoryNotFoundException", "not found"))
                    .build(),
            )
        })
    }

    fn found() -> Rule {
        mock!(Client::describe_repositories).then_output(|| {
            DescribeRepositoriesOutput::builder()
                .repositories(
                    Repository::builder()
                        .repository_name("lew-unit-worker")
                        .repository_arn(ARN)
                        .image_scanning_configuration(scan_on_push())
                        .build(),
                )
                .build()
        })
    }

    fn tagged(tags: Vec<(String, String)>) -> Rule {
        mock!(Client::list_tags_for_resource)
            .match_requests(|r| r.resource_arn() == Some(ARN))
            .then_output(move || {
                ListTagsForResourceOutput::builder()
                    .set_tags(Some(
                        tags.iter()
                            .map(|(k, v)| Tag::builder().key(k).value(v).build().unwrap())
                            .collect(),
                    ))
                    .build()
            })
    }

    /// What the tags and lifecycle reads (made along with the look-up) get for a missing one.
    fn nothing_there() -> [Rule; 2] {
        let missing = || {
            RepositoryNotFoundException::builder()
                .meta(meta("RepositoryNotFoundException", "not found"))
                .build()
        };
        [
            mock!(Client::list_tags_for_resource).then_error(move || {
                ListTagsForResourceError::RepositoryNotFoundException(missing())
            }),
            mock!(Client::get_lifecycle_policy).then_error(move || {
                GetLifecyclePolicyError::RepositoryNotFoundException(missing())
            }),
        ]
    }

    fn already_exists() -> Rule {
        mock!(Client::create_repository).then_error(|| {
            CreateRepositoryError::RepositoryAlreadyExistsException(
                RepositoryAlreadyExistsException::builder()
                    .meta(meta("RepositoryAlreadyExistsException", "already exists"))
                    .build(),
            )
        })
    }

    fn token(text: &str, endpoint: Option<&str>) -> AuthorizationData {
        AuthorizationData::builder()
            .authorization_token(base64::engine::general_purpose::STANDARD.encode(text))
            .set_proxy_endpoint(endpoint.map(str::to_string))
            .build()
    }

    #[test]
    fn a_login_goes_to_the_proxy_endpoint_with_the_decoded_token() {
        let uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/lew-unit-worker";
        let login = login_from(
            &token(
                "AWS:se:cret",
                Some("https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            ),
            uri,
        )
        .unwrap();
        assert_eq!(
            (
                login.registry.as_str(),
                login.user.as_str(),
                login.password()
            ),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                "AWS",
                "se:cret"
            )
        );
        assert!(!format!("{login:?}").contains("se:cret"), "{login:?}");
        // A plain-HTTP endpoint (a registry on loopback) and none at all.
        let login = login_from(&token("AWS:x", Some("http://localhost:5000/")), uri).unwrap();
        assert_eq!(login.registry, "localhost:5000");
        let login = login_from(&token("AWS:x", None), uri).unwrap();
        assert_eq!(
            login.registry,
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn a_token_that_is_not_user_and_password_is_refused_without_showing_it() {
        let err = login_from(&token("no-colon-here", None), "h/r").unwrap_err();
        assert!(
            err.to_string().contains("without a user name")
                && !err.to_string().contains("no-colon"),
            "{err}"
        );
        let bad = AuthorizationData::builder()
            .authorization_token("not base64!")
            .build();
        assert!(
            login_from(&bad, "h/r")
                .unwrap_err()
                .to_string()
                .contains("not base64")
        );
    }

    #[tokio::test]
    async fn a_tag_ecr_does_not_hold_has_no_digest() {
        let missing = mock!(Client::describe_images)
            .match_requests(|r| {
                r.repository_name() == Some("lew-unit-worker")
                    && r.image_ids().first().and_then(|i| i.image_tag()) == Some("v1")
            })
            .then_error(|| {
                DescribeImagesError::ImageNotFoundException(
                    aws_sdk_ecr::types::error::ImageNotFoundException::builder()
                        .meta(meta("ImageNotFoundException", "not found"))
                        .build(),
                )
            });
        let (d, _) = Mocks::new().ecr(&[&missing]).deployment().await;

        assert_eq!(image_digest(&d, "v1").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_repository_created_meanwhile_by_another_setup_is_converged() {
        let lifecycle = mock!(Client::get_lifecycle_policy).then_output(|| {
            GetLifecyclePolicyOutput::builder()
                .lifecycle_policy_text(lifecycle_policy().to_string())
                .build()
        });
        let (d, _) = Mocks::new()
            .ecr(&[
                &not_found(),
                &nothing_there()[0],
                &nothing_there()[1],
                &already_exists(),
                &found(),
                &tagged(lew_tags()),
                &lifecycle,
            ])
            .deployment()
            .await;

        let outcome = ensure(&d, Mode::Apply).await.unwrap();

        assert_eq!(outcome.action, Action::Unchanged, "{outcome:?}");
        assert_eq!(lifecycle.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_same_named_repository_of_someone_else_created_meanwhile_is_not_taken_over() {
        let other = vec![(APP_TAG.to_string(), "other".to_string())];
        // The lifecycle policy is read together with the tags.
        let lifecycle = mock!(Client::get_lifecycle_policy)
            .then_output(|| GetLifecyclePolicyOutput::builder().build());
        let (d, _) = Mocks::new()
            .ecr(&[
                &not_found(),
                &nothing_there()[0],
                &nothing_there()[1],
                &already_exists(),
                &found(),
                &tagged(other),
                &lifecycle,
            ])
            .deployment()
            .await;

        let err = ensure(&d, Mode::Apply).await.unwrap_err();

        let text = messages(&err).join(": ");
        assert!(text.contains("not tagged lew:app=unit"), "{text}");
    }

    #[tokio::test]
    async fn a_new_repository_scans_on_push_and_gets_the_lifecycle_rule() {
        let create = mock!(Client::create_repository)
            .match_requests(|r| {
                r.repository_name() == Some("lew-unit-worker")
                    && r.image_scanning_configuration()
                        .is_some_and(|c| c.scan_on_push())
                    && r.tags()
                        .iter()
                        .any(|t| t.key() == APP_TAG && t.value() == "unit")
            })
            .then_output(|| CreateRepositoryOutput::builder().build());
        let put = mock!(Client::put_lifecycle_policy)
            .match_requests(|r| {
                r.lifecycle_policy_text()
                    .is_some_and(|p| same_policy(p, &lifecycle_policy()))
            })
            .then_output(|| PutLifecyclePolicyOutput::builder().build());
        let (d, _) = Mocks::new()
            .ecr(&[
                &not_found(),
                &nothing_there()[0],
                &nothing_there()[1],
                &create,
                &put,
            ])
            .deployment()
            .await;

        let outcome = ensure(&d, Mode::Apply).await.unwrap();

        assert_eq!(outcome.action, Action::Create);
        assert_eq!((create.num_calls(), put.num_calls()), (1, 1));
    }
}

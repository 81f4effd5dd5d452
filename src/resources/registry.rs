//! The ECR repository `lew-<app>-worker` that holds the worker image: scanned on push, with a
//! lifecycle rule that keeps the last few images so old pushes do not pile up storage costs.

use anyhow::{Context as _, Result};
use aws_sdk_ecr::error::SdkError;
use aws_sdk_ecr::operation::create_repository::CreateRepositoryError;
use aws_sdk_ecr::operation::delete_repository::DeleteRepositoryError;
use aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesError;
use aws_sdk_ecr::operation::get_lifecycle_policy::GetLifecyclePolicyError;
use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Repository, Tag};
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

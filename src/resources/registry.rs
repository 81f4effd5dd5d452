//! The ECR repository `lew-<app>-worker` that holds the worker image: scanned on push, with a
//! lifecycle rule that keeps the last few images so old pushes do not pile up storage costs.

use anyhow::{Context as _, Result};
use aws_sdk_ecr::error::SdkError;
use aws_sdk_ecr::operation::delete_repository::DeleteRepositoryError;
use aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesError;
use aws_sdk_ecr::operation::get_lifecycle_policy::GetLifecyclePolicyError;
use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Repository, Tag};
use serde_json::{Value, json};

use super::{Deployment, Mode, Outcome, Removal, Removed, not_ours, same_policy};

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

async fn owned(d: &Deployment, repo: &Repository) -> Result<bool> {
    let arn = repo.repository_arn().unwrap_or_default();
    let tags = d
        .aws
        .ecr
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .with_context(|| format!("cannot read the tags of ECR repository {arn}"))?
        .tags
        .unwrap_or_default();
    Ok(d.owns(tags.iter().map(|t| (t.key(), t.value()))))
}

fn scan_on_push() -> ImageScanningConfiguration {
    ImageScanningConfiguration::builder()
        .scan_on_push(true)
        .build()
}

pub async fn ensure(d: &Deployment, mode: Mode) -> Result<Outcome> {
    let ecr = &d.aws.ecr;
    let name = d.names.repository.clone();
    let outcome = Outcome::new("ecr repository", &name);
    let Some(repo) = find(d).await? else {
        if mode == Mode::Apply {
            let tags = d
                .tags()
                .into_iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()?;
            ecr.create_repository()
                .repository_name(&name)
                .image_scanning_configuration(scan_on_push())
                .image_tag_mutability(ImageTagMutability::Mutable)
                .set_tags(Some(tags))
                .send()
                .await
                .with_context(|| format!("cannot create ECR repository {name}"))?;
            put_lifecycle(d).await?;
        }
        return Ok(outcome.created());
    };
    if !owned(d, &repo).await? {
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
    let lifecycle = match ecr
        .get_lifecycle_policy()
        .repository_name(&name)
        .send()
        .await
    {
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
        return Ok(Removed::new("ecr repository", name, Removal::AlreadyGone));
    };
    if !owned(d, &repo).await? {
        return Ok(Removed::new("ecr repository", name, Removal::NotOwned));
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
        Ok(_) => Ok(Removed::new("ecr repository", name, Removal::Deleted)),
        Err(SdkError::ServiceError(e))
            if matches!(
                e.err(),
                DeleteRepositoryError::RepositoryNotFoundException(_)
            ) =>
        {
            Ok(Removed::new("ecr repository", name, Removal::AlreadyGone))
        }
        Err(e) => Err(e).with_context(|| format!("cannot delete ECR repository {name}")),
    }
}

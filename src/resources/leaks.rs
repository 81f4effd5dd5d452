//! The leak check that ends `teardown`: everything of this app still there, read back from
//! AWS rather than from what teardown reported. The tagging API lists what carries the app's
//! tag; it lags behind deletions, so each ARN it lists is confirmed with its own service, and
//! the resources that API does not cover everywhere (IAM roles, the ECR repository, the
//! function) are looked up directly.

use anyhow::{Context as _, Result};

use super::{
    APP_TAG, Deployment, bucket, cluster, function, logs, network, queue, registry, roles,
    task_definition,
};

/// Everything still tagged for this app (the tagging API), plus direct look-ups for what that
/// API does not cover everywhere (IAM roles, the ECR repository, the function); all at once.
pub async fn check(d: &Deployment, bucket_kept: bool) -> Result<Vec<String>> {
    let roles = [
        &d.names.launcher_role,
        &d.names.task_role,
        &d.names.execution_role,
    ];
    let (tagged, roles, repo, func) = futures::join!(
        tagged_leftovers(d, bucket_kept),
        futures::future::join_all(roles.map(|name| role_left(d, name))),
        async {
            match registry::find(d).await? {
                Some(repo) if registry::owned(d, &repo).await? => Ok(Some(d.repository_arn())),
                _ => Ok::<_, anyhow::Error>(None),
            }
        },
        async {
            match function::get(d).await? {
                Some(f) if function::owned(d, &f).await? => Ok(Some(d.function_arn())),
                _ => Ok::<_, anyhow::Error>(None),
            }
        },
    );
    let mut left = tagged?;
    for arn in roles
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
    {
        left.push(arn);
    }
    left.extend(repo?);
    left.extend(func?);
    left.sort();
    left.dedup();
    Ok(left)
}

async fn tagged_leftovers(d: &Deployment, bucket_kept: bool) -> Result<Vec<String>> {
    let mut left = Vec::new();
    let mut pages = d
        .aws
        .tagging
        .get_resources()
        .tag_filters(
            aws_sdk_resourcegroupstagging::types::TagFilter::builder()
                .key(APP_TAG)
                .values(&d.cfg.app)
                .build(),
        )
        .into_paginator()
        .send();
    let bucket_arn = d.bucket_arn();
    while let Some(page) = pages.next().await {
        let page = page.context("cannot list the resources tagged for this app")?;
        for m in page.resource_tag_mapping_list() {
            let arn = m.resource_arn().unwrap_or_default();
            if bucket_kept && arn == bucket_arn {
                continue;
            }
            if still_there(d, arn).await? {
                left.push(arn.to_string());
            }
        }
    }
    Ok(left)
}

/// The role's ARN if it is still there and lew's.
async fn role_left(d: &Deployment, name: &str) -> Result<Option<String>> {
    let role = roles::find(d, name).await?;
    Ok(role
        .filter(|r| roles::owned(d, r))
        .map(|_| d.role_arn(name)))
}

/// Whether a resource the tagging API lists is really still there. That API lags behind
/// deletions (for minutes, on AWS), and ECS keeps deleted task definitions and clusters visible
/// as DELETE_IN_PROGRESS and INACTIVE, so each of lew's resource types is asked directly.
async fn still_there(d: &Deployment, arn: &str) -> Result<bool> {
    let service = arn.split(':').nth(2).unwrap_or_default();
    let resource = arn.splitn(6, ':').nth(5).unwrap_or_default();
    Ok(match service {
        "ecs" if resource.starts_with("task-definition/") => !task_definition::gone(d, arn).await?,
        "ecs" if arn == d.cluster_arn() => cluster::find(d).await?.is_some(),
        "sqs" if resource == d.names.queue => queue::url(d, queue::Which::Jobs).await?.is_some(),
        "sqs" if resource == d.names.dlq => {
            queue::url(d, queue::Which::DeadLetter).await?.is_some()
        }
        "logs" => {
            let name = resource.strip_prefix("log-group:").unwrap_or(resource);
            let name = name.strip_suffix(":*").unwrap_or(name);
            logs::find(d, name).await?.is_some()
        }
        "ecr" if arn == d.repository_arn() => registry::find(d).await?.is_some(),
        "lambda" if arn == d.function_arn() => function::get(d).await?.is_some(),
        "s3" if arn == d.bucket_arn() => bucket::presence(d).await? != bucket::Presence::Missing,
        "ec2" if resource.starts_with("security-group/") => {
            let id = resource.trim_start_matches("security-group/");
            network::group_exists(d, id).await?
        }
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsError;
    use aws_sdk_resourcegroupstagging::operation::get_resources::GetResourcesOutput;
    use aws_sdk_resourcegroupstagging::types::ResourceTagMapping;
    use aws_sdk_sqs::operation::get_queue_url::{GetQueueUrlError, GetQueueUrlOutput};
    use aws_sdk_sqs::types::error::QueueDoesNotExist;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::resources::mock::{ACCOUNT, Mocks, REGION, meta};

    /// The tagging API still lists resources deleted minutes ago; only those the owning
    /// service still has are leftovers.
    #[tokio::test]
    async fn resources_the_tagging_api_lists_after_their_deletion_are_not_leftovers() {
        let arn = |rest: &str| format!("arn:aws:{rest}");
        let jobs = arn(&format!("sqs:{REGION}:{ACCOUNT}:lew-unit-jobs"));
        let dlq = arn(&format!("sqs:{REGION}:{ACCOUNT}:lew-unit-jobs-dlq"));
        let group = arn(&format!("ec2:{REGION}:{ACCOUNT}:security-group/sg-0123"));
        let listed = [jobs.clone(), dlq.clone(), group.clone()];
        let tagged =
            mock!(aws_sdk_resourcegroupstagging::Client::get_resources).then_output(move || {
                listed
                    .iter()
                    .fold(GetResourcesOutput::builder(), |b, arn| {
                        b.resource_tag_mapping_list(
                            ResourceTagMapping::builder().resource_arn(arn).build(),
                        )
                    })
                    .build()
            });
        // The jobs queue is gone, the dead-letter queue is still there.
        let jobs_url = mock!(aws_sdk_sqs::Client::get_queue_url)
            .match_requests(|r| r.queue_name() == Some("lew-unit-jobs"))
            .then_error(|| {
                GetQueueUrlError::QueueDoesNotExist(QueueDoesNotExist::builder().build())
            });
        let dlq_url = mock!(aws_sdk_sqs::Client::get_queue_url)
            .match_requests(|r| r.queue_name() == Some("lew-unit-jobs-dlq"))
            .then_output(|| {
                GetQueueUrlOutput::builder()
                    .queue_url("https://dlq")
                    .build()
            });
        let group_gone = mock!(aws_sdk_ec2::Client::describe_security_groups)
            .match_requests(|r| r.group_ids() == ["sg-0123"])
            .then_error(|| {
                DescribeSecurityGroupsError::generic(meta(
                    "InvalidGroup.NotFound",
                    "The security group 'sg-0123' does not exist",
                ))
            });
        let (d, _) = Mocks::new()
            .tagging(&[&tagged])
            .sqs(&[&jobs_url, &dlq_url])
            .ec2(&[&group_gone])
            .deployment()
            .await;

        let left = tagged_leftovers(&d, false).await.unwrap();

        assert_eq!(left, [dlq]);
        assert_eq!(
            (
                jobs_url.num_calls(),
                dlq_url.num_calls(),
                group_gone.num_calls()
            ),
            (1, 1, 1)
        );
    }
}

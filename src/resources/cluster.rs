//! The ECS cluster `lew-<app>`, with the FARGATE and FARGATE_SPOT capacity providers.
//!
//! A Fargate cluster costs nothing while no task runs. The launcher picks the capacity
//! provider per task (`worker.spot`), so the cluster needs no default strategy.
//!
//! In a new account ECS creates its service-linked role (AWSServiceRoleForECS) along with the
//! first cluster, and a cluster with capacity providers can be refused until that role exists.
//! lew then creates the role itself and retries with a bounded backoff.

use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_sdk_ecs::error::SdkError;
use aws_sdk_ecs::operation::create_cluster::CreateClusterError;
use aws_sdk_ecs::operation::delete_cluster::DeleteClusterError;
use aws_sdk_ecs::types::{Cluster, ClusterField, Tag};
use aws_sdk_iam::operation::create_service_linked_role::CreateServiceLinkedRoleError;

use super::{Deployment, Mode, Outcome, Removal, Removed, not_ours};

/// What this resource is called in reports.
pub const KIND: &str = "ecs cluster";

const PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];
/// Attempts at creating the cluster while the service-linked role propagates (waits of 2, 4, 8,
/// 16 and 32 s between them).
pub const SLR_ATTEMPTS: u32 = 6;

pub fn ecs_tags(d: &Deployment) -> Vec<Tag> {
    d.tags()
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn owned(d: &Deployment, tags: &[Tag]) -> bool {
    d.owns(
        tags.iter()
            .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())),
    )
}

/// The active cluster, if any (a deleted cluster lingers as INACTIVE).
pub async fn find(d: &Deployment) -> Result<Option<Cluster>> {
    let name = &d.names.cluster;
    let out = d
        .aws
        .ecs
        .describe_clusters()
        .clusters(name)
        .include(ClusterField::Tags)
        .send()
        .await
        .with_context(|| format!("cannot look up ECS cluster {name}"))?;
    Ok(out
        .clusters
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.status() == Some("ACTIVE")))
}

pub async fn ensure(d: &Deployment, mode: Mode) -> Result<Outcome> {
    let name = d.names.cluster.clone();
    let outcome = Outcome::new(KIND, &name);
    let ecs = &d.aws.ecs;
    let Some(cluster) = find(d).await? else {
        if mode == Mode::Apply {
            create(d).await?;
        }
        return Ok(outcome.created());
    };
    if !owned(d, cluster.tags()) {
        return Err(not_ours("ECS cluster", &name, &d.cfg.app));
    }
    let have = cluster.capacity_providers();
    let missing: Vec<&str> = PROVIDERS
        .into_iter()
        .filter(|p| !have.iter().any(|h| h == p))
        .collect();
    let mut changes = Vec::new();
    if !missing.is_empty() {
        changes.push(format!("capacity providers: add {}", missing.join(", ")));
        if mode == Mode::Apply {
            let mut all: Vec<String> = have.to_vec();
            all.extend(missing.iter().map(|s| s.to_string()));
            ecs.put_cluster_capacity_providers()
                .cluster(&name)
                .set_capacity_providers(Some(all))
                .set_default_capacity_provider_strategy(Some(Vec::new()))
                .send()
                .await
                .with_context(|| format!("cannot set the capacity providers of {name}"))?;
        }
    }
    Ok(outcome.with_changes(changes))
}

async fn create(d: &Deployment) -> Result<()> {
    let name = &d.names.cluster;
    for attempt in 1.. {
        let mut req = d
            .aws
            .ecs
            .create_cluster()
            .cluster_name(name)
            .set_tags(Some(ecs_tags(d)));
        for p in PROVIDERS {
            req = req.capacity_providers(p);
        }
        match req.send().await {
            Ok(_) => return Ok(()),
            Err(e) if service_linked_role_missing(&e) && attempt < SLR_ATTEMPTS => {
                if attempt == 1 {
                    create_service_linked_role(d).await?;
                }
                d.progress.waiting(format!(
                    "ecs cluster {name}: waiting for the ECS service-linked role \
                     ({attempt}/{SLR_ATTEMPTS})"
                ));
                d.sleep(Duration::from_secs(1 << attempt)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create ECS cluster {name}")),
        }
    }
    unreachable!("the loop returns")
}

/// Whether CreateCluster was refused because ECS's service-linked role does not exist yet.
/// Matched by typed variant; the message tells it from other invalid parameters.
fn service_linked_role_missing(err: &SdkError<CreateClusterError>) -> bool {
    matches!(
        err.as_service_error(),
        Some(CreateClusterError::InvalidParameterException(e))
            if e.message().is_some_and(|m| m.contains("service linked role"))
    )
}

async fn create_service_linked_role(d: &Deployment) -> Result<()> {
    let created = d
        .aws
        .iam
        .create_service_linked_role()
        .aws_service_name("ecs.amazonaws.com")
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        // IAM's answer when the role exists already ("has been taken in this account").
        Err(SdkError::ServiceError(e))
            if matches!(
                e.err(),
                CreateServiceLinkedRoleError::InvalidInputException(_)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e).context(
            "cannot create the ECS service-linked role AWSServiceRoleForECS (it needs \
             iam:CreateServiceLinkedRole once per account)",
        ),
    }
}

/// Deletes the cluster if it is this app's. Its tasks must be stopped first (see `tasks`).
pub async fn delete(d: &Deployment) -> Result<Removed> {
    let name = d.names.cluster.clone();
    let Some(cluster) = find(d).await? else {
        return Ok(Removed::new(KIND, name, Removal::AlreadyGone));
    };
    if !owned(d, cluster.tags()) {
        return Ok(Removed::new(KIND, name, Removal::NotOwned));
    }
    match d.aws.ecs.delete_cluster().cluster(&name).send().await {
        Ok(_) => Ok(Removed::new(KIND, name, Removal::Deleted)),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), DeleteClusterError::ClusterNotFoundException(_)) =>
        {
            Ok(Removed::new(KIND, name, Removal::AlreadyGone))
        }
        Err(e) => Err(e).with_context(|| format!("cannot delete ECS cluster {name}")),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::Client;
    use aws_sdk_ecs::operation::create_cluster::CreateClusterOutput;
    use aws_sdk_ecs::operation::describe_clusters::DescribeClustersOutput;
    use aws_sdk_ecs::types::error::InvalidParameterException;
    use aws_sdk_iam::operation::create_service_linked_role::CreateServiceLinkedRoleOutput;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::resources::Action;
    use crate::resources::mock::{Mocks, meta};

    const NO_ROLE: &str = "Unable to assume the service linked role. Please verify that the ECS \
                           service linked role exists.";

    fn refused() -> CreateClusterError {
        CreateClusterError::InvalidParameterException(
            InvalidParameterException::builder()
                .message(NO_ROLE)
                .meta(meta("InvalidParameterException", NO_ROLE))
                .build(),
        )
    }

    #[tokio::test]
    async fn a_new_account_gets_the_service_linked_role_and_then_the_cluster() {
        let none = mock!(Client::describe_clusters)
            .then_output(|| DescribeClustersOutput::builder().build());
        let create = mock!(Client::create_cluster)
            .match_requests(|r| r.capacity_providers() == PROVIDERS)
            .sequence()
            .error(refused)
            .times(2)
            .output(|| CreateClusterOutput::builder().build())
            .build();
        let role = mock!(aws_sdk_iam::Client::create_service_linked_role)
            .match_requests(|r| r.aws_service_name() == Some("ecs.amazonaws.com"))
            .then_output(|| CreateServiceLinkedRoleOutput::builder().build());
        let (d, sleep) = Mocks::new()
            .ecs(&[&none, &create])
            .iam(&[&role])
            .deployment()
            .await;

        let outcome = ensure(&d, Mode::Apply).await.unwrap();

        assert_eq!(outcome.action, Action::Create);
        assert_eq!((create.num_calls(), role.num_calls()), (3, 1));
        assert_eq!(
            sleep.slept(),
            [Duration::from_secs(2), Duration::from_secs(4)]
        );
    }

    #[tokio::test]
    async fn a_role_that_never_helps_ends_in_the_error_after_a_bounded_wait() {
        let none = mock!(Client::describe_clusters)
            .then_output(|| DescribeClustersOutput::builder().build());
        let create = mock!(Client::create_cluster)
            .sequence()
            .error(refused)
            .times(10)
            .build();
        let role = mock!(aws_sdk_iam::Client::create_service_linked_role)
            .then_output(|| CreateServiceLinkedRoleOutput::builder().build());
        let (d, sleep) = Mocks::new()
            .ecs(&[&none, &create])
            .iam(&[&role])
            .deployment()
            .await;

        let err = ensure(&d, Mode::Apply).await.unwrap_err();

        assert_eq!(create.num_calls(), SLR_ATTEMPTS as usize);
        assert_eq!(
            sleep.slept().iter().sum::<Duration>(),
            Duration::from_secs(2 + 4 + 8 + 16 + 32)
        );
        let text = crate::error::one_line(&err);
        assert!(
            text.contains("cannot create ECS cluster lew-unit") && text.contains("service linked"),
            "{text}"
        );
    }
}

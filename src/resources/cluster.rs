//! The ECS cluster `lew-<app>`, with the FARGATE and FARGATE_SPOT capacity providers.
//!
//! A Fargate cluster costs nothing while no task runs. The launcher picks the capacity
//! provider per task (`worker.spot`), so the cluster needs no default strategy.

use anyhow::{Context as _, Result};
use aws_sdk_ecs::error::SdkError;
use aws_sdk_ecs::operation::delete_cluster::DeleteClusterError;
use aws_sdk_ecs::types::{Cluster, ClusterField, Tag};

use super::{Deployment, Mode, Outcome, Removal, Removed, not_ours};

const PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

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
    let outcome = Outcome::new("ecs cluster", &name);
    let ecs = &d.aws.ecs;
    let Some(cluster) = find(d).await? else {
        if mode == Mode::Apply {
            let mut req = ecs
                .create_cluster()
                .cluster_name(&name)
                .set_tags(Some(ecs_tags(d)));
            for p in PROVIDERS {
                req = req.capacity_providers(p);
            }
            req.send()
                .await
                .with_context(|| format!("cannot create ECS cluster {name}"))?;
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

/// Deletes the cluster if it is this app's. Its tasks must be stopped first (see `tasks`).
pub async fn delete(d: &Deployment) -> Result<Removed> {
    let name = d.names.cluster.clone();
    let Some(cluster) = find(d).await? else {
        return Ok(Removed::new("ecs cluster", name, Removal::AlreadyGone));
    };
    if !owned(d, cluster.tags()) {
        return Ok(Removed::new("ecs cluster", name, Removal::NotOwned));
    }
    match d.aws.ecs.delete_cluster().cluster(&name).send().await {
        Ok(_) => Ok(Removed::new("ecs cluster", name, Removal::Deleted)),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), DeleteClusterError::ClusterNotFoundException(_)) =>
        {
            Ok(Removed::new("ecs cluster", name, Removal::AlreadyGone))
        }
        Err(e) => Err(e).with_context(|| format!("cannot delete ECS cluster {name}")),
    }
}

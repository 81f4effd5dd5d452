//! The worker tasks running in the cluster: counted by `status`, followed by `render`, and
//! stopped first by `teardown` so nothing keeps running (and costing) after it.

use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_sdk_ecs::client::Waiters as _;
use aws_sdk_ecs::error::SdkError;
use aws_sdk_ecs::operation::list_tasks::ListTasksError;
use aws_sdk_ecs::types::{DesiredStatus, Task};
use serde::Serialize;

use super::{Deployment, STARTED_BY};

/// How long teardown waits for stopped tasks to be gone before it goes on.
const STOP_WAIT: Duration = Duration::from_secs(180);

/// The ARNs of tasks that are (or are about to be) running. `only_lew`: only those the
/// launcher started. A missing cluster has none.
///
/// ListTasks refuses `startedBy` together with any other filter (its API reference: "When you
/// specify startedBy as the filter, it must be the only filter that you use"), and without a
/// `desiredStatus` it lists the tasks whose desired status is RUNNING ("The default status
/// filter is RUNNING"): so `startedBy` alone is exactly the running tasks the launcher started.
pub async fn running(d: &Deployment, only_lew: bool) -> Result<Vec<String>> {
    let req = d.aws.ecs.list_tasks().cluster(&d.names.cluster);
    let req = if only_lew {
        req.started_by(STARTED_BY)
    } else {
        req.desired_status(DesiredStatus::Running)
    };
    let mut pages = req.into_paginator().send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => arns.extend(page.task_arns.unwrap_or_default()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), ListTasksError::ClusterNotFoundException(_)) =>
            {
                return Ok(Vec::new());
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot list the tasks of cluster {}", d.names.cluster)
                });
            }
        }
    }
    Ok(arns)
}

/// Full descriptions of tasks, 100 at a time (DescribeTasks' limit).
pub async fn describe(d: &Deployment, arns: &[String]) -> Result<Vec<Task>> {
    let mut tasks = Vec::new();
    for chunk in arns.chunks(100) {
        let out = d
            .aws
            .ecs
            .describe_tasks()
            .cluster(&d.names.cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .context("cannot describe the worker tasks")?;
        tasks.extend(out.tasks.unwrap_or_default());
    }
    Ok(tasks)
}

/// Running tasks by their last status, for `status`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counts {
    pub provisioning: usize,
    pub pending: usize,
    pub running: usize,
    pub stopping: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.provisioning + self.pending + self.running + self.stopping
    }
}

pub async fn counts(d: &Deployment) -> Result<Counts> {
    let arns = running(d, false).await?;
    let mut counts = Counts::default();
    for task in describe(d, &arns).await? {
        match task.last_status().unwrap_or_default() {
            "PROVISIONING" => counts.provisioning += 1,
            "PENDING" | "ACTIVATING" => counts.pending += 1,
            "RUNNING" => counts.running += 1,
            _ => counts.stopping += 1,
        }
    }
    Ok(counts)
}

/// Stops every task the launcher started and waits (bounded) until they have stopped.
/// Returns how many were stopped.
pub async fn stop_all(d: &Deployment, reason: &str) -> Result<usize> {
    let arns = running(d, true).await?;
    if arns.is_empty() {
        return Ok(0);
    }
    for arn in &arns {
        d.aws
            .ecs
            .stop_task()
            .cluster(&d.names.cluster)
            .task(arn)
            .reason(reason)
            .send()
            .await
            .with_context(|| format!("cannot stop task {arn}"))?;
    }
    for chunk in arns.chunks(100) {
        let waited = d
            .aws
            .ecs
            .wait_until_tasks_stopped()
            .cluster(&d.names.cluster)
            .set_tasks(Some(chunk.to_vec()))
            .wait(STOP_WAIT)
            .await;
        if waited.is_err() {
            d.progress.warn(format!(
                "{} task(s) did not report STOPPED within {} s; continuing",
                chunk.len(),
                STOP_WAIT.as_secs()
            ));
        }
    }
    Ok(arns.len())
}

/// Tasks the launcher started since `since` that stopped without finishing their work (for
/// example because the image could not be pulled), as (ARN, reason).
pub async fn recently_stopped(
    d: &Deployment,
    since: std::time::SystemTime,
) -> Vec<(String, String)> {
    // Stopped tasks cannot be listed by `startedBy` (it must be ListTasks' only filter, and
    // alone it lists running tasks): the worker family's stopped tasks are listed, and the
    // launcher's are picked by the `startedBy` DescribeTasks reports.
    let listed = d
        .aws
        .ecs
        .list_tasks()
        .cluster(&d.names.cluster)
        .family(&d.names.task_family)
        .desired_status(DesiredStatus::Stopped)
        .send()
        .await;
    let Ok(listed) = listed else {
        return Vec::new();
    };
    let arns = listed.task_arns.unwrap_or_default();
    let Ok(described) = describe(d, &arns).await else {
        return Vec::new();
    };
    let since = aws_sdk_ecs::primitives::DateTime::from(since);
    described
        .into_iter()
        .filter(|t| t.started_by() == Some(STARTED_BY))
        .filter(|t| t.created_at().is_some_and(|c| c.secs() >= since.secs()))
        .filter_map(|t| {
            let exit = t.containers().first().and_then(|c| c.exit_code());
            let reason = t.stopped_reason().unwrap_or_default().to_string();
            let why = match exit {
                Some(code) if code != 0 => format!("the worker exited with code {code} ({reason})"),
                _ if reason.is_empty()
                    || reason.contains("Essential container in task exited")
                    || reason.starts_with("lew ") =>
                {
                    return None;
                }
                _ => reason,
            };
            Some((t.task_arn().unwrap_or_default().to_string(), why))
        })
        .collect()
}

//! The CloudWatch log groups of the worker (`/lew/<app>/worker`) and the launcher
//! (`/aws/lambda/lew-<app>-launcher`).
//!
//! lew creates the launcher's group itself, before the function exists, so that it gets a
//! retention period: the group Lambda would create on its own keeps logs forever.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use aws_sdk_cloudwatchlogs::error::SdkError;
use aws_sdk_cloudwatchlogs::operation::create_log_group::CreateLogGroupError;
use aws_sdk_cloudwatchlogs::operation::delete_log_group::DeleteLogGroupError;
use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsError;
use aws_sdk_cloudwatchlogs::types::LogGroup;

use serde::Serialize;

use super::{Deployment, Mode, Outcome, Removal, Removed, not_ours};

/// What this resource is called in reports.
pub const KIND: &str = "log group";

/// Which of the two log groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Worker,
    Launcher,
}

impl Which {
    pub fn name(self, d: &Deployment) -> &str {
        match self {
            Which::Worker => &d.names.worker_log_group,
            Which::Launcher => &d.names.launcher_log_group,
        }
    }
}

/// The log group of exactly this name, or `None`.
pub async fn find(d: &Deployment, name: &str) -> Result<Option<LogGroup>> {
    let groups = d
        .aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .with_context(|| format!("cannot look up log group {name}"))?
        .log_groups
        .unwrap_or_default();
    Ok(groups
        .into_iter()
        .find(|g| g.log_group_name() == Some(name)))
}

async fn owned(d: &Deployment, name: &str) -> Result<bool> {
    let tags = d
        .aws
        .logs
        .list_tags_for_resource()
        .resource_arn(d.log_group_arn(name))
        .send()
        .await
        .with_context(|| format!("cannot read the tags of log group {name}"))?
        .tags
        .unwrap_or_default();
    Ok(d.owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
}

/// Creates the log group or converges its retention.
pub async fn ensure(d: &Deployment, which: Which, mode: Mode) -> Result<Outcome> {
    let name = which.name(d).to_string();
    let outcome = Outcome::new(KIND, &name);
    let want = d.cfg.logs.retention_days as i32;
    let logs = &d.aws.logs;

    // The tags are read with the group (the ARN follows from the name), not after it: one
    // round trip fewer on the path a no-op setup waits for. When the group is missing, the
    // tags' error is moot.
    let (group, owned) = futures::join!(find(d, &name), owned(d, &name));
    let Some(group) = group? else {
        if mode == Mode::Apply {
            let mut req = logs.create_log_group().log_group_name(&name);
            for (k, v) in d.tags() {
                req = req.tags(k, v);
            }
            match req.send().await {
                Ok(_) => {}
                // Created meanwhile (by Lambda's first run, or a concurrent setup): converge it.
                Err(SdkError::ServiceError(e))
                    if matches!(
                        e.err(),
                        CreateLogGroupError::ResourceAlreadyExistsException(_)
                    ) => {}
                Err(e) => return Err(e).with_context(|| format!("cannot create log group {name}")),
            }
            set_retention(d, &name, want).await?;
        }
        return Ok(outcome.created());
    };

    let mut changes = Vec::new();
    if !owned? {
        // Lambda creates its function's group, untagged, when the function first logs (for
        // example an invocation racing a teardown). That group can only be ours: adopt it.
        if which != Which::Launcher {
            return Err(not_ours(KIND, &name, &d.cfg.app));
        }
        changes.push("tags: adopting the group Lambda created".to_string());
        if mode == Mode::Apply {
            let mut req = logs.tag_resource().resource_arn(d.log_group_arn(&name));
            for (k, v) in d.tags() {
                req = req.tags(k, v);
            }
            req.send()
                .await
                .with_context(|| format!("cannot tag log group {name}"))?;
        }
    }
    let have = group.retention_in_days();
    if have != Some(want) {
        let shown = have.map_or("never expire".to_string(), |h| format!("{h} days"));
        changes.push(format!("retention: {shown} → {want} days"));
        if mode == Mode::Apply {
            set_retention(d, &name, want).await?;
        }
    }
    Ok(outcome.with_changes(changes))
}

async fn set_retention(d: &Deployment, name: &str, days: i32) -> Result<()> {
    d.aws
        .logs
        .put_retention_policy()
        .log_group_name(name)
        .retention_in_days(days)
        .send()
        .await
        .with_context(|| format!("cannot set the retention of log group {name}"))?;
    Ok(())
}

/// Deletes the log group if it is this app's.
pub async fn delete(d: &Deployment, which: Which) -> Result<Removed> {
    let name = which.name(d).to_string();
    if find(d, &name).await?.is_none() {
        return Ok(Removed::new(KIND, name, Removal::AlreadyGone));
    }
    // The launcher's group may have been created by Lambda, untagged; its name is lew's.
    if which == Which::Worker && !owned(d, &name).await? {
        return Ok(Removed::new(KIND, name, Removal::NotOwned));
    }
    match d
        .aws
        .logs
        .delete_log_group()
        .log_group_name(&name)
        .send()
        .await
    {
        Ok(_) => Ok(Removed::new(KIND, name, Removal::Deleted)),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), DeleteLogGroupError::ResourceNotFoundException(_)) =>
        {
            Ok(Removed::new(KIND, name, Removal::AlreadyGone))
        }
        Err(e) => Err(e).with_context(|| format!("cannot delete log group {name}")),
    }
}

/// One log event, as `lew logs` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Milliseconds since the epoch, as CloudWatch stores it.
    pub timestamp: i64,
    pub time: String,
    pub stream: String,
    pub message: String,
}

/// An event's time in UTC to the millisecond, always 24 characters wide
/// (`2026-11-28T12:00:03.100Z`), so the columns after it line up: RFC 3339 as the SDK writes it
/// drops trailing zeros of the fraction, and the line's width varied with them.
pub fn event_time(millis: i64) -> String {
    match jiff::Timestamp::from_millisecond(millis) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => format!("{millis:>24}"),
    }
}

/// Every event from `from` on (paginated), skipping those already seen and, with `job`, those
/// that do not mention the job id (CloudWatch filters by the quoted id, so a follow does not
/// page through every other job's lines each time).
pub async fn events(
    d: &Deployment,
    group: &str,
    from: i64,
    job: Option<&str>,
    seen: &mut HashMap<String, i64>,
) -> Result<Vec<Event>> {
    let mut pages = d
        .aws
        .logs
        .filter_log_events()
        .log_group_name(group)
        .start_time(from)
        .set_filter_pattern(job.map(|j| format!("\"{j}\"")))
        .into_paginator()
        .send();
    let mut events = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), FilterLogEventsError::ResourceNotFoundException(_)) =>
            {
                anyhow::bail!("the log group {group} does not exist: run `lew setup` first")
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read the log group {group}")),
        };
        for e in page.events() {
            let message = e.message().unwrap_or_default();
            if job.is_some_and(|j| !message.contains(j)) {
                continue;
            }
            let id = e.event_id().map(str::to_string).unwrap_or_else(|| {
                format!(
                    "{}:{}:{message}",
                    e.log_stream_name().unwrap_or_default(),
                    e.timestamp().unwrap_or(0)
                )
            });
            let timestamp = e.timestamp().unwrap_or(0);
            if seen.insert(id, timestamp).is_some() {
                continue;
            }
            events.push(Event {
                timestamp,
                time: event_time(timestamp),
                stream: e.log_stream_name().unwrap_or_default().to_string(),
                message: message.to_string(),
            });
        }
    }
    events.sort_by_key(|e| e.timestamp);
    Ok(events)
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudwatchlogs::Client;
    use aws_sdk_cloudwatchlogs::operation::create_log_group::CreateLogGroupOutput;
    use aws_sdk_cloudwatchlogs::operation::describe_log_groups::DescribeLogGroupsOutput;
    use aws_sdk_cloudwatchlogs::operation::list_tags_for_resource::{
        ListTagsForResourceError, ListTagsForResourceOutput,
    };
    use aws_sdk_cloudwatchlogs::operation::put_retention_policy::PutRetentionPolicyOutput;
    use aws_sdk_cloudwatchlogs::types::error::{
        ResourceAlreadyExistsException, ResourceNotFoundException,
    };
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::resources::Action;
    use crate::resources::mock::{Mocks, lew_tags, meta};

    #[test]
    fn event_times_have_one_width() {
        for (millis, text) in [
            (1_795_867_203_000, "2026-11-28T12:00:03.000Z"),
            (1_795_867_203_100, "2026-11-28T12:00:03.100Z"),
            (1_795_867_203_123, "2026-11-28T12:00:03.123Z"),
            (0, "1970-01-01T00:00:00.000Z"),
        ] {
            assert_eq!(event_time(millis), text);
        }
    }

    const LAUNCHER: &str = "/aws/lambda/lew-unit-launcher";
    const WORKER: &str = "/lew/unit/worker";

    fn none() -> Rule {
        mock!(Client::describe_log_groups)
            .then_output(|| DescribeLogGroupsOutput::builder().build())
    }

    fn group(name: &'static str) -> Rule {
        mock!(Client::describe_log_groups)
            .match_requests(move |r| r.log_group_name_prefix() == Some(name))
            .then_output(move || {
                DescribeLogGroupsOutput::builder()
                    .log_groups(
                        LogGroup::builder()
                            .log_group_name(name)
                            .retention_in_days(14)
                            .build(),
                    )
                    .build()
            })
    }

    /// The tags of a group that does not exist (read along with the group).
    fn no_tags() -> Rule {
        mock!(Client::list_tags_for_resource).then_error(|| {
            ListTagsForResourceError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .meta(meta(
                        "ResourceNotFoundException",
                        "The specified log group does not exist.",
                    ))
                    .build(),
            )
        })
    }

    fn retention(name: &'static str, days: i32) -> Rule {
        mock!(Client::put_retention_policy)
            .match_requests(move |r| {
                r.log_group_name() == Some(name) && r.retention_in_days() == Some(days)
            })
            .then_output(|| PutRetentionPolicyOutput::builder().build())
    }

    #[tokio::test]
    async fn a_group_created_meanwhile_still_gets_its_retention() {
        // Lambda creates its function's group on the first invocation, racing this setup.
        let create = mock!(Client::create_log_group)
            .match_requests(|r| {
                r.log_group_name() == Some(LAUNCHER)
                    && r.tags().is_some_and(|t| {
                        t.get(super::super::APP_TAG).map(String::as_str) == Some("unit")
                    })
            })
            .then_error(|| {
                CreateLogGroupError::ResourceAlreadyExistsException(
                    ResourceAlreadyExistsException::builder()
                        .meta(meta(
                            "ResourceAlreadyExistsException",
                            "The specified log group already exists",
                        ))
                        .build(),
                )
            });
        let put = retention(LAUNCHER, 30);
        let (d, _) = Mocks::new()
            .config("[logs]\nretention_days = 30\n")
            .logs(&[&none(), &no_tags(), &create, &put])
            .deployment()
            .await;

        let outcome = ensure(&d, Which::Launcher, Mode::Apply).await.unwrap();

        assert_eq!(outcome.action, Action::Create);
        assert_eq!((create.num_calls(), put.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_new_group_is_created_with_retention() {
        let create =
            mock!(Client::create_log_group).then_output(|| CreateLogGroupOutput::builder().build());
        let put = retention(WORKER, 14);
        let (d, _) = Mocks::new()
            .logs(&[&none(), &no_tags(), &create, &put])
            .deployment()
            .await;
        let outcome = ensure(&d, Which::Worker, Mode::Apply).await.unwrap();
        assert_eq!(outcome.action, Action::Create);
        assert_eq!(put.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_group_deleted_meanwhile_is_already_gone() {
        let tags = mock!(Client::list_tags_for_resource).then_output(|| {
            lew_tags()
                .into_iter()
                .fold(ListTagsForResourceOutput::builder(), |b, (k, v)| {
                    b.tags(k, v)
                })
                .build()
        });
        let delete_group = mock!(Client::delete_log_group).then_error(|| {
            DeleteLogGroupError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .meta(meta(
                        "ResourceNotFoundException",
                        "The specified log group does not exist.",
                    ))
                    .build(),
            )
        });
        let (d, _) = Mocks::new()
            .logs(&[&group(WORKER), &tags, &delete_group])
            .deployment()
            .await;
        let removed = delete(&d, Which::Worker).await.unwrap();
        assert_eq!(removed.result, Removal::AlreadyGone);
        assert_eq!(delete_group.num_calls(), 1);
    }
}

//! The job queue `lew-<app>-jobs` and its dead-letter queue `lew-<app>-jobs-dlq`.
//!
//! Both use SQS-managed encryption. The job queue long-polls (20 s), hides a received job for
//! the configured visibility timeout (the worker extends it while rendering) and moves a job
//! that failed `max_receives` times to the dead-letter queue, which keeps it for 14 days.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::operation::create_queue::CreateQueueError;
use aws_sdk_sqs::operation::delete_queue::DeleteQueueError;
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::types::QueueAttributeName as Attr;
use serde_json::Value;

use super::{Deployment, Mode, Outcome, Removal, Removed, not_ours};

/// Long polling: the longest wait SQS allows, so idle workers make few calls.
pub const RECEIVE_WAIT_S: u32 = 20;
/// How long a job that failed for good stays in the dead-letter queue for inspection.
pub const DLQ_RETENTION_S: u32 = 14 * 24 * 3600;

/// Which of the two queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Jobs,
    DeadLetter,
}

impl Which {
    pub fn name(self, d: &Deployment) -> &str {
        match self {
            Which::Jobs => &d.names.queue,
            Which::DeadLetter => &d.names.dlq,
        }
    }

    fn resource(self) -> &'static str {
        match self {
            Which::Jobs => "sqs queue",
            Which::DeadLetter => "sqs dead-letter queue",
        }
    }
}

/// The attributes lew sets, as SQS reports them.
fn desired(d: &Deployment, which: Which) -> Vec<(Attr, String)> {
    let mut attrs = vec![(Attr::SqsManagedSseEnabled, "true".to_string())];
    match which {
        Which::DeadLetter => {
            attrs.push((Attr::MessageRetentionPeriod, DLQ_RETENTION_S.to_string()));
        }
        Which::Jobs => {
            attrs.push((
                Attr::VisibilityTimeout,
                d.cfg.queue.visibility_timeout_s.to_string(),
            ));
            attrs.push((
                Attr::ReceiveMessageWaitTimeSeconds,
                RECEIVE_WAIT_S.to_string(),
            ));
            attrs.push((Attr::RedrivePolicy, redrive_policy(d)));
        }
    }
    attrs
}

fn redrive_policy(d: &Deployment) -> String {
    serde_json::json!({
        "deadLetterTargetArn": d.dlq_arn(),
        "maxReceiveCount": d.cfg.queue.max_receives,
    })
    .to_string()
}

/// Whether an attribute as SQS reports it means the value lew wants.
fn same_value(attr: &Attr, have: &str, want: &str) -> bool {
    if *attr == Attr::RedrivePolicy {
        let parse = |s: &str| -> Option<(String, String)> {
            let v: Value = serde_json::from_str(s).ok()?;
            let arn = v.get("deadLetterTargetArn")?.as_str()?.to_string();
            // SQS has returned the count both as a number and as a string.
            let count = match v.get("maxReceiveCount")? {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((arn, count))
        };
        return parse(have).is_some() && parse(have) == parse(want);
    }
    have.eq_ignore_ascii_case(want)
}

/// The queue's URL, or `None` when it does not exist.
pub async fn url(d: &Deployment, which: Which) -> Result<Option<String>> {
    let name = which.name(d);
    match d.aws.sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), GetQueueUrlError::QueueDoesNotExist(_)) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("cannot look up SQS queue {name}")),
    }
}

/// Creates the queue or converges its attributes and tags.
pub async fn ensure(d: &Deployment, which: Which, mode: Mode) -> Result<Outcome> {
    let sqs = &d.aws.sqs;
    let name = which.name(d).to_string();
    let outcome = Outcome::new(which.resource(), &name);
    let want = desired(d, which);

    let Some(url) = url(d, which).await? else {
        if mode == Mode::Apply {
            create(d, &name, &want).await?;
        }
        return Ok(outcome.created());
    };

    let tags = sqs
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .with_context(|| format!("cannot read the tags of SQS queue {name}"))?
        .tags
        .unwrap_or_default();
    if !d.owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        return Err(not_ours("SQS queue", &name, &d.cfg.app));
    }

    let have: HashMap<Attr, String> = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(Attr::All)
        .send()
        .await
        .with_context(|| format!("cannot read the attributes of SQS queue {name}"))?
        .attributes
        .unwrap_or_default();
    let mut changes = Vec::new();
    let mut fix = HashMap::new();
    for (attr, value) in &want {
        let current = have.get(attr).map(String::as_str).unwrap_or("(unset)");
        if !same_value(attr, current, value) {
            changes.push(format!("{}: {current} → {value}", attr.as_str()));
            fix.insert(attr.clone(), value.clone());
        }
    }
    if mode == Mode::Apply {
        if !fix.is_empty() {
            sqs.set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(fix))
                .send()
                .await
                .with_context(|| format!("cannot update SQS queue {name}"))?;
        }
        let version_ok = tags
            .get(super::VERSION_TAG)
            .is_some_and(|v| v == env!("CARGO_PKG_VERSION"));
        if !version_ok {
            let mut req = sqs.tag_queue().queue_url(&url);
            for (k, v) in d.tags() {
                req = req.tags(k, v);
            }
            req.send()
                .await
                .with_context(|| format!("cannot tag SQS queue {name}"))?;
        }
    }
    Ok(outcome.with_changes(changes))
}

/// Creates the queue. SQS refuses to reuse a name for 60 s after a delete, so a setup right
/// after a teardown waits that out, saying so.
async fn create(d: &Deployment, name: &str, attrs: &[(Attr, String)]) -> Result<()> {
    const ATTEMPTS: u32 = 8;
    for attempt in 1..=ATTEMPTS {
        let mut req = d.aws.sqs.create_queue().queue_name(name);
        for (k, v) in attrs {
            req = req.attributes(k.clone(), v);
        }
        for (k, v) in d.tags() {
            req = req.tags(k, v);
        }
        match req.send().await {
            Ok(_) => return Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), CreateQueueError::QueueDeletedRecently(_))
                    && attempt < ATTEMPTS =>
            {
                d.progress.line(format!(
                    "sqs queue {name}: deleted less than 60 s ago, waiting to re-create it \
                     ({attempt}/{ATTEMPTS})"
                ));
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create SQS queue {name}")),
        }
    }
    unreachable!("the last attempt returns")
}

/// Approximate depth: (visible, in flight).
pub async fn depth(d: &Deployment, which: Which) -> Result<Option<(u64, u64)>> {
    let Some(url) = url(d, which).await? else {
        return Ok(None);
    };
    let attrs = d
        .aws
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(Attr::ApproximateNumberOfMessages)
        .attribute_names(Attr::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .with_context(|| format!("cannot read the depth of SQS queue {}", which.name(d)))?
        .attributes
        .unwrap_or_default();
    let get = |a: &Attr| attrs.get(a).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Some((
        get(&Attr::ApproximateNumberOfMessages),
        get(&Attr::ApproximateNumberOfMessagesNotVisible),
    )))
}

/// Deletes the queue if it is this app's.
pub async fn delete(d: &Deployment, which: Which) -> Result<Removed> {
    let name = which.name(d).to_string();
    let resource = which.resource();
    let Some(url) = url(d, which).await? else {
        return Ok(Removed::new(resource, name, Removal::AlreadyGone));
    };
    let tags = d
        .aws
        .sqs
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .with_context(|| format!("cannot read the tags of SQS queue {name}"))?
        .tags
        .unwrap_or_default();
    if !d.owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        return Ok(Removed::new(resource, name, Removal::NotOwned));
    }
    match d.aws.sqs.delete_queue().queue_url(&url).send().await {
        Ok(_) => Ok(Removed::new(resource, name, Removal::Deleted)),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), DeleteQueueError::QueueDoesNotExist(_)) =>
        {
            Ok(Removed::new(resource, name, Removal::AlreadyGone))
        }
        Err(e) => Err(e).with_context(|| format!("cannot delete SQS queue {name}")),
    }
}

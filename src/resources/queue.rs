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
use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesError;
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::operation::list_queue_tags::ListQueueTagsError;
use aws_sdk_sqs::types::QueueAttributeName as Attr;
use serde_json::Value;

use super::{Deployment, Mode, Outcome, Removal, Removed, not_ours};

/// What the job queue is called in reports.
pub const KIND: &str = "sqs queue";
/// What the dead-letter queue is called in reports.
pub const DLQ_KIND: &str = "sqs dead-letter queue";

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

    pub fn kind(self) -> &'static str {
        match self {
            Which::Jobs => KIND,
            Which::DeadLetter => DLQ_KIND,
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
    if let Some(url) = d.queue_urls.take(name) {
        return Ok(url);
    }
    lookup(&d.aws.sqs, name).await
}

/// Both queues' URLs (or their absence), looked up before the deployment exists: queue names
/// need no account, so `Ctx::deployment` asks for them while STS is asked who the caller is
/// (a no-op setup's longest chain of calls was STS, then GetQueueUrl, then the attributes).
/// Each is handed out once by [`url`]; a later look-up asks SQS again, since the run may have
/// created or deleted the queue meanwhile. A failed look-up is simply asked again.
#[derive(Debug, Default)]
pub struct Prefetched(std::sync::Mutex<HashMap<String, Option<String>>>);

impl Prefetched {
    fn take(&self, name: &str) -> Option<Option<String>> {
        self.0
            .lock()
            .expect("the lock is never poisoned")
            .remove(name)
    }
}

/// Looks up the queues of `names` (see [`Prefetched`]).
pub async fn prefetch(sqs: &aws_sdk_sqs::Client, names: &super::Names) -> Prefetched {
    let queues = [&names.queue, &names.dlq];
    let urls = futures::future::join_all(queues.iter().map(|q| lookup(sqs, q))).await;
    let found = queues
        .into_iter()
        .zip(urls)
        .filter_map(|(name, url)| url.ok().map(|url| (name.clone(), url)));
    Prefetched(std::sync::Mutex::new(found.collect()))
}

/// The URL of the queue called `name`, or `None` when it does not exist.
async fn lookup(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<Option<String>> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), GetQueueUrlError::QueueDoesNotExist(_)) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("cannot look up SQS queue {name}")),
    }
}

/// The queue's tags, or `None` when it does not exist.
async fn tags(d: &Deployment, which: Which, url: &str) -> Result<Option<HashMap<String, String>>> {
    match d.aws.sqs.list_queue_tags().queue_url(url).send().await {
        Ok(out) => Ok(Some(out.tags.unwrap_or_default())),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), ListQueueTagsError::QueueDoesNotExist(_)) =>
        {
            Ok(None)
        }
        Err(e) => {
            Err(e).with_context(|| format!("cannot read the tags of SQS queue {}", which.name(d)))
        }
    }
}

/// What a queue is now: its URL, tags and attributes.
struct Current {
    url: String,
    tags: HashMap<String, String>,
    attributes: HashMap<Attr, String>,
}

/// The queue as it is, or `None` when it does not exist. For up to 60 s after a delete SQS may
/// still hand out the queue's URL, so a queue that turns out to be gone while it is read counts
/// as missing (and is created again, waiting out SQS's reuse delay) rather than as an error.
async fn current(d: &Deployment, which: Which) -> Result<Option<Current>> {
    let Some(url) = url(d, which).await? else {
        return Ok(None);
    };
    let (tags, attributes) = futures::join!(
        tags(d, which, &url),
        d.aws
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(Attr::All)
            .send()
    );
    let Some(tags) = tags? else {
        return Ok(None);
    };
    let attributes = match attributes {
        Ok(out) => out.attributes.unwrap_or_default(),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), GetQueueAttributesError::QueueDoesNotExist(_)) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!("cannot read the attributes of SQS queue {}", which.name(d))
            });
        }
    };
    Ok(Some(Current {
        url,
        tags,
        attributes,
    }))
}

/// Creates the queue or converges its attributes and tags.
pub async fn ensure(d: &Deployment, which: Which, mode: Mode) -> Result<Outcome> {
    ensure_with_url(d, which, mode, async { Ok(()) })
        .await
        .map(|(outcome, _)| outcome)
}

/// [`ensure`], returning the queue's URL too (`None` in a plan for a queue yet to be created).
/// `ready` is awaited before anything is changed: the job queue's redrive policy names the
/// dead-letter queue, which must exist first, while both queues can be read at the same time.
pub async fn ensure_with_url(
    d: &Deployment,
    which: Which,
    mode: Mode,
    ready: impl Future<Output = Result<()>>,
) -> Result<(Outcome, Option<String>)> {
    let sqs = &d.aws.sqs;
    let name = which.name(d).to_string();
    let outcome = Outcome::new(which.kind(), &name);
    let want = desired(d, which);

    let Some(Current {
        url,
        tags,
        attributes: have,
    }) = current(d, which).await?
    else {
        if mode == Mode::Plan {
            return Ok((outcome.created(), None));
        }
        ready.await?;
        let url = create(d, &name, &want).await?;
        return Ok((outcome.created(), url));
    };
    if !d.owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        return Err(not_ours("SQS queue", &name, &d.cfg.app));
    }

    let mut changes = Vec::new();
    let mut fix = HashMap::new();
    for (attr, value) in &want {
        let current = have.get(attr).map(String::as_str).unwrap_or("(unset)");
        if !same_value(attr, current, value) {
            changes.push(format!("{}: {current} → {value}", attr.as_str()));
            fix.insert(attr.clone(), value.clone());
        }
    }
    let version_ok = tags
        .get(super::VERSION_TAG)
        .is_some_and(|v| v == env!("CARGO_PKG_VERSION"));
    if !version_ok {
        // A change like any other: setup reports it and --dry-run shows it.
        changes.push(format!(
            "tag {}: → {}",
            super::VERSION_TAG,
            env!("CARGO_PKG_VERSION")
        ));
    }
    if mode == Mode::Apply && (!fix.is_empty() || !version_ok) {
        ready.await?;
        if !fix.is_empty() {
            let fixing: Vec<(Attr, String)> =
                fix.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let mut waits = 0;
            loop {
                let set = sqs
                    .set_queue_attributes()
                    .queue_url(&url)
                    .set_attributes(Some(fix.clone()))
                    .send()
                    .await;
                match set {
                    Ok(_) => break,
                    // The dead-letter queue was (re)created a moment ago: see `create`.
                    Err(SdkError::ServiceError(e))
                        if redrive_refused(e.err(), &fixing) && waits < REDRIVE_ATTEMPTS - 1 =>
                    {
                        waits += 1;
                        wait_for_dead_letter_queue(d, &name, waits).await;
                    }
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot update SQS queue {name}"));
                    }
                }
            }
        }
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
    Ok((outcome.with_changes(changes), Some(url)))
}

/// Creates the queue and returns its URL. SQS refuses to reuse a name for 60 s after a delete, so a setup right
/// after a teardown waits that out, saying so. And a dead-letter queue created a moment ago may
/// not be usable yet (CreateQueue's reference: "you must wait at least one second after the
/// queue is created to be able to use the queue"): the job queue's redrive policy naming it is
/// then refused, and retried briefly.
async fn create(d: &Deployment, name: &str, attrs: &[(Attr, String)]) -> Result<Option<String>> {
    const ATTEMPTS: u32 = 8;
    let mut redrive_waits = 0;
    let mut attempt = 1;
    loop {
        let mut req = d.aws.sqs.create_queue().queue_name(name);
        for (k, v) in attrs {
            req = req.attributes(k.clone(), v);
        }
        for (k, v) in d.tags() {
            req = req.tags(k, v);
        }
        match req.send().await {
            Ok(out) => return Ok(out.queue_url),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), CreateQueueError::QueueDeletedRecently(_))
                    && attempt < ATTEMPTS =>
            {
                d.progress.line(format!(
                    "sqs queue {name}: deleted less than 60 s ago, waiting to re-create it \
                     ({attempt}/{ATTEMPTS})"
                ));
                d.sleep(Duration::from_secs(10)).await;
                attempt += 1;
            }
            Err(SdkError::ServiceError(e))
                if redrive_refused(e.err(), attrs) && redrive_waits < REDRIVE_ATTEMPTS - 1 =>
            {
                redrive_waits += 1;
                wait_for_dead_letter_queue(d, name, redrive_waits).await;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create SQS queue {name}")),
        }
    }
}

/// How often a redrive policy naming a dead-letter queue that SQS cannot see yet is sent.
const REDRIVE_ATTEMPTS: u32 = 6;

/// Whether SQS refused the redrive policy lew sent: the typed InvalidAttributeValue, or the
/// InvalidParameterValue code SQS answers with ("Value ... for parameter RedrivePolicy is
/// invalid. Reason: Dead letter target does not exist."), for a request that carries one. A
/// dead-letter queue created a moment ago is not yet visible to SQS's check.
fn redrive_refused<E>(err: &E, attrs: &[(Attr, String)]) -> bool
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata,
{
    attrs.iter().any(|(k, _)| *k == Attr::RedrivePolicy)
        && matches!(
            err.code(),
            Some("InvalidAttributeValue" | "InvalidParameterValue")
        )
}

async fn wait_for_dead_letter_queue(d: &Deployment, name: &str, wait: u32) {
    d.progress.line(format!(
        "sqs queue {name}: the dead-letter queue {} was just created, waiting until SQS can \
         use it ({wait}/{})",
        d.names.dlq,
        REDRIVE_ATTEMPTS - 1
    ));
    d.sleep(Duration::from_secs(u64::from(wait.min(2)))).await;
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
    let resource = which.kind();
    let Some(url) = url(d, which).await? else {
        return Ok(Removed::new(resource, name, Removal::AlreadyGone));
    };
    // SQS may hand out the URL of a queue deleted less than 60 s ago.
    let Some(tags) = tags(d, which, &url).await? else {
        return Ok(Removed::new(resource, name, Removal::AlreadyGone));
    };
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

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::Client;
    use aws_sdk_sqs::operation::create_queue::CreateQueueOutput;
    use aws_sdk_sqs::operation::delete_queue::DeleteQueueOutput;
    use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput;
    use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlOutput;
    use aws_sdk_sqs::operation::list_queue_tags::ListQueueTagsOutput;
    use aws_sdk_sqs::types::error::{QueueDeletedRecently, QueueDoesNotExist, RequestThrottled};
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::error::one_line;
    use crate::resources::mock::{Mocks, lew_tags, meta};
    use crate::resources::{APP_TAG, Action};

    const DLQ_URL: &str = "https://sqs.eu-west-1.amazonaws.com/123456789012/lew-unit-jobs-dlq";
    const JOBS_URL: &str = "https://sqs.eu-west-1.amazonaws.com/123456789012/lew-unit-jobs";

    fn found(url: &'static str) -> Rule {
        mock!(Client::get_queue_url)
            .then_output(move || GetQueueUrlOutput::builder().queue_url(url).build())
    }

    fn not_found() -> Rule {
        mock!(Client::get_queue_url).then_error(|| {
            GetQueueUrlError::QueueDoesNotExist(
                QueueDoesNotExist::builder()
                    .meta(meta(
                        "QueueDoesNotExist",
                        "The specified queue does not exist.",
                    ))
                    .build(),
            )
        })
    }

    fn lew_tagged() -> Rule {
        mock!(Client::list_queue_tags).then_output(|| {
            lew_tags()
                .into_iter()
                .fold(ListQueueTagsOutput::builder(), |b, (k, v)| b.tags(k, v))
                .build()
        })
    }

    /// The dead-letter queue exactly as lew wants it.
    fn dlq_attributes() -> Rule {
        mock!(Client::get_queue_attributes).then_output(|| {
            GetQueueAttributesOutput::builder()
                .attributes(Attr::SqsManagedSseEnabled, "true")
                .attributes(Attr::MessageRetentionPeriod, DLQ_RETENTION_S.to_string())
                .attributes(
                    Attr::QueueArn,
                    "arn:aws:sqs:eu-west-1:123456789012:lew-unit-jobs-dlq",
                )
                .build()
        })
    }

    fn gone_while_reading_attributes() -> Rule {
        mock!(Client::get_queue_attributes).then_error(|| {
            GetQueueAttributesError::QueueDoesNotExist(
                QueueDoesNotExist::builder()
                    .meta(meta(
                        "QueueDoesNotExist",
                        "The specified queue does not exist.",
                    ))
                    .build(),
            )
        })
    }

    fn deleted_recently() -> CreateQueueError {
        const WAIT: &str = "You must wait 60 seconds after deleting a queue before you can \
                            create another with the same name.";
        CreateQueueError::QueueDeletedRecently(
            QueueDeletedRecently::builder()
                .message(WAIT)
                .meta(meta("QueueDeletedRecently", WAIT))
                .build(),
        )
    }

    #[tokio::test]
    async fn throttled_reads_are_retried_by_the_sdk() {
        let url = mock!(Client::get_queue_url)
            .sequence()
            .error(|| {
                GetQueueUrlError::RequestThrottled(
                    RequestThrottled::builder()
                        .meta(meta("RequestThrottled", "Rate exceeded"))
                        .build(),
                )
            })
            .times(2)
            .output(|| GetQueueUrlOutput::builder().queue_url(DLQ_URL).build())
            .build();
        let tags = mock!(Client::list_queue_tags)
            .sequence()
            .error(|| ListQueueTagsError::generic(meta("ThrottlingException", "Rate exceeded")))
            .output(|| {
                lew_tags()
                    .into_iter()
                    .fold(ListQueueTagsOutput::builder(), |b, (k, v)| b.tags(k, v))
                    .build()
            })
            .build();
        let attrs = dlq_attributes();
        let (d, sleep) = Mocks::new().sqs(&[&url, &tags, &attrs]).deployment().await;

        let outcome = ensure(&d, Which::DeadLetter, Mode::Apply).await.unwrap();

        assert_eq!(outcome.action, Action::Unchanged, "{outcome:?}");
        assert_eq!(
            (url.num_calls(), tags.num_calls(), attrs.num_calls()),
            (3, 2, 1)
        );
        // One backoff per retry, within lew's retry configuration (at most 5 s each).
        let waits = sleep.slept();
        assert_eq!(waits.len(), 3, "{waits:?}");
        assert!(
            waits.iter().all(|w| *w <= Duration::from_secs(5)),
            "{waits:?}"
        );
    }

    #[tokio::test]
    async fn throttling_that_outlasts_the_retries_is_an_error_naming_the_queue() {
        let url = mock!(Client::get_queue_url)
            .sequence()
            .error(|| GetQueueUrlError::generic(meta("ThrottlingException", "Rate exceeded")))
            .times(12)
            .build();
        let (d, _) = Mocks::new().sqs(&[&url]).deployment().await;

        let err = ensure(&d, Which::Jobs, Mode::Apply).await.unwrap_err();

        // lew's SDK configuration allows ten attempts in all.
        assert_eq!(url.num_calls(), crate::aws::MAX_ATTEMPTS as usize);
        let text = one_line(&err);
        assert!(
            text.contains("cannot look up SQS queue lew-unit-jobs")
                && text.contains("Rate exceeded"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_queue_deleted_between_its_lookup_and_its_read_is_created_again() {
        // SQS still hands out the URL of a queue deleted a moment ago (a teardown right before
        // this setup), then says it does not exist, then refuses the name for 60 s.
        let create = mock!(Client::create_queue)
            .match_requests(|req| {
                req.queue_name() == Some("lew-unit-jobs-dlq")
                    && req
                        .tags()
                        .is_some_and(|t| t.get(APP_TAG).map(String::as_str) == Some("unit"))
                    && req.attributes().is_some_and(|a| {
                        a.get(&Attr::SqsManagedSseEnabled).map(String::as_str) == Some("true")
                    })
            })
            .sequence()
            .error(deleted_recently)
            .times(2)
            .output(|| CreateQueueOutput::builder().queue_url(DLQ_URL).build())
            .build();
        let (d, sleep) = Mocks::new()
            .sqs(&[
                &found(DLQ_URL),
                &lew_tagged(),
                &gone_while_reading_attributes(),
                &create,
            ])
            .deployment()
            .await;

        let outcome = ensure(&d, Which::DeadLetter, Mode::Apply).await.unwrap();

        assert_eq!(outcome.action, Action::Create);
        assert_eq!(create.num_calls(), 3);
        assert_eq!(sleep.slept(), [Duration::from_secs(10); 2]);
    }

    #[tokio::test]
    async fn a_queue_gone_while_its_tags_are_read_is_planned_as_missing() {
        let tags = mock!(Client::list_queue_tags).then_error(|| {
            ListQueueTagsError::QueueDoesNotExist(
                QueueDoesNotExist::builder()
                    .meta(meta(
                        "QueueDoesNotExist",
                        "The specified queue does not exist.",
                    ))
                    .build(),
            )
        });
        // The attributes are read together with the tags, and are gone too.
        let attributes = mock!(Client::get_queue_attributes).then_error(|| {
            GetQueueAttributesError::QueueDoesNotExist(
                QueueDoesNotExist::builder()
                    .meta(meta(
                        "QueueDoesNotExist",
                        "The specified queue does not exist.",
                    ))
                    .build(),
            )
        });
        let (d, _) = Mocks::new()
            .sqs(&[&found(JOBS_URL), &tags, &attributes])
            .deployment()
            .await;

        let outcome = ensure(&d, Which::Jobs, Mode::Plan).await.unwrap();

        assert_eq!(outcome.action, Action::Create);
        assert_eq!(tags.num_calls(), 1);
    }

    #[tokio::test]
    async fn the_name_reuse_delay_is_waited_out_for_a_bounded_time() {
        let create = mock!(Client::create_queue)
            .sequence()
            .error(deleted_recently)
            .times(20)
            .build();
        let (d, sleep) = Mocks::new()
            .sqs(&[&not_found(), &create])
            .deployment()
            .await;

        let err = ensure(&d, Which::Jobs, Mode::Apply).await.unwrap_err();

        assert_eq!(create.num_calls(), 8);
        assert_eq!(sleep.slept(), [Duration::from_secs(10); 7]);
        let text = one_line(&err);
        assert!(
            text.contains("cannot create SQS queue lew-unit-jobs") && text.contains("60 seconds"),
            "{text}"
        );
    }

    fn dead_letter_target_not_visible() -> CreateQueueError {
        // What SQS answers for a redrive policy naming a queue created a moment ago.
        const NOT_YET: &str = "Value {\"deadLetterTargetArn\": \"arn:aws:sqs:eu-west-1:\
            123456789012:lew-unit-jobs-dlq\", \"maxReceiveCount\": 3} for parameter \
            RedrivePolicy is invalid. Reason: Dead letter target does not exist.";
        CreateQueueError::generic(meta("InvalidParameterValue", NOT_YET))
    }

    #[tokio::test]
    async fn a_dead_letter_queue_just_created_is_waited_for_briefly() {
        let create = mock!(Client::create_queue)
            .match_requests(|req| {
                req.queue_name() == Some("lew-unit-jobs")
                    && req
                        .attributes()
                        .is_some_and(|a| a.contains_key(&Attr::RedrivePolicy))
            })
            .sequence()
            .error(dead_letter_target_not_visible)
            .times(2)
            .output(|| CreateQueueOutput::builder().queue_url(JOBS_URL).build())
            .build();
        let (d, sleep) = Mocks::new()
            .sqs(&[&not_found(), &create])
            .deployment()
            .await;

        let (outcome, url) = ensure_with_url(&d, Which::Jobs, Mode::Apply, async { Ok(()) })
            .await
            .unwrap();

        assert_eq!(outcome.action, Action::Create);
        assert_eq!(url.as_deref(), Some(JOBS_URL));
        assert_eq!(create.num_calls(), 3);
        assert_eq!(
            sleep.slept(),
            [Duration::from_secs(1), Duration::from_secs(2)]
        );
    }

    #[tokio::test]
    async fn a_redrive_policy_refused_for_good_is_an_error_after_a_few_seconds() {
        let create = mock!(Client::create_queue)
            .sequence()
            .error(dead_letter_target_not_visible)
            .times(20)
            .build();
        let (d, sleep) = Mocks::new()
            .sqs(&[&not_found(), &create])
            .deployment()
            .await;

        let err = ensure(&d, Which::Jobs, Mode::Apply).await.unwrap_err();

        assert_eq!(create.num_calls(), REDRIVE_ATTEMPTS as usize);
        assert!(sleep.slept().iter().sum::<Duration>() <= Duration::from_secs(10));
        let text = one_line(&err);
        assert!(
            text.contains("cannot create SQS queue lew-unit-jobs")
                && text.contains("Dead letter target does not exist"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_dead_letter_queue_itself_is_not_retried_on_an_invalid_value() {
        // Only a request carrying a redrive policy waits: the DLQ has none.
        let create = mock!(Client::create_queue)
            .then_error(|| CreateQueueError::generic(meta("InvalidParameterValue", "bad")));
        let (d, sleep) = Mocks::new()
            .sqs(&[&not_found(), &create])
            .deployment()
            .await;
        ensure(&d, Which::DeadLetter, Mode::Apply)
            .await
            .unwrap_err();
        assert_eq!(create.num_calls(), 1);
        assert!(sleep.slept().is_empty());
    }

    #[tokio::test]
    async fn a_queue_that_vanishes_during_teardown_is_already_gone() {
        // Gone between GetQueueUrl and ListQueueTags.
        let tags = mock!(Client::list_queue_tags).then_error(|| {
            ListQueueTagsError::QueueDoesNotExist(QueueDoesNotExist::builder().build())
        });
        let (d, _) = Mocks::new()
            .sqs(&[&found(JOBS_URL), &tags])
            .deployment()
            .await;
        let removed = delete(&d, Which::Jobs).await.unwrap();
        assert_eq!(removed.result, Removal::AlreadyGone);

        // Gone between ListQueueTags and DeleteQueue.
        let gone = mock!(Client::delete_queue).then_error(|| {
            DeleteQueueError::QueueDoesNotExist(QueueDoesNotExist::builder().build())
        });
        let (d, _) = Mocks::new()
            .sqs(&[&found(JOBS_URL), &lew_tagged(), &gone])
            .deployment()
            .await;
        let removed = delete(&d, Which::Jobs).await.unwrap();
        assert_eq!(removed.result, Removal::AlreadyGone);
        assert_eq!(gone.num_calls(), 1);

        // And the ordinary case deletes it.
        let del = mock!(Client::delete_queue).then_output(|| DeleteQueueOutput::builder().build());
        let (d, _) = Mocks::new()
            .sqs(&[&found(JOBS_URL), &lew_tagged(), &del])
            .deployment()
            .await;
        assert_eq!(
            delete(&d, Which::Jobs).await.unwrap().result,
            Removal::Deleted
        );
    }
}

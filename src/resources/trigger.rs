//! The S3 → Lambda trigger: the function's resource policy that lets S3 (this bucket, this
//! account) invoke it, and the bucket's notification entry for new `.zip` objects under the
//! input prefix.
//!
//! The bucket's notification configuration is one document shared by everyone who uses the
//! bucket: lew edits only its own entry (known by its Id) and writes every other entry back
//! unchanged.

use std::time::Duration;

use crate::error::UsageError;
use anyhow::{Context as _, Result, bail};
use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, S3KeyFilter,
};
use serde_json::{Value, json};

use super::{Deployment, Mode, Outcome, Removal, Removed, permission, same_statement};

/// What the function's permission for S3 is called in reports.
pub const PERMISSION_KIND: &str = "lambda permission";
/// What lew's entry in the bucket's notifications is called in reports.
pub const NOTIFICATION_KIND: &str = "s3 notification";
/// The statement id of the permission in the function's resource policy.
pub const PERMISSION_SID: &str = "LewS3Invoke";
/// Only zip files start a render.
pub const SUFFIX: &str = ".zip";

/// The Id of lew's entry in the bucket's notification configuration.
pub fn notification_id(d: &Deployment) -> String {
    format!("lew-{}-launcher", d.cfg.app)
}

/// The permission statement as Lambda reports it in GetPolicy.
pub fn permission_statement(d: &Deployment) -> Value {
    json!({
        "Sid": PERMISSION_SID,
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": d.function_arn(),
        "Condition": {
            "StringEquals": {"AWS:SourceAccount": d.aws.account},
            "ArnLike": {"AWS:SourceArn": d.bucket_arn()},
        },
    })
}

/// lew's statement in the function's policy, if any.
async fn current_permission(d: &Deployment) -> Result<Option<Value>> {
    let statements = permission::statements(d).await?;
    Ok(permission::with_sid(&statements, PERMISSION_SID).cloned())
}

/// Whether the permission lew would add is there.
fn permission_ok(d: &Deployment, have: &Value) -> bool {
    same_statement(have, &permission_statement(d))
}

/// Adds (or repairs) the permission for S3 to invoke the function.
pub async fn ensure_permission(d: &Deployment, mode: Mode) -> Result<Outcome> {
    let have = current_permission(d).await;
    permission_from(d, mode, have, async { Ok(()) }).await
}

/// The permission's outcome from what GetPolicy found; `function_ready` is awaited before the
/// permission is changed (the function may still be being created).
async fn permission_from(
    d: &Deployment,
    mode: Mode,
    have: Result<Option<Value>>,
    function_ready: impl Future<Output = Result<()>>,
) -> Result<Outcome> {
    let name = &d.names.function;
    let outcome = Outcome::new(PERMISSION_KIND, format!("{name} ({PERMISSION_SID})"));
    let (outcome, replace) = match have? {
        None => (outcome.created(), false),
        Some(have) if permission_ok(d, &have) => return Ok(outcome.with_changes(Vec::new())),
        Some(_) => (
            outcome.with_changes(vec!["source bucket or account differs".to_string()]),
            true,
        ),
    };
    if mode == Mode::Apply {
        function_ready.await?;
        if replace {
            permission::remove(d, PERMISSION_SID).await?;
        }
        add_permission(d).await?;
    }
    Ok(outcome)
}

async fn add_permission(d: &Deployment) -> Result<()> {
    let invoker = permission::Invoker {
        sid: PERMISSION_SID,
        principal: "s3.amazonaws.com",
        source_arn: d.bucket_arn(),
        source_account: Some(&d.aws.account),
        who: "S3".to_string(),
    };
    permission::add(d, &invoker).await
}

/// lew's notification entry.
pub fn notification(d: &Deployment) -> Result<LambdaFunctionConfiguration> {
    let filter = S3KeyFilter::builder()
        .filter_rules(
            FilterRule::builder()
                .name(FilterRuleName::Prefix)
                .value(&d.cfg.bucket.input_prefix)
                .build(),
        )
        .filter_rules(
            FilterRule::builder()
                .name(FilterRuleName::Suffix)
                .value(SUFFIX)
                .build(),
        )
        .build();
    Ok(LambdaFunctionConfiguration::builder()
        .id(notification_id(d))
        .lambda_function_arn(d.function_arn())
        .events(Event::S3ObjectCreated)
        .filter(
            NotificationConfigurationFilter::builder()
                .key(filter)
                .build(),
        )
        .build()?)
}

/// A comparable view of a notification entry: function, events, and filter rules.
fn shape(c: &LambdaFunctionConfiguration) -> (String, Vec<String>, Vec<(String, String)>) {
    let mut events: Vec<String> = c.events().iter().map(|e| e.as_str().to_string()).collect();
    events.sort();
    let mut rules: Vec<(String, String)> = c
        .filter()
        .and_then(|f| f.key())
        .map(|k| {
            k.filter_rules()
                .iter()
                .map(|r| {
                    (
                        r.name()
                            .map_or(String::new(), |n| n.as_str().to_ascii_lowercase()),
                        r.value().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    rules.sort();
    (c.lambda_function_arn().to_string(), events, rules)
}

/// The bucket's notification configuration, or `None` when the bucket does not exist.
async fn read_notifications(d: &Deployment) -> Result<Option<NotificationConfiguration>> {
    let name = &d.names.bucket;
    let out = match d
        .aws
        .s3
        .get_bucket_notification_configuration()
        .bucket(name)
        .send()
        .await
    {
        Ok(out) => out,
        // An empty configuration sent as a bare element with another root name (the moto
        // emulator does this) is still an empty configuration, not an error.
        Err(e)
            if e.raw_response().is_some_and(|raw| {
                raw.status().is_success() && raw.body().bytes().is_some_and(is_empty_document)
            }) =>
        {
            return Ok(Some(NotificationConfiguration::builder().build()));
        }
        Err(e) if e.code() == Some("NoSuchBucket") => return Ok(None),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the event notifications of {name}"));
        }
    };
    Ok(Some(
        NotificationConfiguration::builder()
            .set_lambda_function_configurations(out.lambda_function_configurations)
            .set_queue_configurations(out.queue_configurations)
            .set_topic_configurations(out.topic_configurations)
            .set_event_bridge_configuration(out.event_bridge_configuration)
            .build(),
    ))
}

/// Whether an XML body is one empty element, e.g. `<?xml ...?><Anything xmlns="..."/>`.
fn is_empty_document(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let mut text = text.trim();
    if let Some(rest) = text.strip_prefix("<?xml") {
        text = rest.split_once("?>").map_or("", |(_, r)| r).trim();
    }
    text.starts_with('<') && text.ends_with("/>") && text.matches('<').count() == 1
}

/// How often lew's entry is written while S3 cannot see the launcher's new permission yet.
pub const PERMISSION_ATTEMPTS: u32 = 8;

/// Writes the configuration back with lew's entry replaced by `entry` (or removed if `None`).
///
/// S3 tests every destination of the document on every write, the entries lew merely carries
/// over included, and refuses the whole write if one fails ("Unable to validate the following
/// destination configurations", each failing destination's ARN in an ArgumentName element).
/// When only lew's function fails, its permission (added a moment ago) is not yet visible to
/// S3: the write is retried with a bounded backoff. When another entry's destination fails,
/// lew cannot repair it, and the error names that entry.
async fn write_notifications(
    d: &Deployment,
    existing: NotificationConfiguration,
    entry: Option<LambdaFunctionConfiguration>,
) -> Result<()> {
    let id = notification_id(d);
    let mut lambdas: Vec<LambdaFunctionConfiguration> = existing
        .lambda_function_configurations()
        .iter()
        .filter(|c| c.id() != Some(id.as_str()))
        .cloned()
        .collect();
    lambdas.extend(entry);
    let config = NotificationConfiguration::builder()
        .set_lambda_function_configurations(Some(lambdas))
        .set_queue_configurations(existing.queue_configurations)
        .set_topic_configurations(existing.topic_configurations)
        .set_event_bridge_configuration(existing.event_bridge_configuration)
        .build();
    let name = &d.names.bucket;
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=PERMISSION_ATTEMPTS {
        let written = d
            .aws
            .s3
            .put_bucket_notification_configuration()
            .bucket(name)
            .notification_configuration(config.clone())
            .send()
            .await;
        let err = match written {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let failing = if err.code() == Some("InvalidArgument") {
            err.raw_response()
                .and_then(|raw| raw.body().bytes())
                .map(|body| destination_failures(&String::from_utf8_lossy(body)))
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let function_arn = d.function_arn();
        let (ours, theirs): (Vec<_>, Vec<_>) = failing
            .into_iter()
            .partition(|(arn, _)| *arn == function_arn);
        if !theirs.is_empty() {
            let entries: Vec<String> = theirs
                .iter()
                .map(|(arn, why)| {
                    let who = entry_naming(&config, arn)
                        .map_or(String::new(), |id| format!("entry {id:?} → "));
                    format!("{who}{arn} ({why})")
                })
                .collect();
            return Err(anyhow::Error::new(err).context(UsageError::new(format!(
                "S3 refuses every change to the event notifications of bucket {name} while \
                 another entry names a destination it cannot use: {}; lew keeps the entries it \
                 does not own, so repair or remove that entry (aws s3api \
                 put-bucket-notification-configuration), then run lew again",
                entries.join("; ")
            ))));
        }
        if !ours.is_empty() && attempt < PERMISSION_ATTEMPTS {
            d.progress.waiting(format!(
                "s3 notification {name}: waiting for S3 to see the launcher's permission \
                 ({attempt}/{PERMISSION_ATTEMPTS})"
            ));
            d.sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(8));
            continue;
        }
        if !ours.is_empty() {
            return Err(anyhow::Error::new(err).context(format!(
                "S3 still cannot invoke {} after {PERMISSION_ATTEMPTS} attempts: check its \
                 permission {PERMISSION_SID} for s3.amazonaws.com (lew status), then run \
                 `lew setup` again",
                d.names.function
            )));
        }
        return Err(err).with_context(|| format!("cannot write the event notifications of {name}"));
    }
    unreachable!("the last attempt returns")
}

/// The destinations an S3 "Unable to validate the following destination configurations" error
/// names, as (ARN, reason): S3 lists each in `<ArgumentName{n}>` and `<ArgumentValue{n}>`.
pub fn destination_failures(body: &str) -> Vec<(String, String)> {
    let element = |name: &str| -> Option<String> {
        let start = body.find(&format!("<{name}>"))? + name.len() + 2;
        let end = start + body[start..].find(&format!("</{name}>"))?;
        Some(xml_unescape(&body[start..end]))
    };
    (1..)
        .map_while(|n| {
            let arn = element(&format!("ArgumentName{n}"))?;
            Some((
                arn,
                element(&format!("ArgumentValue{n}")).unwrap_or_default(),
            ))
        })
        .collect()
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The Id of the entry that sends to `arn`, if any.
fn entry_naming(config: &NotificationConfiguration, arn: &str) -> Option<String> {
    let lambdas = config
        .lambda_function_configurations()
        .iter()
        .filter(|c| c.lambda_function_arn() == arn)
        .map(|c| c.id());
    let queues = config
        .queue_configurations()
        .iter()
        .filter(|c| c.queue_arn() == arn)
        .map(|c| c.id());
    let topics = config
        .topic_configurations()
        .iter()
        .filter(|c| c.topic_arn() == arn)
        .map(|c| c.id());
    lambdas
        .chain(queues)
        .chain(topics)
        .find_map(|id| id.map(str::to_string))
}

/// One entry of a bucket's notification configuration, as far as overlaps go.
struct Rule {
    id: String,
    destination: String,
    events: Vec<String>,
    prefix: String,
    suffix: String,
}

fn key_filter(filter: Option<&NotificationConfigurationFilter>) -> (String, String) {
    let (mut prefix, mut suffix) = (String::new(), String::new());
    for rule in filter
        .and_then(|f| f.key())
        .map_or(&[][..], |k| k.filter_rules())
    {
        let value = rule.value().unwrap_or_default().to_string();
        match rule
            .name()
            .map(|n| n.as_str().to_ascii_lowercase())
            .as_deref()
        {
            Some("prefix") => prefix = value,
            Some("suffix") => suffix = value,
            _ => {}
        }
    }
    (prefix, suffix)
}

fn rules(config: &NotificationConfiguration) -> Vec<Rule> {
    let events = |e: &[Event]| e.iter().map(|e| e.as_str().to_string()).collect::<Vec<_>>();
    let mut out = Vec::new();
    for c in config.lambda_function_configurations() {
        let (prefix, suffix) = key_filter(c.filter());
        out.push(Rule {
            id: c.id().unwrap_or_default().to_string(),
            destination: c.lambda_function_arn().to_string(),
            events: events(c.events()),
            prefix,
            suffix,
        });
    }
    for c in config.queue_configurations() {
        let (prefix, suffix) = key_filter(c.filter());
        out.push(Rule {
            id: c.id().unwrap_or_default().to_string(),
            destination: c.queue_arn().to_string(),
            events: events(c.events()),
            prefix,
            suffix,
        });
    }
    for c in config.topic_configurations() {
        let (prefix, suffix) = key_filter(c.filter());
        out.push(Rule {
            id: c.id().unwrap_or_default().to_string(),
            destination: c.topic_arn().to_string(),
            events: events(c.events()),
            prefix,
            suffix,
        });
    }
    out
}

/// Whether two event types can name the same event (`s3:ObjectCreated:*` covers
/// `s3:ObjectCreated:Put`).
fn events_overlap(a: &str, b: &str) -> bool {
    let covers = |wide: &str, narrow: &str| {
        wide.strip_suffix('*')
            .is_some_and(|stem| narrow.starts_with(stem))
    };
    a == b || covers(a, b) || covers(b, a)
}

/// The entry of another owner that S3 would refuse next to lew's (the S3 User Guide,
/// "Configuring event notifications using object key name filtering": "Notification
/// configurations that use Filter cannot define filtering rules with overlapping prefixes,
/// overlapping suffixes, or prefix and suffix overlapping" for a common event type), as a
/// usage error naming it and the fix. S3 would refuse the write anyway; this says why and what
/// to change, before anything is written.
fn check_overlap(
    d: &Deployment,
    existing: &NotificationConfiguration,
    want: &LambdaFunctionConfiguration,
) -> Result<()> {
    let id = notification_id(d);
    let ours = NotificationConfiguration::builder()
        .lambda_function_configurations(want.clone())
        .build();
    let ours = rules(&ours).remove(0);
    for theirs in rules(existing).into_iter().filter(|r| r.id != id) {
        let events = ours
            .events
            .iter()
            .any(|a| theirs.events.iter().any(|b| events_overlap(a, b)));
        let prefixes =
            ours.prefix.starts_with(&theirs.prefix) || theirs.prefix.starts_with(&ours.prefix);
        let suffixes =
            ours.suffix.ends_with(&theirs.suffix) || theirs.suffix.ends_with(&ours.suffix);
        if events && prefixes && suffixes {
            let filter = match (theirs.prefix.as_str(), theirs.suffix.as_str()) {
                ("", "") => "every key".to_string(),
                (p, "") => format!("keys under {p:?}"),
                ("", s) => format!("keys ending in {s:?}"),
                (p, s) => format!("keys under {p:?} ending in {s:?}"),
            };
            return Err(UsageError::new(format!(
                "the event notifications of bucket {} already have entry {:?} (→ {}) for {} on \
                 {}, which overlaps lew's scenes under {:?} ending in {SUFFIX:?}; S3 refuses two \
                 rules that can match the same new object. Set `bucket.input_prefix` in lew.toml \
                 to a prefix that neither contains nor lies within {:?}, or remove that entry",
                d.names.bucket,
                theirs.id,
                theirs.destination,
                theirs.events.join(", "),
                filter,
                ours.prefix,
                theirs.prefix,
            ))
            .into());
        }
    }
    Ok(())
}

/// The trigger: the permission for S3 to invoke the function, then lew's entry in the bucket's
/// notifications (every other entry is kept). Both are read at once, right away; changes wait
/// for what they need: the permission for the function (`function_ready`), the notification
/// for the bucket (`bucket_ready`) and the permission, which S3 checks when the configuration
/// is written. Returns the permission's outcome and, unless it failed, the notification's.
pub async fn ensure(
    d: &Deployment,
    mode: Mode,
    function_ready: impl Future<Output = Result<()>>,
    bucket_ready: impl Future<Output = Result<()>>,
) -> (Result<Outcome>, Option<Result<Outcome>>) {
    let (policy, existing) = futures::join!(current_permission(d), read_notifications(d));
    let permission = permission_from(d, mode, policy, function_ready).await;
    if permission.is_err() {
        return (permission, None);
    }
    let notification = async {
        let outcome = Outcome::new(
            NOTIFICATION_KIND,
            format!("{} → {}", d.names.bucket, d.names.function),
        );
        let mut existing = existing?;
        if mode == Mode::Apply {
            // Before writing the bucket's configuration, let setup finish the bucket itself; a
            // bucket that did not exist at the first read is read again.
            bucket_ready.await?;
            if existing.is_none() {
                existing = read_notifications(d).await?;
            }
        }
        let Some(existing) = existing else {
            if mode == Mode::Plan {
                return Ok(outcome.created());
            }
            bail!("the bucket {} does not exist", d.names.bucket);
        };
        let want = notification(d)?;
        check_overlap(d, &existing, &want)?;
        let id = notification_id(d);
        let have = existing
            .lambda_function_configurations()
            .iter()
            .find(|c| c.id() == Some(id.as_str()));
        let outcome = match have {
            None => outcome.created(),
            Some(have) if shape(have) == shape(&want) => {
                return Ok(outcome.with_changes(Vec::new()));
            }
            Some(_) => outcome.with_changes(vec![format!(
                "entry {id}: filter or function differs (want prefix {:?}, suffix {SUFFIX:?})",
                d.cfg.bucket.input_prefix
            )]),
        };
        if mode == Mode::Apply {
            write_notifications(d, existing, Some(want)).await?;
        }
        Ok(outcome)
    }
    .await;
    (permission, Some(notification))
}

/// Removes lew's notification entry; every other entry stays. (The function's permission goes
/// with the function.)
pub async fn delete(d: &Deployment) -> Result<Removed> {
    let id = notification_id(d);
    let Some(existing) = read_notifications(d).await? else {
        return Ok(Removed::new(NOTIFICATION_KIND, &id, Removal::AlreadyGone));
    };
    let ours = existing
        .lambda_function_configurations()
        .iter()
        .any(|c| c.id() == Some(id.as_str()));
    if !ours {
        return Ok(Removed::new(NOTIFICATION_KIND, &id, Removal::AlreadyGone));
    }
    write_notifications(d, existing, None).await?;
    Ok(Removed::new(NOTIFICATION_KIND, &id, Removal::Deleted))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_s3::Client;
    use aws_sdk_s3::types::QueueConfiguration;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::error::{exit_code, one_line};
    use crate::resources::mock::Mocks;

    #[test]
    fn empty_documents() {
        assert!(is_empty_document(
            br#"<?xml version="1.0" encoding="utf-8"?>
<GetBucketNotificationResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>"#
        ));
        assert!(!is_empty_document(
            b"<NotificationConfiguration><CloudFunctionConfiguration/></NotificationConfiguration>"
        ));
        assert!(!is_empty_document(b"<Error><Code>x</Code></Error>"));
    }

    const LAUNCHER: &str = "arn:aws:lambda:eu-west-1:123456789012:function:lew-unit-launcher";
    const THEIRS: &str = "arn:aws:sqs:eu-west-1:123456789012:someone-elses-queue";

    /// S3's answer when destinations fail its test, each named in ArgumentName<n>.
    fn unable_to_validate(failing: &[(&str, &str)]) -> String {
        let mut body = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code>\
             <Message>Unable to validate the following destination configurations</Message>",
        );
        for (n, (arn, why)) in failing.iter().enumerate() {
            let n = n + 1;
            body.push_str(&format!(
                "<ArgumentName{n}>{arn}</ArgumentName{n}><ArgumentValue{n}>{why}</ArgumentValue{n}>"
            ));
        }
        body.push_str("<RequestId>R</RequestId><HostId>H</HostId></Error>");
        body
    }

    #[test]
    fn the_failing_destinations_are_read_from_the_error() {
        let body = unable_to_validate(&[
            (
                LAUNCHER,
                "Not authorized to invoke function [x] &amp; more.",
            ),
            (
                THEIRS,
                "Permissions on the destination queue do not allow S3",
            ),
        ]);
        assert_eq!(
            destination_failures(&body),
            [
                (
                    LAUNCHER.to_string(),
                    "Not authorized to invoke function [x] & more.".to_string()
                ),
                (
                    THEIRS.to_string(),
                    "Permissions on the destination queue do not allow S3".to_string()
                )
            ]
        );
        assert!(destination_failures("<Error><Code>InvalidArgument</Code></Error>").is_empty());
    }

    fn existing_with_theirs() -> NotificationConfiguration {
        NotificationConfiguration::builder()
            .queue_configurations(
                QueueConfiguration::builder()
                    .id("their-queue")
                    .queue_arn(THEIRS)
                    .events(Event::S3ObjectCreated)
                    .build()
                    .unwrap(),
            )
            .build()
    }

    fn put_refused(times: usize, failing: &'static [(&'static str, &'static str)]) -> Rule {
        let mut rule = mock!(Client::put_bucket_notification_configuration).sequence();
        for _ in 0..times {
            let body = unable_to_validate(
                &failing
                    .iter()
                    .map(|(arn, why)| (*arn, if why.is_empty() { "x" } else { *why }))
                    .collect::<Vec<_>>(),
            );
            rule = rule.http_status(400, Some(body));
        }
        rule.http_status(200, None).build()
    }

    #[tokio::test]
    async fn a_launcher_permission_s3_cannot_see_yet_is_waited_for() {
        let put = put_refused(2, &[(LAUNCHER, "")]);
        let (d, sleep) = Mocks::new().s3(&[&put]).deployment().await;

        write_notifications(&d, existing_with_theirs(), Some(notification(&d).unwrap()))
            .await
            .unwrap();

        assert_eq!(put.num_calls(), 3);
        assert_eq!(
            sleep.slept(),
            [Duration::from_secs(1), Duration::from_secs(2)]
        );
    }

    #[tokio::test]
    async fn a_launcher_permission_that_never_shows_is_an_error_after_a_bounded_wait() {
        let put = put_refused(20, &[(LAUNCHER, "")]);
        let (d, sleep) = Mocks::new().s3(&[&put]).deployment().await;

        let err = write_notifications(&d, existing_with_theirs(), Some(notification(&d).unwrap()))
            .await
            .unwrap_err();

        assert_eq!(put.num_calls(), PERMISSION_ATTEMPTS as usize);
        assert!(sleep.slept().iter().sum::<Duration>() <= Duration::from_secs(60));
        let text = one_line(&err);
        assert!(
            text.contains("S3 still cannot invoke lew-unit-launcher")
                && text.contains(PERMISSION_SID),
            "{text}"
        );
        assert_eq!(exit_code(&err), 1);
    }

    #[tokio::test]
    async fn another_owners_broken_destination_is_named_and_not_retried() {
        let put = put_refused(
            1,
            &[
                (THEIRS, "The destination queue does not exist"),
                (LAUNCHER, ""),
            ],
        );
        let (d, sleep) = Mocks::new().s3(&[&put]).deployment().await;

        let err = write_notifications(&d, existing_with_theirs(), Some(notification(&d).unwrap()))
            .await
            .unwrap_err();

        assert_eq!(put.num_calls(), 1);
        assert!(sleep.slept().is_empty());
        let text = one_line(&err);
        assert!(
            text.contains("entry \"their-queue\"")
                && text.contains(THEIRS)
                && text.contains("does not exist")
                && text.contains("repair or remove"),
            "{text}"
        );
        assert_eq!(exit_code(&err), 2);
    }

    #[tokio::test]
    async fn an_overlapping_rule_of_another_owner_is_named_before_anything_is_written() {
        let (d, _) = Mocks::new().deployment().await;
        let rule = |id: &str, prefix: &str, suffix: &str| {
            let mut key = S3KeyFilter::builder();
            for (name, value) in [
                (FilterRuleName::Prefix, prefix),
                (FilterRuleName::Suffix, suffix),
            ] {
                if !value.is_empty() {
                    key = key.filter_rules(FilterRule::builder().name(name).value(value).build());
                }
            }
            QueueConfiguration::builder()
                .id(id)
                .queue_arn(THEIRS)
                .events(Event::from("s3:ObjectCreated:Put"))
                .filter(
                    NotificationConfigurationFilter::builder()
                        .key(key.build())
                        .build(),
                )
                .build()
                .unwrap()
        };
        let want = notification(&d).unwrap();
        let with = |q: QueueConfiguration| {
            NotificationConfiguration::builder()
                .queue_configurations(q)
                .build()
        };
        for (prefix, suffix) in [
            ("scenes/", ""),
            ("", ".zip"),
            ("scenes/x/", ".zip"),
            ("", ""),
        ] {
            let err = check_overlap(&d, &with(rule("theirs", prefix, suffix)), &want).unwrap_err();
            let text = one_line(&err);
            assert!(
                text.contains("\"theirs\"") && text.contains("bucket.input_prefix"),
                "{prefix} {suffix}: {text}"
            );
            assert_eq!(exit_code(&err), 2);
        }
        for (prefix, suffix) in [("renders/", ""), ("scenes/", ".png"), ("", ".png")] {
            check_overlap(&d, &with(rule("theirs", prefix, suffix)), &want)
                .unwrap_or_else(|e| panic!("{prefix} {suffix}: {}", one_line(&e)));
        }
        // lew's own entry (its Id) is no overlap: it is replaced.
        check_overlap(&d, &with(rule(&notification_id(&d), "scenes/", "")), &want).unwrap();
    }
}

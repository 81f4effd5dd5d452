//! The S3 → Lambda trigger: the function's resource policy that lets S3 (this bucket, this
//! account) invoke it, and the bucket's notification entry for new `.zip` objects under the
//! input prefix.
//!
//! The bucket's notification configuration is one document shared by everyone who uses the
//! bucket: lew edits only its own entry (known by its Id) and writes every other entry back
//! unchanged.

use anyhow::{Context as _, Result, bail};
use aws_sdk_lambda::error::SdkError as LambdaSdkError;
use aws_sdk_lambda::operation::add_permission::AddPermissionError;
use aws_sdk_lambda::operation::get_policy::GetPolicyError;
use aws_sdk_lambda::operation::remove_permission::RemovePermissionError;
use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, S3KeyFilter,
};
use serde_json::{Value, json};

use super::{Deployment, Mode, Outcome, Removal, Removed, canonical_statement};

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
    let name = &d.names.function;
    let policy = match d.aws.lambda.get_policy().function_name(name).send().await {
        Ok(out) => out.policy,
        Err(LambdaSdkError::ServiceError(e))
            if matches!(e.err(), GetPolicyError::ResourceNotFoundException(_)) =>
        {
            None
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read the policy of {name}")),
    };
    let statements = policy
        .and_then(|p| serde_json::from_str::<Value>(&p).ok())
        .and_then(|p| p.get("Statement").cloned())
        .map(|s| match s {
            Value::Array(items) => items,
            one => vec![one],
        })
        .unwrap_or_default();
    Ok(statements
        .into_iter()
        .find(|s| s.get("Sid").and_then(Value::as_str) == Some(PERMISSION_SID)))
}

/// Whether the permission lew would add is there. Condition key names are case-insensitive
/// in IAM, so they are compared lower-cased.
fn permission_ok(d: &Deployment, have: &Value) -> bool {
    fn lower_keys(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), lower_keys(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    canonical_statement(&lower_keys(have))
        == canonical_statement(&lower_keys(&permission_statement(d)))
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
            remove_permission(d).await?;
        }
        add_permission(d, mode).await?;
    }
    Ok(outcome)
}

async fn add_permission(d: &Deployment, mode: Mode) -> Result<()> {
    if mode == Mode::Plan {
        return Ok(());
    }
    let name = &d.names.function;
    let added = d
        .aws
        .lambda
        .add_permission()
        .function_name(name)
        .statement_id(PERMISSION_SID)
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .source_arn(d.bucket_arn())
        .source_account(&d.aws.account)
        .send()
        .await;
    match added {
        Ok(_) => Ok(()),
        // Already added: a retried request whose first answer was lost, or a concurrent setup.
        // The statement is compared on the next `ensure`.
        Err(LambdaSdkError::ServiceError(e))
            if matches!(e.err(), AddPermissionError::ResourceConflictException(_)) =>
        {
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot allow S3 to invoke {name}")),
    }
}

async fn remove_permission(d: &Deployment) -> Result<bool> {
    let name = &d.names.function;
    match d
        .aws
        .lambda
        .remove_permission()
        .function_name(name)
        .statement_id(PERMISSION_SID)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(LambdaSdkError::ServiceError(e))
            if matches!(e.err(), RemovePermissionError::ResourceNotFoundException(_)) =>
        {
            Ok(false)
        }
        Err(e) => Err(e).with_context(|| format!("cannot remove the S3 permission of {name}")),
    }
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

/// Writes the configuration back with lew's entry replaced by `entry` (or removed if `None`).
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
    d.aws
        .s3
        .put_bucket_notification_configuration()
        .bucket(name)
        .notification_configuration(config)
        .send()
        .await
        .with_context(|| format!("cannot write the event notifications of {name}"))?;
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
    use super::is_empty_document;

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
}

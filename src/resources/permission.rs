//! The launcher's resource policy: the statements that let an AWS service invoke it (S3 for
//! uploads, EventBridge for its two rules). The modules that own each statement decide what it
//! says and when it changes; this one reads, adds and removes statements by their id.

use anyhow::{Context as _, Result};
use aws_sdk_lambda::operation::add_permission::AddPermissionError;
use aws_sdk_lambda::operation::get_policy::GetPolicyError;
use aws_sdk_lambda::operation::remove_permission::RemovePermissionError;
use serde_json::Value;

use super::Deployment;

/// A statement that lets `principal` invoke the launcher when the call comes from
/// `source_arn` (and, where given, `source_account`).
pub struct Invoker<'a> {
    pub sid: &'a str,
    /// The AWS service, e.g. `s3.amazonaws.com`.
    pub principal: &'a str,
    pub source_arn: String,
    pub source_account: Option<&'a str>,
    /// Who it lets in, for the error message: "S3", "EventBridge rule lew-x-reconcile".
    pub who: String,
}

/// The statements of the launcher's resource policy (none without a function or a policy).
pub async fn statements(d: &Deployment) -> Result<Vec<Value>> {
    let name = &d.names.function;
    let policy = match d.aws.lambda.get_policy().function_name(name).send().await {
        Ok(out) => out.policy,
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(GetPolicyError::ResourceNotFoundException(_))
            ) =>
        {
            None
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read the policy of {name}")),
    };
    Ok(policy
        .and_then(|p| serde_json::from_str::<Value>(&p).ok())
        .and_then(|p| p.get("Statement").cloned())
        .map(|s| match s {
            Value::Array(items) => items,
            one => vec![one],
        })
        .unwrap_or_default())
}

/// The statement with this id, if the policy has it.
pub fn with_sid<'a>(statements: &'a [Value], sid: &str) -> Option<&'a Value> {
    statements
        .iter()
        .find(|s| s.get("Sid").and_then(Value::as_str) == Some(sid))
}

/// Adds the statement. One already there under its id counts as added: a retried request
/// whose first answer was lost, or a concurrent setup (the caller compares it on its next run).
pub async fn add(d: &Deployment, invoker: &Invoker<'_>) -> Result<()> {
    let name = &d.names.function;
    let added = d
        .aws
        .lambda
        .add_permission()
        .function_name(name)
        .statement_id(invoker.sid)
        .action("lambda:InvokeFunction")
        .principal(invoker.principal)
        .source_arn(&invoker.source_arn)
        .set_source_account(invoker.source_account.map(str::to_string))
        .send()
        .await;
    match added {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(AddPermissionError::ResourceConflictException(_))
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot allow {} to invoke {name}", invoker.who)),
    }
}

/// Removes the statement with this id; false when it was not there.
pub async fn remove(d: &Deployment, sid: &str) -> Result<bool> {
    let name = &d.names.function;
    match d
        .aws
        .lambda
        .remove_permission()
        .function_name(name)
        .statement_id(sid)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(RemovePermissionError::ResourceNotFoundException(_))
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e).with_context(|| format!("cannot remove the permission {sid} of {name}")),
    }
}

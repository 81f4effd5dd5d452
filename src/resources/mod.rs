//! The AWS resources lew manages, one module each, all speaking the same small vocabulary:
//!
//! - `KIND`: what the resource is called in reports (`"s3 bucket"`);
//! - `ensure(&Deployment, Mode) -> Result<Outcome>`: create or converge the resource (in
//!   [`Mode::Plan`] only read and say what would change; `lew status` reads the same plan as
//!   present / missing / drifted);
//! - `delete(&Deployment) -> Result<Removed>`: remove it if it carries this app's ownership tag;
//!   "already gone" is success;
//! - `find` / `owned` where teardown's leak check or a command needs to look one up.
//!
//! Where a resource needs more, its `ensure` says so in its signature: `queue`, `roles` and
//! `logs` take which one; `task_definition::ensure_when` and `function::ensure_when` take a
//! future of inputs still being worked out (the queue's URL, the network) so they are read
//! meanwhile; `network::ensure` also returns the subnets and groups the launcher needs (and an
//! outcome only when lew manages the security group); `trigger::ensure` returns two outcomes,
//! the permission and the notification; `events` takes which rule, and `events::ensure_all`
//! converges both with one read of the function's policy. [`graph`] walks them all in
//! dependency order for `setup` and `status`; [`leaks`] is teardown's final check. `tasks` is
//! not a resource lew creates but the worker tasks the launcher starts.
//!
//! Names are derived from the app name, so status and teardown need no state file.

pub mod bucket;
pub mod cluster;
pub mod events;
pub mod function;
pub mod graph;
pub mod leaks;
pub mod logs;
pub mod network;
pub mod permission;
pub mod queue;
pub mod registry;
pub mod roles;
pub mod task_definition;
pub mod tasks;
pub mod trigger;

#[cfg(test)]
pub(crate) mod mock;

use std::fmt;
use std::time::Duration;

use aws_sdk_sqs::config::AsyncSleep as _;

use serde::Serialize;
use serde_json::Value;

use crate::aws::Aws;
use crate::config::Config;
use crate::progress::Progress;

/// The tag that marks a resource as lew's, for this app.
pub const APP_TAG: &str = "lew:app";
/// The lew version that last wrote a resource.
pub const VERSION_TAG: &str = "lew:version";
/// `startedBy` on the tasks the launcher starts, so they can be found and stopped.
pub const STARTED_BY: &str = "lew-launcher";
/// The worker's container name in the task definition.
pub const CONTAINER: &str = "worker";

/// Everything a resource needs: the validated config, the AWS session and the derived names.
pub struct Deployment {
    pub cfg: Config,
    pub aws: Aws,
    pub names: Names,
    pub progress: Progress,
    /// Queue URLs looked up while STS was asked for the account (see `queue::prefetch`).
    queue_urls: queue::Prefetched,
}

impl Deployment {
    pub fn new(cfg: Config, aws: Aws, progress: Progress) -> Deployment {
        let names = Names::new(&cfg, &aws.account, &aws.region);
        Deployment {
            cfg,
            aws,
            names,
            progress,
            queue_urls: Default::default(),
        }
    }

    /// Keeps the queue URLs looked up before the deployment existed (`queue::prefetch`).
    pub fn with_queue_urls(mut self, urls: queue::Prefetched) -> Self {
        self.queue_urls = urls;
        self
    }

    /// Waits with the SDK's sleep (tokio's timer in lew), the same clock the SDK's own retries
    /// and waiters use, so unit tests with an instant sleep pay no real time for lew's backoffs.
    pub async fn sleep(&self, duration: Duration) {
        match self.aws.sdk.sleep_impl() {
            Some(sleep) => sleep.sleep(duration).await,
            None => tokio::time::sleep(duration).await,
        }
    }

    /// The tags every taggable resource carries.
    pub fn tags(&self) -> Vec<(&'static str, String)> {
        vec![
            (APP_TAG, self.cfg.app.clone()),
            (VERSION_TAG, env!("CARGO_PKG_VERSION").to_string()),
        ]
    }

    /// Whether a resource's tags say it is this app's.
    pub fn owns<'a>(&self, mut tags: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
        tags.any(|(k, v)| k == APP_TAG && v == self.cfg.app)
    }

    pub fn queue_arn(&self) -> String {
        self.aws.arn("sqs", &self.names.queue)
    }

    pub fn dlq_arn(&self) -> String {
        self.aws.arn("sqs", &self.names.dlq)
    }

    pub fn role_arn(&self, role: &str) -> String {
        self.aws.iam_arn(&format!("role/{role}"))
    }

    pub fn cluster_arn(&self) -> String {
        self.aws
            .arn("ecs", &format!("cluster/{}", self.names.cluster))
    }

    pub fn function_arn(&self) -> String {
        self.aws
            .arn("lambda", &format!("function:{}", self.names.function))
    }

    pub fn bucket_arn(&self) -> String {
        self.aws.s3_arn(&self.names.bucket)
    }

    pub fn log_group_arn(&self, group: &str) -> String {
        self.aws.arn("logs", &format!("log-group:{group}"))
    }

    pub fn repository_arn(&self) -> String {
        self.aws
            .arn("ecr", &format!("repository/{}", self.names.repository))
    }

    /// The registry host of this account's ECR, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com`.
    pub fn registry_host(&self) -> String {
        let suffix = if self.aws.region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("{}.dkr.ecr.{}.{suffix}", self.aws.account, self.aws.region)
    }

    /// An EventBridge rule on the account's default event bus.
    pub fn rule_arn(&self, rule: &str) -> String {
        self.aws.arn("events", &format!("rule/{rule}"))
    }

    pub fn repository_uri(&self) -> String {
        format!("{}/{}", self.registry_host(), self.names.repository)
    }
}

/// Every resource name, derived from the app name (and account and region for the bucket).
#[derive(Debug, Clone, Serialize)]
pub struct Names {
    pub app: String,
    pub bucket: String,
    pub queue: String,
    pub dlq: String,
    pub function: String,
    pub launcher_role: String,
    pub task_role: String,
    pub execution_role: String,
    pub cluster: String,
    pub task_family: String,
    pub repository: String,
    pub worker_log_group: String,
    pub launcher_log_group: String,
    pub security_group: String,
    /// EventBridge rules that invoke the launcher: when a worker task stops, and on a schedule.
    pub task_stopped_rule: String,
    pub reconcile_rule: String,
}

impl Names {
    pub fn new(cfg: &Config, account: &str, region: &str) -> Names {
        let p = format!("lew-{}", cfg.app);
        Names {
            app: cfg.app.clone(),
            bucket: cfg
                .bucket
                .name
                .clone()
                .unwrap_or_else(|| format!("{p}-{account}-{region}")),
            queue: format!("{p}-jobs"),
            dlq: format!("{p}-jobs-dlq"),
            function: format!("{p}-launcher"),
            launcher_role: format!("{p}-launcher"),
            task_role: format!("{p}-task"),
            execution_role: format!("{p}-execution"),
            cluster: p.clone(),
            task_family: format!("{p}-worker"),
            repository: format!("{p}-worker"),
            worker_log_group: format!("/lew/{}/worker", cfg.app),
            launcher_log_group: format!("/aws/lambda/{p}-launcher"),
            security_group: format!("{p}-worker"),
            task_stopped_rule: format!("{p}-task-stopped"),
            reconcile_rule: format!("{p}-reconcile"),
        }
    }
}

/// Whether `ensure` changes things or only says what it would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    Plan,
}

/// What `ensure` did (Apply) or would do (Plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Unchanged,
}

/// One resource's line in the setup, plan and status reports.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub resource: &'static str,
    pub name: String,
    pub action: Action,
    /// What differs from the desired state, e.g. `VisibilityTimeout: 30 → 900`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Outcome {
    pub fn new(resource: &'static str, name: impl Into<String>) -> Outcome {
        Outcome {
            resource,
            name: name.into(),
            action: Action::Unchanged,
            changes: Vec::new(),
            note: None,
        }
    }

    pub fn created(mut self) -> Outcome {
        self.action = Action::Create;
        self
    }

    /// Unchanged when nothing differs, otherwise an update listing the differences.
    pub fn with_changes(mut self, changes: Vec<String>) -> Outcome {
        self.action = if changes.is_empty() {
            Action::Unchanged
        } else {
            Action::Update
        };
        self.changes = changes;
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Outcome {
        self.note = Some(note.into());
        self
    }

    /// The word for this outcome in a report: what happened, or what would happen.
    pub fn verb(&self, mode: Mode) -> &'static str {
        match (mode, self.action) {
            (Mode::Apply, Action::Create) => "created",
            (Mode::Apply, Action::Update) => "updated",
            (Mode::Plan, Action::Create) => "create",
            (Mode::Plan, Action::Update) => "update",
            (_, Action::Unchanged) => "unchanged",
        }
    }
}

/// What teardown did with one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Removal {
    Deleted,
    AlreadyGone,
    /// Kept on purpose (the bucket without --delete-data).
    Kept,
    /// Exists but does not carry this app's tag: not lew's to delete.
    NotOwned,
}

impl fmt::Display for Removal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Removal::Deleted => "deleted",
            Removal::AlreadyGone => "already gone",
            Removal::Kept => "kept",
            Removal::NotOwned => "not lew's, left alone",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub resource: &'static str,
    pub name: String,
    pub result: Removal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Removed {
    pub fn new(resource: &'static str, name: impl Into<String>, result: Removal) -> Removed {
        Removed {
            resource,
            name: name.into(),
            result,
            note: None,
        }
    }

    pub fn note(mut self, note: impl Into<String>) -> Removed {
        self.note = Some(note.into());
        self
    }
}

/// A resource that could not be set up, read or deleted: one line of a report.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub resource: String,
    pub error: String,
    /// The exit code the error implies on its own: 2 when the configuration must change (it
    /// conflicts with what exists, e.g. a bucket rule overlapping lew's), else 1.
    #[serde(skip)]
    pub exit_code: u8,
}

impl Failure {
    pub fn new(resource: impl Into<String>, err: &anyhow::Error) -> Failure {
        Failure {
            resource: resource.into(),
            error: crate::error::one_line(err),
            exit_code: crate::error::exit_code(err),
        }
    }
}

/// Files one resource's result with the others: what it did, or why it failed (labelled
/// `what`), so one failed resource never hides what happened to the rest.
pub fn file<T>(
    done: &mut Vec<T>,
    failures: &mut Vec<Failure>,
    what: &str,
    result: anyhow::Result<T>,
) {
    match result {
        Ok(r) => done.push(r),
        Err(e) => failures.push(Failure::new(what, &e)),
    }
}

/// The error for a same-named resource that lew did not create: setup will not take it over.
pub fn not_ours(resource: &str, name: &str, app: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{resource} {name} exists but is not tagged {APP_TAG}={app}, so lew did not create it and \
         will not change it; delete it, or choose another `app` name in lew.toml"
    )
}

/// Records `what: have → want` when the two differ.
pub fn compare<T: PartialEq + fmt::Display>(
    changes: &mut Vec<String>,
    what: &str,
    have: T,
    want: T,
) {
    if have != want {
        changes.push(format!("{what}: {have} → {want}"));
    }
}

/// Whether two policy documents say the same thing, ignoring formatting, the order of
/// statements and list entries, and a one-element list written as a single value.
pub fn same_policy(have: &str, want: &Value) -> bool {
    let have = percent_decode(have);
    match serde_json::from_str::<Value>(&have) {
        Ok(have) => canonical(&have) == canonical(want),
        Err(_) => false,
    }
}

/// A policy or statement in a form where equal meaning gives equal values (see [`same_policy`]).
pub fn canonical_statement(v: &Value) -> Value {
    canonical(v)
}

/// Whether two resource-policy statements (a Lambda permission) say the same: compared in
/// their canonical form (see [`same_policy`]), with condition keys lower-cased, since IAM
/// matches those case-insensitively.
pub fn same_statement(have: &Value, want: &Value) -> bool {
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
    canonical(&lower_keys(have)) == canonical(&lower_keys(want))
}

fn canonical(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(canonical).collect();
            if items.len() == 1 {
                return items.remove(0);
            }
            items.sort_by_key(|i| i.to_string());
            Value::Array(items)
        }
        Value::Object(map) => {
            // `Sid` is a label, not a permission; AWS and emulators may drop or add it.
            let mut entries: Vec<(String, Value)> = map
                .iter()
                .filter(|(k, _)| k.as_str() != "Sid")
                .map(|(k, v)| (k.clone(), canonical(v)))
                .collect();
            // Sorted keys, so the text used to order list entries does not depend on the
            // order the document was written in (serde_json may preserve insertion order).
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        // Numbers and booleans inside conditions come back as strings.
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => other.clone(),
    }
}

/// IAM returns policy documents URL-encoded (RFC 3986); other services return plain JSON.
pub fn percent_decode(text: &str) -> String {
    if !text.trim_start().starts_with('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The short text of an SDK error for a report line: its code and message, without the chain.
pub fn short_error(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let t = s.to_string();
        if text == "service error" || text == "unhandled error" {
            text = t;
        } else if !text.contains(&t) {
            text = format!("{text}: {t}");
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_compare_by_meaning() {
        let want = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "arn:q"},
            {"Effect": "Allow", "Action": ["a", "b"], "Resource": "*"}]});
        let have = r#"{"Statement":[{"Action":["b","a"],"Resource":["*"],"Effect":"Allow"},
            {"Sid":"x","Effect":"Allow","Action":"sqs:SendMessage","Resource":"arn:q"}],
            "Version":"2012-10-17"}"#;
        assert!(same_policy(have, &want));
        assert!(!same_policy(&have.replace("arn:q", "arn:other"), &want));
    }

    #[test]
    fn iam_documents_are_url_decoded() {
        assert_eq!(percent_decode("%7B%22a%22%3A1%7D"), "{\"a\":1}");
        assert_eq!(percent_decode("{\"a\":\"50%\"}"), "{\"a\":\"50%\"}");
    }
}

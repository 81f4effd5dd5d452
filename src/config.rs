//! `lew.toml`: the raw file as serde reads it, and the validated [`Config`] every command uses.
//!
//! Every key is optional. Everything AWS would reject but the emulator would not (Fargate
//! cpu/memory pairs, name rules, retention values, prefix overlap) is checked here, before any
//! AWS call, so a bad value is a usage error (exit 2) that names the key and the fix.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::UsageError;

/// The commented template `lew init` writes; it documents every key with its default.
pub const TEMPLATE: &str = include_str!("../config.example.toml");

/// Values CloudWatch Logs accepts for a log group's retention, in days.
pub const RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// The container CLIs `lew push-image` knows how to drive.
pub const CONTAINER_CLIS: &[&str] = &["docker", "podman"];

/// The file as written. Unknown keys are an error, so a typo never silently means "default".
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    app: Option<String>,
    region: Option<String>,
    profile: Option<String>,
    #[serde(default)]
    bucket: RawBucket,
    #[serde(default)]
    queue: RawQueue,
    #[serde(default)]
    launcher: RawLauncher,
    #[serde(default)]
    worker: RawWorker,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    logs: RawLogs,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawBucket {
    name: Option<String>,
    input_prefix: Option<String>,
    output_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawQueue {
    visibility_timeout_s: Option<i64>,
    max_receives: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawLauncher {
    memory_mb: Option<i64>,
    timeout_s: Option<i64>,
    reconcile_every_min: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawWorker {
    cpu: Option<i64>,
    memory_mb: Option<i64>,
    max_tasks: Option<i64>,
    render_timeout_s: Option<i64>,
    spot: Option<bool>,
    container_cli: Option<String>,
    split: Option<i64>,
    idle_s: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawNetwork {
    subnets: Option<Vec<String>>,
    security_groups: Option<Vec<String>>,
    assign_public_ip: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawLogs {
    retention_days: Option<i64>,
}

/// A validated configuration: every value here is one AWS accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub app: String,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub bucket: BucketConfig,
    pub queue: QueueConfig,
    pub launcher: LauncherConfig,
    pub worker: WorkerConfig,
    pub network: NetworkConfig,
    pub logs: LogsConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketConfig {
    /// `None` means the default `lew-<app>-<account>-<region>`, known once the account is.
    pub name: Option<String>,
    pub input_prefix: String,
    pub output_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueConfig {
    pub visibility_timeout_s: u32,
    pub max_receives: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LauncherConfig {
    pub memory_mb: u32,
    pub timeout_s: u32,
    /// Minutes between the launcher's scheduled reconciles (a safety net for jobs no event
    /// announces); 0: the schedule is off.
    pub reconcile_every_min: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerConfig {
    pub cpu: u32,
    pub memory_mb: u32,
    pub max_tasks: u32,
    pub render_timeout_s: u32,
    pub spot: bool,
    pub container_cli: String,
    /// Bands a still is rendered in by default (`--split` overrides it); 1: whole.
    pub split: u32,
    /// Seconds a worker keeps polling after its last job; 0: it exits at the first empty poll.
    pub idle_s: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkConfig {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogsConfig {
    pub retention_days: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_raw(RawConfig::default()).expect("the defaults are valid")
    }
}

impl Config {
    /// Reads and validates a config file. A missing file is all defaults unless the path was
    /// given explicitly (`--config` / `LEW_CONFIG`), where a typo should not go unnoticed.
    pub fn load(path: Option<&Path>) -> Result<Config, UsageError> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("lew.toml"), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse(&text)
                .map_err(|e| UsageError::new(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                Ok(Config::default())
            }
            Err(e) => Err(UsageError::new(format!(
                "cannot read config file {}: {e} (create one with `lew init`)",
                path.display()
            ))),
        }
    }

    /// Parses and validates the text of a `lew.toml`.
    pub fn parse(text: &str) -> Result<Config, UsageError> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| UsageError::new(e.to_string().trim_end().to_string()))?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            // toml's message shows the line and column; the path says which key it is, and
            // serde's Rust type names become the words a TOML user knows.
            let path = e.path().to_string();
            let inner = e.into_inner();
            let hint = did_you_mean(inner.message());
            let text = inner.to_string();
            let text = text
                .trim_end()
                .replace("expected i64", "expected an integer")
                .replace("expected a sequence", "expected an array")
                + &hint;
            match path.as_str() {
                "." | "" => UsageError::new(text),
                _ => UsageError::new(format!("{path}: {text}")),
            }
        })?;
        Config::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Result<Config, UsageError> {
        let mut v = Validator::default();
        let app = raw.app.unwrap_or_else(|| "povray".into());
        v.check(valid_app(&app), "app", &app);

        if let Some(region) = &raw.region {
            v.check(valid_region(region), "region", region);
        }
        if let Some(profile) = &raw.profile {
            v.check(
                (!profile.trim().is_empty())
                    .then_some(())
                    .ok_or("must not be empty".into()),
                "profile",
                profile,
            );
        }

        let bucket = BucketConfig {
            name: raw.bucket.name.filter(|n| !n.is_empty()),
            input_prefix: raw.bucket.input_prefix.unwrap_or_else(|| "scenes/".into()),
            output_prefix: raw
                .bucket
                .output_prefix
                .unwrap_or_else(|| "renders/".into()),
        };
        if let Some(name) = &bucket.name {
            v.check(valid_bucket_name(name), "bucket.name", name);
        }
        v.check(
            valid_prefix(&bucket.input_prefix),
            "bucket.input_prefix",
            &bucket.input_prefix,
        );
        v.check(
            valid_prefix(&bucket.output_prefix),
            "bucket.output_prefix",
            &bucket.output_prefix,
        );
        if bucket.input_prefix.starts_with(&bucket.output_prefix)
            || bucket.output_prefix.starts_with(&bucket.input_prefix)
        {
            v.fail(
                "bucket.output_prefix",
                &bucket.output_prefix,
                format!(
                    "overlaps bucket.input_prefix = {:?}; results written there would trigger \
                     the launcher again. Use two separate prefixes such as \"scenes/\" and \
                     \"renders/\"",
                    bucket.input_prefix
                ),
            );
        }

        let queue = QueueConfig {
            visibility_timeout_s: v.range(
                "queue.visibility_timeout_s",
                raw.queue.visibility_timeout_s,
                900,
                30..=43_200,
                "seconds (SQS allows at most 12 hours; lew's worker heartbeat needs at least 30)",
            ),
            max_receives: v.range(
                "queue.max_receives",
                raw.queue.max_receives,
                3,
                1..=1000,
                "receives before a job moves to the dead-letter queue",
            ),
        };
        let launcher = LauncherConfig {
            memory_mb: v.range(
                "launcher.memory_mb",
                raw.launcher.memory_mb,
                128,
                128..=10_240,
                "MB (Lambda's limits)",
            ),
            timeout_s: v.range(
                "launcher.timeout_s",
                raw.launcher.timeout_s,
                30,
                1..=900,
                "seconds (Lambda's limits)",
            ),
            reconcile_every_min: v.range(
                "launcher.reconcile_every_min",
                raw.launcher.reconcile_every_min,
                5,
                0..=1440,
                "minutes (0 turns the schedule off)",
            ),
        };
        let worker = WorkerConfig {
            cpu: v.range(
                "worker.cpu",
                raw.worker.cpu,
                1024,
                256..=16_384,
                "Fargate CPU units",
            ),
            memory_mb: v.range(
                "worker.memory_mb",
                raw.worker.memory_mb,
                2048,
                512..=122_880,
                "MB",
            ),
            max_tasks: v.range(
                "worker.max_tasks",
                raw.worker.max_tasks,
                4,
                1..=1000,
                "tasks the launcher keeps running at most",
            ),
            render_timeout_s: v.range(
                "worker.render_timeout_s",
                raw.worker.render_timeout_s,
                3600,
                // SQS keeps a received message invisible for at most 12 h, heartbeat or not;
                // 11 h leaves an hour for the download and the upload.
                1..=39_600,
                "seconds (SQS hides a job for at most 12 hours)",
            ),
            spot: raw.worker.spot.unwrap_or(false),
            container_cli: raw.worker.container_cli.unwrap_or_else(|| "docker".into()),
            split: v.range(
                "worker.split",
                raw.worker.split,
                1,
                1..=crate::parts::MAX_BANDS as u32,
                "bands a still is split into",
            ),
            idle_s: v.range(
                "worker.idle_s",
                raw.worker.idle_s,
                60,
                0..=3600,
                "seconds a worker waits for more work",
            ),
        };
        // The cpu is checked on its own, so its error names worker.cpu; the pair only when
        // both values are valid, so a bad cpu is not blamed on the memory.
        if v.ok_so_far("worker.cpu") && !FARGATE_CPUS.contains(&worker.cpu) {
            v.fail("worker.cpu", &worker.cpu, fargate_cpu_rule());
        }
        if v.ok_so_far("worker.cpu")
            && v.ok_so_far("worker.memory_mb")
            && let Err(why) = fargate_pair(worker.cpu, worker.memory_mb)
        {
            v.fail("worker.memory_mb", &worker.memory_mb, why);
        }
        if !CONTAINER_CLIS.contains(&worker.container_cli.as_str()) {
            v.fail(
                "worker.container_cli",
                &worker.container_cli,
                "must be \"docker\" or \"podman\"".into(),
            );
        }

        let network = NetworkConfig {
            subnets: raw.network.subnets.unwrap_or_default(),
            security_groups: raw.network.security_groups.unwrap_or_default(),
            assign_public_ip: raw.network.assign_public_ip.unwrap_or(true),
        };
        for (i, s) in network.subnets.iter().enumerate() {
            v.check(aws_id(s, "subnet-"), &format!("network.subnets[{i}]"), s);
        }
        for (i, s) in network.security_groups.iter().enumerate() {
            v.check(
                aws_id(s, "sg-"),
                &format!("network.security_groups[{i}]"),
                s,
            );
        }
        if network.security_groups.len() > 5 {
            v.fail(
                "network.security_groups",
                &network.security_groups,
                "Fargate tasks accept at most 5 security groups".into(),
            );
        }
        if network.subnets.len() > 16 {
            v.fail(
                "network.subnets",
                &network.subnets,
                "Fargate tasks accept at most 16 subnets".into(),
            );
        }

        let retention = v.range(
            "logs.retention_days",
            raw.logs.retention_days,
            14,
            1..=3653,
            "days",
        );
        if v.ok_so_far("logs.retention_days") && !RETENTION_DAYS.contains(&retention) {
            v.fail(
                "logs.retention_days",
                &retention,
                format!("CloudWatch Logs accepts only {RETENTION_DAYS:?}"),
            );
        }

        v.finish()?;
        Ok(Config {
            app,
            region: raw.region,
            profile: raw.profile,
            bucket,
            queue,
            launcher,
            worker,
            network,
            logs: LogsConfig {
                retention_days: retention,
            },
        })
    }
}

/// Collects every problem in a file so the user can fix them all in one go.
#[derive(Default)]
struct Validator {
    problems: Vec<(String, String)>,
}

impl Validator {
    fn check(&mut self, result: Result<(), String>, key: &str, value: &dyn std::fmt::Debug) {
        if let Err(why) = result {
            self.fail(key, value, why);
        }
    }

    /// Records a problem; `value` is shown as TOML would write it (strings quoted).
    fn fail(&mut self, key: &str, value: &dyn std::fmt::Debug, why: String) {
        self.problems
            .push((key.to_string(), format!("{key} = {value:?}: {why}")));
    }

    fn ok_so_far(&self, key: &str) -> bool {
        !self.problems.iter().any(|(k, _)| k == key)
    }

    fn range(
        &mut self,
        key: &str,
        value: Option<i64>,
        default: u32,
        range: std::ops::RangeInclusive<u32>,
        unit: &str,
    ) -> u32 {
        let Some(value) = value else { return default };
        match u32::try_from(value) {
            Ok(n) if range.contains(&n) => n,
            _ => {
                self.fail(
                    key,
                    &value,
                    format!(
                        "must be between {} and {} {unit}",
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
        }
    }

    fn finish(self) -> Result<(), UsageError> {
        match self.problems.len() {
            0 => Ok(()),
            1 => Err(UsageError::new(self.problems[0].1.clone())),
            n => {
                let mut msg = format!("{n} problems in the configuration:");
                for (_, p) in &self.problems {
                    let _ = write!(msg, "\n  - {p}");
                }
                Err(UsageError::new(msg))
            }
        }
    }
}

fn valid_app(app: &str) -> Result<(), String> {
    let ok_chars = app
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if app.is_empty() || app.len() > 20 || !ok_chars {
        return Err(
            "must be 1-20 characters of a-z, 0-9 and '-' (it names every resource, \
                    e.g. lew-<app>-jobs)"
                .into(),
        );
    }
    if !app.starts_with(|c: char| c.is_ascii_lowercase()) || app.ends_with('-') {
        return Err("must start with a letter and not end with '-'".into());
    }
    if app.contains("--") {
        return Err("must not contain \"--\"".into());
    }
    Ok(())
}

pub fn valid_region(region: &str) -> Result<(), String> {
    // e.g. eu-west-1, us-gov-west-1, ap-southeast-3: lower-case words, then a number.
    let parts: Vec<&str> = region.split('-').collect();
    let shape_ok = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1]
            .parse::<u8>()
            .is_ok_and(|n| n > 0 && n < 100);
    if shape_ok {
        Ok(())
    } else {
        Err("is not an AWS region name (for example \"eu-west-1\")".into())
    }
}

/// S3's bucket naming rules for general purpose buckets.
pub fn valid_bucket_name(name: &str) -> Result<(), String> {
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let edges_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let looks_like_ip = name.split('.').count() == 4
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if !(3..=63).contains(&name.len()) || !chars_ok || !edges_ok {
        Err(
            "S3 bucket names are 3-63 characters of a-z, 0-9, '.' and '-', starting and ending \
             with a letter or digit"
                .into(),
        )
    } else if name.contains("..") || looks_like_ip {
        Err("S3 bucket names cannot contain \"..\" or look like an IP address".into())
    } else if name.starts_with("xn--") || name.starts_with("sthree-") {
        Err("S3 reserves the prefixes \"xn--\" and \"sthree-\"".into())
    } else if name.ends_with("-s3alias") || name.ends_with("--ol-s3") {
        Err("S3 reserves the suffixes \"-s3alias\" and \"--ol-s3\"".into())
    } else {
        Ok(())
    }
}

fn valid_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() || !prefix.ends_with('/') || prefix.starts_with('/') {
        return Err(
            "must be a folder-like key prefix that ends with '/' and does not start with '/' \
             (for example \"scenes/\")"
                .into(),
        );
    }
    if prefix.len() > 200
        || prefix
            .chars()
            .any(|c| c.is_control() || c == '*' || c == '?')
    {
        return Err(
            "must be at most 200 characters without control characters, '*' or '?' \
                    (it appears in IAM policies)"
                .into(),
        );
    }
    Ok(())
}

fn aws_id(id: &str, prefix: &str) -> Result<(), String> {
    let rest = id.strip_prefix(prefix);
    match rest {
        Some(hex)
            if (8..=17).contains(&hex.len()) && hex.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            Ok(())
        }
        _ => Err(format!("is not an id of the form {prefix}0123abcd")),
    }
}

/// The CPU sizes Fargate (Linux) offers, in CPU units.
pub const FARGATE_CPUS: &[u32] = &[256, 512, 1024, 2048, 4096, 8192, 16_384];

fn fargate_cpu_rule() -> String {
    "is not a Fargate size; use 256, 512, 1024, 2048, 4096, 8192 or 16384".into()
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (toml's message without the
/// snippet): `\ndid you mean `b`?` when one expected name is close to the unknown one, as cargo
/// suggests commands. Empty otherwise. serde's error has no structured form to read instead.
fn did_you_mean(message: &str) -> String {
    if !message.starts_with("unknown field `") {
        return String::new();
    }
    let mut names = message.split('`').skip(1).step_by(2);
    let Some(unknown) = names.next() else {
        return String::new();
    };
    // cargo's rule: an edit distance of at most a third of the name's length (at least 1).
    let limit = (unknown.chars().count() / 3).max(1);
    names
        .map(|n| (strsim::levenshtein(unknown, n), n))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, n)| format!("\ndid you mean `{n}`?"))
        .unwrap_or_default()
}

/// The CPU/memory combinations Fargate (Linux) accepts, in MiB.
pub fn fargate_pair(cpu: u32, memory_mb: u32) -> Result<(), String> {
    let (min, max, step) = match cpu {
        256 => {
            return if [512, 1024, 2048].contains(&memory_mb) {
                Ok(())
            } else {
                Err("Fargate allows 512, 1024 or 2048 MB with worker.cpu = 256".into())
            };
        }
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16_384, 1024),
        4096 => (8192, 30_720, 1024),
        8192 => (16_384, 61_440, 4096),
        16_384 => (32_768, 122_880, 8192),
        _ => return Err(format!("worker.cpu = {cpu} {}", fargate_cpu_rule())),
    };
    if (min..=max).contains(&memory_mb) && (memory_mb - min).is_multiple_of(step) {
        Ok(())
    } else {
        Err(format!(
            "Fargate allows {min}-{max} MB in steps of {step} with worker.cpu = {cpu}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_of_the_wrong_type_is_named_by_its_dotted_key_in_toml_words() {
        let err = Config::parse("[launcher]\nmemory_mb = \"128\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("launcher.memory_mb: "), "{text}");
        assert!(text.contains("expected an integer"), "{text}");
        let text = Config::parse("worker = true\n").unwrap_err().to_string();
        assert!(
            text.starts_with("worker: ") && text.contains("expected a table"),
            "{text}"
        );
    }

    #[test]
    fn the_template_is_the_defaults() {
        assert_eq!(Config::parse(TEMPLATE).unwrap(), Config::default());
    }

    #[test]
    fn defaults_match_the_brief() {
        let c = Config::default();
        assert_eq!(c.app, "povray");
        assert_eq!(c.bucket.input_prefix, "scenes/");
        assert_eq!(c.bucket.output_prefix, "renders/");
        assert_eq!(c.queue.visibility_timeout_s, 900);
        assert_eq!(c.queue.max_receives, 3);
        assert_eq!((c.launcher.memory_mb, c.launcher.timeout_s), (128, 30));
        assert_eq!(
            (c.worker.cpu, c.worker.memory_mb, c.worker.max_tasks),
            (1024, 2048, 4)
        );
        assert_eq!(c.worker.render_timeout_s, 3600);
        assert!(!c.worker.spot);
        assert_eq!(c.worker.container_cli, "docker");
        assert!(c.network.assign_public_ip);
        assert_eq!(c.logs.retention_days, 14);
    }

    #[test]
    fn fargate_pairs() {
        assert!(fargate_pair(256, 512).is_ok());
        assert!(fargate_pair(256, 3072).is_err());
        assert!(fargate_pair(1024, 2048).is_ok());
        assert!(fargate_pair(1024, 3000).is_err());
        assert!(fargate_pair(4096, 30_720).is_ok());
        assert!(fargate_pair(8192, 20_480).is_ok());
        assert!(fargate_pair(8192, 18_432).is_err());
        assert!(fargate_pair(300, 2048).is_err());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Config::parse("app = \"Bad_Name\"\n[worker]\nmax_tasks = 0\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("2 problems"), "{msg}");
        assert!(msg.contains("app = \"Bad_Name\""), "{msg}");
        assert!(
            msg.contains("worker.max_tasks = 0: must be between 1 and 1000"),
            "{msg}"
        );
    }

    #[test]
    fn a_bad_cpu_is_blamed_on_worker_cpu_also_beside_a_bad_memory() {
        let msg = Config::parse("[worker]\ncpu = 1000\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("worker.cpu = 1000: is not a Fargate size"),
            "{msg}"
        );
        let msg = Config::parse("[worker]\ncpu = 1000\nmemory_mb = 100\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("2 problems"), "{msg}");
        assert!(
            msg.contains("worker.cpu = 1000: is not a Fargate size"),
            "{msg}"
        );
        assert!(
            msg.contains("worker.memory_mb = 100: must be between"),
            "{msg}"
        );
        // A valid cpu with a memory it does not allow: the memory is named.
        let msg = Config::parse("[worker]\ncpu = 512\nmemory_mb = 8192\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("worker.memory_mb = 8192: Fargate allows"),
            "{msg}"
        );
    }

    #[test]
    fn an_unknown_key_close_to_a_known_one_gets_a_suggestion() {
        let msg = Config::parse("[worker]\nmax_task = 3\n")
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("worker.max_task: "), "{msg}");
        assert!(msg.ends_with("did you mean `max_tasks`?"), "{msg}");
        let msg = Config::parse("[workers]\n").unwrap_err().to_string();
        assert!(msg.ends_with("did you mean `worker`?"), "{msg}");
        let msg = Config::parse("[bucket]\nprefix = \"a/\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unknown field `prefix`"), "{msg}");
        assert!(!msg.contains("did you mean"), "nothing is close: {msg}");
    }

    #[test]
    fn bucket_names() {
        assert!(valid_bucket_name("lew-povray-123456789012-eu-west-1").is_ok());
        for bad in [
            "ab",
            "Upper",
            "-edge",
            "a..b",
            "192.168.1.1",
            "xn--a",
            "x-s3alias",
        ] {
            assert!(valid_bucket_name(bad).is_err(), "{bad}");
        }
    }
}

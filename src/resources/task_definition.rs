//! The worker's task definition family `lew-<app>-worker`.
//!
//! Fargate, awsvpc, cpu/memory from the config, both roles, the awslogs driver, a read-only
//! root filesystem with one writable scratch volume (POV-Ray cannot confine its own file I/O, so
//! the container does), and the longest stop timeout Fargate allows so a stopped worker can hand
//! its job back. A new revision is registered only when something differs; the image of the
//! current revision is kept when it comes from lew's repository, so the digest `push-image`
//! pinned survives a later `setup`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::operation::deregister_task_definition::DeregisterTaskDefinitionError;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionError;
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, CpuArchitecture, KeyValuePair, LogConfiguration, LogDriver,
    MountPoint, NetworkMode, OsFamily, RuntimePlatform, TaskDefinition, TaskDefinitionField,
    TaskDefinitionStatus, Volume,
};
use serde::Serialize;

use super::cluster::ecs_tags;
use super::{CONTAINER, Deployment, Mode, Outcome, Removal, Removed};

/// What this resource is called in reports.
pub const KIND: &str = "task definition";

/// Where the task's one writable volume is mounted; the worker works only there.
pub const SCRATCH: &str = "/scratch";
const SCRATCH_VOLUME: &str = "scratch";
/// Fargate's maximum: time between SIGTERM and SIGKILL for the worker to hand its job back.
pub const STOP_TIMEOUT_S: i32 = 120;

/// The parts of a task definition lew sets, in a form that compares and snapshots well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spec {
    pub family: String,
    pub cpu: String,
    pub memory: String,
    pub task_role_arn: String,
    pub execution_role_arn: String,
    pub network_mode: String,
    pub requires_compatibilities: Vec<String>,
    pub runtime_platform: String,
    pub image: String,
    pub memory_reservation: i32,
    pub readonly_root_filesystem: bool,
    pub mount_points: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_timeout: i32,
    pub environment: BTreeMap<String, String>,
    pub log_options: BTreeMap<String, String>,
}

/// The worker's environment: the contract between this task definition and `worker/worker.py`.
pub fn environment(d: &Deployment, queue_url: &str) -> BTreeMap<String, String> {
    let c = &d.cfg;
    let threads = (c.worker.cpu / 1024).max(1);
    // Extend the job's visibility well before it lapses, and at least every minute.
    let heartbeat = (c.queue.visibility_timeout_s / 3).clamp(5, 60);
    [
        ("LEW_QUEUE_URL", queue_url.to_string()),
        ("LEW_INPUT_PREFIX", c.bucket.input_prefix.clone()),
        ("LEW_OUTPUT_PREFIX", c.bucket.output_prefix.clone()),
        (
            "LEW_RENDER_TIMEOUT_S",
            c.worker.render_timeout_s.to_string(),
        ),
        (
            "LEW_VISIBILITY_TIMEOUT_S",
            c.queue.visibility_timeout_s.to_string(),
        ),
        ("LEW_HEARTBEAT_S", heartbeat.to_string()),
        ("LEW_POVRAY_THREADS", threads.to_string()),
        ("LEW_IDLE_S", c.worker.idle_s.to_string()),
        ("LEW_WORK_DIR", SCRATCH.to_string()),
        ("AWS_REGION", d.aws.region.clone()),
        ("AWS_DEFAULT_REGION", d.aws.region.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The task definition lew wants, running `image`.
pub fn desired(d: &Deployment, queue_url: &str, image: &str) -> Spec {
    let n = &d.names;
    Spec {
        family: n.task_family.clone(),
        cpu: d.cfg.worker.cpu.to_string(),
        memory: d.cfg.worker.memory_mb.to_string(),
        task_role_arn: d.role_arn(&n.task_role),
        execution_role_arn: d.role_arn(&n.execution_role),
        network_mode: "awsvpc".into(),
        requires_compatibilities: vec!["FARGATE".into()],
        runtime_platform: "LINUX/X86_64".into(),
        image: image.to_string(),
        memory_reservation: d.cfg.worker.memory_mb as i32,
        readonly_root_filesystem: true,
        mount_points: vec![format!("{SCRATCH_VOLUME}:{SCRATCH}:rw")],
        volumes: vec![SCRATCH_VOLUME.into()],
        stop_timeout: STOP_TIMEOUT_S,
        environment: environment(d, queue_url),
        log_options: [
            ("awslogs-group", n.worker_log_group.clone()),
            ("awslogs-region", d.aws.region.clone()),
            ("awslogs-stream-prefix", CONTAINER.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    }
}

impl Spec {
    /// Reads the parts lew manages back from a registered revision.
    pub fn from_registered(td: &TaskDefinition) -> Spec {
        let container = td
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(CONTAINER));
        let platform = td
            .runtime_platform()
            .map_or("LINUX/X86_64".to_string(), |p| {
                format!(
                    "{}/{}",
                    p.operating_system_family().map_or("LINUX", |o| o.as_str()),
                    p.cpu_architecture().map_or("X86_64", |a| a.as_str())
                )
            });
        Spec {
            family: td.family().unwrap_or_default().to_string(),
            cpu: td.cpu().unwrap_or_default().to_string(),
            memory: td.memory().unwrap_or_default().to_string(),
            task_role_arn: td.task_role_arn().unwrap_or_default().to_string(),
            execution_role_arn: td.execution_role_arn().unwrap_or_default().to_string(),
            network_mode: td
                .network_mode()
                .map_or(String::new(), |m| m.as_str().to_string()),
            requires_compatibilities: td
                .requires_compatibilities()
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
            runtime_platform: platform,
            image: container
                .and_then(|c| c.image())
                .unwrap_or_default()
                .to_string(),
            memory_reservation: container.and_then(|c| c.memory_reservation()).unwrap_or(0),
            readonly_root_filesystem: container
                .and_then(|c| c.readonly_root_filesystem())
                .unwrap_or(false),
            mount_points: container.map_or(Vec::new(), |c| {
                c.mount_points()
                    .iter()
                    .map(|m| {
                        format!(
                            "{}:{}:{}",
                            m.source_volume().unwrap_or_default(),
                            m.container_path().unwrap_or_default(),
                            if m.read_only() == Some(true) {
                                "ro"
                            } else {
                                "rw"
                            }
                        )
                    })
                    .collect()
            }),
            volumes: td
                .volumes()
                .iter()
                .map(|v| v.name().unwrap_or_default().to_string())
                .collect(),
            stop_timeout: container.and_then(|c| c.stop_timeout()).unwrap_or(0),
            environment: container.map_or(BTreeMap::new(), |c| {
                c.environment()
                    .iter()
                    .map(|kv| {
                        (
                            kv.name().unwrap_or_default().to_string(),
                            kv.value().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            }),
            log_options: container
                .and_then(|c| c.log_configuration())
                .and_then(|l| l.options())
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        }
    }

    /// Names of the fields that differ, for the report.
    pub fn differences(&self, want: &Spec) -> Vec<String> {
        let (a, b) = (
            serde_json::to_value(self).unwrap_or_default(),
            serde_json::to_value(want).unwrap_or_default(),
        );
        let mut out = Vec::new();
        if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
            for (k, wanted) in b {
                let have = a.get(k);
                if have != Some(wanted) {
                    let scalar = |v: Option<&serde_json::Value>| match v {
                        Some(serde_json::Value::String(s)) => Some(s.clone()),
                        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                        Some(serde_json::Value::Bool(x)) => Some(x.to_string()),
                        _ => None,
                    };
                    match (scalar(have), scalar(Some(wanted))) {
                        (Some(h), Some(w)) => out.push(format!("{k}: {h} → {w}")),
                        _ => out.push(format!("{k} differs")),
                    }
                }
            }
        }
        out
    }
}

/// The latest ACTIVE revision of the family, with its tags.
pub async fn current(d: &Deployment) -> Result<Option<(TaskDefinition, bool)>> {
    let family = &d.names.task_family;
    match d
        .aws
        .ecs
        .describe_task_definition()
        .task_definition(family)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
    {
        Ok(out) => {
            let owned = d.owns(
                out.tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())),
            );
            Ok(out
                .task_definition
                .filter(|td| td.status() == Some(&TaskDefinitionStatus::Active))
                .map(|td| (td, owned)))
        }
        Err(e) if no_such_revision(&e) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read task definition {family}")),
    }
}

/// The image a new revision should run: the current one if it is from lew's repository (a
/// digest `push-image` pinned), else the repository's `latest` tag. lew's repository is the URI
/// derived from the account and region, or `repository_uri` as ECR names it (see
/// [`ensure_when`]).
pub fn image_to_keep(
    d: &Deployment,
    current: Option<&TaskDefinition>,
    repository_uri: Option<&str>,
) -> String {
    let derived = d.repository_uri();
    current
        .map(Spec::from_registered)
        .map(|s| s.image)
        .filter(|img| {
            std::iter::once(derived.as_str())
                .chain(repository_uri)
                .any(|repo| {
                    img.strip_prefix(repo)
                        .is_some_and(|rest| rest.starts_with('@') || rest.starts_with(':'))
                })
        })
        .unwrap_or_else(|| format!("{derived}:latest"))
}

/// Registers a new revision when the current one differs from the desired one.
pub async fn ensure(d: &Deployment, queue_url: &str, mode: Mode) -> Result<Outcome> {
    ensure_when(d, async { Ok(queue_url.to_string()) }, mode)
        .await
        .map(|(outcome, _)| outcome)
}

/// [`ensure`] for a queue URL still being worked out (the family is read meanwhile); also
/// returns the image the current revision runs.
pub async fn ensure_when(
    d: &Deployment,
    queue_url: impl Future<Output = Result<String>>,
    mode: Mode,
) -> Result<(Outcome, String)> {
    let family = d.names.task_family.clone();
    let outcome = Outcome::new(KIND, &family);
    let (current, queue_url) = futures::join!(current(d), queue_url);
    let (current, queue_url) = (current?, queue_url?);
    if let Some((_, false)) = &current {
        return Err(super::not_ours(KIND, &family, &d.cfg.app));
    }
    let current = current.map(|(td, _)| td);
    let mut image = image_to_keep(d, current.as_ref(), None);
    // An image `push-image` pinned comes from the repository URI ECR answers, which is not
    // always the derived one (another endpoint, an emulator's registry). Asked only then, so a
    // setup on AWS makes no extra call.
    if let Some(td) = &current
        && Spec::from_registered(td).image != image
        && let Some(repo) = super::registry::find(d).await?
    {
        image = image_to_keep(d, Some(td), repo.repository_uri());
    }
    let want = desired(d, &queue_url, &image);
    let Some(td) = current else {
        if mode == Mode::Apply {
            register(d, &want).await?;
        }
        return Ok((outcome.created(), image));
    };
    let changes = Spec::from_registered(&td).differences(&want);
    if mode == Mode::Apply && !changes.is_empty() {
        let arn = register(d, &want).await?;
        let outcome = outcome
            .with_changes(changes)
            .note(format!("new revision {arn}"));
        return Ok((outcome, image));
    }
    Ok((outcome.with_changes(changes), image))
}

/// Registers `spec` as a new revision and returns its ARN.
pub async fn register(d: &Deployment, spec: &Spec) -> Result<String> {
    let log = LogConfiguration::builder()
        .log_driver(LogDriver::Awslogs)
        .set_options(Some(spec.log_options.clone().into_iter().collect()))
        .build()?;
    let container = ContainerDefinition::builder()
        .name(CONTAINER)
        .image(&spec.image)
        .essential(true)
        // The emulator requires memory or memoryReservation; on Fargate it is a soft limit
        // within the task's memory, so setting it to the task memory changes nothing.
        .memory_reservation(spec.memory_reservation)
        .readonly_root_filesystem(spec.readonly_root_filesystem)
        .mount_points(
            MountPoint::builder()
                .source_volume(SCRATCH_VOLUME)
                .container_path(SCRATCH)
                .read_only(false)
                .build(),
        )
        .stop_timeout(spec.stop_timeout)
        .set_environment(Some(
            spec.environment
                .iter()
                .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
                .collect(),
        ))
        .log_configuration(log)
        .build();
    let req = d
        .aws
        .ecs
        .register_task_definition()
        .family(&spec.family)
        .task_role_arn(&spec.task_role_arn)
        .execution_role_arn(&spec.execution_role_arn)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .runtime_platform(
            RuntimePlatform::builder()
                .operating_system_family(OsFamily::Linux)
                .cpu_architecture(CpuArchitecture::X8664)
                .build(),
        )
        .cpu(&spec.cpu)
        .memory(&spec.memory)
        .container_definitions(container)
        .volumes(Volume::builder().name(SCRATCH_VOLUME).build())
        .set_tags(Some(ecs_tags(d)));

    // Each registration makes a new revision, so a request whose answer was lost must not
    // simply be sent again (the SDK would): lew retries it itself, after looking whether the
    // first one took effect.
    const ATTEMPTS: u32 = 5;
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS {
        let sent = req
            .clone()
            .customize()
            .config_override(
                aws_sdk_ecs::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await;
        match sent {
            Ok(out) => {
                return Ok(out
                    .task_definition
                    .and_then(|td| td.task_definition_arn)
                    .unwrap_or_default());
            }
            Err(e) if attempt < ATTEMPTS && transient(&e) => {
                if let Some((td, _)) = current(d).await?
                    && Spec::from_registered(&td) == *spec
                {
                    return Ok(td.task_definition_arn.unwrap_or_default());
                }
                d.sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot register task definition {}", spec.family));
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// Whether an error may pass on its own: no answer, a server error, or throttling.
fn transient<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::ServiceError(e) => {
            e.raw().status().is_server_error()
                || matches!(
                    e.err().code(),
                    Some("ThrottlingException" | "Throttling" | "TooManyRequestsException")
                )
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        _ => false,
    }
}

/// The family's revision ARNs with the given status (exact family only: the API filters by
/// prefix).
async fn revisions(d: &Deployment, status: TaskDefinitionStatus) -> Result<Vec<String>> {
    let family = &d.names.task_family;
    let mut pages = d
        .aws
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(status)
        .into_paginator()
        .send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("cannot list task definitions {family}"))?;
        arns.extend(
            page.task_definition_arns()
                .iter()
                .filter(|arn| {
                    arn.rsplit_once('/')
                        .and_then(|(_, fam_rev)| fam_rev.rsplit_once(':'))
                        .is_some_and(|(fam, _)| fam == family)
                })
                .cloned(),
        );
    }
    Ok(arns)
}

/// Deregisters every revision and deletes them, if the family is this app's.
pub async fn delete(d: &Deployment) -> Result<Removed> {
    let family = d.names.task_family.clone();
    if let Some((_, false)) = current(d).await? {
        return Ok(Removed::new(KIND, family, Removal::NotOwned));
    }
    let ecs = &d.aws.ecs;
    let active = revisions(d, TaskDefinitionStatus::Active).await?;
    for arn in &active {
        match ecs
            .deregister_task_definition()
            .task_definition(arn)
            .send()
            .await
        {
            Ok(_) => {}
            // Already inactive (a retried request whose answer was lost): listed below.
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), DeregisterTaskDefinitionError::ClientException(_)) => {}
            Err(e) => return Err(e).with_context(|| format!("cannot deregister {arn}")),
        }
    }
    let inactive = revisions(d, TaskDefinitionStatus::Inactive).await?;
    for chunk in inactive.chunks(10) {
        ecs.delete_task_definitions()
            .set_task_definitions(Some(chunk.to_vec()))
            .send()
            .await
            .with_context(|| format!("cannot delete the revisions of {family}"))?;
    }
    if active.is_empty() && inactive.is_empty() {
        return Ok(Removed::new(KIND, family, Removal::AlreadyGone));
    }
    Ok(Removed::new(KIND, family, Removal::Deleted).note(format!(
        "{} revision(s) deregistered and deleted",
        active.len().max(inactive.len())
    )))
}

/// Whether ECS answered that there is no such revision (or no active one in a family): it
/// says so with its catch-all ClientException.
fn no_such_revision(err: &SdkError<DescribeTaskDefinitionError, HttpResponse>) -> bool {
    matches!(
        err.as_service_error(),
        Some(DescribeTaskDefinitionError::ClientException(_))
    )
}

/// Whether a revision is gone: deleted, being deleted, or unknown to ECS (the leak check).
pub async fn gone(d: &Deployment, arn: &str) -> Result<bool> {
    let out = d
        .aws
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await;
    match out {
        Ok(out) => Ok(out.task_definition().is_none_or(|td| {
            td.status()
                .is_some_and(|s| s.as_str() == "DELETE_IN_PROGRESS")
        })),
        Err(e) if no_such_revision(&e) => Ok(true),
        Err(e) => Err(e).with_context(|| format!("cannot look up task definition {arn}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::mock::Mocks;

    fn running(image: &str) -> TaskDefinition {
        TaskDefinition::builder()
            .container_definitions(
                ContainerDefinition::builder()
                    .name(CONTAINER)
                    .image(image)
                    .build(),
            )
            .build()
    }

    #[tokio::test]
    async fn an_image_from_lews_repository_is_kept_wherever_ecr_says_that_is() {
        let (d, _) = Mocks::new().deployment().await;
        let derived = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/lew-unit-worker";
        let digest = format!("@sha256:{}", "a".repeat(64));
        assert_eq!(image_to_keep(&d, None, None), format!("{derived}:latest"));
        let pinned = format!("{derived}{digest}");
        assert_eq!(image_to_keep(&d, Some(&running(&pinned)), None), pinned);
        // Pushed to the URI ECR answered (here an emulator's registry): lew's only when ECR
        // named that URI.
        let elsewhere = format!("localhost:5000/lew-unit-worker{digest}");
        let td = running(&elsewhere);
        assert_eq!(
            image_to_keep(&d, Some(&td), None),
            format!("{derived}:latest")
        );
        let uri = Some("localhost:5000/lew-unit-worker");
        assert_eq!(image_to_keep(&d, Some(&td), uri), elsewhere);
        // Another repository whose name starts the same is not lew's.
        let other = format!("localhost:5000/lew-unit-worker-copy{digest}");
        assert_eq!(
            image_to_keep(&d, Some(&running(&other)), uri),
            format!("{derived}:latest")
        );
    }
}

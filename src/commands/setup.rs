//! `lew setup [--dry-run]`: creates or converges every resource, independent ones concurrently.
//!
//! The dependency order: roles, bucket, cluster, repository, log groups, queues and network are
//! independent; the task definition needs the queue's URL; the function needs the queue, the
//! network and its role; the trigger needs the function and the bucket. `status` walks the same
//! graph in plan mode.

use std::fmt;

use anyhow::Result;
use futures::future::join_all;
use serde::Serialize;

use super::Ctx;
use crate::cli::SetupArgs;
use crate::output::Report;
use crate::resources::network::Network;
use crate::resources::{
    Deployment, Mode, Outcome, bucket, cluster, function, logs, network, queue, registry, roles,
    task_definition, trigger,
};

/// A resource whose ensure failed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub resource: String,
    pub error: String,
}

/// Everything one walk over the resources found or did.
#[derive(Debug, Default)]
pub struct Converged {
    pub outcomes: Vec<Outcome>,
    pub failures: Vec<Failure>,
    pub network: Option<Network>,
    pub queue_url: Option<String>,
}

impl Converged {
    fn take(&mut self, what: &str, result: Result<Outcome>) {
        match result {
            Ok(o) => {
                self.outcomes.push(o);
            }
            Err(e) => self.failures.push(Failure {
                resource: what.to_string(),
                error: crate::error::messages(&e).join(": "),
            }),
        }
    }
}

/// Prints a finished resource's line as progress (setup only; plans and status just report).
fn report_line(d: &Deployment, mode: Mode, result: &Result<Outcome>) {
    if mode != Mode::Apply {
        return;
    }
    if let Ok(o) = result {
        let changes = if o.changes.is_empty() {
            String::new()
        } else {
            format!(" ({})", o.changes.join("; "))
        };
        d.progress.line(format!(
            "{} {}: {}{changes}",
            o.resource,
            o.name,
            o.verb(mode)
        ));
    }
}

/// Runs one ensure, reports it when it finishes, and keeps its label for the report.
async fn labeled(
    d: &Deployment,
    mode: Mode,
    what: String,
    fut: impl Future<Output = Result<Outcome>>,
) -> (String, Result<Outcome>) {
    let result = fut.await;
    report_line(d, mode, &result);
    (what, result)
}

/// Converges (or, in plan mode, inspects) every resource.
pub async fn converge(d: &Deployment, mode: Mode) -> Converged {
    let progress = &d.progress;
    let report = |o: &Result<Outcome>| report_line(d, mode, o);
    let step = progress.step(if mode == Mode::Apply {
        "setting up"
    } else {
        "reading the current state"
    });

    let role_specs = roles::specs(d);
    let (launcher_spec, other_specs) = role_specs.split_first().expect("three roles");

    // The chain through the queue: queue → task definition, and queue + network + launcher
    // role → function. Everything else runs beside it.
    let chain = async {
        let mut out: Vec<(String, Result<Outcome>)> = Vec::new();
        let queues = async {
            let dlq = labeled(
                d,
                mode,
                format!("sqs queue {}", d.names.dlq),
                queue::ensure(d, queue::Which::DeadLetter, mode),
            )
            .await;
            let jobs = labeled(
                d,
                mode,
                format!("sqs queue {}", d.names.queue),
                queue::ensure(d, queue::Which::Jobs, mode),
            )
            .await;
            let url = match (&jobs.1, mode) {
                (Ok(_), _) => queue::url(d, queue::Which::Jobs).await.ok().flatten(),
                _ => None,
            };
            (dlq, jobs, url)
        };
        let net = async {
            let r = network::ensure(d, mode).await;
            if let Ok((Some(o), _)) = &r {
                report(&Ok(o.clone()));
            }
            r
        };
        let role = labeled(
            d,
            mode,
            format!("iam role {}", launcher_spec.name),
            roles::ensure(d, launcher_spec, mode),
        );
        let ((dlq, jobs, url), net, role) = futures::join!(queues, net, role);
        let queue_ok = jobs.1.is_ok() && dlq.1.is_ok();
        let role_ok = role.1.is_ok();
        out.extend([role, dlq, jobs]);
        let network = match net {
            Ok((outcome, network)) => {
                if let Some(o) = outcome {
                    out.push((format!("security group {}", d.names.security_group), Ok(o)));
                }
                Some(network)
            }
            Err(e) => {
                out.push(("network".to_string(), Err(e)));
                None
            }
        };
        // In a plan the queue may not exist yet; show its future URL's place instead.
        let queue_url = url
            .clone()
            .or_else(|| (mode == Mode::Plan && queue_ok).then(|| "(to be created)".to_string()));
        let Some(queue_url) = queue_url else {
            return (out, network, url);
        };
        let td = labeled(
            d,
            mode,
            format!("task definition {}", d.names.task_family),
            task_definition::ensure(d, &queue_url, mode),
        );
        let func = async {
            match &network {
                Some(net) if role_ok => Some(
                    labeled(
                        d,
                        mode,
                        format!("lambda function {}", d.names.function),
                        function::ensure(d, &queue_url, net, mode),
                    )
                    .await,
                ),
                _ => None,
            }
        };
        let (td, func) = futures::join!(td, func);
        out.push(td);
        out.extend(func);
        (out, network, url)
    };

    let others = join_all(other_specs.iter().map(|spec| {
        labeled(
            d,
            mode,
            format!("iam role {}", spec.name),
            roles::ensure(d, spec, mode),
        )
    }));
    let singles = async {
        futures::join!(
            labeled(
                d,
                mode,
                format!("s3 bucket {}", d.names.bucket),
                bucket::ensure(d, mode)
            ),
            labeled(
                d,
                mode,
                format!("ecs cluster {}", d.names.cluster),
                cluster::ensure(d, mode)
            ),
            labeled(
                d,
                mode,
                format!("ecr repository {}", d.names.repository),
                registry::ensure(d, mode)
            ),
            labeled(
                d,
                mode,
                format!("log group {}", d.names.worker_log_group),
                logs::ensure(d, logs::Which::Worker, mode)
            ),
            labeled(
                d,
                mode,
                format!("log group {}", d.names.launcher_log_group),
                logs::ensure(d, logs::Which::Launcher, mode)
            ),
        )
    };
    let (
        others,
        (bucket_r, cluster_r, ecr_r, worker_logs, launcher_logs),
        (chain_out, network, url),
    ) = futures::join!(others, singles, chain);

    let mut done = Converged {
        network,
        queue_url: url,
        ..Converged::default()
    };
    let bucket_ok = bucket_r.1.is_ok();
    let function_ok = chain_out
        .iter()
        .any(|(what, r)| what.starts_with("lambda function") && r.is_ok());
    // Report in dependency order: roles, storage, queues, compute, function.
    let mut ordered: Vec<(String, Result<Outcome>)> = Vec::new();
    let mut chain_out = chain_out.into_iter();
    ordered.extend(chain_out.by_ref().take(1)); // the launcher role
    ordered.extend(others);
    ordered.extend([bucket_r]);
    ordered.extend(chain_out.by_ref().take(2)); // the queues
    ordered.extend([cluster_r, ecr_r, worker_logs, launcher_logs]);
    ordered.extend(chain_out);
    for (what, r) in ordered {
        done.take(&what, r);
    }

    // The trigger: S3 may invoke the function (permission first, as S3 checks it when the
    // notification is written), then the notification itself.
    if bucket_ok && function_ok {
        let permission = trigger::ensure_permission(d, mode).await;
        report(&permission);
        let permission_ok = permission.is_ok();
        done.take("lambda permission", permission);
        if permission_ok {
            let notification = trigger::ensure_notification(d, mode).await;
            report(&notification);
            done.take("s3 notification", notification);
        }
    }
    step.clear();
    done
}

#[derive(Debug, Serialize)]
pub struct SetupReport {
    pub dry_run: bool,
    pub app: String,
    pub region: String,
    pub account: String,
    pub resources: Vec<Outcome>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
    /// What the user should do next, e.g. push the worker image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub next_steps: Vec<String>,
}

impl SetupReport {
    pub fn changed(&self) -> usize {
        self.resources
            .iter()
            .filter(|o| o.action != crate::resources::Action::Unchanged)
            .count()
    }
}

impl fmt::Display for SetupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.dry_run {
            Mode::Plan
        } else {
            Mode::Apply
        };
        if self.dry_run {
            writeln!(
                f,
                "plan for app {} in {} (account {}); nothing was changed:",
                self.app, self.region, self.account
            )?;
        }
        let width = self
            .resources
            .iter()
            .map(|o| o.resource.len() + 1 + o.name.len())
            .max()
            .unwrap_or(0);
        for o in &self.resources {
            let label = format!("{} {}", o.resource, o.name);
            write!(f, "{:<9} {label:<width$}", o.verb(mode))?;
            if let Some(note) = &o.note {
                write!(f, "  [{note}]")?;
            }
            writeln!(f)?;
            for c in &o.changes {
                writeln!(f, "{:<9}   - {c}", "")?;
            }
        }
        for failure in &self.failures {
            writeln!(f, "{:<9} {}: {}", "FAILED", failure.resource, failure.error)?;
        }
        let changed = self.changed();
        if self.failures.is_empty() {
            match (self.dry_run, changed) {
                (true, 0) => write!(f, "nothing to do: everything is up to date")?,
                (true, n) => write!(f, "{n} resource(s) would change; run `lew setup` to apply")?,
                (false, 0) => write!(f, "everything was already up to date")?,
                (false, n) => write!(f, "{n} resource(s) created or updated")?,
            }
            for step in &self.next_steps {
                write!(f, "\nnext: {step}")?;
            }
        } else {
            write!(
                f,
                "{} resource(s) failed; fix the cause and run `lew setup` again (it picks up \
                 where it stopped)",
                self.failures.len()
            )?;
        }
        Ok(())
    }
}

impl Report for SetupReport {
    fn exit_code(&self) -> u8 {
        if self.failures.is_empty() { 0 } else { 1 }
    }
}

pub async fn run(args: &SetupArgs, ctx: &Ctx) -> Result<SetupReport> {
    let d = ctx.deployment().await?;
    let mode = if args.dry_run {
        Mode::Plan
    } else {
        Mode::Apply
    };
    let done = converge(&d, mode).await;
    let mut next_steps = Vec::new();
    if mode == Mode::Apply && done.failures.is_empty() {
        // setup registers the task definition with the repository's `latest` tag; the worker
        // image itself comes from `lew push-image`, which pins it by digest.
        let image = task_definition::current(&d)
            .await?
            .map(|(td, _)| task_definition::Spec::from_registered(&td).image);
        if image.is_some_and(|i| i.ends_with(":latest")) {
            next_steps.push(
                "push the worker image with `lew push-image` before the first `lew render`"
                    .to_string(),
            );
        }
    }
    Ok(SetupReport {
        dry_run: args.dry_run,
        app: d.cfg.app.clone(),
        region: d.aws.region.clone(),
        account: d.aws.account.clone(),
        resources: done.outcomes,
        failures: done.failures,
        next_steps,
    })
}

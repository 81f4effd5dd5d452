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
use crate::output::{Report, label_width, resource_line};
use crate::resources::network::Network;
use crate::resources::{
    Deployment, Failure, Mode, Outcome, bucket, cluster, function, logs, network, queue, registry,
    roles, task_definition, trigger,
};

/// Everything one walk over the resources found or did.
#[derive(Debug, Default)]
pub struct Converged {
    pub outcomes: Vec<Outcome>,
    pub failures: Vec<Failure>,
    pub network: Option<Network>,
    pub queue_url: Option<String>,
    /// The image the worker's task definition runs.
    pub worker_image: Option<String>,
}

impl Converged {
    fn take(&mut self, what: &str, result: Result<Outcome>) {
        crate::resources::file(&mut self.outcomes, &mut self.failures, what, result);
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

/// What one resource hands to those that wait for it (the queue's URL, the network, or just
/// "in place"), or why it could not: a failed resource fails its waiters instead of leaving
/// them waiting.
struct Handoff<T> {
    tx: tokio::sync::watch::Sender<Option<Result<T, String>>>,
    what: &'static str,
}

/// The waiting side of a [`Handoff`]; clonable, each clone waits for the same value.
#[derive(Clone)]
struct Waiter<T> {
    rx: tokio::sync::watch::Receiver<Option<Result<T, String>>>,
    what: &'static str,
}

fn handoff<T>(what: &'static str) -> (Handoff<T>, Waiter<T>) {
    let (tx, rx) = tokio::sync::watch::channel(None);
    (Handoff { tx, what }, Waiter { rx, what })
}

impl<T: Clone> Handoff<T> {
    /// Hands on `value` if `result` succeeded, else the failure, and returns `result`.
    fn give<R>(self, result: Result<R>, value: impl FnOnce(&R) -> T) -> Result<R> {
        let handed = match &result {
            Ok(r) => Ok(value(r)),
            Err(e) => Err(format!(
                "{} could not be set up: {}",
                self.what,
                crate::error::one_line(e)
            )),
        };
        let _ = self.tx.send(Some(handed));
        result
    }
}

impl<T: Clone> Waiter<T> {
    async fn get(mut self) -> Result<T> {
        let what = self.what;
        let got = self
            .rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| anyhow::anyhow!("{what} could not be set up"))?
            .clone();
        got.expect("waited for a value").map_err(anyhow::Error::msg)
    }

    /// Waits for the resource without needing its value.
    async fn ready(self) -> Result<()> {
        self.get().await.map(|_| ())
    }
}

/// Converges (or, in plan mode, inspects) every resource, each as soon as what it depends on is
/// in place, and everything reads at once: the longest chain of calls that must wait for one
/// another sets the time, not the number of calls.
pub async fn converge(d: &Deployment, mode: Mode) -> Converged {
    let step = d.progress.step(if mode == Mode::Apply {
        "setting up"
    } else {
        "reading the current state"
    });
    let role_specs = roles::specs(d);
    let (launcher_spec, other_specs) = role_specs.split_first().expect("three roles");
    let (bucket_done, bucket_ready) = handoff::<()>("the bucket");
    let (role_done, role_ready) = handoff::<()>("the launcher's role");
    let (dlq_done, dlq_ready) = handoff::<()>("the dead-letter queue");
    let (url_done, url) = handoff::<String>("the job queue");
    let (net_done, network_ready) = handoff::<Network>("the network");
    let (function_done, function_ready) = handoff::<()>("the function");
    // A plan names a queue that does not exist yet like this in the task definition and function.
    const PLANNED: &str = "(to be created)";

    let bucket = async {
        let r = bucket_done.give(bucket::ensure(d, mode).await, |_| ());
        report_line(d, mode, &r);
        (format!("s3 bucket {}", d.names.bucket), r)
    };
    let launcher_role = async {
        let r = role_done.give(roles::ensure(d, launcher_spec, mode).await, |_| ());
        report_line(d, mode, &r);
        (format!("iam role {}", launcher_spec.name), r)
    };
    let other_roles = join_all(other_specs.iter().map(|spec| {
        labeled(
            d,
            mode,
            format!("iam role {}", spec.name),
            roles::ensure(d, spec, mode),
        )
    }));
    let queues = async {
        let dlq = async {
            let r = queue::ensure_with_url(d, queue::Which::DeadLetter, mode, async { Ok(()) })
                .await
                .map(|(o, _)| o);
            let r = dlq_done.give(r, |_| ());
            report_line(d, mode, &r);
            (format!("sqs queue {}", d.names.dlq), r)
        };
        let jobs = async {
            let r = queue::ensure_with_url(d, queue::Which::Jobs, mode, dlq_ready.ready()).await;
            let r = url_done.give(r, |(_, url)| url.clone().unwrap_or(PLANNED.into()));
            let r = r.map(|(o, _)| o);
            report_line(d, mode, &r);
            (format!("sqs queue {}", d.names.queue), r)
        };
        futures::join!(dlq, jobs)
    };
    let net = async {
        let r = net_done.give(network::ensure(d, mode).await, |(_, n)| n.clone());
        if let Ok((Some(o), _)) = &r {
            report_line(d, mode, &Ok(o.clone()));
        }
        r
    };
    let task_def = async {
        let r = task_definition::ensure_when(d, url.clone().get(), mode).await;
        let image = r.as_ref().ok().map(|(_, image)| image.clone());
        let r = r.map(|(o, _)| o);
        report_line(d, mode, &r);
        (
            (format!("task definition {}", d.names.task_family), r),
            image,
        )
    };
    // The function needs its role to exist (Lambda checks it), the queue's URL and the
    // network; it is read meanwhile. The trigger follows it.
    let function_and_trigger = async {
        let inputs = async {
            let (role, url, net) =
                futures::join!(role_ready.ready(), url.clone().get(), network_ready.get());
            role?;
            Ok((url?, net?))
        };
        // The trigger is read at once too; it changes things only once the function is there.
        let func = async {
            let r = function_done.give(function::ensure_when(d, inputs, mode).await, |_| ());
            report_line(d, mode, &r);
            r
        };
        let (func, (permission, notification)) = futures::join!(
            func,
            trigger::ensure(d, mode, function_ready.ready(), bucket_ready.ready())
        );
        let function_ok = func.is_ok();
        let mut out = vec![(format!("lambda function {}", d.names.function), func)];
        // Without the function, the trigger's own lines would only repeat its failure.
        if function_ok {
            report_line(d, mode, &permission);
            out.push(("lambda permission".to_string(), permission));
            if let Some(notification) = notification {
                report_line(d, mode, &notification);
                out.push(("s3 notification".to_string(), notification));
            }
        }
        out
    };
    let singles = async {
        futures::join!(
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
        bucket_r,
        launcher_role_r,
        others,
        (dlq_r, jobs_r),
        net_r,
        (task_def_r, image),
        function_rs,
        (cluster_r, ecr_r, worker_logs_r, launcher_logs_r),
    ) = futures::join!(
        bucket,
        launcher_role,
        other_roles,
        queues,
        net,
        task_def,
        function_and_trigger,
        singles
    );

    let mut done = Converged {
        queue_url: url.get().await.ok().filter(|u| u != PLANNED),
        worker_image: image,
        ..Converged::default()
    };
    // Reported in dependency order: roles, storage, queues, compute, network, function, trigger.
    let mut ordered = vec![launcher_role_r];
    ordered.extend(others);
    ordered.extend([
        bucket_r,
        dlq_r,
        jobs_r,
        cluster_r,
        ecr_r,
        worker_logs_r,
        launcher_logs_r,
    ]);
    match net_r {
        Ok((outcome, network)) => {
            if let Some(o) = outcome {
                ordered.push((format!("security group {}", d.names.security_group), Ok(o)));
            }
            done.network = Some(network);
        }
        Err(e) => ordered.push(("network".to_string(), Err(e))),
    }
    ordered.push(task_def_r);
    ordered.extend(function_rs);
    for (what, r) in ordered {
        done.take(&what, r);
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
        let width = label_width(self.resources.iter().map(|o| (o.resource, o.name.as_str())));
        for o in &self.resources {
            resource_line(
                f,
                o.verb(mode),
                &format!("{} {}", o.resource, o.name),
                width,
                o.note.as_deref(),
                &o.changes,
            )?;
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
        if done
            .worker_image
            .as_deref()
            .is_some_and(|i| i.ends_with(":latest"))
        {
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

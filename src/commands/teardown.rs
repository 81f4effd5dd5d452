//! `lew teardown [--yes] [--delete-data]`: deletes everything setup created, in reverse order.
//!
//! First nothing new may start (the trigger, the EventBridge rules and the function go), then
//! the running workers are
//! stopped, then the rest goes concurrently. Only resources tagged for this app are deleted,
//! "already gone" is success, the bucket stays unless `--delete-data`, and a leak check at the
//! end lists anything of this app that is still there.

use std::fmt;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::cli::TeardownArgs;
use crate::error::UsageError;
use crate::output::{Report, failure_line, label_width, resource_line};
use crate::resources::{
    Deployment, Failure, Removal, Removed, bucket, cluster, events, file, function, leaks, logs,
    network, queue, registry, roles, task_definition, tasks, trigger,
};

#[derive(Debug, Serialize)]
pub struct TeardownReport {
    /// The user answered "no" at the prompt: nothing was deleted, and that is no failure.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    pub app: String,
    pub region: String,
    pub account: String,
    pub stopped_tasks: usize,
    pub resources: Vec<Removed>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
    /// What the leak check found still present (ARNs or names).
    pub leftovers: Vec<String>,
}

impl fmt::Display for TeardownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cancelled {
            return write!(f, "teardown cancelled; nothing was deleted");
        }
        if self.stopped_tasks > 0 {
            writeln!(f, "stopped {} worker task(s)", self.stopped_tasks)?;
        }
        let width = label_width(self.resources.iter().map(|r| (r.resource, r.name.as_str())));
        for r in &self.resources {
            resource_line(
                f,
                &r.result.to_string(),
                &format!("{} {}", r.resource, r.name),
                width,
                r.note.as_deref(),
                &[],
            )?;
        }
        for e in &self.failures {
            failure_line(f, "FAILED", e)?;
        }
        if self.leftovers.is_empty() {
            write!(f, "leak check: nothing of app {} is left", self.app)?;
            if self
                .resources
                .iter()
                .any(|r| r.resource == bucket::KIND && r.result == Removal::Kept)
            {
                write!(f, " but the kept bucket")?;
            }
        } else {
            writeln!(f, "leak check: still present:")?;
            for l in &self.leftovers {
                writeln!(f, "  {l}")?;
            }
            write!(
                f,
                "run `lew teardown` again; if they stay, delete them by hand"
            )?;
        }
        Ok(())
    }
}

impl Report for TeardownReport {
    fn exit_code(&self) -> u8 {
        if self.failures.is_empty() && self.leftovers.is_empty() {
            0
        } else {
            1
        }
    }
}

/// What the prompt lists: what goes and what stays, by name (names derive from the app, so
/// this needs no AWS call).
fn prompt(d: &Deployment, delete_data: bool) -> String {
    let n = &d.names;
    let mut goes: Vec<(&str, String)> = vec![
        (
            trigger::NOTIFICATION_KIND,
            format!("{} → {} (lew's entry only)", n.bucket, n.function),
        ),
        (function::KIND, format!("{} and its permission", n.function)),
        ("worker tasks", "those the launcher started".to_string()),
        (task_definition::KIND, n.task_family.clone()),
        (cluster::KIND, n.cluster.clone()),
        (queue::KIND, n.queue.clone()),
        (queue::DLQ_KIND, n.dlq.clone()),
        (registry::KIND, format!("{} with its images", n.repository)),
        (logs::KIND, n.worker_log_group.clone()),
        (logs::KIND, n.launcher_log_group.clone()),
        (network::KIND, n.security_group.clone()),
    ];
    for role in [&n.launcher_role, &n.task_role, &n.execution_role] {
        goes.push((roles::KIND, role.clone()));
    }
    let bucket = (
        bucket::KIND,
        format!("{} with every scene and render in it", n.bucket),
    );
    let mut keeps = Vec::new();
    if delete_data {
        goes.push(bucket);
    } else {
        keeps.push(bucket);
    }
    let width = goes.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut text = format!(
        "lew teardown deletes these resources of app {} in {} (account {}), where they exist \
         and carry the tag {}={}:\n",
        d.cfg.app,
        d.aws.region,
        d.aws.account,
        crate::resources::APP_TAG,
        d.cfg.app
    );
    for (kind, name) in &goes {
        text.push_str(&format!("  {kind:<width$}  {name}\n"));
    }
    text.push_str("It keeps:\n");
    for (kind, name) in &keeps {
        text.push_str(&format!(
            "  {kind:<width$}  {name} (--delete-data deletes it too)\n"
        ));
    }
    text.push_str("  anything of these names without lew's tag\n");
    text.push_str("Delete them? [y/N] ");
    text
}

/// Asks on the terminal (true: go ahead); refuses to guess when there is none.
fn confirm(d: &Deployment, delete_data: bool) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(UsageError::new(
            "teardown deletes AWS resources and needs confirmation: pass --yes when not running \
             on a terminal",
        )
        .into());
    }
    eprint!("{}", prompt(d, delete_data));
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

pub async fn run(args: &TeardownArgs, ctx: &Ctx) -> Result<TeardownReport> {
    let d = ctx.deployment().await?;
    if !args.yes && !confirm(&d, args.delete_data)? {
        // Answering "no" is a choice, not a failure: exit 0.
        return Ok(TeardownReport {
            cancelled: true,
            app: d.cfg.app.clone(),
            region: d.aws.region.clone(),
            account: d.aws.account.clone(),
            stopped_tasks: 0,
            resources: Vec::new(),
            failures: Vec::new(),
            leftovers: Vec::new(),
        });
    }
    let p = &d.progress;
    let mut resources = Vec::new();
    let mut failures = Vec::new();

    // 1. Nothing new may start: lew's notification entry goes, and the EventBridge rules then
    //    the function (a rule left behind would point at nothing); the function's permissions
    //    for S3 and the rules go with it.
    let step = p.step("removing the trigger, the event rules and the launcher");
    let rules_then_function = async {
        let rules = futures::future::join_all(events::Which::ALL.map(|w| events::delete(&d, w)));
        (rules.await, function::delete(&d).await)
    };
    let (notification, (rules, function)) =
        futures::join!(trigger::delete(&d), rules_then_function);
    let permission = match &function {
        Ok(f) if f.result == Removal::Deleted => Some(
            Removed::new(
                trigger::PERMISSION_KIND,
                trigger::PERMISSION_SID,
                Removal::Deleted,
            )
            .note("with the function"),
        ),
        Ok(f) if f.result == Removal::AlreadyGone => Some(Removed::new(
            trigger::PERMISSION_KIND,
            trigger::PERMISSION_SID,
            Removal::AlreadyGone,
        )),
        _ => None,
    };
    file(
        &mut resources,
        &mut failures,
        trigger::NOTIFICATION_KIND,
        notification,
    );
    resources.extend(permission);
    for rule in rules {
        file(&mut resources, &mut failures, events::KIND, rule);
    }
    file(&mut resources, &mut failures, function::KIND, function);
    step.clear();

    // 2. Stop the workers the launcher started.
    let step = p.step("stopping worker tasks");
    let stopped_tasks = match tasks::stop_all(&d, "lew teardown").await {
        Ok(n) => n,
        Err(e) => {
            failures.push(Failure::new("worker tasks", &e));
            0
        }
    };
    step.clear();

    // 3. Everything else, concurrently.
    let step = p.step("deleting resources");
    let role_names = [
        d.names.launcher_role.clone(),
        d.names.task_role.clone(),
        d.names.execution_role.clone(),
    ];
    let queues = async {
        futures::join!(
            queue::delete(&d, queue::Which::Jobs),
            queue::delete(&d, queue::Which::DeadLetter)
        )
    };
    let roles_done = futures::future::join_all(role_names.iter().map(|n| roles::delete(&d, n)));
    let (td, cl, (jobs, dlq), repo, wl, ll, sg, bk, role_results) = futures::join!(
        task_definition::delete(&d),
        cluster::delete(&d),
        queues,
        registry::delete(&d),
        logs::delete(&d, logs::Which::Worker),
        logs::delete(&d, logs::Which::Launcher),
        network::delete(&d),
        bucket::delete(&d, args.delete_data),
        roles_done,
    );
    step.clear();
    for (what, r) in [
        (task_definition::KIND, td),
        (cluster::KIND, cl),
        (queue::KIND, jobs),
        (queue::DLQ_KIND, dlq),
        (registry::KIND, repo),
        (logs::KIND, wl),
        (logs::KIND, ll),
        (network::KIND, sg),
        (bucket::KIND, bk),
    ] {
        file(&mut resources, &mut failures, what, r);
    }
    for r in role_results {
        file(&mut resources, &mut failures, roles::KIND, r);
    }
    for r in &resources {
        p.detail(format!("{} {}: {}", r.resource, r.name, r.result));
    }

    // 4. The leak check, read back from AWS rather than from the results above.
    let step = p.step("checking that nothing is left");
    let bucket_kept = resources
        .iter()
        .any(|r| r.resource == bucket::KIND && r.result == Removal::Kept);
    // A leak check that cannot finish must not hide what was deleted: it becomes a failure.
    let leftovers = match leaks::check(&d, bucket_kept).await {
        Ok(left) => left,
        Err(e) => {
            failures.push(Failure::new("leak check", &e));
            Vec::new()
        }
    };
    step.clear();

    Ok(TeardownReport {
        cancelled: false,
        app: d.cfg.app.clone(),
        region: d.aws.region.clone(),
        account: d.aws.account.clone(),
        stopped_tasks,
        resources,
        failures,
        leftovers,
    })
}

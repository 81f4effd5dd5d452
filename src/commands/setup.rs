//! `lew setup [--dry-run]`: creates or converges every resource, independent ones concurrently
//! (the walk is `resources::graph`, which `status` runs in plan mode), and says what to do next.

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::cli::SetupArgs;
use crate::output::{Report, failure_line, label_width, resource_line};
use crate::resources::{Failure, Mode, Outcome, graph};

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
            failure_line(f, "FAILED", failure)?;
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
    /// 2 when a failure needs the configuration changed (it conflicts with what exists), else
    /// 1 for any failure.
    fn exit_code(&self) -> u8 {
        if self.failures.iter().any(|f| f.exit_code == 2) {
            2
        } else if self.failures.is_empty() {
            0
        } else {
            1
        }
    }
}

pub async fn run(args: &SetupArgs, ctx: &Ctx) -> Result<SetupReport> {
    let d = ctx.deployment().await?;
    let mode = if args.dry_run {
        Mode::Plan
    } else {
        Mode::Apply
    };
    let done = graph::converge(&d, mode).await;
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

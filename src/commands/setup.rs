//! `lew setup [--dry-run]`: creates or converges every resource, independent ones concurrently
//! (the walk is `resources::graph`, which `status` runs in plan mode), and says what to do next.

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::cli::SetupArgs;
use crate::output::{Report, failure_line, label_width, resource_line};
use crate::resources::{Action, Failure, Mode, Outcome, graph};

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

    fn count(&self, action: Action) -> usize {
        self.resources.iter().filter(|o| o.action == action).count()
    }

    /// "15 resources created", "2 resources updated", "3 created and 1 updated" (or, for a
    /// plan, "to create" / "to update"): what happened, in words rather than "resource(s)".
    fn summary(&self) -> String {
        let (created, updated) = (self.count(Action::Create), self.count(Action::Update));
        let (create, update) = if self.dry_run {
            ("to create", "to update")
        } else {
            ("created", "updated")
        };
        match (created, updated) {
            (n, 0) => format!("{} {create}", resources(n)),
            (0, n) => format!("{} {update}", resources(n)),
            (c, u) => format!("{} changed: {c} {create}, {u} {update}", resources(c + u)),
        }
    }
}

/// "1 resource", "2 resources".
pub fn resources(n: usize) -> String {
    format!("{n} resource{}", if n == 1 { "" } else { "s" })
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
                (true, _) => write!(f, "{}; run `lew setup` to apply", self.summary())?,
                (false, 0) => write!(f, "everything was already up to date")?,
                (false, _) => write!(f, "{}", self.summary())?,
            }
            for step in &self.next_steps {
                write!(f, "\nnext: {step}")?;
            }
        } else {
            write!(
                f,
                "{} failed; fix the cause and run `lew setup` again (it picks up where it \
                 stopped)",
                resources(self.failures.len())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report(dry_run: bool, actions: &[Action]) -> SetupReport {
        SetupReport {
            dry_run,
            app: "unit".into(),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            resources: actions
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let o = Outcome::new("sqs queue", format!("q{i}"));
                    match a {
                        Action::Create => o.created(),
                        Action::Update => o.with_changes(vec!["x: 1 → 2".into()]),
                        Action::Unchanged => o,
                    }
                })
                .collect(),
            failures: Vec::new(),
            next_steps: Vec::new(),
        }
    }

    fn last_line(r: &SetupReport) -> String {
        r.to_string().lines().last().unwrap().to_string()
    }

    #[test]
    fn the_summary_says_what_happened_in_words() {
        use Action::*;
        assert_eq!(
            last_line(&report(false, &[Create; 15])),
            "15 resources created"
        );
        assert_eq!(last_line(&report(false, &[Create])), "1 resource created");
        assert_eq!(
            last_line(&report(false, &[Update, Unchanged, Update])),
            "2 resources updated"
        );
        assert_eq!(
            last_line(&report(false, &[Create, Update, Create, Unchanged])),
            "3 resources changed: 2 created, 1 updated"
        );
        assert_eq!(
            last_line(&report(false, &[Unchanged, Unchanged])),
            "everything was already up to date"
        );
        assert_eq!(
            last_line(&report(true, &[Create, Create])),
            "2 resources to create; run `lew setup` to apply"
        );
    }
}

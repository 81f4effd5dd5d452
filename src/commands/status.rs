//! `lew status`: every resource (present / missing / drifted), queue and dead-letter depths,
//! running tasks, recent renders, and warnings about the network. Read-only.

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::output::{Report, failure_line, label_width, resource_line};
use crate::resources::tasks::Counts;
use crate::resources::{Action, Deployment, Failure, Mode, bucket, graph, network, queue, tasks};

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Present,
    Missing,
    Drifted,
}

#[derive(Debug, Serialize)]
pub struct ResourceState {
    pub resource: &'static str,
    pub name: String,
    pub state: State,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
}

#[derive(Debug, Serialize)]
pub struct Render {
    pub key: String,
    pub last_modified: String,
}

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub app: String,
    pub region: String,
    pub account: String,
    pub resources: Vec<ResourceState>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Failure>,
    pub jobs: Option<QueueDepth>,
    pub dead_letters: Option<QueueDepth>,
    pub tasks: Counts,
    pub recent_renders: Vec<Render>,
    pub warnings: Vec<String>,
}

impl StatusReport {
    /// True when every resource is present and as lew wants it.
    pub fn healthy(&self) -> bool {
        self.errors.is_empty() && self.resources.iter().all(|r| r.state == State::Present)
    }
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "app {} in {} (account {})",
            self.app, self.region, self.account
        )?;
        let width = label_width(self.resources.iter().map(|r| (r.resource, r.name.as_str())));
        for r in &self.resources {
            let state = match r.state {
                State::Present => "present",
                State::Missing => "MISSING",
                State::Drifted => "DRIFTED",
            };
            resource_line(
                f,
                state,
                &format!("{} {}", r.resource, r.name),
                width,
                r.note.as_deref(),
                &r.differences,
            )?;
        }
        for e in &self.errors {
            failure_line(f, "ERROR", e)?;
        }
        let depth = |q: &Option<QueueDepth>| {
            q.as_ref().map_or("-".to_string(), |q| {
                format!("{} waiting, {} in progress", q.visible, q.in_flight)
            })
        };
        writeln!(f, "jobs queue:        {}", depth(&self.jobs))?;
        writeln!(f, "dead-letter queue: {}", depth(&self.dead_letters))?;
        writeln!(
            f,
            "worker tasks:      {} running, {} starting, {} stopping",
            self.tasks.running,
            self.tasks.provisioning + self.tasks.pending,
            self.tasks.stopping
        )?;
        if self.recent_renders.is_empty() {
            writeln!(f, "recent renders:    none in the last {RECENT_DAYS} days")?;
        } else {
            writeln!(f, "recent renders:")?;
            for r in &self.recent_renders {
                writeln!(f, "  {}  {}", r.last_modified, r.key)?;
            }
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        if !self.healthy() {
            write!(
                f,
                "run `lew setup` to create or repair what is missing or drifted"
            )?;
        }
        Ok(())
    }
}

impl Report for StatusReport {
    /// 1 when something could not be read, 4 when something is missing or drifted, else 0.
    fn exit_code(&self) -> u8 {
        if !self.errors.is_empty() {
            1
        } else if self.healthy() {
            0
        } else {
            crate::error::NOT_IN_PLACE
        }
    }
}

/// How far back `status` looks for renders, and how many listing pages it reads at most.
const RECENT_DAYS: u64 = 7;
const RECENT_PAGES: usize = 10;

/// The newest images and error reports under the output prefix. Job ids start with their date,
/// so the listing starts at the jobs of a week ago and a bucket holding years of renders costs
/// no more than a week's (and at most a bounded number of pages).
async fn recent_renders(d: &Deployment, limit: usize) -> Result<Vec<Render>> {
    let prefix = &d.cfg.bucket.output_prefix;
    let floor = format!("{prefix}{}", crate::job::floor(RECENT_DAYS));
    let listed = bucket::list(d, prefix, Some(floor), Some(RECENT_PAGES)).await?;
    let mut found: Vec<_> = listed
        .into_iter()
        .filter(|o| o.key.ends_with(".png") || o.key.ends_with(".error.txt"))
        .collect();
    let secs = |o: &bucket::Listed| o.last_modified.map_or(0, |t| t.secs());
    found.sort_by(|a, b| secs(b).cmp(&secs(a)).then(a.key.cmp(&b.key)));
    Ok(found
        .into_iter()
        .take(limit)
        .map(|o| Render {
            last_modified: o.last_modified.map(|t| t.to_string()).unwrap_or_default(),
            key: o.key,
        })
        .collect())
}

pub async fn run(ctx: &Ctx) -> Result<StatusReport> {
    let d = ctx.deployment().await?;
    let (done, jobs, dead, counts) = futures::join!(
        graph::converge(&d, Mode::Plan),
        queue::depth(&d, queue::Which::Jobs),
        queue::depth(&d, queue::Which::DeadLetter),
        tasks::counts(&d),
    );
    let mut errors = done.failures;
    let mut warnings = Vec::new();
    let depth = |r: Result<Option<(u64, u64)>>, errors: &mut Vec<Failure>, what: &str| match r {
        Ok(d) => d.map(|(visible, in_flight)| QueueDepth { visible, in_flight }),
        Err(e) => {
            errors.push(Failure::new(what, &e));
            None
        }
    };
    let jobs = depth(jobs, &mut errors, "jobs queue depth");
    let dead_letters = depth(dead, &mut errors, "dead-letter queue depth");
    if let Some(q) = &dead_letters
        && q.visible > 0
    {
        warnings.push(format!(
            "{} message(s) in the dead-letter queue {}: jobs that failed {} times, or uploads \
             the launcher could not queue; once the cause is fixed, move them back with the SQS \
             console's \"Start DLQ redrive\" (the worker takes both kinds)",
            q.visible, d.names.dlq, d.cfg.queue.max_receives
        ));
    }
    let tasks = counts.unwrap_or_else(|e| {
        errors.push(Failure::new("worker tasks", &e));
        Counts::default()
    });
    if let Some(net) = &done.network {
        match network::reachability_warnings(&d, net).await {
            Ok(w) => warnings.extend(w),
            Err(e) => d.progress.detail(format!(
                "could not check the subnets' routes: {}",
                crate::error::one_line(&e)
            )),
        }
    }
    let bucket_present = done
        .outcomes
        .iter()
        .any(|o| o.resource == bucket::KIND && o.action != Action::Create);
    let recent = if bucket_present {
        recent_renders(&d, 5).await.unwrap_or_else(|e| {
            warnings.push(format!(
                "cannot list the recent renders: {}",
                crate::error::one_line(&e)
            ));
            Vec::new()
        })
    } else {
        Vec::new()
    };
    if let Some(q) = &jobs
        && q.visible > 0
        && tasks.total() == 0
    {
        let when = match d.cfg.launcher.reconcile_every_min {
            0 => "on uploads and when a worker stops, and its schedule is off \
                  (launcher.reconcile_every_min = 0), so these may wait for the next of those"
                .to_string(),
            n => format!(
                "on uploads, when a worker stops, and every {n} minute(s), so a worker should \
                 start within {n} minute(s)"
            ),
        };
        warnings.push(format!(
            "{} job(s) wait in the queue and no worker task is running: the launcher starts \
             workers {when}; if none does, check `lew logs launcher`",
            q.visible
        ));
    }
    let resources = done
        .outcomes
        .into_iter()
        .map(|o| ResourceState {
            resource: o.resource,
            name: o.name,
            state: match o.action {
                Action::Create => State::Missing,
                Action::Update => State::Drifted,
                Action::Unchanged => State::Present,
            },
            differences: o.changes,
            note: o.note,
        })
        .collect();
    Ok(StatusReport {
        app: d.cfg.app.clone(),
        region: d.aws.region.clone(),
        account: d.aws.account.clone(),
        resources,
        errors,
        jobs,
        dead_letters,
        tasks,
        recent_renders: recent,
        warnings,
    })
}

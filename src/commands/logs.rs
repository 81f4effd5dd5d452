//! `lew logs [launcher|worker] [--follow] [--since 10m] [--job ID]`: the CloudWatch logs of
//! either side of the pipeline. In text mode lines are printed as they arrive; `--follow` keeps
//! polling for new ones until Ctrl-C.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::cli::{LogSource, LogsArgs, OutputFormat};
use crate::error::UsageError;
use crate::output::Report;
use crate::resources::logs;

const FOLLOW_PAUSE: Duration = Duration::from_secs(2);

impl fmt::Display for logs::Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.time,
            self.stream,
            self.message.trim_end()
        )
    }
}

#[derive(Debug, Serialize)]
pub struct LogsReport {
    pub log_group: String,
    pub events: Vec<logs::Event>,
    /// Set when the events were already printed as they arrived.
    #[serde(skip)]
    pub streamed: bool,
}

impl fmt::Display for LogsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.streamed {
            return Ok(());
        }
        for e in &self.events {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

impl Report for LogsReport {}

pub async fn run(args: &LogsArgs, ctx: &Ctx) -> Result<LogsReport> {
    let json = ctx.global.output == OutputFormat::Json;
    if json && args.follow {
        return Err(UsageError::new(
            "--follow prints lines as they come and cannot be one JSON document; use it without \
             --output json",
        )
        .into());
    }
    if let Some(job) = &args.job
        && !crate::job::looks_like_id(job)
    {
        return Err(UsageError::new(format!(
            "--job {job:?} is not a job id: use the id `lew render` printed, e.g. \
             20261127-232330-644189"
        ))
        .into());
    }
    let d = ctx.deployment().await?;
    let group = match args.source {
        LogSource::Launcher => logs::Which::Launcher.name(&d).to_string(),
        LogSource::Worker => logs::Which::Worker.name(&d).to_string(),
    };
    let since = std::time::SystemTime::now()
        .checked_sub(args.since)
        .unwrap_or(std::time::UNIX_EPOCH);
    let mut from = since
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    // Event ids seen at or after `from`, with their timestamps (older ones are dropped).
    let mut seen: HashMap<String, i64> = HashMap::new();
    let mut all = Vec::new();
    let stream = !json;
    // tokio installs its SIGINT handler when this is first polled: polled once now, Ctrl-C is
    // caught from the first line that says lew is waiting on. (Fused: a finished one stays so.)
    let ctrl_c = futures::FutureExt::fuse(tokio::signal::ctrl_c());
    tokio::pin!(ctrl_c);
    let _ = futures::poll!(&mut ctrl_c);
    loop {
        let batch = tokio::select! {
            batch = logs::events(&d, &group, from, args.job.as_deref(), &mut seen) => batch?,
            _ = &mut ctrl_c, if args.follow => break,
        };
        if let Some(last) = batch.last() {
            // CloudWatch may deliver late events with the same timestamp: ask from it again
            // and drop what was seen.
            from = from.max(last.timestamp);
            seen.retain(|_, t| *t >= from);
        }
        if stream {
            let mut out = std::io::stdout().lock();
            for e in &batch {
                writeln!(out, "{e}")?;
            }
            out.flush()?;
        }
        all.extend(batch);
        if !args.follow {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_PAUSE) => {}
            _ = &mut ctrl_c => break,
        }
    }
    Ok(LogsReport {
        log_group: group,
        events: all,
        streamed: stream,
    })
}

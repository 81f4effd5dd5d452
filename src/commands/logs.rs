//! `lew logs`: the CloudWatch logs of the launcher or the worker.

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, not_available};
use crate::cli::LogsArgs;
use crate::output::Report;

#[derive(Debug, Serialize)]
pub struct LogsReport {
    pub events: Vec<String>,
}

impl fmt::Display for LogsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.events.join("\n"))
    }
}

impl Report for LogsReport {}

pub async fn run(_args: &LogsArgs, _ctx: &Ctx) -> Result<LogsReport> {
    Err(not_available("logs"))
}

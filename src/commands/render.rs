//! `lew render`: uploads scenes, waits for their renders and downloads the images.

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, not_available};
use crate::cli::RenderArgs;
use crate::output::Report;

#[derive(Debug, Serialize)]
pub struct RenderReport {
    pub jobs: Vec<String>,
}

impl fmt::Display for RenderReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.jobs.join("\n"))
    }
}

impl Report for RenderReport {}

pub async fn run(_args: &RenderArgs, _ctx: &Ctx) -> Result<RenderReport> {
    Err(not_available("render"))
}

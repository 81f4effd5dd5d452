//! `lew push-image`: builds the embedded worker, pushes it to ECR and registers a task
//! definition revision pinned by digest.

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, not_available};
use crate::cli::PushImageArgs;
use crate::output::Report;

#[derive(Debug, Serialize)]
pub struct PushReport {
    pub image: String,
}

impl fmt::Display for PushReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pushed {}", self.image)
    }
}

impl Report for PushReport {}

pub async fn run(_args: &PushImageArgs, _ctx: &Ctx) -> Result<PushReport> {
    Err(not_available("push-image"))
}

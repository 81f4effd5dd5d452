//! `lew init`: writes a commented lew.toml with every default filled in.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::Ctx;
use crate::cli::InitArgs;
use crate::config::TEMPLATE;
use crate::error::UsageError;
use crate::output::Report;

#[derive(Debug, Serialize)]
pub struct InitReport {
    pub path: PathBuf,
    pub overwritten: bool,
}

impl fmt::Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {}; edit it, then run `lew setup --dry-run` to see the plan",
            self.path.display()
        )
    }
}

impl Report for InitReport {}

pub fn run(args: &InitArgs, ctx: &Ctx) -> Result<InitReport> {
    let path = ctx
        .global
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("lew.toml"));
    let exists = path.exists();
    if exists && !args.force {
        return Err(UsageError::new(format!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        ))
        .into());
    }
    std::fs::write(&path, TEMPLATE).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(InitReport {
        path,
        overwritten: exists,
    })
}

//! `lew render FILE_OR_DIR...`: checks every scene locally, then renders them in the cloud
//! (`cloud`: upload as one job, wait showing each scene's stage, download the images) or, with
//! `--local`, on this machine (`local`). `--no-wait` returns after the upload. What each scene
//! came to is the `report`.

mod cloud;
mod local;
pub mod report;
mod stage;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

pub use self::report::{RenderReport, SceneResult, State};
use super::Ctx;
use crate::cli::RenderArgs;
use crate::error::UsageError;
use crate::scene::{self, Scene};

pub async fn run(args: &RenderArgs, ctx: &Ctx) -> Result<RenderReport> {
    let cfg = ctx.config()?;
    let (scenes, mut invalid) = load_scenes(args, ctx);
    if scenes.is_empty() || (!invalid.is_empty() && !args.keep_going) {
        let detail: Vec<String> = invalid
            .iter()
            .map(|s| {
                format!(
                    "{}: {}",
                    s.scene.display(),
                    s.error.as_deref().unwrap_or_default()
                )
            })
            .collect();
        return Err(UsageError::new(format!(
            "{} of {} scene(s) are invalid, so nothing was {}:\n  {}{}",
            invalid.len(),
            invalid.len() + scenes.len(),
            if args.local { "rendered" } else { "uploaded" },
            detail.join("\n  "),
            if scenes.is_empty() {
                ""
            } else {
                "\n(--keep-going renders the valid ones anyway)"
            }
        ))
        .into());
    }
    // `--no-wait` downloads nothing, so an image already there is no reason to refuse.
    let writes = args.local || !args.no_wait;
    let targets = output_targets(&scenes, &args.out, args.force, writes)?;

    let mut report = if args.local {
        local::render(&cfg, ctx, &scenes, &targets).await?
    } else {
        cloud::render(args, ctx, &scenes, &targets).await?
    };
    report.scenes.append(&mut invalid);
    Ok(report)
}

/// Loads every scene; the invalid ones come back as results with their reason.
fn load_scenes(args: &RenderArgs, ctx: &Ctx) -> (Vec<Scene>, Vec<SceneResult>) {
    let mut ok = Vec::new();
    let mut invalid = Vec::new();
    for path in &args.scenes {
        match scene::load(path) {
            Ok(s) => {
                ctx.progress.detail(format!(
                    "{}: {} files, {} bytes unpacked, uses {}",
                    path.display(),
                    s.files,
                    s.unpacked_bytes,
                    s.ini
                ));
                ok.push(s);
            }
            Err(e) => invalid.push(SceneResult::invalid(path, e.0)),
        }
    }
    (ok, invalid)
}

/// Where each image will be written; refuses (before any work) to overwrite or to write two
/// scenes to one file. Nothing is checked on disk or created when nothing will be `writes`.
fn output_targets(scenes: &[Scene], out: &Path, force: bool, writes: bool) -> Result<Vec<PathBuf>> {
    if writes && out.exists() && !out.is_dir() {
        return Err(UsageError::new(format!("--out {} is not a folder", out.display())).into());
    }
    let mut seen = BTreeMap::new();
    let mut targets = Vec::new();
    for s in scenes {
        let target = out.join(format!("{}.png", s.name));
        if let Some(other) = seen.insert(target.clone(), s.source.clone()) {
            return Err(UsageError::new(format!(
                "{} and {} would both render to {}; rename one of them",
                other.display(),
                s.source.display(),
                target.display()
            ))
            .into());
        }
        if writes && target.exists() && !force {
            return Err(UsageError::new(format!(
                "{} already exists; pass --force to overwrite it, or --out to write elsewhere",
                target.display()
            ))
            .into());
        }
        targets.push(target);
    }
    if writes {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    }
    Ok(targets)
}

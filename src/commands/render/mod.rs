//! `lew render FILE_OR_DIR...`: checks every scene locally, then renders them in the cloud
//! (`cloud`: upload as one job, wait showing each scene's stage, download the images) or, with
//! `--local`, on this machine (`local`). `--no-wait` returns after the upload; `--job ID` goes
//! back to a job uploaded earlier (`attach` reads its scenes back). What each scene came to is
//! the `report`.

mod attach;
mod cloud;
mod local;
mod plan;
pub mod report;
mod stage;

use std::path::{Path, PathBuf};

use anyhow::Result;

pub use self::report::{RenderReport, SceneResult, State};
use super::Ctx;
use crate::cli::RenderArgs;
use crate::error::UsageError;
use crate::scene::{self, Scene};
use crate::video;
use plan::Planned;

pub async fn run(args: &RenderArgs, ctx: &Ctx) -> Result<RenderReport> {
    if let Some(job) = &args.job {
        return reattach(args, ctx, job).await;
    }
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
    if let Some(video) = &args.video {
        video::check_format(video).map_err(UsageError::new)?;
    }
    // With --local, the parts run as local processes; in the cloud, on up to max_tasks tasks.
    let workers = if args.local {
        args.jobs.unwrap_or_else(local::cpus)
    } else {
        cfg.worker.max_tasks
    };
    let planned = plan::plan(scenes, args, &cfg, workers).map_err(UsageError::new)?;
    for note in planned.iter().filter_map(|p| p.note.as_ref()) {
        ctx.progress.line(note);
    }
    let ffmpeg = find_ffmpeg(args, ctx, &planned);
    let mut report = if args.local {
        local::render(&cfg, ctx, &planned, workers).await?
    } else {
        cloud::render(args, ctx, &planned).await?
    };
    if let Some(path) = &args.video {
        make_video(&mut report, &planned, ffmpeg.as_deref(), args.fps, path).await;
    }
    report.scenes.append(&mut invalid);
    Ok(report)
}

/// `--job ID`: the job's scenes read back from the bucket, then waited for as a new job is.
async fn reattach(args: &RenderArgs, ctx: &Ctx, job: &str) -> Result<RenderReport> {
    if let Some(video) = &args.video {
        video::check_format(video).map_err(UsageError::new)?;
    }
    let d = ctx.deployment().await?;
    let (planned, mut invalid) = attach::plan(&d, args, job).await?;
    let ffmpeg = find_ffmpeg(args, ctx, &planned);
    let mut report = cloud::follow(&d, args, job, &planned).await?;
    if let Some(path) = &args.video {
        make_video(&mut report, &planned, ffmpeg.as_deref(), args.fps, path).await;
    }
    report.scenes.append(&mut invalid);
    Ok(report)
}

/// ffmpeg for `--video`, warning at once (before the wait) when it is missing.
fn find_ffmpeg(args: &RenderArgs, ctx: &Ctx, planned: &[Planned]) -> Option<PathBuf> {
    let ffmpeg = args.video.as_ref().and_then(|_| video::find());
    if let Some(p) = planned.iter().find(|p| p.is_animation())
        && args.video.is_some()
        && ffmpeg.is_none()
    {
        ctx.progress.warn(video::missing(&p.target));
    }
    ffmpeg
}

/// Assembles the animation's frames into `path` once every frame is here.
async fn make_video(
    report: &mut RenderReport,
    planned: &[Planned],
    ffmpeg: Option<&Path>,
    fps: u32,
    path: &Path,
) {
    let Some((p, result)) = planned
        .iter()
        .zip(report.scenes.iter_mut())
        .find(|(p, _)| p.is_animation())
    else {
        return;
    };
    let why_not = match (result.state, ffmpeg) {
        (State::Done, Some(ffmpeg)) => {
            let frames = video::Frames {
                folder: &p.target,
                name: &p.scene.name,
                digits: p.scene.settings.digits(),
                first: p.frames().map_or(1, |f| f.0),
            };
            match video::assemble(ffmpeg, &frames, fps, path).await {
                Ok(()) => {
                    result.video = Some(path.to_path_buf());
                    return;
                }
                Err(e) => crate::error::one_line(&e),
            }
        }
        (State::Done, None) => video::missing(&p.target),
        _ => "not every frame was rendered, so no video was made".to_string(),
    };
    report.video_error = Some(why_not);
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

//! `lew render --local`: the scenes rendered on this machine with a local POV-Ray (see
//! `crate::povray`), one after another; no AWS call, no credentials.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use super::report::{LOG_TAIL, RenderReport, SceneResult, State, tail};
use crate::commands::Ctx;
use crate::config::Config;
use crate::povray;
use crate::scene::Scene;

pub async fn render(
    cfg: &Config,
    ctx: &Ctx,
    scenes: &[Scene],
    targets: &[PathBuf],
) -> Result<RenderReport> {
    let povray = povray::find()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let timeout = Duration::from_secs(u64::from(cfg.worker.render_timeout_s));
    let mut results = Vec::new();
    for (scene, target) in scenes.iter().zip(targets) {
        let step = ctx.progress.step(format!("rendering {}", scene.name));
        let mut r = SceneResult::new(scene, State::Done);
        match povray::render(&povray, scene, target, threads, timeout).await {
            Ok(()) => {
                step.finish(format!("done → {}", target.display()));
                r.image = Some(target.clone());
            }
            Err(failure) => {
                step.finish("failed");
                r.state = State::Failed;
                r.error = Some(failure.reason);
                r.log_tail = failure.output.map(|o| tail(&o, LOG_TAIL));
            }
        }
        results.push(r);
    }
    Ok(RenderReport {
        local: true,
        job_id: None,
        bucket: None,
        scenes: results,
        stopped_waiting: None,
    })
}

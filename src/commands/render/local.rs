//! `lew render --local`: the scenes rendered on this machine with a local POV-Ray (see
//! `crate::povray`), cut into the same parts as in the cloud (bands of a still, runs of an
//! animation's frames) and run `--jobs` processes at a time; bands are stitched with
//! `crate::stitch`. No AWS call, no credentials.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures::StreamExt as _;

use super::plan::Planned;
use super::report::{FailedFrame, LOG_TAIL, Parts, RenderReport, SceneResult, State, details};
use crate::commands::Ctx;
use crate::config::Config;
use crate::parts::Part;
use crate::povray::{self, Failure, Output};
use crate::progress::Step;

/// The CPUs lew may use: the default number of local processes.
pub fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
}

/// What one part came to.
struct Done {
    scene: usize,
    part: Part,
    /// Frames written (a run of frames), and the frames that failed with why.
    written: Vec<i64>,
    failed: Vec<(i64, Failure)>,
    /// A whole image or a band: written to this file, or why not.
    image: Option<Result<PathBuf, Failure>>,
}

pub async fn render(
    cfg: &Config,
    ctx: &Ctx,
    planned: &[Planned],
    jobs: u32,
) -> Result<RenderReport> {
    let povray = povray::find()?;
    // Each process gets its share of the CPUs (POV-Ray would take them all).
    let threads = (cpus() / jobs.max(1)).max(1) as usize;
    let timeout = Duration::from_secs(u64::from(cfg.worker.render_timeout_s));
    let bands_dir = tempfile::tempdir().context("cannot make a folder for the bands")?;
    let parts: Vec<(usize, Part)> = planned
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.plan.parts().into_iter().map(move |part| (i, part)))
        .collect();
    let steps: Vec<Step> = planned
        .iter()
        .map(|p| ctx.progress.step(format!("rendering {}", p.scene.name)))
        .collect();
    let mut results: Vec<SceneResult> = planned
        .iter()
        .map(|p| {
            let mut r = SceneResult::new(&p.scene, State::Pending);
            r.parts = summary(p);
            r
        })
        .collect();
    let (povray, dir) = (&povray, bands_dir.path());
    let mut running = futures::stream::iter(parts)
        .map(|(scene, part)| {
            let p = &planned[scene];
            async move { run_part(povray, p, scene, part, dir, threads, timeout).await }
        })
        .buffer_unordered(jobs.max(1) as usize);
    let mut finished: Vec<Vec<Done>> = planned.iter().map(|_| Vec::new()).collect();
    while let Some(done) = running.next().await {
        let (i, r) = (done.scene, &mut results[done.scene]);
        if let Some(parts) = &mut r.parts {
            parts.done += done.written.len() + usize::from(matches!(done.image, Some(Ok(_))));
            parts
                .failed
                .extend(done.failed.iter().map(|(frame, f)| FailedFrame {
                    frame: *frame,
                    error: f.reason.clone(),
                }));
            steps[i].note(format!("{} {}/{}", parts.kind, parts.done, parts.total));
        }
        finished[i].push(done);
    }
    drop(running);
    for (i, done) in finished.into_iter().enumerate() {
        finish(&planned[i], &mut results[i], done);
    }
    for (step, r) in steps.into_iter().zip(&results) {
        match r.state {
            State::Done => step.finish(format!(
                "done → {}",
                r.image
                    .as_deref()
                    .unwrap_or(std::path::Path::new("?"))
                    .display()
            )),
            _ => step.finish("failed"),
        }
    }
    Ok(RenderReport {
        local: true,
        job_id: None,
        bucket: None,
        scenes: results,
        stopped_waiting: None,
        cost: None,
        video_error: None,
    })
}

/// The parts summary a scene starts with.
fn summary(p: &Planned) -> Option<Parts> {
    let kind = match p.plan {
        crate::parts::Plan::Whole => return None,
        crate::parts::Plan::Frames { .. } => "frames",
        crate::parts::Plan::Bands { .. } => "bands",
    };
    Some(Parts {
        kind,
        total: p.plan.images(),
        jobs: p.plan.parts().len(),
        ..Parts::default()
    })
}

/// Renders one part; a run of frames goes on after a frame that fails.
async fn run_part(
    povray: &std::path::Path,
    p: &Planned,
    scene: usize,
    part: Part,
    bands_dir: &std::path::Path,
    threads: usize,
    timeout: Duration,
) -> Done {
    let mut done = Done {
        scene,
        part: part.clone(),
        written: Vec::new(),
        failed: Vec::new(),
        image: None,
    };
    match part {
        Part::Whole | Part::Band { .. } => {
            let (target, rows) = match &part {
                Part::Band { index, rows, .. } => (
                    bands_dir.join(format!("{scene}-band-{index}.png")),
                    Some(*rows),
                ),
                _ => (p.target.clone(), None),
            };
            let output = Output::Image {
                target: &target,
                rows,
            };
            let result = povray::render(povray, &p.scene, output, threads, timeout).await;
            done.image = Some(result.map(|_| target).map_err(|f| f.failure));
        }
        Part::Frames(first, last) => {
            let mut start = first;
            while start <= last {
                let output = Output::Frames {
                    folder: &p.target,
                    first: start,
                    last,
                };
                match povray::render(povray, &p.scene, output, threads, timeout).await {
                    Ok(written) => {
                        done.written.extend(written);
                        break;
                    }
                    Err(stopped) => {
                        done.written.extend(stopped.written);
                        done.failed.push((stopped.frame, stopped.failure));
                        start = stopped.frame + 1;
                    }
                }
            }
        }
    }
    done
}

/// A scene's result from its finished parts: a whole image, a stitched one, or its frames.
fn finish(p: &Planned, r: &mut SceneResult, mut done: Vec<Done>) {
    done.sort_by_key(|d| match d.part {
        Part::Whole => 0,
        Part::Frames(first, _) => first,
        Part::Band { index, .. } => index as i64,
    });
    let mut failures: Vec<(String, Failure)> = Vec::new();
    let mut bands = Vec::new();
    for d in done {
        match (d.part, d.image) {
            (Part::Band { rows, .. }, Some(Ok(file))) => bands.push((file, rows)),
            (Part::Band { index, count, rows }, Some(Err(f))) => failures.push((
                format!("band {index} of {count} (rows {}-{})", rows.0, rows.1),
                f,
            )),
            (_, Some(Err(f))) => failures.push((String::new(), f)),
            (_, _) => {}
        }
        for (frame, f) in d.failed {
            failures.push((format!("frame {frame}"), f));
        }
    }
    if failures.is_empty()
        && !bands.is_empty()
        && let Err(e) = crate::stitch::bands(&bands, &p.target)
    {
        failures.push((
            "stitching".into(),
            Failure {
                reason: crate::error::one_line(&e),
                output: None,
            },
        ));
    }
    if let Some((what, first)) = failures.first() {
        r.state = State::Failed;
        let reason = if what.is_empty() {
            first.reason.clone()
        } else {
            format!("{what}: {}", first.reason)
        };
        r.error = Some(match (&r.parts, failures.len()) {
            (Some(parts), n) if parts.kind == "frames" => {
                format!("{n} of {} frames failed; {reason}", parts.total)
            }
            _ => reason,
        });
        r.log_tail = first
            .output
            .as_deref()
            .and_then(|o| details(&first.reason, &crate::scene::error_block(o, LOG_TAIL)));
        return;
    }
    r.state = State::Done;
    r.image = Some(p.target.clone());
}

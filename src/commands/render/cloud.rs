//! `lew render` in the cloud: uploads the scenes as one job, then waits, polling what AWS shows
//! (see `stage`), downloading each image as it lands, until every scene is done or failed, the
//! timeout passes, or the user presses Ctrl-C.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, bail};
use futures::StreamExt as _;

use super::report::{LOG_TAIL, RenderReport, SceneResult, State, tail};
use super::stage::{self, Keys, Seen, Stage};
use crate::cli::RenderArgs;
use crate::commands::Ctx;
use crate::error::{Interrupted, one_line};
use crate::progress::Step;
use crate::resources::tasks::Counts;
use crate::resources::{Deployment, bucket, queue, tasks};
use crate::scene::Scene;
use crate::transfer;

/// Scenes uploaded at the same time.
const UPLOADS_AT_ONCE: usize = 4;
/// How long jobs may wait with no worker task before lew says so.
const IDLE_WARNING: Duration = Duration::from_secs(90);

/// What lew knows about one scene while it waits.
struct Tracked {
    result: SceneResult,
    target: PathBuf,
    keys: Keys,
    /// The stage last shown.
    stage: Option<Stage>,
}

pub async fn render(
    args: &RenderArgs,
    ctx: &Ctx,
    scenes: &[Scene],
    targets: &[PathBuf],
) -> Result<RenderReport> {
    let d = ctx.deployment().await?;
    if bucket::presence(&d).await? == bucket::Presence::Missing {
        bail!(
            "the bucket {} does not exist: run `lew setup` first",
            d.names.bucket
        );
    }
    let job = crate::job::new_id();
    let (mut tracked, not_uploaded, first_error) = upload(&d, &job, scenes, targets).await;
    if tracked.is_empty()
        && let Some(e) = first_error
    {
        return Err(e.context("no scene was uploaded, so nothing was submitted"));
    }
    let stopped_waiting = if args.no_wait {
        Some(format!(
            "not waiting (--no-wait); follow with `lew status` or `lew logs worker --job {job}`"
        ))
    } else {
        wait(&d, &job, &mut tracked, args.timeout, args.force).await?
    };
    Ok(RenderReport {
        local: false,
        job_id: Some(job),
        bucket: Some(d.names.bucket.clone()),
        scenes: tracked
            .into_iter()
            .map(|t| t.result)
            .chain(not_uploaded)
            .collect(),
        stopped_waiting,
    })
}

/// Uploads every scene as `scenes/<job>/<name>.zip`, a few at a time as the AWS CLI does (each
/// is a round trip or more, and a folder of scenes should not pay them one after another).
/// A scene that fails to upload is reported and the others go on: the ones already uploaded
/// render anyway, so the report must name the job.
async fn upload(
    d: &Deployment,
    job: &str,
    scenes: &[Scene],
    targets: &[PathBuf],
) -> (Vec<Tracked>, Vec<SceneResult>, Option<anyhow::Error>) {
    let input = &d.cfg.bucket.input_prefix;
    let output = &d.cfg.bucket.output_prefix;
    let uploads = futures::stream::iter(scenes.iter().zip(targets))
        .map(|(scene, target)| async move {
            let key = format!("{input}{job}/{}.zip", scene.name);
            let label = format!("uploading {}", scene.name);
            let upload = transfer::upload(
                &d.aws.s3,
                &d.progress,
                &d.names.bucket,
                &key,
                &scene.zip,
                &label,
            )
            .await;
            (scene, target, key, upload)
        })
        .buffered(UPLOADS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    let mut tracked = Vec::new();
    let mut not_uploaded = Vec::new();
    let mut first_error = None;
    for (scene, target, key, upload) in uploads {
        if let Err(e) = upload {
            let mut r = SceneResult::new(scene, State::Failed);
            r.error = Some(format!("not uploaded: {}", one_line(&e)));
            d.progress.warn(format!(
                "{}: {}",
                scene.name,
                r.error.as_deref().unwrap_or_default()
            ));
            not_uploaded.push(r);
            first_error.get_or_insert(e);
            continue;
        }
        d.progress.line(format!(
            "uploaded {} → s3://{}/{key}",
            scene.source.display(),
            d.names.bucket
        ));
        let keys = Keys::new(&format!("{output}{job}/{}", scene.name));
        let mut r = SceneResult::new(scene, State::Submitted);
        r.key = Some(key);
        r.output_key = Some(keys.png.clone());
        tracked.push(Tracked {
            result: r,
            target: target.clone(),
            keys,
            stage: None,
        });
    }
    (tracked, not_uploaded, first_error)
}

/// Polls until every scene is done or failed, the timeout passes, or the user presses Ctrl-C.
/// Returns why it stopped early, if it did.
async fn wait(
    d: &Deployment,
    job: &str,
    tracked: &mut [Tracked],
    timeout: Duration,
    overwrite: bool,
) -> Result<Option<String>> {
    for t in tracked.iter_mut() {
        t.result.state = State::Pending;
        t.result.stage = Some("uploaded".into());
    }
    let started = Instant::now();
    let submitted = SystemTime::now() - Duration::from_secs(60);
    let steps: Vec<_> = tracked
        .iter()
        .map(|t| d.progress.step(t.result.name.clone()))
        .collect();
    let mut warnings = Warnings::default();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let poll = poll(d, job, submitted, &mut warnings).await;
        let seen = Seen {
            keys: &poll.keys,
            waiting: poll.waiting,
            tasks: &poll.tasks,
        };
        for (t, step) in tracked.iter_mut().zip(&steps) {
            if t.result.state == State::Pending {
                advance(d, t, stage::stage(&t.keys, &seen), step, overwrite).await;
            }
        }
        if tracked.iter().all(|t| t.result.state != State::Pending) {
            return Ok(None);
        }
        warnings.explain(d, &poll);
        if started.elapsed() >= timeout {
            return Ok(Some(timed_out(job, tracked, timeout)));
        }
        // Quick polls while a short render may finish, gentler ones later.
        let pause = if started.elapsed() < Duration::from_secs(60) {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(2)
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = &mut ctrl_c => {
                return Err(Interrupted(format!(
                    "interrupted: the job {job} keeps running in the cloud; check it with \
                     `lew status` or `lew logs worker --job {job}`"
                ))
                .into());
            }
        }
    }
}

/// What one poll read from AWS.
struct Poll {
    keys: BTreeSet<String>,
    waiting: Option<u64>,
    tasks: Counts,
    /// Tasks of this render that stopped early, with AWS's reason.
    stopped: Vec<(String, String)>,
}

/// Reads the job's results, the queue and the tasks at once. A failed read (a network blip
/// after the SDK's retries) counts as "nothing yet" and is tried again at the next poll: the
/// jobs run on regardless, and giving up would lose the report.
async fn poll(d: &Deployment, job: &str, submitted: SystemTime, warnings: &mut Warnings) -> Poll {
    let prefix = format!("{}{job}/", d.cfg.bucket.output_prefix);
    let (listed, depth, counts, stopped) = futures::join!(
        bucket::list(d, &prefix, None, None),
        queue::depth(d, queue::Which::Jobs),
        tasks::counts(d),
        tasks::recently_stopped(d, submitted),
    );
    let keys = match listed {
        Ok(listed) => listed.into_iter().map(|o| o.key).collect(),
        Err(e) => {
            if !std::mem::replace(&mut warnings.listing, true) {
                d.progress.warn(format!(
                    "cannot list the results yet (trying again): {}",
                    one_line(&e)
                ));
            }
            BTreeSet::new()
        }
    };
    Poll {
        keys,
        waiting: depth.ok().flatten().map(|(waiting, _)| waiting),
        tasks: counts.unwrap_or_default(),
        stopped,
    }
}

/// Acts on a scene's stage: downloads a finished image, reads a failure's report, or shows
/// the new stage.
async fn advance(d: &Deployment, t: &mut Tracked, stage: Stage, step: &Step, overwrite: bool) {
    match stage {
        Stage::Rendered => {
            step.set(stage.describe());
            let png = &t.keys.png;
            let download = transfer::download(
                &d.aws.s3,
                &d.progress,
                &d.names.bucket,
                png,
                &t.target,
                overwrite,
            )
            .await;
            match download {
                Ok(_) => {
                    t.result.state = State::Done;
                    t.result.image = Some(t.target.clone());
                    step.note(format!("done → {}", t.target.display()));
                    t.result.stage = Some("done".into());
                }
                // Rendered, but not here: say where the image is rather than give up on the
                // other scenes.
                Err(e) => {
                    t.result.state = State::Failed;
                    t.result.error = Some(format!(
                        "rendered, but the download failed ({}); the image is at s3://{}/{png}",
                        one_line(&e),
                        d.names.bucket
                    ));
                    step.note("failed: the download failed");
                    t.result.stage = Some("failed".into());
                }
            }
        }
        Stage::Failed => {
            let Ok(text) = bucket::read_text(d, &t.keys.error).await else {
                return; // read again at the next poll
            };
            let mut parts = text.splitn(2, '\n');
            t.result.state = State::Failed;
            t.result.error = Some(parts.next().unwrap_or_default().trim().to_string());
            let rest = parts.next().unwrap_or_default().trim();
            if !rest.is_empty() {
                t.result.log_tail = Some(tail(rest, LOG_TAIL));
            }
            step.note(format!(
                "failed: {}",
                t.result.error.as_deref().unwrap_or_default()
            ));
            t.result.stage = Some("failed".into());
        }
        waiting => {
            if t.stage.as_ref() != Some(&waiting) {
                // A new stage gets a line of its own without a terminal (CI logs show
                // progress); a changed job count only updates the spinner.
                if t.stage.as_ref().is_some_and(|s| s.same_kind(&waiting)) {
                    step.set(waiting.describe());
                } else {
                    step.note(waiting.describe());
                }
                t.result.stage = Some(waiting.describe());
                t.stage = Some(waiting);
            }
        }
    }
}

/// Warnings shown once while waiting: why nothing happens, when AWS says why.
#[derive(Default)]
struct Warnings {
    listing: bool,
    stopped: HashSet<String>,
    idle_since: Option<Instant>,
    idle: bool,
}

impl Warnings {
    fn explain(&mut self, d: &Deployment, poll: &Poll) {
        for (arn, reason) in &poll.stopped {
            if self.stopped.insert(arn.clone()) {
                d.progress
                    .warn(format!("worker task {arn} stopped: {reason}"));
            }
        }
        if poll.tasks.total() == 0 && poll.waiting.is_some_and(|w| w > 0) {
            let since = *self.idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() > IDLE_WARNING && !std::mem::replace(&mut self.idle, true) {
                d.progress.warn(
                    "jobs are queued but no worker task is running: check `lew logs launcher` \
                     and that a worker image was pushed (`lew push-image`)",
                );
            }
        } else {
            self.idle_since = None;
        }
    }
}

/// Why lew stopped waiting when the timeout passed, naming each scene still pending.
fn timed_out(job: &str, tracked: &[Tracked], timeout: Duration) -> String {
    let pending: Vec<String> = tracked
        .iter()
        .filter(|t| t.result.state == State::Pending)
        .map(|t| {
            format!(
                "{} ({})",
                t.result.name,
                t.result.stage.as_deref().unwrap_or("pending")
            )
        })
        .collect();
    format!(
        "timed out after {} s waiting for: {}; the job keeps running in the cloud: check it with \
         `lew status` or `lew logs worker --job {job}`",
        timeout.as_secs(),
        pending.join(", ")
    )
}

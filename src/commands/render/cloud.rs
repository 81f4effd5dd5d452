//! `lew render` in the cloud: uploads the scenes as one job (each with its plan of parts in its
//! metadata), then waits, polling what AWS shows (see `stage`), downloading each image and
//! frame as it lands, until every scene is done or failed, the timeout passes, or the user
//! presses Ctrl-C; then says what the render cost.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, bail};
use aws_sdk_s3::primitives::DateTime;
use futures::StreamExt as _;

use super::plan::Planned;
use super::report::{Cost, FailedFrame, Parts, RenderReport, SceneResult, State, details};
use super::stage::{self, Expect, Seen, Stage};
use crate::cli::RenderArgs;
use crate::commands::Ctx;
use crate::error::{Interrupted, one_line};
use crate::parts::{self, Plan};
use crate::pricing::Estimate;
use crate::progress::Step;
use crate::resources::tasks::Counts;
use crate::resources::{Deployment, bucket, queue, tasks};
use crate::transfer;

/// Scenes uploaded at the same time.
const UPLOADS_AT_ONCE: usize = 4;
/// How long jobs may wait with no worker task before lew says so.
const IDLE_WARNING: Duration = Duration::from_secs(90);
/// How long an upload may go without a queued job before lew says so.
const UNQUEUED_WARNING: Duration = Duration::from_secs(30);

/// What lew knows about one scene while it waits.
struct Tracked<'a> {
    planned: &'a Planned,
    result: SceneResult,
    expect: Expect,
    /// The stage last shown.
    stage: Option<Stage>,
    /// Frames already downloaded.
    downloaded: BTreeSet<i64>,
}

pub async fn render(args: &RenderArgs, ctx: &Ctx, planned: &[Planned]) -> Result<RenderReport> {
    let d = ctx.deployment().await?;
    if bucket::presence(&d).await? == bucket::Presence::Missing {
        bail!(
            "the bucket {} does not exist: run `lew setup` first",
            d.names.bucket
        );
    }
    let job = crate::job::new_id();
    let (mut tracked, not_uploaded, first_error) = upload(&d, &job, planned).await;
    if tracked.is_empty()
        && let Some(e) = first_error
    {
        return Err(e.context("no scene was uploaded, so nothing was submitted"));
    }
    let (stopped_waiting, cost) = if args.no_wait {
        let why = format!(
            "not waiting (--no-wait); follow with `lew status` or `lew logs worker --job {job}`"
        );
        (Some(why), None)
    } else {
        let waited = wait(&d, &job, &mut tracked, args.timeout, args.force).await?;
        (waited.stopped, cost(&d, &tracked, &waited.times))
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
        cost,
        video_error: None,
    })
}

/// Uploads every scene as `scenes/<job>/<name>.zip`, a few at a time as the AWS CLI does (each
/// is a round trip or more, and a folder of scenes should not pay them one after another).
/// A scene that fails to upload is reported and the others go on: the ones already uploaded
/// render anyway, so the report must name the job.
async fn upload<'a>(
    d: &Deployment,
    job: &str,
    planned: &'a [Planned],
) -> (Vec<Tracked<'a>>, Vec<SceneResult>, Option<anyhow::Error>) {
    let input = &d.cfg.bucket.input_prefix;
    let output = &d.cfg.bucket.output_prefix;
    let uploads = futures::stream::iter(planned)
        .map(|p| async move {
            let scene = &p.scene;
            let key = format!("{input}{job}/{}.zip", scene.name);
            let label = format!("uploading {}", scene.name);
            let metadata: Vec<(&str, String)> = p
                .plan
                .metadata()
                .map(|m| (parts::METADATA_KEY, m))
                .into_iter()
                .collect();
            let upload = transfer::upload(
                &d.aws.s3,
                &d.progress,
                &d.names.bucket,
                &key,
                &scene.zip,
                &label,
                &metadata,
            )
            .await;
            (p, key, upload)
        })
        .buffered(UPLOADS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    let mut tracked = Vec::new();
    let mut not_uploaded = Vec::new();
    let mut first_error = None;
    for (p, key, upload) in uploads {
        let scene = &p.scene;
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
            "uploaded {} → s3://{}/{key}{}",
            scene.source.display(),
            d.names.bucket,
            match &p.plan {
                Plan::Whole => String::new(),
                Plan::Frames { first, last, .. } =>
                    format!(" (frames {first}-{last} in {} jobs)", p.plan.parts().len()),
                Plan::Bands { rows } => format!(" (in {} bands)", rows.len()),
            }
        ));
        let expect = Expect {
            base: format!("{output}{job}/{}", scene.name),
            name: scene.name.clone(),
            plan: p.plan.clone(),
            digits: scene.settings.digits(),
        };
        let mut r = SceneResult::new(scene, State::Submitted);
        r.key = Some(key);
        r.output_key = Some(match p.plan {
            Plan::Frames { .. } => format!("{}/", expect.base),
            _ => expect.png(),
        });
        r.parts = parts_summary(&p.plan);
        tracked.push(Tracked {
            planned: p,
            result: r,
            expect,
            stage: None,
            downloaded: BTreeSet::new(),
        });
    }
    (tracked, not_uploaded, first_error)
}

/// The parts summary a split scene starts with.
fn parts_summary(plan: &Plan) -> Option<Parts> {
    let kind = match plan {
        Plan::Whole => return None,
        Plan::Frames { .. } => "frames",
        Plan::Bands { .. } => "bands",
    };
    Some(Parts {
        kind,
        total: plan.images(),
        jobs: plan.parts().len(),
        ..Parts::default()
    })
}

/// How waiting ended, and when S3 dated every key it saw (for the cost).
struct Waited {
    stopped: Option<String>,
    times: BTreeMap<String, DateTime>,
}

/// Polls until every scene is done or failed, the timeout passes, or the user presses Ctrl-C.
async fn wait(
    d: &Deployment,
    job: &str,
    tracked: &mut [Tracked<'_>],
    timeout: Duration,
    overwrite: bool,
) -> Result<Waited> {
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
    let mut times = BTreeMap::new();
    // tokio installs its SIGINT handler when this is first polled: polled once now, Ctrl-C is
    // caught from the first line that says lew is waiting on. (Fused: a finished one stays so.)
    let ctrl_c = futures::FutureExt::fuse(tokio::signal::ctrl_c());
    tokio::pin!(ctrl_c);
    let _ = futures::poll!(&mut ctrl_c);
    loop {
        let poll = poll(d, job, submitted, &mut warnings).await;
        times.extend(poll.times.iter().map(|(k, t)| (k.clone(), *t)));
        let seen = Seen {
            keys: &poll.keys,
            depth: poll.depth,
            tasks: &poll.tasks,
        };
        for (t, step) in tracked.iter_mut().zip(&steps) {
            if t.result.state == State::Pending {
                let stage = stage::stage(&t.expect, &seen);
                advance(d, t, stage, &poll.keys, step, overwrite, started).await;
            }
        }
        if tracked.iter().all(|t| t.result.state != State::Pending) {
            return Ok(Waited {
                stopped: None,
                times,
            });
        }
        let unqueued = tracked
            .iter()
            .any(|t| t.result.state == State::Pending && t.stage == Some(Stage::Unqueued));
        warnings.explain(d, &poll, unqueued);
        if started.elapsed() >= timeout {
            return Ok(Waited {
                stopped: Some(timed_out(job, tracked, timeout)),
                times,
            });
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
    /// When S3 dated each key.
    times: Vec<(String, DateTime)>,
    /// The job queue's visible and in-flight jobs, when it could be read.
    depth: Option<(u64, u64)>,
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
    let listed = match listed {
        Ok(listed) => listed,
        Err(e) => {
            if !std::mem::replace(&mut warnings.listing, true) {
                d.progress.warn(format!(
                    "cannot list the results yet (trying again): {}",
                    one_line(&e)
                ));
            }
            Vec::new()
        }
    };
    Poll {
        keys: listed.iter().map(|o| o.key.clone()).collect(),
        times: listed
            .into_iter()
            .filter_map(|o| Some((o.key, o.last_modified?)))
            .collect(),
        depth: depth.ok().flatten(),
        tasks: counts.unwrap_or_default(),
        stopped,
    }
}

/// Acts on a scene's stage: downloads a finished image or new frames, reads a failure's
/// report, or shows the new stage.
async fn advance(
    d: &Deployment,
    t: &mut Tracked<'_>,
    stage: Stage,
    keys: &BTreeSet<String>,
    step: &Step,
    overwrite: bool,
    started: Instant,
) {
    match &stage {
        Stage::Rendered => {
            step.set(stage.describe());
            let png = t.expect.png();
            let target = t.planned.target.clone();
            match download(d, &png, &target, overwrite).await {
                Ok(()) => {
                    t.result.state = State::Done;
                    t.result.image = Some(target.clone());
                    if let Some(p) = &mut t.result.parts {
                        p.done = p.total;
                    }
                    step.note(format!("done → {}", target.display()));
                    t.result.stage = Some("done".into());
                }
                Err(why) => fail(t, step, why),
            }
        }
        Stage::Failed => {
            let Ok(text) = bucket::read_text(d, &t.expect.error()).await else {
                return; // read again at the next poll
            };
            report_error(&mut t.result, &text, None);
            step.note(format!(
                "failed: {}",
                t.result.error.as_deref().unwrap_or_default()
            ));
            t.result.stage = Some("failed".into());
        }
        Stage::Parts(progress) | Stage::Finished(progress) if progress.kind == "frames" => {
            if let Err(why) = download_frames(d, t, keys, overwrite).await {
                return fail(t, step, why);
            }
            if let Some(p) = &mut t.result.parts {
                p.done = progress.done;
                p.rendering = progress.rendering;
            }
            if let Stage::Finished(progress) = &stage {
                finish_frames(d, t, progress, step).await;
            } else {
                show(d, t, stage.clone(), step, eta(started, progress));
            }
        }
        _ => {
            if let (Stage::Parts(progress), Some(p)) = (&stage, &mut t.result.parts) {
                p.done = progress.done;
                p.rendering = progress.rendering;
            }
            show(d, t, stage, step, String::new());
        }
    }
}

/// A new stage on the spinner (a bar for frames and bands) or a line without a terminal, with
/// `suffix` (an ETA).
fn show(d: &Deployment, t: &mut Tracked<'_>, stage: Stage, step: &Step, suffix: String) {
    if t.stage.as_ref() == Some(&stage) {
        return;
    }
    let text = stage.describe() + &suffix;
    if let (Stage::Parts(progress), true) = (&stage, d.progress.is_terminal()) {
        step.set(format!("{} {text}", bar(progress)));
        t.result.stage = Some(text);
        t.stage = Some(stage);
        return;
    }
    if t.stage.as_ref().is_some_and(|s| s.same_kind(&stage)) {
        step.set(text.clone());
    } else {
        step.note(&text);
    }
    t.result.stage = Some(text);
    t.stage = Some(stage);
}

/// A bar of 20 cells for a terminal: `[#######.............]`.
fn bar(progress: &stage::Progress) -> String {
    let finished = progress.done + progress.failed.len();
    let filled = (finished * 20)
        .checked_div(progress.total)
        .unwrap_or(0)
        .min(20);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(20 - filled))
}

/// `, ETA 3m10s` from the pace so far, once something is done.
fn eta(started: Instant, progress: &stage::Progress) -> String {
    let finished = progress.done + progress.failed.len();
    if finished == 0 || finished >= progress.total {
        return String::new();
    }
    let per = started.elapsed().as_secs_f64() / finished as f64;
    let left = Duration::from_secs((per * (progress.total - finished) as f64).round() as u64);
    format!(", ETA {}", humantime::format_duration(left))
}

fn fail(t: &mut Tracked<'_>, step: &Step, why: String) {
    t.result.state = State::Failed;
    t.result.error = Some(why);
    step.note("failed: the download failed");
    t.result.stage = Some("failed".into());
}

/// Downloads one result; rendered but not here, the error says where it is instead.
async fn download(
    d: &Deployment,
    key: &str,
    target: &std::path::Path,
    overwrite: bool,
) -> Result<(), String> {
    let got = transfer::download(
        &d.aws.s3,
        &d.progress,
        &d.names.bucket,
        key,
        target,
        overwrite,
    )
    .await;
    got.map(|_| ()).map_err(|e| {
        format!(
            "rendered, but the download failed ({}); the image is at s3://{}/{key}",
            one_line(&e),
            d.names.bucket
        )
    })
}

/// Downloads the frames that landed since the last poll (their keys were just listed).
async fn download_frames(
    d: &Deployment,
    t: &mut Tracked<'_>,
    keys: &BTreeSet<String>,
    overwrite: bool,
) -> Result<(), String> {
    let Some((first, last)) = t.planned.frames() else {
        return Ok(());
    };
    for n in first..=last {
        let key = t.expect.frame(n);
        if t.downloaded.contains(&n) || !keys.contains(&key) {
            continue;
        }
        let target = t.planned.frame_target(n);
        let got = transfer::download(
            &d.aws.s3,
            &d.progress,
            &d.names.bucket,
            &key,
            &target,
            overwrite,
        )
        .await;
        if let Err(e) = got {
            return Err(format!(
                "frame {n} was rendered, but the download failed ({}); the frames are in \
                 s3://{}/{}/",
                one_line(&e),
                d.names.bucket,
                t.expect.base
            ));
        }
        t.downloaded.insert(n);
    }
    Ok(())
}

/// Every frame has its image or its error: the scene is done, or failed naming its frames.
async fn finish_frames(
    d: &Deployment,
    t: &mut Tracked<'_>,
    progress: &stage::Progress,
    step: &Step,
) {
    let total = progress.total;
    if t.downloaded.len() < progress.done {
        return; // a frame that landed meanwhile is downloaded at the next poll
    }
    if progress.failed.is_empty() {
        t.result.state = State::Done;
        t.result.image = Some(t.planned.target.clone());
        step.note(format!(
            "done → {} ({total} frames)",
            t.planned.target.display()
        ));
        t.result.stage = Some("done".into());
        return;
    }
    let mut failed = Vec::new();
    let mut first_text = None;
    for &n in &progress.failed {
        let text = bucket::read_text(d, &t.expect.frame_error(n))
            .await
            .unwrap_or_else(|e| {
                format!("frame {n}: cannot read its error report: {}", one_line(&e))
            });
        let reason = text.lines().next().unwrap_or_default().trim().to_string();
        failed.push(FailedFrame {
            frame: n,
            error: reason,
        });
        first_text.get_or_insert(text);
    }
    let summary = format!("{} of {total} frames failed", failed.len());
    report_error(
        &mut t.result,
        first_text.as_deref().unwrap_or_default(),
        Some(&summary),
    );
    if let Some(p) = &mut t.result.parts {
        p.failed = failed;
    }
    step.note(format!(
        "failed: {}",
        t.result.error.as_deref().unwrap_or_default()
    ));
    t.result.stage = Some("failed".into());
}

/// A failed scene from its error report: the first line is the reason, the rest POV-Ray's
/// output; `summary` goes first when several parts failed.
fn report_error(r: &mut SceneResult, text: &str, summary: Option<&str>) {
    let mut parts = text.splitn(2, '\n');
    let reason = parts.next().unwrap_or_default().trim();
    r.state = State::Failed;
    r.error = Some(match summary {
        Some(summary) => format!("{summary}; {reason}"),
        None => reason.to_string(),
    });
    r.log_tail = details(reason, parts.next().unwrap_or_default());
}

/// The render's cost: the seconds from each part's start marker to its last result, as S3
/// dated them, and at most `worker.idle_s` more for each worker it kept busy.
fn cost(
    d: &Deployment,
    tracked: &[Tracked<'_>],
    times: &BTreeMap<String, DateTime>,
) -> Option<Cost> {
    let mut seconds = 0u64;
    let (mut images, mut frames) = (0, 0);
    let mut jobs = 0;
    for t in tracked {
        match (&t.result.parts, t.result.state) {
            (Some(p), _) if p.kind == "frames" => frames += p.done,
            (_, State::Done) => images += 1,
            _ => {}
        }
        for part in t.expect.plan.parts() {
            jobs += 1;
            let Some(start) = times.get(&t.expect.started(&part)) else {
                continue;
            };
            let end = t
                .expect
                .results(&part)
                .iter()
                .filter_map(|k| times.get(k))
                .map(|t| t.secs())
                .max();
            if let Some(end) = end {
                seconds += (end - start.secs()).max(1) as u64;
            }
        }
    }
    if seconds == 0 {
        return None;
    }
    let w = &d.cfg.worker;
    let prices = Estimate::fargate(w.cpu, w.memory_mb, &d.aws.region, w.spot);
    let idle = u64::from(w.idle_s) * jobs.min(w.max_tasks as usize) as u64;
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let made = match (images, frames) {
        (0, f) => plural(f, "frame"),
        (i, 0) => plural(i, "image"),
        (i, f) => format!("{} and {}", plural(i, "image"), plural(f, "frame")),
    };
    Some(Cost {
        made,
        task_seconds: seconds,
        idle_seconds_at_most: idle,
        usd: prices.usd(seconds as f64),
        idle_usd_at_most: prices.usd(idle as f64),
        prices,
    })
}

/// Warnings shown once while waiting: why nothing happens, when AWS says why.
#[derive(Default)]
struct Warnings {
    listing: bool,
    stopped: HashSet<String>,
    idle_since: Option<Instant>,
    idle: bool,
    unqueued_since: Option<Instant>,
    unqueued: bool,
}

impl Warnings {
    fn explain(&mut self, d: &Deployment, poll: &Poll, unqueued: bool) {
        // S3 hands an upload to the launcher within seconds; a backlog of launches (reserved
        // concurrency 1) can take longer, so this says "has not", never "will not".
        if unqueued {
            let since = *self.unqueued_since.get_or_insert_with(Instant::now);
            if since.elapsed() > UNQUEUED_WARNING && !std::mem::replace(&mut self.unqueued, true) {
                d.progress.warn(format!(
                    "{} s after the upload no job is queued, none is being rendered and no \
                     worker task runs: the launcher has not queued the scenes. Check that the \
                     bucket's notification and the function are in place (`lew status`; `lew \
                     setup` repairs them) and what the launcher says (`lew logs launcher`)",
                    UNQUEUED_WARNING.as_secs()
                ));
            }
        } else {
            self.unqueued_since = None;
        }
        for (arn, reason) in &poll.stopped {
            if self.stopped.insert(arn.clone()) {
                d.progress
                    .warn(format!("worker task {arn} stopped: {reason}"));
            }
        }
        if poll.tasks.total() == 0 && poll.depth.is_some_and(|(visible, _)| visible > 0) {
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
fn timed_out(job: &str, tracked: &[Tracked<'_>], timeout: Duration) -> String {
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

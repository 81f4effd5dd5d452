//! `lew render FILE_OR_DIR...`: checks every scene locally, uploads them as one job, waits
//! showing each scene's stage, and downloads the images. `--no-wait` returns after the upload;
//! `--local` renders on this machine with a local `povray` and calls no AWS at all.
//!
//! Stages are read from AWS, not guessed: the queue's depth, the tasks the launcher started (and
//! why a task stopped, when it stopped early), the worker's `<name>.started.json` marker, then
//! `<name>.png` or `<name>.error.txt` under `renders/<job>/`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use aws_sdk_ecs::types::DesiredStatus;
use futures::StreamExt as _;
use serde::Serialize;

use super::Ctx;
use crate::cli::RenderArgs;
use crate::config::Config;
use crate::error::{Interrupted, UsageError};
use crate::output::Report;
use crate::resources::{Deployment, STARTED_BY, bucket, queue, tasks};
use crate::scene::{self, Scene};
use crate::transfer;

/// Where Debian's POV-Ray keeps its standard include files.
const SYSTEM_INCLUDES: &str = "/usr/share/povray-3.7/include";
/// Lines of POV-Ray output shown with a failure.
const LOG_TAIL: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Uploaded; not waited for (`--no-wait`).
    Submitted,
    /// Still in progress when lew stopped waiting.
    Pending,
    Done,
    Failed,
    /// Not uploaded: the scene is invalid.
    Invalid,
}

#[derive(Debug, Serialize)]
pub struct SceneResult {
    pub scene: PathBuf,
    pub name: String,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
    /// The last stage seen while waiting (queued, task running, rendering ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RenderReport {
    pub local: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    pub scenes: Vec<SceneResult>,
    /// Why lew stopped waiting, if it did not see every scene finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_waiting: Option<String>,
}

impl fmt::Display for RenderReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(job), Some(bucket)) = (&self.job_id, &self.bucket) {
            writeln!(f, "job {job} in s3://{bucket}")?;
        }
        for s in &self.scenes {
            match s.state {
                State::Done => writeln!(
                    f,
                    "done       {} → {}",
                    s.scene.display(),
                    s.image.as_deref().unwrap_or(Path::new("?")).display()
                )?,
                State::Submitted => writeln!(
                    f,
                    "submitted  {} → s3://{}/{}",
                    s.scene.display(),
                    self.bucket.as_deref().unwrap_or_default(),
                    s.output_key.as_deref().unwrap_or_default()
                )?,
                State::Pending => writeln!(
                    f,
                    "pending    {} ({})",
                    s.scene.display(),
                    s.stage.as_deref().unwrap_or("not finished")
                )?,
                State::Failed | State::Invalid => {
                    let word = if s.state == State::Failed {
                        "FAILED"
                    } else {
                        "INVALID"
                    };
                    writeln!(
                        f,
                        "{word:<10} {}: {}",
                        s.scene.display(),
                        s.error.as_deref().unwrap_or("unknown error")
                    )?;
                    if let Some(tail) = &s.log_tail {
                        for line in tail.lines() {
                            writeln!(f, "           | {line}")?;
                        }
                    }
                }
            }
        }
        if let Some(why) = &self.stopped_waiting {
            write!(f, "{why}")?;
        }
        Ok(())
    }
}

impl Report for RenderReport {
    fn exit_code(&self) -> u8 {
        if self
            .scenes
            .iter()
            .any(|s| matches!(s.state, State::Failed | State::Invalid))
        {
            1
        } else if self.scenes.iter().any(|s| s.state == State::Pending) {
            3
        } else {
            0
        }
    }
}

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
        render_locally(&cfg, ctx, &scenes, &targets).await?
    } else {
        render_in_the_cloud(args, ctx, &scenes, &targets).await?
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
            Err(e) => invalid.push(SceneResult {
                scene: path.clone(),
                name: String::new(),
                state: State::Invalid,
                key: None,
                output_key: None,
                image: None,
                error: Some(e.0),
                log_tail: None,
                stage: None,
            }),
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

fn result(scene: &Scene, state: State) -> SceneResult {
    SceneResult {
        scene: scene.source.clone(),
        name: scene.name.clone(),
        state,
        key: None,
        output_key: None,
        image: None,
        error: None,
        log_tail: None,
        stage: None,
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// --local

/// The local povray, or a usage error saying how to install it.
fn find_povray() -> Result<PathBuf> {
    let name = std::env::var("LEW_POVRAY").unwrap_or_else(|_| "povray".into());
    let candidate = Path::new(&name);
    if candidate.components().count() > 1 {
        if candidate.is_file() {
            return Ok(candidate.to_path_buf());
        }
    } else if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(&name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!(
        "{name} is not installed (or not on PATH), and --local renders with it: install \
         POV-Ray 3.7 (Debian/Ubuntu: `sudo apt-get install povray povray-includes`; macOS: \
         `brew install povray`), or render in the cloud without --local"
    )
}

async fn render_locally(
    cfg: &Config,
    ctx: &Ctx,
    scenes: &[Scene],
    targets: &[PathBuf],
) -> Result<RenderReport> {
    let povray = find_povray()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let timeout = Duration::from_secs(u64::from(cfg.worker.render_timeout_s));
    let mut results = Vec::new();
    for (scene, target) in scenes.iter().zip(targets) {
        let step = ctx.progress.step(format!("rendering {}", scene.name));
        let mut r = result(scene, State::Done);
        match render_one(&povray, scene, target, threads, timeout).await {
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

struct LocalFailure {
    reason: String,
    output: Option<String>,
}

/// Renders one scene in a private temporary folder, as the worker does: the scene's ini, then
/// lew's own ini that fixes display, output format and place.
async fn render_one(
    povray: &Path,
    scene: &Scene,
    target: &Path,
    threads: usize,
    timeout: Duration,
) -> Result<(), LocalFailure> {
    let fail = |reason: String| LocalFailure {
        reason,
        output: None,
    };
    let work = tempfile::tempdir().map_err(|e| fail(format!("cannot make a work folder: {e}")))?;
    let root = work.path().join("scene");
    std::fs::create_dir(&root).map_err(|e| fail(e.to_string()))?;
    let ini = scene::extract(scene, &root).map_err(|e| fail(e.0))?;
    let image = work.path().join("render.png");
    let own_ini = work.path().join("lew-local.ini");
    // Restate the size that was checked: an .ini the scene's .ini includes could ask for more.
    let (width, height) = scene::declared_size(&String::from_utf8_lossy(
        &std::fs::read(&ini).map_err(|e| fail(e.to_string()))?,
    ));
    let mut lines = vec![
        format!("Width={width}"),
        format!("Height={height}"),
        "Display=off".to_string(),
        "Pause_When_Done=off".into(),
        "Output_To_File=on".into(),
        "Output_File_Type=N".into(),
        format!("Output_File_Name=\"{}\"", image.display()),
        "Initial_Frame=1".into(),
        "Final_Frame=1".into(),
        format!("Library_Path=\"{}\"", root.display()),
    ];
    if Path::new(SYSTEM_INCLUDES).is_dir() {
        lines.push(format!("Library_Path=\"{SYSTEM_INCLUDES}\""));
    }
    std::fs::write(&own_ini, lines.join("\n") + "\n").map_err(|e| fail(e.to_string()))?;
    let ini_name = ini
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let child = tokio::process::Command::new(povray)
        .arg(format!("\"./{ini_name}\""))
        .arg(format!("\"{}\"", own_ini.display()))
        .arg(format!("+WT{threads}"))
        .current_dir(ini.parent().unwrap_or(&root))
        // A scene can read its environment (`#read` of /proc/self/environ): give it none.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot run {}: {e}", povray.display())))?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(out) => out.map_err(|e| fail(format!("POV-Ray failed: {e}")))?,
        Err(_) => {
            return Err(fail(format!(
                "render timed out after {} s (worker.render_timeout_s)",
                timeout.as_secs()
            )));
        }
    };
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !image.is_file() {
        let reason = scene::povray_error(&text).unwrap_or_else(|| match output.status.code() {
            Some(code) => format!("POV-Ray failed (exit status {code})"),
            None => "POV-Ray was killed by a signal".to_string(),
        });
        return Err(LocalFailure {
            reason,
            output: Some(text),
        });
    }
    std::fs::copy(&image, target)
        .map_err(|e| fail(format!("cannot write {}: {e}", target.display())))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// In the cloud

/// A submission's id: the UTC time and a random part, so ids sort by time and never collide.
pub fn new_job_id() -> String {
    use sha2::{Digest as _, Sha256};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut hash = Sha256::new();
    hash.update(now.as_nanos().to_le_bytes());
    hash.update(std::process::id().to_le_bytes());
    hash.update(format!("{:p}", &now).as_bytes());
    let random: String = hash
        .finalize()
        .iter()
        .take(3)
        .map(|b| format!("{b:02x}"))
        .collect();
    let secs = now.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{random}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
/// The smallest job id of the UTC day `days_ago` days before today: job ids start with their
/// date, so listing from here skips older jobs.
pub fn job_id_floor(days_ago: u64) -> String {
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 86_400;
    let (y, m, d) = civil_from_days(today.saturating_sub(days_ago) as i64);
    format!("{y:04}{m:02}{d:02}")
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// What lew knows about one scene while it waits.
/// Scenes uploaded at the same time.
const UPLOADS_AT_ONCE: usize = 4;

struct Tracked {
    result: SceneResult,
    target: PathBuf,
    base: String,
}

async fn render_in_the_cloud(
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
    let job = new_job_id();
    let input = &d.cfg.bucket.input_prefix;
    let output = &d.cfg.bucket.output_prefix;
    // A few uploads at a time, as the AWS CLI does: each is a round trip or more, and a
    // folder of scenes should not pay them one after another.
    let (deployment, job_id) = (&d, &job);
    let uploads = futures::stream::iter(scenes.iter().zip(targets))
        .map(|(scene, target)| async move {
            let key = format!("{input}{job_id}/{}.zip", scene.name);
            let upload = transfer::upload(
                &deployment.aws.s3,
                &deployment.progress,
                &deployment.names.bucket,
                &key,
                &scene.zip,
                &format!("uploading {}", scene.name),
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
            // The scenes already uploaded render anyway: keep going, so the report names the
            // job and says which scenes did not make it.
            let mut r = result(scene, State::Failed);
            r.error = Some(format!(
                "not uploaded: {}",
                crate::error::messages(&e).join(": ")
            ));
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
        let base = format!("{output}{job}/{}", scene.name);
        let mut r = result(scene, State::Submitted);
        r.key = Some(key);
        r.output_key = Some(format!("{base}.png"));
        tracked.push(Tracked {
            result: r,
            target: target.clone(),
            base,
        });
    }

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
    let submitted = std::time::SystemTime::now() - Duration::from_secs(60);
    let steps: Vec<_> = tracked
        .iter()
        .map(|t| d.progress.step(t.result.name.clone()))
        .collect();
    let mut warned_stopped = std::collections::BTreeSet::new();
    let mut idle_since: Option<Instant> = None;
    let mut warned_idle = false;
    // tokio installs its SIGINT handler when this is first polled: polled once now, Ctrl-C is
    // caught from the first line that says lew is waiting on. (Fused: a finished one stays so.)
    let ctrl_c = futures::FutureExt::fuse(tokio::signal::ctrl_c());
    tokio::pin!(ctrl_c);
    let _ = futures::poll!(&mut ctrl_c);
    let mut warned_listing = false;
    loop {
        // A failed listing (a network blip after the SDK's retries) is tried again at the next
        // poll: the jobs run on regardless, and giving up would lose the report.
        let keys = match list_outputs(d, job).await {
            Ok(keys) => keys,
            Err(e) => {
                if !std::mem::replace(&mut warned_listing, true) {
                    d.progress.warn(format!(
                        "cannot list the results yet (trying again): {}",
                        crate::error::messages(&e).join(": ")
                    ));
                }
                Default::default()
            }
        };
        // Only look at the queue and the tasks while something is still waiting for them.
        let (depth, counts, stopped) = futures::join!(
            queue::depth(d, queue::Which::Jobs),
            task_counts(d),
            recently_stopped(d, submitted),
        );
        let depth = depth.ok().flatten();
        let counts = counts.unwrap_or_default();
        for (t, step) in tracked.iter_mut().zip(&steps) {
            if t.result.state != State::Pending {
                continue;
            }
            let png = format!("{}.png", t.base);
            let err = format!("{}.error.txt", t.base);
            let stage = if keys.contains(&png) {
                step.set("downloading");
                let download = transfer::download(
                    &d.aws.s3,
                    &d.progress,
                    &d.names.bucket,
                    &png,
                    &t.target,
                    overwrite,
                )
                .await;
                match download {
                    Ok(_) => {
                        t.result.state = State::Done;
                        t.result.image = Some(t.target.clone());
                        step.note(format!("done → {}", t.target.display()));
                        "done".to_string()
                    }
                    // Rendered, but not here: say where the image is rather than give up on
                    // the other scenes.
                    Err(e) => {
                        t.result.state = State::Failed;
                        t.result.error = Some(format!(
                            "rendered, but the download failed ({}); the image is at s3://{}/{png}",
                            crate::error::messages(&e).join(": "),
                            d.names.bucket
                        ));
                        step.note("failed: the download failed");
                        "failed".to_string()
                    }
                }
            } else if keys.contains(&err) {
                let Ok(text) = read_text(d, &err).await else {
                    continue; // read again at the next poll
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
                "failed".to_string()
            } else if keys.contains(&format!("{}.started.json", t.base)) {
                "rendering".to_string()
            } else if counts.running > 0 {
                "queued; a worker task is running".to_string()
            } else if counts.provisioning + counts.pending > 0 {
                "queued; a worker task is starting".to_string()
            } else {
                match depth {
                    Some((waiting, _)) => format!("queued ({waiting} job(s) waiting)"),
                    None => "queued".to_string(),
                }
            };
            if t.result.stage.as_deref() != Some(stage.as_str()) {
                if t.result.state == State::Pending {
                    // A new stage gets a line of its own without a terminal (CI logs show
                    // progress); a changed job count only updates the spinner.
                    let kind = |s: &str| s.split(" (").next().unwrap_or_default().to_string();
                    if t.result.stage.as_deref().map(kind) == Some(kind(&stage)) {
                        step.set(stage.clone());
                    } else {
                        step.note(&stage);
                    }
                }
                t.result.stage = Some(stage);
            }
        }
        if tracked.iter().all(|t| t.result.state != State::Pending) {
            return Ok(None);
        }

        // Say why nothing happens, when AWS says why.
        for (arn, reason) in stopped {
            if warned_stopped.insert(arn.clone()) {
                d.progress
                    .warn(format!("worker task {arn} stopped: {reason}"));
            }
        }
        if counts.total() == 0 && depth.is_some_and(|(w, _)| w > 0) {
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(90) && !warned_idle {
                warned_idle = true;
                d.progress.warn(
                    "jobs are queued but no worker task is running: check `lew logs launcher` \
                     and that a worker image was pushed (`lew push-image`)",
                );
            }
        } else {
            idle_since = None;
        }

        if started.elapsed() >= timeout {
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
            return Ok(Some(format!(
                "timed out after {} s waiting for: {}; the job keeps running in the cloud: check \
                 it with `lew status` or `lew logs worker --job {job}`",
                timeout.as_secs(),
                pending.join(", ")
            )));
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

async fn task_counts(d: &Deployment) -> Result<tasks::Counts> {
    tasks::counts(d).await
}

/// Tasks the launcher started since `since` that stopped without finishing their work (for
/// example because the image could not be pulled), as (ARN, reason).
async fn recently_stopped(d: &Deployment, since: std::time::SystemTime) -> Vec<(String, String)> {
    let listed = d
        .aws
        .ecs
        .list_tasks()
        .cluster(&d.names.cluster)
        .started_by(STARTED_BY)
        .desired_status(DesiredStatus::Stopped)
        .send()
        .await;
    let Ok(listed) = listed else {
        return Vec::new();
    };
    let arns = listed.task_arns.unwrap_or_default();
    let Ok(described) = tasks::describe(d, &arns).await else {
        return Vec::new();
    };
    let since = aws_sdk_ecs::primitives::DateTime::from(since);
    described
        .into_iter()
        .filter(|t| t.created_at().is_some_and(|c| c.secs() >= since.secs()))
        .filter_map(|t| {
            let exit = t.containers().first().and_then(|c| c.exit_code());
            let reason = t.stopped_reason().unwrap_or_default().to_string();
            let why = match exit {
                Some(code) if code != 0 => format!("the worker exited with code {code} ({reason})"),
                _ if reason.is_empty()
                    || reason.contains("Essential container in task exited")
                    || reason.starts_with("lew ") =>
                {
                    return None;
                }
                _ => reason,
            };
            Some((t.task_arn().unwrap_or_default().to_string(), why))
        })
        .collect()
}

/// Every key under `renders/<job>/`.
async fn list_outputs(d: &Deployment, job: &str) -> Result<std::collections::BTreeSet<String>> {
    let mut pages = d
        .aws
        .s3
        .list_objects_v2()
        .bucket(&d.names.bucket)
        .prefix(format!("{}{job}/", d.cfg.bucket.output_prefix))
        .into_paginator()
        .send();
    let mut keys = std::collections::BTreeSet::new();
    while let Some(page) = pages.next().await {
        let page = page.context("cannot list the job's results")?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    Ok(keys)
}

async fn read_text(d: &Deployment, key: &str) -> Result<String> {
    let out = d
        .aws
        .s3
        .get_object()
        .bucket(&d.names.bucket)
        .key(key)
        .send()
        .await
        .with_context(|| format!("cannot read s3://{}/{key}", d.names.bucket))?;
    let bytes = out
        .body
        .collect()
        .await
        .with_context(|| format!("cannot read s3://{}/{key}", d.names.bucket))?
        .into_bytes();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_785), (2026, 11, 28));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn job_ids_sort_by_time_and_differ() {
        let a = new_job_id();
        let b = new_job_id();
        assert_eq!(a.len(), "20261127-203015-3fa2c1".len(), "{a}");
        assert_ne!(a, b);
    }
}

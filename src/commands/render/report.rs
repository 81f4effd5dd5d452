//! What `lew render` reports: one result per scene (done, failed, pending ...), printed as text
//! or JSON, and the exit code it implies (1 when a scene failed, 3 when lew stopped waiting).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::output::{Report, WORD_WIDTH};
use crate::scene::Scene;

/// Lines of POV-Ray output shown with a failure.
pub const LOG_TAIL: usize = 20;

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
    /// An animation's frames or a split still's bands, as far as they got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<Parts>,
    /// The video `--video` made of the frames.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<PathBuf>,
}

/// What became of a scene's frames or bands.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Parts {
    /// `frames` or `bands`.
    pub kind: &'static str,
    pub total: usize,
    pub done: usize,
    pub rendering: usize,
    /// The jobs the scene was queued as.
    pub jobs: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<FailedFrame>,
}

/// A frame that failed, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailedFrame {
    pub frame: i64,
    pub error: String,
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
    /// What the render cost on Fargate (cloud renders that were waited for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// Why `--video` made no video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_error: Option<String>,
}

/// The Fargate time a render used, and its price.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cost {
    /// What the render made, in words: `120 frames`, `2 images`.
    pub made: String,
    /// Seconds the workers spent on the render's jobs (from each job's start marker to its
    /// last result, as S3 dates them).
    pub task_seconds: u64,
    /// At most this many more: each worker's wait for more work after its last job.
    pub idle_seconds_at_most: u64,
    pub usd: f64,
    pub idle_usd_at_most: f64,
    pub prices: crate::pricing::Estimate,
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::pricing::dollars;
        let minutes = |s: u64| s as f64 / 60.0;
        write!(
            f,
            "{}, {:.1} task-minutes, {}",
            self.made,
            minutes(self.task_seconds),
            dollars(self.usd)
        )?;
        if self.idle_seconds_at_most > 0 {
            write!(
                f,
                " (+ at most {:.1} task-minutes, {}, of workers waiting for more work: \
                 worker.idle_s)",
                minutes(self.idle_seconds_at_most),
                dollars(self.idle_usd_at_most)
            )?;
        }
        if self.prices.estimate {
            write!(
                f,
                "; estimated at {} On-Demand prices of {}",
                self.prices.priced_as, self.prices.prices_read
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for RenderReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(job), Some(bucket)) = (&self.job_id, &self.bucket) {
            writeln!(f, "job {job} in s3://{bucket}")?;
        }
        for s in &self.scenes {
            match s.state {
                State::Done => {
                    write!(
                        f,
                        "{:<WORD_WIDTH$} {} → {}",
                        "done",
                        s.scene.display(),
                        s.image.as_deref().unwrap_or(Path::new("?")).display()
                    )?;
                    match &s.parts {
                        Some(p) if p.kind == "frames" => write!(f, " ({} frames)", p.done)?,
                        Some(p) => write!(f, " (stitched from {} bands)", p.total)?,
                        None => {}
                    }
                    writeln!(f)?;
                    if let Some(video) = &s.video {
                        writeln!(f, "{:<WORD_WIDTH$} {}", "video", video.display())?;
                    }
                }
                State::Submitted => writeln!(
                    f,
                    "{:<WORD_WIDTH$} {} → s3://{}/{}",
                    "submitted",
                    s.scene.display(),
                    self.bucket.as_deref().unwrap_or_default(),
                    s.output_key.as_deref().unwrap_or_default()
                )?,
                State::Pending => writeln!(
                    f,
                    "{:<WORD_WIDTH$} {} ({})",
                    "pending",
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
                        "{word:<WORD_WIDTH$} {}: {}",
                        s.scene.display(),
                        s.error.as_deref().unwrap_or("unknown error")
                    )?;
                    if let Some(tail) = &s.log_tail {
                        for line in tail.lines() {
                            writeln!(f, "{:<WORD_WIDTH$} | {line}", "")?;
                        }
                    }
                }
            }
        }
        if let Some(why) = &self.video_error {
            writeln!(f, "{:<WORD_WIDTH$} {why}", "NO VIDEO")?;
        }
        if let Some(cost) = &self.cost {
            writeln!(f, "{:<WORD_WIDTH$} {cost}", "cost")?;
        }
        if let Some(why) = &self.stopped_waiting {
            write!(f, "{why}")?;
        }
        Ok(())
    }
}

impl Report for RenderReport {
    fn exit_code(&self) -> u8 {
        if self.video_error.is_some()
            || self
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

impl SceneResult {
    /// A scene's result before anything is known beyond `state`.
    pub fn new(scene: &Scene, state: State) -> SceneResult {
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
            parts: None,
            video: None,
        }
    }

    /// A scene that could not even be loaded.
    pub fn invalid(source: &Path, error: String) -> SceneResult {
        SceneResult {
            scene: source.to_path_buf(),
            name: String::new(),
            state: State::Invalid,
            key: None,
            output_key: None,
            image: None,
            error: Some(error),
            log_tail: None,
            stage: None,
            parts: None,
            video: None,
        }
    }
}

/// POV-Ray's lines about a failure, for its report: the error block, without the lines the
/// reason already says (the reason is those lines, unwrapped), at most [`LOG_TAIL`] of them.
pub fn details(reason: &str, block: &str) -> Option<String> {
    let kept: Vec<&str> = block
        .lines()
        .filter(|l| !l.trim().is_empty() && !reason.contains(l.trim()))
        .collect();
    let text = kept[kept.len().saturating_sub(LOG_TAIL)..].join("\n");
    (!text.is_empty()).then_some(text)
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

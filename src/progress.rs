//! Progress on stderr: indicatif spinners and bars on a terminal, plain lines otherwise.
//!
//! Results never go through here; they go to stdout (see `crate::output`), so piping lew's
//! output or asking for `--output json` is never mixed with progress.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Quiet,
    Normal,
    Verbose,
}

/// A cheap, clonable handle shared by everything that reports progress.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    level: Level,
    /// Present only when stderr is a terminal and progress is wanted.
    multi: Option<MultiProgress>,
}

impl Progress {
    pub fn new(level: Level) -> Progress {
        let tty = std::io::stderr().is_terminal();
        Progress::with_terminal(level, tty)
    }

    pub fn with_terminal(level: Level, tty: bool) -> Progress {
        let multi = (tty && level > Level::Quiet)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            inner: Arc::new(Inner { level, multi }),
        }
    }

    /// A silent handle, for tests and library use.
    pub fn hidden() -> Progress {
        Progress::with_terminal(Level::Quiet, false)
    }

    pub fn level(&self) -> Level {
        self.inner.level
    }

    /// Whether progress goes to a terminal (spinners and bars rather than lines).
    pub fn is_terminal(&self) -> bool {
        self.inner.multi.is_some()
    }

    /// A line of progress (not shown with -q).
    pub fn line(&self, msg: impl AsRef<str>) {
        if self.inner.level >= Level::Normal {
            self.print(msg.as_ref());
        }
    }

    /// Detail shown only with -v.
    pub fn detail(&self, msg: impl AsRef<str>) {
        if self.inner.level >= Level::Verbose {
            self.print(msg.as_ref());
        }
    }

    /// A warning: shown even with -q, since it asks for the user's attention.
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.print(&format!("warning: {}", msg.as_ref()));
    }

    fn print(&self, msg: &str) {
        match &self.inner.multi {
            // Printing through indicatif keeps running spinners intact.
            Some(multi) => {
                let _ = multi.println(msg);
            }
            None => eprintln!("{msg}"),
        }
    }

    /// A unit of work with a spinner on a terminal; without one, nothing is printed until it
    /// finishes (so concurrent steps give one line each, not interleaved halves).
    pub fn step(&self, label: impl Into<String>) -> Step {
        let label = label.into();
        let bar = self.inner.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {wide_msg}")
                    .expect("a valid template"),
            );
            bar.set_prefix(label.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Step {
            progress: self.clone(),
            label,
            bar,
        }
    }

    /// A byte-count bar (uploads, downloads); hidden when stderr is not a terminal.
    pub fn bytes(&self, label: impl Into<String>, total: u64) -> ProgressBar {
        match &self.inner.multi {
            Some(multi) => {
                let bar = multi.add(ProgressBar::new(total));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(label.into());
                bar
            }
            None => ProgressBar::hidden(),
        }
    }
}

/// A running step; see [`Progress::step`].
pub struct Step {
    progress: Progress,
    label: String,
    bar: Option<ProgressBar>,
}

impl Step {
    /// Updates the spinner's message (terminal only; plain output stays one line per step).
    pub fn set(&self, msg: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg.into());
        }
    }

    /// Something the user should see while the step runs, e.g. a wait for IAM propagation.
    pub fn note(&self, msg: impl AsRef<str>) {
        match &self.bar {
            Some(bar) => bar.set_message(msg.as_ref().to_string()),
            None => self
                .progress
                .line(format!("{}: {}", self.label, msg.as_ref())),
        }
    }

    /// Ends the step with a one-line result.
    pub fn finish(self, result: impl AsRef<str>) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.progress
            .line(format!("{}: {}", self.label, result.as_ref()));
    }

    /// Ends the step without a line (the caller reports the result otherwise).
    pub fn clear(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

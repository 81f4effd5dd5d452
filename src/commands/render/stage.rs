//! Where one scene stands while `lew render` waits, decided from what AWS shows and nothing
//! else: the keys under `renders/<job>/` (the image, the error report, the worker's
//! `.started.json` marker), the worker tasks and the queue's depth. A pure function, so every
//! stage can be tested without AWS.

use std::collections::BTreeSet;

use crate::resources::tasks::Counts;

/// What one poll saw.
pub struct Seen<'a> {
    /// Every key under `renders/<job>/`.
    pub keys: &'a BTreeSet<String>,
    /// Jobs visible in the queue, when it could be read.
    pub waiting: Option<u64>,
    /// The worker tasks running or about to.
    pub tasks: &'a Counts,
}

/// A scene's stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// The image is there, ready to download.
    Rendered,
    /// The worker reported an error for the scene.
    Failed,
    /// A worker has started on the scene.
    Rendering,
    /// Waiting for a worker.
    Queued(Workers),
}

/// The workers a queued scene waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workers {
    Running,
    Starting,
    /// None yet; `waiting` jobs are in the queue, when it could be read.
    None {
        waiting: Option<u64>,
    },
}

/// The keys a scene's worker writes, from the scene's output base `renders/<job>/<name>`.
pub struct Keys {
    pub png: String,
    pub error: String,
    pub started: String,
}

impl Keys {
    pub fn new(base: &str) -> Keys {
        Keys {
            png: format!("{base}.png"),
            error: format!("{base}.error.txt"),
            started: format!("{base}.started.json"),
        }
    }
}

/// The stage of the scene whose keys are `keys`, from what `seen` shows.
pub fn stage(keys: &Keys, seen: &Seen) -> Stage {
    if seen.keys.contains(&keys.png) {
        Stage::Rendered
    } else if seen.keys.contains(&keys.error) {
        Stage::Failed
    } else if seen.keys.contains(&keys.started) {
        Stage::Rendering
    } else if seen.tasks.running > 0 {
        Stage::Queued(Workers::Running)
    } else if seen.tasks.provisioning + seen.tasks.pending > 0 {
        Stage::Queued(Workers::Starting)
    } else {
        Stage::Queued(Workers::None {
            waiting: seen.waiting,
        })
    }
}

impl Stage {
    /// The stage in words, as the spinner and `--output json`'s `stage` show it.
    pub fn describe(&self) -> String {
        match self {
            Stage::Rendered => "downloading".into(),
            Stage::Failed => "failed".into(),
            Stage::Rendering => "rendering".into(),
            Stage::Queued(Workers::Running) => "queued; a worker task is running".into(),
            Stage::Queued(Workers::Starting) => "queued; a worker task is starting".into(),
            Stage::Queued(Workers::None { waiting: Some(n) }) => {
                format!("queued ({n} job(s) waiting)")
            }
            Stage::Queued(Workers::None { waiting: None }) => "queued".into(),
        }
    }

    /// Whether two stages are the same kind of stage, told apart only by a count (a new kind
    /// gets a line of its own without a terminal; a new count only updates the spinner).
    pub fn same_kind(&self, other: &Stage) -> bool {
        match (self, other) {
            (Stage::Queued(Workers::None { .. }), Stage::Queued(Workers::None { .. })) => true,
            _ => self == other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen<'a>(keys: &'a BTreeSet<String>, tasks: &'a Counts) -> Seen<'a> {
        Seen {
            keys,
            waiting: Some(2),
            tasks,
        }
    }

    fn keys(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| format!("renders/j/{n}")).collect()
    }

    #[test]
    fn results_outrank_markers_and_tasks() {
        let k = Keys::new("renders/j/a");
        let busy = Counts {
            running: 1,
            ..Counts::default()
        };
        let all = keys(&["a.started.json", "a.error.txt", "a.png"]);
        assert_eq!(stage(&k, &seen(&all, &busy)), Stage::Rendered);
        let failed = keys(&["a.started.json", "a.error.txt"]);
        assert_eq!(stage(&k, &seen(&failed, &busy)), Stage::Failed);
        let started = keys(&["a.started.json", "b.png"]);
        assert_eq!(stage(&k, &seen(&started, &busy)), Stage::Rendering);
    }

    #[test]
    fn queued_says_which_workers_it_waits_for() {
        let k = Keys::new("renders/j/a");
        let none = BTreeSet::new();
        let running = Counts {
            running: 1,
            pending: 1,
            ..Counts::default()
        };
        let starting = Counts {
            provisioning: 1,
            ..Counts::default()
        };
        let idle = Counts::default();
        let s = stage(&k, &seen(&none, &running));
        assert_eq!(s, Stage::Queued(Workers::Running));
        assert_eq!(s.describe(), "queued; a worker task is running");
        let s = stage(&k, &seen(&none, &starting));
        assert_eq!(s.describe(), "queued; a worker task is starting");
        let s = stage(&k, &seen(&none, &idle));
        assert_eq!(s.describe(), "queued (2 job(s) waiting)");
        let unknown = Seen {
            keys: &none,
            waiting: None,
            tasks: &idle,
        };
        assert_eq!(stage(&k, &unknown).describe(), "queued");
    }

    #[test]
    fn a_new_count_is_the_same_kind_of_stage() {
        let two = Stage::Queued(Workers::None { waiting: Some(2) });
        let one = Stage::Queued(Workers::None { waiting: Some(1) });
        assert!(two.same_kind(&one));
        assert!(!two.same_kind(&Stage::Queued(Workers::Running)));
        assert!(!Stage::Rendering.same_kind(&two));
    }
}

//! Where one scene stands while `lew render` waits, decided from what AWS shows and nothing
//! else: the keys under `renders/<job>/` (images, frames, bands, error reports, the workers'
//! `.started.json` markers), the worker tasks and the queue's depth. A pure function, so every
//! stage can be tested without AWS.

use std::collections::BTreeSet;

use crate::parts::{self, Part, Plan};
use crate::resources::tasks::Counts;

/// What one poll saw.
pub struct Seen<'a> {
    /// Every key under `renders/<job>/`.
    pub keys: &'a BTreeSet<String>,
    /// Jobs visible in the queue and jobs a worker holds, when the queue could be read.
    pub depth: Option<(u64, u64)>,
    /// The worker tasks running or about to.
    pub tasks: &'a Counts,
}

/// A scene's stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// The image (whole, or stitched from its bands) is there, ready to download.
    Rendered,
    /// The worker reported an error for the scene as a whole.
    Failed,
    /// A worker has started on the (whole) scene.
    Rendering,
    /// Waiting for a worker.
    Queued(Workers),
    /// Uploaded, and nothing shows that the launcher has queued it: no job in the queue, none
    /// held by a worker, no worker task.
    Unqueued,
    /// Frames or bands under way.
    Parts(Progress),
    /// Every band is there; the worker that uploaded the last one is stitching them.
    Stitching,
    /// Every frame of the animation has its image or its error report.
    Finished(Progress),
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

/// How far a scene's frames or bands got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// `frames` or `bands`.
    pub kind: &'static str,
    pub total: usize,
    pub done: usize,
    /// Frames with an error report instead of an image.
    pub failed: Vec<i64>,
    /// Jobs a worker has started and not finished.
    pub rendering: usize,
}

/// What a scene's workers write, from its output base `renders/<job>/<name>` and its plan.
pub struct Expect {
    pub base: String,
    pub name: String,
    pub plan: Plan,
    /// Digits of a frame number (an animation's final frame).
    pub digits: usize,
}

impl Expect {
    pub fn png(&self) -> String {
        format!("{}.png", self.base)
    }

    pub fn error(&self) -> String {
        format!("{}.error.txt", self.base)
    }

    pub fn frame(&self, n: i64) -> String {
        parts::keys::frame(&self.base, &self.name, n, self.digits)
    }

    pub fn frame_error(&self, n: i64) -> String {
        parts::keys::frame_error(&self.base, &self.name, n, self.digits)
    }

    pub fn started(&self, part: &Part) -> String {
        parts::keys::started(&self.base, part)
    }

    /// The keys that say a part has finished (its image or error reports).
    pub fn results(&self, part: &Part) -> Vec<String> {
        match part {
            Part::Whole => vec![self.png(), self.error()],
            Part::Band { index, .. } => vec![parts::keys::band(&self.base, *index), self.png()],
            Part::Frames(first, last) => (*first..=*last)
                .flat_map(|n| [self.frame(n), self.frame_error(n)])
                .collect(),
        }
    }
}

/// The stage of the scene `expect` describes, from what `seen` shows.
pub fn stage(expect: &Expect, seen: &Seen) -> Stage {
    let keys = seen.keys;
    if keys.contains(&expect.png()) && !matches!(expect.plan, Plan::Frames { .. }) {
        return Stage::Rendered;
    }
    if keys.contains(&expect.error()) {
        return Stage::Failed;
    }
    let started = |part: &Part| keys.contains(&expect.started(part));
    match &expect.plan {
        Plan::Whole if started(&Part::Whole) => Stage::Rendering,
        Plan::Whole => queued(seen),
        Plan::Bands { .. } => {
            let parts = expect.plan.parts();
            let mut progress = Progress {
                kind: "bands",
                total: parts.len(),
                ..Progress::default()
            };
            for part in &parts {
                let Part::Band { index, .. } = part else {
                    continue;
                };
                if keys.contains(&parts::keys::band(&expect.base, *index)) {
                    progress.done += 1;
                } else if started(part) {
                    progress.rendering += 1;
                }
            }
            if progress.done == progress.total {
                Stage::Stitching
            } else if progress.done + progress.rendering > 0 {
                Stage::Parts(progress)
            } else {
                queued(seen)
            }
        }
        Plan::Frames { .. } => {
            let mut progress = Progress {
                kind: "frames",
                total: expect.plan.images(),
                ..Progress::default()
            };
            let mut any_started = false;
            for part in expect.plan.parts() {
                let Part::Frames(first, last) = part else {
                    continue;
                };
                let mut finished = true;
                for n in first..=last {
                    if keys.contains(&expect.frame(n)) {
                        progress.done += 1;
                    } else if keys.contains(&expect.frame_error(n)) {
                        progress.failed.push(n);
                    } else {
                        finished = false;
                    }
                }
                if started(&part) {
                    any_started = true;
                    progress.rendering += usize::from(!finished);
                }
            }
            if progress.done + progress.failed.len() == progress.total {
                Stage::Finished(progress)
            } else if any_started || progress.done > 0 {
                Stage::Parts(progress)
            } else {
                queued(seen)
            }
        }
    }
}

fn queued(seen: &Seen) -> Stage {
    if seen.tasks.total() == 0 && seen.depth == Some((0, 0)) {
        Stage::Unqueued
    } else if seen.tasks.running > 0 {
        Stage::Queued(Workers::Running)
    } else if seen.tasks.provisioning + seen.tasks.pending > 0 {
        Stage::Queued(Workers::Starting)
    } else {
        Stage::Queued(Workers::None {
            waiting: seen.depth.map(|(visible, _)| visible),
        })
    }
}

impl Progress {
    /// `frames 37/120, 4 rendering` (and how many failed, when some did).
    pub fn describe(&self) -> String {
        let mut text = format!("{} {}/{}", self.kind, self.done, self.total);
        if self.rendering > 0 {
            text += &format!(", {} rendering", self.rendering);
        }
        if !self.failed.is_empty() {
            text += &format!(", {} failed", self.failed.len());
        }
        text
    }
}

impl Stage {
    /// The stage in words, as the spinner and `--output json`'s `stage` show it.
    pub fn describe(&self) -> String {
        match self {
            Stage::Rendered => "downloading".into(),
            Stage::Failed => "failed".into(),
            Stage::Rendering => "rendering".into(),
            Stage::Stitching => "stitching the bands".into(),
            Stage::Unqueued => "uploaded; the launcher has not queued it yet".into(),
            Stage::Parts(p) | Stage::Finished(p) => p.describe(),
            Stage::Queued(Workers::Running) => "queued; a worker task is running".into(),
            Stage::Queued(Workers::Starting) => "queued; a worker task is starting".into(),
            Stage::Queued(Workers::None { waiting: Some(n) }) => {
                format!("queued ({n} job(s) waiting)")
            }
            Stage::Queued(Workers::None { waiting: None }) => "queued".into(),
        }
    }

    /// Whether two stages are the same kind of stage, told apart only by the queue's count
    /// (a new kind gets a line of its own without a terminal; a new count only updates the
    /// spinner). Frames and bands are different at every step: each is a line without a
    /// terminal, so CI logs show the render move.
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
            depth: Some((2, 0)),
            tasks,
        }
    }

    fn keys(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| format!("renders/j/{n}")).collect()
    }

    fn expect(plan: Plan, digits: usize) -> Expect {
        Expect {
            base: "renders/j/a".into(),
            name: "a".into(),
            plan,
            digits,
        }
    }

    #[test]
    fn results_outrank_markers_and_tasks() {
        let e = expect(Plan::Whole, 1);
        let busy = Counts {
            running: 1,
            ..Counts::default()
        };
        let all = keys(&["a.started.json", "a.error.txt", "a.png"]);
        assert_eq!(stage(&e, &seen(&all, &busy)), Stage::Rendered);
        let failed = keys(&["a.started.json", "a.error.txt"]);
        assert_eq!(stage(&e, &seen(&failed, &busy)), Stage::Failed);
        let started = keys(&["a.started.json", "b.png"]);
        assert_eq!(stage(&e, &seen(&started, &busy)), Stage::Rendering);
    }

    #[test]
    fn queued_says_which_workers_it_waits_for() {
        let e = expect(Plan::Whole, 1);
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
        let s = stage(&e, &seen(&none, &running));
        assert_eq!(s, Stage::Queued(Workers::Running));
        assert_eq!(s.describe(), "queued; a worker task is running");
        let s = stage(&e, &seen(&none, &starting));
        assert_eq!(s.describe(), "queued; a worker task is starting");
        let s = stage(&e, &seen(&none, &idle));
        assert_eq!(s.describe(), "queued (2 job(s) waiting)");
        let unknown = Seen {
            keys: &none,
            depth: None,
            tasks: &idle,
        };
        assert_eq!(stage(&e, &unknown).describe(), "queued");
        // Nothing queued, nothing held, no worker: the launcher has not acted (yet).
        let empty = Seen {
            keys: &none,
            depth: Some((0, 0)),
            tasks: &idle,
        };
        assert_eq!(stage(&e, &empty), Stage::Unqueued);
        assert_eq!(
            stage(&e, &empty).describe(),
            "uploaded; the launcher has not queued it yet"
        );
        // A job a worker holds (in flight) is queued work, whatever the tasks say.
        let held = Seen {
            keys: &none,
            depth: Some((0, 1)),
            tasks: &idle,
        };
        assert!(matches!(stage(&e, &held), Stage::Queued(_)));
    }

    #[test]
    fn frames_are_counted_as_they_land() {
        // Frames 8-12 of an animation numbered up to 99, in jobs of two.
        let e = expect(
            Plan::Frames {
                first: 8,
                last: 12,
                per_job: 2,
            },
            2,
        );
        let idle = Counts::default();
        let nothing = BTreeSet::new();
        assert!(matches!(
            stage(&e, &seen(&nothing, &idle)),
            Stage::Queued(_)
        ));
        let some = keys(&[
            "a.parts/frames-8-9.started.json",
            "a/a08.png",
            "a.parts/frames-10-11.started.json",
            "a/a10.png",
            "a/a11.error.txt",
        ]);
        let s = stage(&e, &seen(&some, &idle));
        assert_eq!(s.describe(), "frames 2/5, 1 rendering, 1 failed");
        let all = keys(&[
            "a/a08.png",
            "a/a09.png",
            "a/a10.png",
            "a/a11.error.txt",
            "a/a12.png",
        ]);
        let Stage::Finished(p) = stage(&e, &seen(&all, &idle)) else {
            panic!("not finished")
        };
        assert_eq!((p.done, p.failed), (4, vec![11]));
        // A scene-level error (a bad zip) fails it whatever the frames say.
        let broken = keys(&["a.error.txt"]);
        assert_eq!(stage(&e, &seen(&broken, &idle)), Stage::Failed);
    }

    #[test]
    fn bands_then_stitching_then_the_image() {
        let e = expect(Plan::bands(100, 32, 3), 1);
        let idle = Counts::default();
        let one = keys(&[
            "a.parts/band-1.started.json",
            "a.parts/band-1.png",
            "a.parts/band-2.started.json",
        ]);
        assert_eq!(
            stage(&e, &seen(&one, &idle)).describe(),
            "bands 1/3, 1 rendering"
        );
        let three = keys(&[
            "a.parts/band-1.png",
            "a.parts/band-2.png",
            "a.parts/band-3.png",
        ]);
        assert_eq!(stage(&e, &seen(&three, &idle)), Stage::Stitching);
        // The stitcher deletes the bands once the image is there.
        let stitched = keys(&["a.png"]);
        assert_eq!(stage(&e, &seen(&stitched, &idle)), Stage::Rendered);
        let band_failed = keys(&["a.parts/band-1.png", "a.error.txt"]);
        assert_eq!(stage(&e, &seen(&band_failed, &idle)), Stage::Failed);
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

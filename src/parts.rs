//! How one scene is cut into jobs, so that up to `worker.max_tasks` workers (or `--jobs` local
//! processes) render it at once: a still as one job, or in bands of rows; an animation in runs
//! of frames. `lew render` decides the plan and hands it to the launcher as the scene object's
//! S3 metadata (`x-amz-meta-lew-parts`, see [`Plan::metadata`]); the launcher queues one job per
//! part, and the worker renders each part with the scene's own settings.
//!
//! Frames: a job renders a run of frames with POV-Ray's `Subset_Start_Frame` /
//! `Subset_End_Frame`, which keep the clock values the frames have in the whole animation. A
//! run is as long as makes about [`JOBS_PER_WORKER`] jobs per worker: enough jobs that a slow
//! frame cannot leave the other workers idle for long, few enough that the cost of a job (a
//! download, a queue round trip, a POV-Ray start and parse) is not paid once per tiny frame.
//! A run that is handed back is not rendered twice: the worker skips frames already in S3.
//!
//! Bands: POV-Ray renders (and anti-aliases) in blocks of `Render_Block_Size` rows (32 by
//! default); bands that start on that grid stitch into an image identical pixel for pixel to a
//! single render (measured with POV-Ray 3.7 and anti-aliasing on; bands cut elsewhere differ
//! at every block edge below the cut), so every band starts on it.

/// Jobs per worker an animation is cut into (see the module comment).
pub const JOBS_PER_WORKER: i64 = 4;
/// The most bands a still can be split into.
pub const MAX_BANDS: u64 = 64;
/// The S3 user-metadata key that carries the plan (`x-amz-meta-lew-parts`).
pub const METADATA_KEY: &str = "lew-parts";

/// A scene's jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// One job renders the whole image.
    Whole,
    /// An animation: frames `first..=last`, `per_job` frames in each job (the last may have
    /// fewer).
    Frames { first: i64, last: i64, per_job: i64 },
    /// A still in bands of rows, 1-based and inclusive, top to bottom.
    Bands { rows: Vec<(u64, u64)> },
}

/// One job of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Whole,
    /// Frames `.0..=.1`.
    Frames(i64, i64),
    /// Band `index` (from 1) of `count`, rows `rows.0..=rows.1`.
    Band {
        index: usize,
        count: usize,
        rows: (u64, u64),
    },
}

impl Plan {
    /// An animation's frames `first..=last` for `workers` workers.
    pub fn frames(first: i64, last: i64, workers: u32) -> Plan {
        let count = last - first + 1;
        let jobs = (i64::from(workers.max(1)) * JOBS_PER_WORKER)
            .min(count)
            .max(1);
        Plan::Frames {
            first,
            last,
            per_job: (count + jobs - 1) / jobs,
        }
    }

    /// A still of `height` rows in (at most) `bands` bands starting on the `block`-row grid.
    /// Fewer bands than asked when the image has fewer blocks; `Whole` for one band.
    pub fn bands(height: u64, block: u64, bands: u64) -> Plan {
        let block = block.max(1);
        let blocks = height.div_ceil(block);
        let n = bands.min(blocks).min(MAX_BANDS);
        if n <= 1 {
            return Plan::Whole;
        }
        let rows = (0..n)
            .map(|i| {
                let (from, to) = (i * blocks / n, (i + 1) * blocks / n);
                (from * block + 1, (to * block).min(height))
            })
            .collect();
        Plan::Bands { rows }
    }

    /// Every job of the plan, in order.
    pub fn parts(&self) -> Vec<Part> {
        match self {
            Plan::Whole => vec![Part::Whole],
            Plan::Frames {
                first,
                last,
                per_job,
            } => {
                let per_job = (*per_job).max(1);
                let mut parts = Vec::new();
                let mut start = *first;
                while start <= *last {
                    let end = (start + per_job - 1).min(*last);
                    parts.push(Part::Frames(start, end));
                    start = end + 1;
                }
                parts
            }
            Plan::Bands { rows } => rows
                .iter()
                .enumerate()
                .map(|(i, &band)| Part::Band {
                    index: i + 1,
                    count: rows.len(),
                    rows: band,
                })
                .collect(),
        }
    }

    /// The plan as the launcher reads it from the object's metadata; `None` for `Whole` (an
    /// upload without it is one job, as any upload by other means).
    pub fn metadata(&self) -> Option<String> {
        match self {
            Plan::Whole => None,
            Plan::Frames {
                first,
                last,
                per_job,
            } => Some(format!("frames={first}-{last}/{per_job}")),
            Plan::Bands { rows } => Some(format!(
                "rows={}",
                rows.iter()
                    .map(|(a, b)| format!("{a}-{b}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )),
        }
    }

    /// The plan [`Plan::metadata`] wrote (what `lew render --job` reads back); `None` is
    /// `Whole`. The same rules as the launcher's `parse_parts`.
    pub fn from_metadata(text: Option<&str>) -> Result<Plan, String> {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Plan::Whole);
        };
        let bad = || format!("{METADATA_KEY} {text:?} is not a plan lew wrote");
        let number = |s: &str| s.trim().parse::<i64>().map_err(|_| bad());
        match text.split_once('=') {
            Some(("frames", value)) => {
                let (span, per_job) = value.split_once('/').ok_or_else(bad)?;
                let (first, last) = span.split_once('-').ok_or_else(bad)?;
                let (first, last, per_job) = (number(first)?, number(last)?, number(per_job)?);
                if first < 0 || last < first || per_job < 1 {
                    return Err(bad());
                }
                Ok(Plan::Frames {
                    first,
                    last,
                    per_job,
                })
            }
            Some(("rows", value)) => {
                let mut rows: Vec<(u64, u64)> = Vec::new();
                for band in value.split(',') {
                    let (a, b) = band.split_once('-').ok_or_else(bad)?;
                    let (a, b) = (number(a)? as u64, number(b)? as u64);
                    if a < 1 || b < a || rows.last().is_some_and(|&(_, end)| a != end + 1) {
                        return Err(bad());
                    }
                    rows.push((a, b));
                }
                if !(2..=MAX_BANDS as usize).contains(&rows.len()) {
                    return Err(bad());
                }
                Ok(Plan::Bands { rows })
            }
            _ => Err(bad()),
        }
    }

    /// The number of frames or bands (images a user waits for), for progress ("frames 3/51").
    pub fn images(&self) -> usize {
        match self {
            Plan::Whole => 1,
            Plan::Frames { first, last, .. } => (last - first + 1) as usize,
            Plan::Bands { rows } => rows.len(),
        }
    }
}

/// Parses `--frames`: `N` or `FIRST-LAST`.
pub fn parse_frames(text: &str) -> Result<(i64, i64), String> {
    let bad = || format!("{text:?} is not a frame range; use e.g. 10-20 or 7");
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (text.trim(), text.trim()),
    };
    let first: i64 = a.parse().map_err(|_| bad())?;
    let last: i64 = b.parse().map_err(|_| bad())?;
    if first < 0 || last < first {
        return Err(bad());
    }
    Ok((first, last))
}

/// Keys of a scene's results under `renders/<job>/`, shared by `lew render` and (in Python)
/// the worker: `base` is `renders/<job>/<name>`.
pub mod keys {
    /// A frame's image: `<base>/<name><n>.png`, numbered as POV-Ray numbers its files.
    pub fn frame(base: &str, name: &str, frame: i64, digits: usize) -> String {
        format!("{base}/{name}{frame:0digits$}.png")
    }

    /// A frame's error report, beside where its image would be.
    pub fn frame_error(base: &str, name: &str, frame: i64, digits: usize) -> String {
        format!("{base}/{name}{frame:0digits$}.error.txt")
    }

    /// Where a part's files live until the scene is whole: `<base>.parts/`.
    pub fn parts_prefix(base: &str) -> String {
        format!("{base}.parts/")
    }

    /// A band's image, kept until the stitched image is there.
    pub fn band(base: &str, index: usize) -> String {
        format!("{base}.parts/band-{index}.png")
    }

    /// The marker a worker writes when it starts on a part.
    pub fn started(base: &str, part: &super::Part) -> String {
        match part {
            super::Part::Whole => format!("{base}.started.json"),
            super::Part::Frames(a, b) => format!("{base}.parts/frames-{a}-{b}.started.json"),
            super::Part::Band { index, .. } => format!("{base}.parts/band-{index}.started.json"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn animations_are_cut_into_about_four_jobs_per_worker() {
        // POV-Ray's float1 sample: 51 frames, four workers → 16 jobs of at most 4 frames.
        let plan = Plan::frames(1, 51, 4);
        assert_eq!(
            plan,
            Plan::Frames {
                first: 1,
                last: 51,
                per_job: 4
            }
        );
        let parts = plan.parts();
        assert_eq!(parts.len(), 13);
        assert_eq!(parts[0], Part::Frames(1, 4));
        assert_eq!(parts[12], Part::Frames(49, 51));
        // Few frames: one a job.
        assert_eq!(Plan::frames(10, 12, 4).parts().len(), 3);
        assert_eq!(Plan::frames(0, 0, 1).parts(), [Part::Frames(0, 0)]);
        assert_eq!(plan.metadata().as_deref(), Some("frames=1-51/4"));
        assert_eq!(plan.images(), 51);
    }

    #[test]
    fn bands_start_on_the_block_grid() {
        // 240 rows, 32-row blocks: 8 blocks; a height that is a multiple of neither 32 nor 3.
        let plan = Plan::bands(240, 32, 3);
        assert_eq!(
            plan,
            Plan::Bands {
                rows: vec![(1, 64), (65, 160), (161, 240)]
            }
        );
        assert_eq!(plan.metadata().as_deref(), Some("rows=1-64,65-160,161-240"));
        let parts = plan.parts();
        assert_eq!(
            parts[1],
            Part::Band {
                index: 2,
                count: 3,
                rows: (65, 160)
            }
        );
        // Every row exactly once, every band starting on the grid.
        let Plan::Bands { rows } = Plan::bands(1000, 16, 7) else {
            panic!()
        };
        assert_eq!(rows.len(), 7);
        assert_eq!(rows[0].0, 1);
        assert_eq!(rows[6].1, 1000);
        for w in rows.windows(2) {
            assert_eq!(w[1].0, w[0].1 + 1);
            assert_eq!((w[1].0 - 1) % 16, 0);
        }
    }

    #[test]
    fn fewer_bands_than_blocks_and_one_band_is_whole() {
        assert_eq!(Plan::bands(40, 32, 5).parts().len(), 2);
        assert_eq!(Plan::bands(32, 32, 4), Plan::Whole);
        assert_eq!(Plan::bands(600, 32, 1), Plan::Whole);
        assert_eq!(Plan::Whole.metadata(), None);
    }

    #[test]
    fn plans_read_back_from_metadata_are_the_plans_written() {
        for plan in [
            Plan::Whole,
            Plan::frames(1, 51, 4),
            Plan::frames(7, 7, 2),
            Plan::bands(240, 32, 3),
        ] {
            assert_eq!(Plan::from_metadata(plan.metadata().as_deref()), Ok(plan));
        }
        for bad in [
            "frames=1-5",
            "frames=5-1/1",
            "frames=1-5/0",
            "rows=1-32",
            "rows=1-32,40-50",
            "rows=0-5,6-9",
            "tiles=4",
        ] {
            assert!(Plan::from_metadata(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn frame_ranges() {
        assert_eq!(parse_frames("10-20"), Ok((10, 20)));
        assert_eq!(parse_frames("7"), Ok((7, 7)));
        assert!(parse_frames("20-10").is_err());
        assert!(parse_frames("a-b").is_err());
        assert!(parse_frames("-3").is_err());
    }

    #[test]
    fn keys_number_frames_as_povray_does() {
        assert_eq!(keys::frame("r/j/a", "a", 7, 2), "r/j/a/a07.png");
        assert_eq!(keys::frame("r/j/a", "a", 100, 3), "r/j/a/a100.png");
        assert_eq!(
            keys::started("r/j/a", &Part::Frames(5, 8)),
            "r/j/a.parts/frames-5-8.started.json"
        );
        assert_eq!(keys::band("r/j/a", 2), "r/j/a.parts/band-2.png");
    }
}

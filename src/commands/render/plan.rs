//! What `lew render` does with each scene, decided before anything is uploaded or rendered:
//! its jobs (whole, bands, runs of frames; see `crate::parts`) and where its results land
//! (`--out/<name>.png`, or `--out/<name>/` for an animation's frames). Every mistake here is a
//! usage error (exit 2) naming the scene and the fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::RenderArgs;
use crate::config::Config;
use crate::parts::Plan;
use crate::scene::Scene;

/// One scene, planned.
pub struct Planned {
    pub scene: Scene,
    pub plan: Plan,
    /// The image, or the folder of an animation's frames.
    pub target: PathBuf,
    /// Why the plan is not what the settings asked for (shown as progress).
    pub note: Option<String>,
}

impl Planned {
    pub fn is_animation(&self) -> bool {
        matches!(self.plan, Plan::Frames { .. })
    }

    /// The frames of an animation, first to last.
    pub fn frames(&self) -> Option<(i64, i64)> {
        match self.plan {
            Plan::Frames { first, last, .. } => Some((first, last)),
            _ => None,
        }
    }

    /// Where frame `n` lands locally.
    pub fn frame_target(&self, n: i64) -> PathBuf {
        let digits = self.scene.settings.digits();
        self.target
            .join(format!("{}{n:0digits$}.png", self.scene.name))
    }
}

/// Plans every scene for `workers` workers (tasks in the cloud, processes with `--local`).
pub fn plan(
    scenes: Vec<Scene>,
    args: &RenderArgs,
    cfg: &Config,
    workers: u32,
) -> Result<Vec<Planned>, String> {
    let mut planned = Vec::new();
    for scene in scenes {
        planned.push(plan_one(scene, args, cfg, workers)?);
    }
    let animations = planned.iter().filter(|p| p.is_animation()).count();
    if args.frames.is_some() && animations == 0 {
        return Err(
            "--frames chooses frames of an animation, and no scene is one (no \
                    Final_Frame above Initial_Frame in its .ini)"
                .into(),
        );
    }
    one_animation_for_video(&planned, args)?;
    targets(&planned, &args.out, args.force, args.local || !args.no_wait)?;
    Ok(planned)
}

/// The scenes of a job submitted earlier with the plans they were uploaded with (`lew render
/// --job`): where their results land, with the same refusals as a new render's.
pub fn attach(scenes: Vec<(Scene, Plan)>, args: &RenderArgs) -> Result<Vec<Planned>, String> {
    let planned: Vec<Planned> = scenes
        .into_iter()
        .map(|(scene, plan)| Planned {
            target: match plan {
                Plan::Frames { .. } => args.out.join(&scene.name),
                _ => args.out.join(format!("{}.png", scene.name)),
            },
            plan,
            note: None,
            scene,
        })
        .collect();
    one_animation_for_video(&planned, args)?;
    targets(&planned, &args.out, args.force, true)?;
    Ok(planned)
}

fn one_animation_for_video(planned: &[Planned], args: &RenderArgs) -> Result<(), String> {
    let animations = planned.iter().filter(|p| p.is_animation()).count();
    if args.video.is_some() && animations != 1 {
        return Err(format!(
            "--video assembles the frames of one animation, and {animations} of the scenes are \
             animations; render them one at a time to make a video of each"
        ));
    }
    Ok(())
}

fn plan_one(
    scene: Scene,
    args: &RenderArgs,
    cfg: &Config,
    workers: u32,
) -> Result<Planned, String> {
    let s = &scene.settings;
    let source = scene.source.display().to_string();
    if s.is_animation() {
        if let Some(n) = args.split.filter(|&n| n > 1) {
            return Err(format!(
                "{source}: --split {n} cuts a still into bands, and this scene is an animation \
                 ({} frames): its frames are already rendered in parallel; drop --split",
                s.frames().count()
            ));
        }
        let (first, last) = match args.frames {
            Some((first, last)) if first < s.initial_frame || last > s.final_frame => {
                return Err(format!(
                    "{source}: --frames {first}-{last} is outside the animation's frames {}-{}",
                    s.initial_frame, s.final_frame
                ));
            }
            Some(range) => range,
            None => (*s.frames().start(), *s.frames().end()),
        };
        return Ok(Planned {
            target: args.out.join(&scene.name),
            plan: Plan::frames(first, last, workers),
            note: None,
            scene,
        });
    }
    let asked = args.split.unwrap_or(cfg.worker.split);
    let (bands, note) = if asked > 1 && scene.radiosity && args.split.is_none() {
        let note = format!(
            "{}: not split into bands (worker.split = {asked}): it uses radiosity, which POV-Ray \
             does not render the same way twice, so bands could show seams; pass --split to \
             split it anyway",
            scene.name
        );
        (1, Some(note))
    } else {
        (asked, None)
    };
    let plan = Plan::bands(s.height, s.block_size, u64::from(bands));
    let note = note.or_else(|| match &plan {
        Plan::Bands { rows } if rows.len() < bands as usize => Some(format!(
            "{}: {} bands instead of {bands}: its {} rows are {} blocks of {} rows",
            scene.name,
            rows.len(),
            s.height,
            s.height.div_ceil(s.block_size),
            s.block_size
        )),
        _ => None,
    });
    Ok(Planned {
        target: args.out.join(format!("{}.png", scene.name)),
        plan,
        note,
        scene,
    })
}

/// Refuses (before any work) to overwrite results or to write two scenes to one place.
/// Nothing is checked on disk or created when nothing will be written.
fn targets(planned: &[Planned], out: &Path, force: bool, writes: bool) -> Result<(), String> {
    if writes && out.exists() && !out.is_dir() {
        return Err(format!("--out {} is not a folder", out.display()));
    }
    let mut seen = BTreeMap::new();
    for p in planned {
        if let Some(other) = seen.insert(p.target.clone(), p.scene.source.clone()) {
            return Err(format!(
                "{} and {} would both render to {}; rename one of them",
                other.display(),
                p.scene.source.display(),
                p.target.display()
            ));
        }
        if !writes || force {
            continue;
        }
        let existing = match p.frames() {
            Some((first, last)) => (first..=last)
                .map(|n| p.frame_target(n))
                .find(|t| t.exists()),
            None => Some(p.target.clone()).filter(|t| t.exists()),
        };
        if let Some(existing) = existing {
            return Err(format!(
                "{} already exists; pass --force to overwrite it, or --out to write elsewhere",
                existing.display()
            ));
        }
    }
    if writes {
        std::fs::create_dir_all(out)
            .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        for p in planned.iter().filter(|p| p.is_animation()) {
            std::fs::create_dir_all(&p.target)
                .map_err(|e| format!("cannot create {}: {e}", p.target.display()))?;
        }
    }
    Ok(())
}

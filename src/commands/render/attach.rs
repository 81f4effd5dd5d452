//! `lew render --job ID`: back to a job submitted earlier (by a `lew render` that was
//! interrupted, timed out, or ran with `--no-wait`). Its scenes are read back from the bucket,
//! `scenes/<job>/<name>.zip`, each with the plan it was uploaded with (the object's `lew-parts`
//! metadata), and loaded as `render` loads a scene from disk: an animation's frame files are
//! numbered from its `.ini`, so the zip itself is needed, not only its metadata. `cloud` then
//! waits and downloads as for a new job.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use futures::StreamExt as _;

use super::plan::{self, Planned};
use super::report::SceneResult;
use crate::cli::RenderArgs;
use crate::error::UsageError;
use crate::parts::{self, Plan};
use crate::resources::{Deployment, bucket};
use crate::scene;

/// Scenes downloaded at the same time.
const DOWNLOADS_AT_ONCE: usize = 4;

/// The job's scenes, planned as they were uploaded; scenes that do not load come back as
/// results saying why.
pub async fn plan(
    d: &Deployment,
    args: &RenderArgs,
    job: &str,
) -> Result<(Vec<Planned>, Vec<SceneResult>)> {
    if !crate::job::looks_like_id(job) {
        return Err(UsageError::new(format!(
            "--job {job:?} is not a job id (letters, digits, - and _, as `lew render` prints it)"
        ))
        .into());
    }
    let prefix = format!("{}{job}/", d.cfg.bucket.input_prefix);
    let keys: Vec<String> = bucket::list(d, &prefix, None, None)
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with(".zip") && !k[prefix.len()..].contains('/'))
        .collect();
    if keys.is_empty() {
        return Err(UsageError::new(format!(
            "job {job} has no scene in s3://{}/{prefix}: check the id (`lew render` printed it \
             when it uploaded; `lew status` lists the recent renders)",
            d.names.bucket
        ))
        .into());
    }
    let folder = tempfile::tempdir().context("cannot create a temporary folder")?;
    let fetched: Vec<Result<(PathBuf, Option<String>)>> = futures::stream::iter(&keys)
        .map(|key| fetch(d, key, folder.path()))
        .buffered(DOWNLOADS_AT_ONCE)
        .collect()
        .await;
    let mut scenes = Vec::new();
    let mut invalid = Vec::new();
    for (key, got) in keys.iter().zip(fetched) {
        let (path, metadata) = got?;
        let source = PathBuf::from(format!("s3://{}/{key}", d.names.bucket));
        let mut loaded = match scene::load(&path) {
            Ok(loaded) => loaded,
            Err(e) => {
                invalid.push(SceneResult::invalid(&source, e.0));
                continue;
            }
        };
        loaded.source = source;
        // A plan the launcher cannot read makes it render the scene whole: so does this.
        let plan = Plan::from_metadata(metadata.as_deref()).unwrap_or_else(|why| {
            d.progress.warn(format!(
                "{}: {why}; the launcher renders it whole",
                loaded.name
            ));
            Plan::Whole
        });
        d.progress.detail(format!(
            "{key}: {}",
            plan.metadata().unwrap_or("whole".into())
        ));
        scenes.push((loaded, plan));
    }
    let planned = plan::attach(scenes, args).map_err(UsageError::new)?;
    Ok((planned, invalid))
}

/// Downloads one scene into `folder` under its own name; returns the file and its plan.
async fn fetch(d: &Deployment, key: &str, folder: &Path) -> Result<(PathBuf, Option<String>)> {
    let (bytes, mut metadata) = bucket::read_object(d, key).await?;
    let metadata = metadata.remove(parts::METADATA_KEY);
    let path = folder.join(key.rsplit('/').next().unwrap_or(key));
    tokio::fs::write(&path, &bytes)
        .await
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok((path, metadata))
}

//! `lew push-image [--tag T]`: builds the embedded worker with docker or podman, pushes it to
//! the app's ECR repository, and registers a task definition revision that runs it pinned by
//! digest (a tag can be moved; a digest cannot).
//!
//! The one path it takes: the repository's URI and a login (token and proxy endpoint) from
//! ECR, `login --password-stdin`, a push to that URI, and the digest read back from ECR. The
//! default tag is a hash of the embedded worker sources: when ECR already has it, nothing is
//! built or pushed. The ECR calls live in `resources::registry`; this module orchestrates.

use std::fmt;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::Ctx;
use crate::cli::PushImageArgs;
use crate::container;
use crate::embedded;
use crate::error::UsageError;
use crate::output::Report;
use crate::progress::Level;
use crate::resources::task_definition::{self, Spec};
use crate::resources::{Deployment, not_ours, registry};

#[derive(Debug, Serialize)]
pub struct PushReport {
    /// The image as the task definition runs it: `registry/repository@sha256:...`.
    pub image: String,
    pub tag: String,
    pub digest: String,
    /// False when the registry already had this tag and nothing was built or pushed.
    pub pushed: bool,
    /// The task definition revision that runs the image.
    pub task_definition: String,
    pub new_revision: bool,
}

impl fmt::Display for PushReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pushed {
            writeln!(f, "pushed {} ({})", self.tag, self.digest)?;
        } else {
            writeln!(
                f,
                "the worker is unchanged: {} is already in the registry ({})",
                self.tag, self.digest
            )?;
        }
        if self.new_revision {
            write!(
                f,
                "registered {} running {}",
                self.task_definition, self.image
            )
        } else {
            write!(f, "{} already runs {}", self.task_definition, self.image)
        }
    }
}

impl Report for PushReport {}

/// Docker's rule for tags.
fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

pub async fn run(args: &PushImageArgs, ctx: &Ctx) -> Result<PushReport> {
    if let Some(tag) = &args.tag
        && !valid_tag(tag)
    {
        return Err(UsageError::new(format!(
            "--tag {tag:?} is not a valid image tag (up to 128 of A-Z a-z 0-9 _ . -, not \
             starting with . or -)"
        ))
        .into());
    }
    let d = ctx.deployment().await?;
    let Some(repo) = registry::find(&d).await? else {
        bail!(
            "the ECR repository {} does not exist: run `lew setup` first",
            d.names.repository
        );
    };
    // Neither a repository nor a family lew did not create is pushed to or revised.
    if !registry::owned(&d, &repo).await? {
        return Err(not_ours("ECR repository", &d.names.repository, &d.cfg.app));
    }
    let Some((current, owned)) = task_definition::current(&d).await? else {
        bail!(
            "the task definition {} does not exist: run `lew setup` first",
            d.names.task_family
        );
    };
    if !owned {
        return Err(not_ours(
            "task definition",
            &d.names.task_family,
            &d.cfg.app,
        ));
    }

    // Where ECR says the repository is: the image is pushed there and runs from there.
    let uri = registry::uri(&d, &repo);
    let tag = args.tag.clone().unwrap_or_else(embedded::worker_source_tag);
    let image = format!("{uri}:{tag}");

    // The default tag names the sources: if ECR has it, this worker was pushed already.
    let already = match &args.tag {
        None => registry::image_digest(&d, &tag).await?,
        Some(_) => None,
    };
    let (digest, pushed) = match already {
        Some(digest) => {
            d.progress
                .line(format!("{image} is already in ECR; not building it again"));
            (digest, false)
        }
        None => (build_and_push(&d, ctx, &uri, &tag).await?, true),
    };

    let pinned = format!("{uri}@{digest}");
    let mut spec = Spec::from_registered(&current);
    let (arn, new_revision) = if spec.image == pinned {
        (
            current
                .task_definition_arn()
                .unwrap_or_default()
                .to_string(),
            false,
        )
    } else {
        spec.image = pinned.clone();
        (task_definition::register(&d, &spec).await?, true)
    };
    Ok(PushReport {
        image: pinned,
        tag,
        digest,
        pushed,
        task_definition: arn,
        new_revision,
    })
}

/// Builds the embedded worker as `uri:tag`, logs in with a fresh ECR login (the password on
/// the CLI's stdin), pushes, and returns the digest ECR then holds for the tag.
async fn build_and_push(d: &Deployment, ctx: &Ctx, uri: &str, tag: &str) -> Result<String> {
    let image = format!("{uri}:{tag}");
    let cli = container::Cli::new(
        &d.cfg.worker.container_cli,
        ctx.progress.level() >= Level::Verbose,
    );
    cli.check_daemon().await?;

    let context = tempfile::tempdir().context("cannot make a build folder")?;
    for (name, contents) in embedded::worker_context() {
        std::fs::write(context.path().join(name), contents)
            .with_context(|| format!("cannot write the build context ({name})"))?;
    }
    let step = ctx.progress.step(format!("building {image}"));
    cli.build(context.path(), &image).await?;
    step.finish("built");

    let login = registry::login(d, uri).await?;
    let step = ctx
        .progress
        .step(format!("logging in to {}", login.registry));
    cli.login(&login.registry, &login.user, login.password())
        .await?;
    step.clear();

    let step = ctx.progress.step(format!("pushing {image}"));
    let printed = cli.push(&image).await?;
    step.finish("pushed");

    // What runs is what ECR holds for the tag: read it back rather than trust the CLI's output.
    let digest = registry::image_digest(d, tag)
        .await?
        .with_context(|| format!("pushed {image}, but ECR does not list it"))?;
    if let Some(printed) = printed
        && printed != digest
    {
        bail!(
            "pushed {image} as {printed}, but ECR holds {digest} for the tag: another push moved \
             it meanwhile; run `lew push-image` again"
        );
    }
    Ok(digest)
}

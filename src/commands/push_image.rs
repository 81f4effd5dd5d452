//! `lew push-image [--tag T]`: builds the embedded worker with docker or podman, pushes it to
//! the app's ECR repository, and registers a task definition revision that runs it pinned by
//! digest (a tag can be moved; a digest cannot).
//!
//! The default tag is a hash of the embedded worker sources: when ECR already has it, nothing is
//! built or pushed. `LEW_ECR_REGISTRY=host[:port]` sends the image to another registry than the
//! account's ECR (a mirror or pull-through setup, or a local registry in tests).

use std::fmt;

use anyhow::{Context as _, Result, bail};
use aws_sdk_ecr::types::ImageIdentifier;
use base64::Engine as _;
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

    let override_host = std::env::var("LEW_ECR_REGISTRY")
        .ok()
        .filter(|h| !h.is_empty());
    let repo_uri = repo
        .repository_uri()
        .map(str::to_string)
        .unwrap_or_else(|| d.repository_uri());
    let (host, path) = match &override_host {
        Some(host) => (host.clone(), d.names.repository.clone()),
        None => {
            let (h, p) = repo_uri
                .split_once('/')
                .context("ECR returned a repository URI without a path")?;
            (h.to_string(), p.to_string())
        }
    };
    let tag = args.tag.clone().unwrap_or_else(embedded::worker_source_tag);
    let image = format!("{host}/{path}:{tag}");

    // The default tag names the sources: if ECR has it, this worker was pushed already.
    let already = if override_host.is_none() && args.tag.is_none() {
        ecr_digest(&d, &tag).await?
    } else {
        None
    };
    let (digest, pushed) = match already {
        Some(digest) => {
            d.progress
                .line(format!("{image} is already in ECR; not building it again"));
            (digest, false)
        }
        None => {
            let digest = build_and_push(&d, ctx, &host, &image, override_host.is_some()).await?;
            let digest = match digest {
                Some(digest) => digest,
                None if override_host.is_none() => ecr_digest(&d, &tag)
                    .await?
                    .with_context(|| format!("pushed {image}, but ECR does not list it"))?,
                None => bail!("pushed {image}, but the push printed no digest"),
            };
            (digest, true)
        }
    };

    let pinned = format!("{host}/{path}@{digest}");
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

/// The digest ECR holds for `tag`, if any.
async fn ecr_digest(d: &Deployment, tag: &str) -> Result<Option<String>> {
    let out = d
        .aws
        .ecr
        .describe_images()
        .repository_name(&d.names.repository)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await;
    match out {
        Ok(out) => Ok(out
            .image_details()
            .first()
            .and_then(|i| i.image_digest())
            .map(str::to_string)),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(aws_sdk_ecr::operation::describe_images::DescribeImagesError::ImageNotFoundException(_))
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).context("cannot look up the worker image in ECR"),
    }
}

/// Builds the embedded worker, logs in with a fresh ECR token (on stdin) and pushes.
async fn build_and_push(
    d: &Deployment,
    ctx: &Ctx,
    host: &str,
    image: &str,
    overridden: bool,
) -> Result<Option<String>> {
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
    cli.build(context.path(), image).await?;
    step.finish("built");

    let token = d
        .aws
        .ecr
        .get_authorization_token()
        .send()
        .await
        .context("cannot get an ECR login token")?;
    let data = token
        .authorization_data()
        .first()
        .context("ECR returned no authorization data")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.authorization_token().unwrap_or_default())
        .context("ECR returned a token that is not base64")?;
    let decoded = String::from_utf8(decoded).context("ECR returned a token that is not text")?;
    let (user, password) = decoded
        .split_once(':')
        .context("ECR returned a token without a user name")?;
    // Log in where the image goes: the account's registry, or the configured one.
    let login_host = if overridden {
        host.to_string()
    } else {
        data.proxy_endpoint()
            .map(|e| e.trim_start_matches("https://").to_string())
            .unwrap_or_else(|| host.to_string())
    };
    let step = ctx.progress.step(format!("logging in to {login_host}"));
    cli.login(&login_host, user, password).await?;
    step.clear();

    let step = ctx.progress.step(format!("pushing {image}"));
    let digest = cli.push(image).await?;
    step.finish("pushed");
    Ok(digest)
}

//! `lew teardown [--yes] [--delete-data]`: deletes everything setup created, in reverse order.
//!
//! First nothing new may start (the trigger and the function go), then the running workers are
//! stopped, then the rest goes concurrently. Only resources tagged for this app are deleted,
//! "already gone" is success, the bucket stays unless `--delete-data`, and a leak check at the
//! end lists anything of this app that is still there.

use std::fmt;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{Context as _, Result};
use aws_sdk_ecs::error::SdkError;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionError;
use aws_sdk_iam::operation::get_role::GetRoleError;
use serde::Serialize;

use super::Ctx;
use crate::cli::TeardownArgs;
use crate::error::UsageError;
use crate::output::Report;
use crate::resources::{
    APP_TAG, Deployment, Failure, Removal, Removed, bucket, cluster, file, function, logs, network,
    queue, registry, roles, task_definition, tasks, trigger,
};

#[derive(Debug, Serialize)]
pub struct TeardownReport {
    pub app: String,
    pub region: String,
    pub account: String,
    pub stopped_tasks: usize,
    pub resources: Vec<Removed>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
    /// What the leak check found still present (ARNs or names).
    pub leftovers: Vec<String>,
}

impl fmt::Display for TeardownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stopped_tasks > 0 {
            writeln!(f, "stopped {} worker task(s)", self.stopped_tasks)?;
        }
        for r in &self.resources {
            write!(f, "{:<13} {} {}", r.result.to_string(), r.resource, r.name)?;
            if let Some(note) = &r.note {
                write!(f, "  [{note}]")?;
            }
            writeln!(f)?;
        }
        for e in &self.failures {
            writeln!(f, "{:<13} {}: {}", "FAILED", e.resource, e.error)?;
        }
        if self.leftovers.is_empty() {
            write!(f, "leak check: nothing of app {} is left", self.app)?;
            if self
                .resources
                .iter()
                .any(|r| r.resource == bucket::KIND && r.result == Removal::Kept)
            {
                write!(f, " but the kept bucket")?;
            }
        } else {
            writeln!(f, "leak check: still present:")?;
            for l in &self.leftovers {
                writeln!(f, "  {l}")?;
            }
            write!(
                f,
                "run `lew teardown` again; if they stay, delete them by hand"
            )?;
        }
        Ok(())
    }
}

impl Report for TeardownReport {
    fn exit_code(&self) -> u8 {
        if self.failures.is_empty() && self.leftovers.is_empty() {
            0
        } else {
            1
        }
    }
}

/// Asks on the terminal; refuses to guess when there is none.
fn confirm(d: &Deployment, delete_data: bool) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(UsageError::new(
            "teardown deletes AWS resources and needs confirmation: pass --yes when not running \
             on a terminal",
        )
        .into());
    }
    let data = if delete_data {
        format!(
            " AND the bucket {} with every scene and render in it",
            d.names.bucket
        )
    } else {
        String::new()
    };
    eprint!(
        "Delete every lew resource of app {} in {} (account {}){data}? [y/N] ",
        d.cfg.app, d.aws.region, d.aws.account
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(UsageError::new("teardown cancelled; nothing was deleted").into())
    }
}

pub async fn run(args: &TeardownArgs, ctx: &Ctx) -> Result<TeardownReport> {
    let d = ctx.deployment().await?;
    if !args.yes {
        confirm(&d, args.delete_data)?;
    }
    let p = &d.progress;
    let mut resources = Vec::new();
    let mut failures = Vec::new();

    // 1. Nothing new may start: lew's notification entry and the function go together (the
    //    function's permission for S3 goes with the function).
    let step = p.step("removing the trigger and the launcher");
    let (notification, function) = futures::join!(trigger::delete(&d), function::delete(&d));
    let permission = match &function {
        Ok(f) if f.result == Removal::Deleted => Some(
            Removed::new(
                trigger::PERMISSION_KIND,
                trigger::PERMISSION_SID,
                Removal::Deleted,
            )
            .note("with the function"),
        ),
        Ok(f) if f.result == Removal::AlreadyGone => Some(Removed::new(
            trigger::PERMISSION_KIND,
            trigger::PERMISSION_SID,
            Removal::AlreadyGone,
        )),
        _ => None,
    };
    file(
        &mut resources,
        &mut failures,
        trigger::NOTIFICATION_KIND,
        notification,
    );
    resources.extend(permission);
    file(&mut resources, &mut failures, function::KIND, function);
    step.clear();

    // 2. Stop the workers the launcher started.
    let step = p.step("stopping worker tasks");
    let stopped_tasks = match tasks::stop_all(&d, "lew teardown").await {
        Ok(n) => n,
        Err(e) => {
            failures.push(Failure::new("worker tasks", &e));
            0
        }
    };
    step.clear();

    // 3. Everything else, concurrently.
    let step = p.step("deleting resources");
    let role_names = [
        d.names.launcher_role.clone(),
        d.names.task_role.clone(),
        d.names.execution_role.clone(),
    ];
    let queues = async {
        futures::join!(
            queue::delete(&d, queue::Which::Jobs),
            queue::delete(&d, queue::Which::DeadLetter)
        )
    };
    let roles_done = futures::future::join_all(role_names.iter().map(|n| roles::delete(&d, n)));
    let (td, cl, (jobs, dlq), repo, wl, ll, sg, bk, role_results) = futures::join!(
        task_definition::delete(&d),
        cluster::delete(&d),
        queues,
        registry::delete(&d),
        logs::delete(&d, logs::Which::Worker),
        logs::delete(&d, logs::Which::Launcher),
        network::delete(&d),
        bucket::delete(&d, args.delete_data),
        roles_done,
    );
    step.clear();
    for (what, r) in [
        (task_definition::KIND, td),
        (cluster::KIND, cl),
        (queue::KIND, jobs),
        (queue::DLQ_KIND, dlq),
        (registry::KIND, repo),
        (logs::KIND, wl),
        (logs::KIND, ll),
        (network::KIND, sg),
        (bucket::KIND, bk),
    ] {
        file(&mut resources, &mut failures, what, r);
    }
    for r in role_results {
        file(&mut resources, &mut failures, roles::KIND, r);
    }
    for r in &resources {
        p.detail(format!("{} {}: {}", r.resource, r.name, r.result));
    }

    // 4. The leak check, read back from AWS rather than from the results above.
    let step = p.step("checking that nothing is left");
    let bucket_kept = resources
        .iter()
        .any(|r| r.resource == bucket::KIND && r.result == Removal::Kept);
    // A leak check that cannot finish must not hide what was deleted: it becomes a failure.
    let leftovers = match leak_check(&d, bucket_kept).await {
        Ok(left) => left,
        Err(e) => {
            failures.push(Failure::new("leak check", &e));
            Vec::new()
        }
    };
    step.clear();

    Ok(TeardownReport {
        app: d.cfg.app.clone(),
        region: d.aws.region.clone(),
        account: d.aws.account.clone(),
        stopped_tasks,
        resources,
        failures,
        leftovers,
    })
}

/// Everything still tagged for this app (the tagging API), plus direct look-ups for what that
/// API does not cover everywhere (IAM roles, the ECR repository, the function); all at once.
pub async fn leak_check(d: &Deployment, bucket_kept: bool) -> Result<Vec<String>> {
    let roles = [
        &d.names.launcher_role,
        &d.names.task_role,
        &d.names.execution_role,
    ];
    let (tagged, roles, repo, func) = futures::join!(
        tagged_leftovers(d, bucket_kept),
        futures::future::join_all(roles.map(|name| role_left(d, name))),
        async {
            match registry::find(d).await? {
                Some(repo) if registry::owned(d, &repo).await? => Ok(Some(d.repository_arn())),
                _ => Ok::<_, anyhow::Error>(None),
            }
        },
        async {
            Ok::<_, anyhow::Error>(
                function::get(d)
                    .await?
                    .filter(|f| function::owned(d, f))
                    .map(|_| d.function_arn()),
            )
        },
    );
    let mut left = tagged?;
    for arn in roles
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
    {
        left.push(arn);
    }
    left.extend(repo?);
    left.extend(func?);
    left.sort();
    left.dedup();
    Ok(left)
}

async fn tagged_leftovers(d: &Deployment, bucket_kept: bool) -> Result<Vec<String>> {
    let mut left = Vec::new();
    let mut pages = d
        .aws
        .tagging
        .get_resources()
        .tag_filters(
            aws_sdk_resourcegroupstagging::types::TagFilter::builder()
                .key(APP_TAG)
                .values(&d.cfg.app)
                .build(),
        )
        .into_paginator()
        .send();
    let bucket_arn = d.bucket_arn();
    while let Some(page) = pages.next().await {
        let page = page.context("cannot list the resources tagged for this app")?;
        for m in page.resource_tag_mapping_list() {
            let arn = m.resource_arn().unwrap_or_default();
            if bucket_kept && arn == bucket_arn {
                continue;
            }
            if still_there(d, arn).await? {
                left.push(arn.to_string());
            }
        }
    }
    Ok(left)
}

/// The role's ARN if it is still there and lew's.
async fn role_left(d: &Deployment, name: &str) -> Result<Option<String>> {
    match d.aws.iam.get_role().role_name(name).send().await {
        Ok(out) => {
            let tags = out.role().map(|r| r.tags()).unwrap_or_default();
            Ok(d.owns(tags.iter().map(|t| (t.key(), t.value())))
                .then(|| d.role_arn(name)))
        }
        Err(aws_sdk_iam::error::SdkError::ServiceError(e))
            if matches!(e.err(), GetRoleError::NoSuchEntityException(_)) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("cannot look up IAM role {name}")),
    }
}

/// Whether a resource the tagging API lists is really still there. That API lags behind
/// deletions (for minutes, on AWS), and ECS keeps deleted task definitions and clusters visible
/// as DELETE_IN_PROGRESS and INACTIVE, so each of lew's resource types is asked directly.
async fn still_there(d: &Deployment, arn: &str) -> Result<bool> {
    let service = arn.split(':').nth(2).unwrap_or_default();
    let resource = arn.splitn(6, ':').nth(5).unwrap_or_default();
    Ok(match service {
        "ecs" if resource.starts_with("task-definition/") => !task_definition_gone(d, arn).await?,
        "ecs" if arn == d.cluster_arn() => cluster::find(d).await?.is_some(),
        "sqs" if resource == d.names.queue => queue::url(d, queue::Which::Jobs).await?.is_some(),
        "sqs" if resource == d.names.dlq => {
            queue::url(d, queue::Which::DeadLetter).await?.is_some()
        }
        "logs" => {
            let name = resource.strip_prefix("log-group:").unwrap_or(resource);
            let name = name.strip_suffix(":*").unwrap_or(name);
            logs::find(d, name).await?.is_some()
        }
        "ecr" if arn == d.repository_arn() => registry::find(d).await?.is_some(),
        "lambda" if arn == d.function_arn() => function::get(d).await?.is_some(),
        "s3" if arn == d.bucket_arn() => bucket::presence(d).await? != bucket::Presence::Missing,
        "ec2" if resource.starts_with("security-group/") => {
            let id = resource.trim_start_matches("security-group/");
            network::group_exists(d, id).await?
        }
        _ => true,
    })
}

async fn task_definition_gone(d: &Deployment, arn: &str) -> Result<bool> {
    let out = d
        .aws
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await;
    match out {
        Ok(out) => Ok(out.task_definition().is_none_or(|td| {
            td.status()
                .is_some_and(|s| s.as_str() == "DELETE_IN_PROGRESS")
        })),
        // ECS answers an unknown revision with its catch-all ClientException.
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), DescribeTaskDefinitionError::ClientException(_)) =>
        {
            Ok(true)
        }
        Err(e) => Err(e).with_context(|| format!("cannot look up task definition {arn}")),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsError;
    use aws_sdk_resourcegroupstagging::operation::get_resources::GetResourcesOutput;
    use aws_sdk_resourcegroupstagging::types::ResourceTagMapping;
    use aws_sdk_sqs::operation::get_queue_url::{GetQueueUrlError, GetQueueUrlOutput};
    use aws_sdk_sqs::types::error::QueueDoesNotExist;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::resources::mock::{ACCOUNT, Mocks, REGION, meta};

    /// The tagging API still lists resources deleted minutes ago; only those the owning
    /// service still has are leftovers.
    #[tokio::test]
    async fn resources_the_tagging_api_lists_after_their_deletion_are_not_leftovers() {
        let arn = |rest: &str| format!("arn:aws:{rest}");
        let jobs = arn(&format!("sqs:{REGION}:{ACCOUNT}:lew-unit-jobs"));
        let dlq = arn(&format!("sqs:{REGION}:{ACCOUNT}:lew-unit-jobs-dlq"));
        let group = arn(&format!("ec2:{REGION}:{ACCOUNT}:security-group/sg-0123"));
        let listed = [jobs.clone(), dlq.clone(), group.clone()];
        let tagged =
            mock!(aws_sdk_resourcegroupstagging::Client::get_resources).then_output(move || {
                listed
                    .iter()
                    .fold(GetResourcesOutput::builder(), |b, arn| {
                        b.resource_tag_mapping_list(
                            ResourceTagMapping::builder().resource_arn(arn).build(),
                        )
                    })
                    .build()
            });
        // The jobs queue is gone, the dead-letter queue is still there.
        let jobs_url = mock!(aws_sdk_sqs::Client::get_queue_url)
            .match_requests(|r| r.queue_name() == Some("lew-unit-jobs"))
            .then_error(|| {
                GetQueueUrlError::QueueDoesNotExist(QueueDoesNotExist::builder().build())
            });
        let dlq_url = mock!(aws_sdk_sqs::Client::get_queue_url)
            .match_requests(|r| r.queue_name() == Some("lew-unit-jobs-dlq"))
            .then_output(|| {
                GetQueueUrlOutput::builder()
                    .queue_url("https://dlq")
                    .build()
            });
        let group_gone = mock!(aws_sdk_ec2::Client::describe_security_groups)
            .match_requests(|r| r.group_ids() == ["sg-0123"])
            .then_error(|| {
                DescribeSecurityGroupsError::generic(meta(
                    "InvalidGroup.NotFound",
                    "The security group 'sg-0123' does not exist",
                ))
            });
        let (d, _) = Mocks::new()
            .tagging(&[&tagged])
            .sqs(&[&jobs_url, &dlq_url])
            .ec2(&[&group_gone])
            .deployment()
            .await;

        let left = tagged_leftovers(&d, false).await.unwrap();

        assert_eq!(left, [dlq]);
        assert_eq!(
            (
                jobs_url.num_calls(),
                dlq_url.num_calls(),
                group_gone.num_calls()
            ),
            (1, 1, 1)
        );
    }
}

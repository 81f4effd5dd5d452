//! The three IAM roles and their inline least-privilege policies.
//!
//! - `lew-<app>-launcher`: assumed by Lambda; may queue jobs, count and start worker tasks of
//!   this cluster and family, pass exactly the two task roles to ECS, and write its own logs.
//! - `lew-<app>-task`: assumed by the worker container; may take jobs off the queue, read scenes
//!   and write renders under the configured prefixes.
//! - `lew-<app>-execution`: assumed by ECS to pull the worker image and ship its logs.
//!
//! Every statement names exact ARNs; `*` appears only where AWS offers no resource scoping
//! (`ecr:GetAuthorizationToken`, and `ecs:ListTasks`, which is scoped by a cluster condition).
//! No AWS managed policy is used.

use anyhow::{Context as _, Result};
use aws_sdk_iam::error::SdkError;
use aws_sdk_iam::operation::create_role::CreateRoleError;
use aws_sdk_iam::operation::delete_role::DeleteRoleError;
use aws_sdk_iam::operation::delete_role_policy::DeleteRolePolicyError;
use aws_sdk_iam::operation::detach_role_policy::DetachRolePolicyError;
use aws_sdk_iam::operation::get_role::GetRoleError;
use aws_sdk_iam::operation::get_role_policy::GetRolePolicyError;
use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesError;
use aws_sdk_iam::operation::list_role_policies::ListRolePoliciesError;
use aws_sdk_iam::types::{Role, Tag};
use serde_json::{Value, json};

use super::{Deployment, Mode, Outcome, Removal, Removed, bucket, not_ours, same_policy};

/// What this resource is called in reports.
pub const KIND: &str = "iam role";

/// The name of lew's inline policy on each role.
pub const POLICY_NAME: &str = "lew";

/// One role as lew wants it.
#[derive(Debug, Clone)]
pub struct RoleSpec {
    pub name: String,
    pub description: &'static str,
    pub trust: Value,
    pub policy: Value,
}

/// The three roles, in the order they are reported.
pub fn specs(d: &Deployment) -> Vec<RoleSpec> {
    vec![launcher(d), task(d), execution(d)]
}

pub fn launcher(d: &Deployment) -> RoleSpec {
    let n = &d.names;
    let family_arn = d
        .aws
        .arn("ecs", &format!("task-definition/{}:*", n.task_family));
    RoleSpec {
        name: n.launcher_role.clone(),
        description: "lew launcher Lambda: queues render jobs and starts worker tasks",
        trust: trust("lambda.amazonaws.com", None),
        policy: json!({
            "Version": "2012-10-17",
            "Statement": [
                {
                    // The dead-letter queue takes the S3 events of launches that failed for
                    // good (the function's on-failure destination), so no upload is lost.
                    "Sid": "QueueJobs",
                    "Effect": "Allow",
                    "Action": "sqs:SendMessage",
                    "Resource": [d.queue_arn(), d.dlq_arn()],
                },
                {
                    // HeadObject: the plan `lew render` puts in a scene's metadata (frames or
                    // bands) decides how many jobs the upload becomes.
                    "Sid": "ReadScenePlans",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": d.aws.s3_arn(&format!("{}/{}*", n.bucket, d.cfg.bucket.input_prefix)),
                },
                {
                    "Sid": "StartWorkers",
                    "Effect": "Allow",
                    "Action": "ecs:RunTask",
                    "Resource": family_arn,
                    "Condition": {"ArnEquals": {"ecs:cluster": d.cluster_arn()}},
                },
                {
                    "Sid": "CountWorkers",
                    "Effect": "Allow",
                    "Action": "ecs:ListTasks",
                    "Resource": "*",
                    "Condition": {"ArnEquals": {"ecs:cluster": d.cluster_arn()}},
                },
                {
                    "Sid": "PassTaskRoles",
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": [d.role_arn(&n.task_role), d.role_arn(&n.execution_role)],
                    "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
                },
                {
                    "Sid": "WriteOwnLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": format!("{}:*", d.log_group_arn(&n.launcher_log_group)),
                },
            ],
        }),
    }
}

pub fn task(d: &Deployment) -> RoleSpec {
    let n = &d.names;
    let b = &d.cfg.bucket;
    RoleSpec {
        name: n.task_role.clone(),
        description: "lew worker task: takes render jobs off the queue, reads scenes, writes renders",
        trust: trust("ecs-tasks.amazonaws.com", Some(d)),
        policy: json!({
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "TakeJobs",
                    "Effect": "Allow",
                    "Action": [
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:ChangeMessageVisibility",
                        "sqs:GetQueueAttributes",
                    ],
                    "Resource": d.queue_arn(),
                },
                {
                    "Sid": "ReadScenes",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": d.aws.s3_arn(&format!("{}/{}*", n.bucket, b.input_prefix)),
                },
                {
                    // DeleteObject: the bands of a split still go once it is stitched.
                    "Sid": "WriteRenders",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    "Resource": d.aws.s3_arn(&format!("{}/{}*", n.bucket, b.output_prefix)),
                },
                {
                    // Without ListBucket, S3 answers 403 instead of 404 for a missing object,
                    // and the worker could not tell "not rendered yet" from "forbidden".
                    "Sid": "SeeMissingRenders",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": d.bucket_arn(),
                },
            ],
        }),
    }
}

/// The task role with a grant for the bucket's default-encryption key, when it has one (see
/// `bucket::default_kms_key`): exactly that key, for reading scenes and writing renders.
pub fn task_with_key(d: &Deployment, key: Option<&bucket::KmsKey>) -> RoleSpec {
    let mut spec = task(d);
    let statement = match key {
        None => return spec,
        Some(bucket::KmsKey::Key(arn)) => json!({
            "Sid": "UseBucketKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": arn,
        }),
        // AWS, "Using aliases to control access to KMS keys" (KMS Developer Guide): the
        // kms:ResourceAliases condition key allows a key by an alias it has.
        Some(bucket::KmsKey::Alias(alias)) => json!({
            "Sid": "UseBucketKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": d.aws.arn("kms", "key/*"),
            "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}},
        }),
    };
    if let Some(statements) = spec.policy["Statement"].as_array_mut() {
        statements.push(statement);
    }
    spec
}

/// Converges the task role, with the grant `task_with_key` adds when the bucket's default
/// encryption uses a KMS key of this account; its line names the key.
pub async fn ensure_task(d: &Deployment, mode: Mode) -> Result<Outcome> {
    let key = bucket::default_kms_key(d).await?;
    let outcome = ensure(d, &task_with_key(d, key.as_ref()), mode).await?;
    Ok(match key {
        Some(key) => outcome.note(format!(
            "may use KMS key {key}, the default encryption of bucket {}",
            d.names.bucket
        )),
        None => outcome,
    })
}

pub fn execution(d: &Deployment) -> RoleSpec {
    let n = &d.names;
    RoleSpec {
        name: n.execution_role.clone(),
        description: "lew worker task execution: pulls the worker image, ships its logs",
        trust: execution_trust(d),
        policy: json!({
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "RegistryLogin",
                    "Effect": "Allow",
                    "Action": "ecr:GetAuthorizationToken",
                    "Resource": "*",
                },
                {
                    "Sid": "PullWorkerImage",
                    "Effect": "Allow",
                    "Action": [
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                    ],
                    "Resource": d.repository_arn(),
                },
                {
                    "Sid": "WriteWorkerLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": format!("{}:*", d.log_group_arn(&n.worker_log_group)),
                },
            ],
        }),
    }
}

/// The task execution role's trust policy. AWS, "Amazon ECS task execution IAM role" (ECS
/// Developer Guide), documents it without conditions (Principal ecs-tasks.amazonaws.com,
/// sts:AssumeRole), and documents no `aws:SourceArn` for the agent that pulls the image, so a
/// condition on it could make every pull fail with "ECS was unable to assume the role". Only the
/// account guard AWS documents for ECS's roles ("Amazon ECS task IAM role": `aws:SourceAccount`)
/// is kept: tasks of other accounts still cannot assume it.
fn execution_trust(d: &Deployment) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": d.aws.account}},
    }]})
}

/// A trust policy for one service. For ECS's task role, the confused-deputy guard AWS documents
/// in "Amazon ECS task IAM role" (ECS Developer Guide): `aws:SourceArn` like
/// `arn:aws:ecs:<region>:<account>:*` and `aws:SourceAccount` equal to the account, so only tasks
/// of this account may assume the role.
fn trust(service: &str, account_guard: Option<&Deployment>) -> Value {
    let mut statement = json!({
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    });
    if let Some(d) = account_guard {
        statement["Condition"] = json!({
            "ArnLike": {"aws:SourceArn": d.aws.arn("ecs", "*")},
            "StringEquals": {"aws:SourceAccount": d.aws.account},
        });
    }
    json!({"Version": "2012-10-17", "Statement": [statement]})
}

/// Creates the role or converges its trust policy, inline policy and tags.
pub async fn ensure(d: &Deployment, spec: &RoleSpec, mode: Mode) -> Result<Outcome> {
    let iam = &d.aws.iam;
    let outcome = Outcome::new(KIND, &spec.name);
    // The role and its policy are read at the same time; the policy read of a missing role
    // fails, which is ignored because the role is then created with its policy.
    let get_policy = || {
        iam.get_role_policy()
            .role_name(&spec.name)
            .policy_name(POLICY_NAME)
            .send()
    };
    let (existing, mut policy_read) =
        futures::join!(iam.get_role().role_name(&spec.name).send(), get_policy());
    let existing = match existing {
        Ok(out) => out.role,
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), GetRoleError::NoSuchEntityException(_)) =>
        {
            None
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read IAM role {}", spec.name)),
    };

    let role = match existing {
        Some(role) => role,
        None if mode == Mode::Plan => return Ok(outcome.created()),
        None => {
            let created = iam
                .create_role()
                .role_name(&spec.name)
                .description(spec.description)
                .assume_role_policy_document(spec.trust.to_string())
                .set_tags(Some(tags(d)))
                .send()
                .await;
            match created {
                Ok(_) => {
                    put_policy(d, spec).await?;
                    return Ok(outcome.created());
                }
                // Created meanwhile: by a concurrent setup, or by this very request when its
                // answer was lost and the SDK retried it. Converge what is there.
                Err(SdkError::ServiceError(e))
                    if matches!(e.err(), CreateRoleError::EntityAlreadyExistsException(_)) =>
                {
                    policy_read = get_policy().await;
                    iam.get_role()
                        .role_name(&spec.name)
                        .send()
                        .await
                        .with_context(|| format!("cannot read IAM role {}", spec.name))?
                        .role
                        .with_context(|| format!("IAM returned no role {}", spec.name))?
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create IAM role {}", spec.name));
                }
            }
        }
    };

    if !d.owns(role.tags().iter().map(|t| (t.key(), t.value()))) {
        return Err(not_ours("IAM role", &spec.name, &d.cfg.app));
    }

    let mut changes = Vec::new();
    let trust_ok = role
        .assume_role_policy_document()
        .is_some_and(|doc| same_policy(doc, &spec.trust));
    if !trust_ok {
        changes.push("trust policy differs".to_string());
    }
    let current = match policy_read {
        Ok(out) => Some(out.policy_document),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), GetRolePolicyError::NoSuchEntityException(_)) =>
        {
            None
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the policy of role {}", spec.name));
        }
    };
    let policy_ok = current
        .as_deref()
        .is_some_and(|doc| same_policy(doc, &spec.policy));
    match current {
        None => changes.push(format!("inline policy {POLICY_NAME:?} missing")),
        Some(_) if !policy_ok => changes.push(format!("inline policy {POLICY_NAME:?} differs")),
        Some(_) => {}
    }
    let version_ok = role
        .tags()
        .iter()
        .any(|t| t.key() == super::VERSION_TAG && t.value() == env!("CARGO_PKG_VERSION"));
    if !version_ok {
        // A change like any other: setup reports it and --dry-run shows it.
        changes.push(format!(
            "tag {}: → {}",
            super::VERSION_TAG,
            env!("CARGO_PKG_VERSION")
        ));
    }

    if mode == Mode::Apply {
        if !trust_ok {
            iam.update_assume_role_policy()
                .role_name(&spec.name)
                .policy_document(spec.trust.to_string())
                .send()
                .await
                .with_context(|| format!("cannot update the trust policy of role {}", spec.name))?;
        }
        if !policy_ok {
            put_policy(d, spec).await?;
        }
        if !version_ok {
            iam.tag_role()
                .role_name(&spec.name)
                .set_tags(Some(tags(d)))
                .send()
                .await
                .with_context(|| format!("cannot tag IAM role {}", spec.name))?;
        }
    }
    Ok(outcome.with_changes(changes))
}

async fn put_policy(d: &Deployment, spec: &RoleSpec) -> Result<()> {
    d.aws
        .iam
        .put_role_policy()
        .role_name(&spec.name)
        .policy_name(POLICY_NAME)
        .policy_document(spec.policy.to_string())
        .send()
        .await
        .with_context(|| format!("cannot put the inline policy of role {}", spec.name))?;
    Ok(())
}

fn tags(d: &Deployment) -> Vec<Tag> {
    d.tags()
        .into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value set")
        })
        .collect()
}

/// Whether IAM answered that the role does not exist.
fn no_such_role(err: &SdkError<GetRoleError>) -> bool {
    matches!(
        err.as_service_error(),
        Some(GetRoleError::NoSuchEntityException(_))
    )
}

/// The role called `name`, or `None` when it does not exist.
pub async fn find(d: &Deployment, name: &str) -> Result<Option<Role>> {
    match d.aws.iam.get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role),
        Err(e) if no_such_role(&e) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read IAM role {name}")),
    }
}

/// Whether the role carries this app's ownership tag.
pub fn owned(d: &Deployment, role: &Role) -> bool {
    d.owns(role.tags().iter().map(|t| (t.key(), t.value())))
}

/// Deletes a role lew owns, with its inline and attached policies (IAM refuses otherwise).
pub async fn delete(d: &Deployment, name: &str) -> Result<Removed> {
    let iam = &d.aws.iam;
    let Some(role) = find(d, name).await? else {
        return Ok(Removed::new(KIND, name, Removal::AlreadyGone));
    };
    if !owned(d, &role) {
        return Ok(Removed::new(KIND, name, Removal::NotOwned));
    }

    // The role can vanish at any point from here on (another teardown): that is success.
    let gone = || Ok(Removed::new(KIND, name, Removal::AlreadyGone));
    let inline = match iam
        .list_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
    {
        Ok(names) => names,
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), ListRolePoliciesError::NoSuchEntityException(_)) =>
        {
            return gone();
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot list the policies of role {name}"));
        }
    };
    for policy in inline {
        match iam
            .delete_role_policy()
            .role_name(name)
            .policy_name(&policy)
            .send()
            .await
        {
            Ok(_) => {}
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), DeleteRolePolicyError::NoSuchEntityException(_)) => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot delete policy {policy} of role {name}"));
            }
        }
    }
    let attached = match iam
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
    {
        Ok(policies) => policies,
        Err(SdkError::ServiceError(e))
            if matches!(
                e.err(),
                ListAttachedRolePoliciesError::NoSuchEntityException(_)
            ) =>
        {
            return gone();
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot list the attached policies of role {name}"));
        }
    };
    for policy in attached {
        if let Some(arn) = policy.policy_arn() {
            match iam
                .detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
            {
                Ok(_) => {}
                Err(SdkError::ServiceError(e))
                    if matches!(e.err(), DetachRolePolicyError::NoSuchEntityException(_)) => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot detach {arn} from role {name}"));
                }
            }
        }
    }

    match iam.delete_role().role_name(name).send().await {
        Ok(_) => Ok(Removed::new(KIND, name, Removal::Deleted)),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), DeleteRoleError::NoSuchEntityException(_)) =>
        {
            gone()
        }
        Err(e) => Err(e).with_context(|| format!("cannot delete IAM role {name}")),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_iam::Client;
    use aws_sdk_iam::operation::delete_role::DeleteRoleOutput;
    use aws_sdk_iam::operation::delete_role_policy::DeleteRolePolicyOutput;
    use aws_sdk_iam::operation::detach_role_policy::DetachRolePolicyOutput;
    use aws_sdk_iam::operation::get_role::GetRoleOutput;
    use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput;
    use aws_sdk_iam::operation::list_role_policies::ListRolePoliciesOutput;
    use aws_sdk_iam::types::error::NoSuchEntityException;
    use aws_sdk_iam::types::{AttachedPolicy, Role};
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_types::DateTime;

    use super::*;
    use crate::resources::mock::{Mocks, lew_tags, meta};

    const ROLE: &str = "lew-unit-task";
    const MANAGED: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

    fn no_such_entity() -> NoSuchEntityException {
        let text = format!("The role with name {ROLE} cannot be found.");
        NoSuchEntityException::builder()
            .message(&text)
            .meta(meta("NoSuchEntity", &text))
            .build()
    }

    fn role(tags: Vec<(String, String)>) -> Rule {
        mock!(Client::get_role).then_output(move || {
            let role = Role::builder()
                .path("/")
                .role_name(ROLE)
                .role_id("AROAUNIT")
                .arn(format!("arn:aws:iam::123456789012:role/{ROLE}"))
                .create_date(DateTime::from_secs(0))
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| Tag::builder().key(k).value(v).build().unwrap())
                        .collect(),
                ))
                .build()
                .unwrap();
            GetRoleOutput::builder().role(role).build()
        })
    }

    fn inline(names: &'static [&'static str]) -> Rule {
        mock!(Client::list_role_policies).then_output(move || {
            ListRolePoliciesOutput::builder()
                .set_policy_names(Some(names.iter().map(|n| n.to_string()).collect()))
                .is_truncated(false)
                .build()
                .unwrap()
        })
    }

    fn attached(arns: &'static [&'static str]) -> Rule {
        mock!(Client::list_attached_role_policies).then_output(move || {
            ListAttachedRolePoliciesOutput::builder()
                .set_attached_policies(Some(
                    arns.iter()
                        .map(|a| AttachedPolicy::builder().policy_arn(*a).build())
                        .collect(),
                ))
                .is_truncated(false)
                .build()
        })
    }

    #[tokio::test]
    async fn a_role_that_is_not_there_is_already_gone() {
        let get = mock!(Client::get_role)
            .then_error(|| GetRoleError::NoSuchEntityException(no_such_entity()));
        let (d, _) = Mocks::new().iam(&[&get]).deployment().await;
        let removed = delete(&d, ROLE).await.unwrap();
        assert_eq!(removed.result, Removal::AlreadyGone);
    }

    #[tokio::test]
    async fn a_role_deleted_by_someone_else_during_teardown_is_already_gone() {
        // Gone between GetRole and ListRolePolicies.
        let list = mock!(Client::list_role_policies)
            .then_error(|| ListRolePoliciesError::NoSuchEntityException(no_such_entity()));
        let (d, _) = Mocks::new()
            .iam(&[&role(lew_tags()), &list])
            .deployment()
            .await;
        assert_eq!(delete(&d, ROLE).await.unwrap().result, Removal::AlreadyGone);
        assert_eq!(list.num_calls(), 1);

        // Gone between listing its policies and deleting them, and at DeleteRole.
        let del_policy = mock!(Client::delete_role_policy)
            .then_error(|| DeleteRolePolicyError::NoSuchEntityException(no_such_entity()));
        let del_role = mock!(Client::delete_role)
            .then_error(|| DeleteRoleError::NoSuchEntityException(no_such_entity()));
        let (d, _) = Mocks::new()
            .iam(&[
                &role(lew_tags()),
                &inline(&[POLICY_NAME]),
                &del_policy,
                &attached(&[]),
                &del_role,
            ])
            .deployment()
            .await;
        assert_eq!(delete(&d, ROLE).await.unwrap().result, Removal::AlreadyGone);
        assert_eq!((del_policy.num_calls(), del_role.num_calls()), (1, 1));

        // Gone while its managed policies are detached.
        let detach = mock!(Client::detach_role_policy)
            .then_error(|| DetachRolePolicyError::NoSuchEntityException(no_such_entity()));
        let (d, _) = Mocks::new()
            .iam(&[
                &role(lew_tags()),
                &inline(&[]),
                &attached(&[MANAGED]),
                &detach,
                &del_role_gone(),
            ])
            .deployment()
            .await;
        assert_eq!(delete(&d, ROLE).await.unwrap().result, Removal::AlreadyGone);
        assert_eq!(detach.num_calls(), 1);
    }

    fn del_role_gone() -> Rule {
        mock!(Client::delete_role)
            .then_error(|| DeleteRoleError::NoSuchEntityException(no_such_entity()))
    }

    #[tokio::test]
    async fn a_role_is_emptied_then_deleted() {
        let del_policy = mock!(Client::delete_role_policy)
            .match_requests(|r| r.role_name() == Some(ROLE) && r.policy_name() == Some(POLICY_NAME))
            .then_output(|| DeleteRolePolicyOutput::builder().build());
        let detach = mock!(Client::detach_role_policy)
            .match_requests(|r| r.policy_arn() == Some(MANAGED))
            .then_output(|| DetachRolePolicyOutput::builder().build());
        let del_role = mock!(Client::delete_role)
            .match_requests(|r| r.role_name() == Some(ROLE))
            .then_output(|| DeleteRoleOutput::builder().build());
        let (d, _) = Mocks::new()
            .iam(&[
                &role(lew_tags()),
                &inline(&[POLICY_NAME]),
                &del_policy,
                &attached(&[MANAGED]),
                &detach,
                &del_role,
            ])
            .deployment()
            .await;
        assert_eq!(delete(&d, ROLE).await.unwrap().result, Removal::Deleted);
        assert_eq!(
            (
                del_policy.num_calls(),
                detach.num_calls(),
                del_role.num_calls()
            ),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn a_role_of_another_app_is_left_alone() {
        let other = vec![(super::super::APP_TAG.to_string(), "other".to_string())];
        // Any call after GetRole would find no rule and fail the test.
        let (d, _) = Mocks::new().iam(&[&role(other)]).deployment().await;
        assert_eq!(delete(&d, ROLE).await.unwrap().result, Removal::NotOwned);
    }
}

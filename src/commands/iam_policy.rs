//! `lew iam-policy`: the least-privilege IAM policy a CI deploy role needs to run `lew setup`,
//! `lew deploy-lambda`, `lew push-image` and `lew status` for this app, generated from lew's own
//! list of the AWS calls those commands make ([`CALLS`]), scoped to the app's resources.
//!
//! The list is kept honest by tests: `tests/ci.rs` runs the commands with `-vv` (which prints
//! every call lew makes) against the emulator, also repairing drift, and checks that every call
//! made is in the list and granted by the generated document, and that every entry is made
//! somewhere in lew's source; parliament lints the document's actions and ARNs.
//!
//! `teardown`, `render` and `logs` are not a deploy step's work and need more (deletes, object
//! reads and writes, log reads): run them with your own credentials.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::Result;
use serde::Serialize;
use serde_json::{Value, json};

use super::Ctx;
use crate::output::Report;
use crate::resources::{APP_TAG, Deployment};

/// What a permission is scoped to: one of the app's resources, or what AWS allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum On {
    /// The three roles lew creates.
    Roles,
    /// The launcher's role, passed to Lambda only.
    PassLauncherRole,
    /// The task and execution roles, passed to ECS tasks only.
    PassTaskRoles,
    /// ECS's service-linked role, for ECS only (a new account's first cluster).
    EcsServiceLinkedRole,
    Bucket,
    Queues,
    Function,
    Cluster,
    /// The revisions of the app's task definition family.
    TaskDefinitions,
    /// The tasks in the app's cluster.
    Tasks,
    /// Any task, only in the app's cluster (ListTasks has no resource type a Fargate task has).
    InCluster,
    Repository,
    LogGroups,
    /// Creating the worker's security group (in any VPC; only this action may create it).
    NewSecurityGroup,
    /// Tags on a security group being created, and only then.
    NewSecurityGroupTags,
    /// Security groups tagged as this app's.
    OwnedSecurityGroups,
    /// The two EventBridge rules that invoke the launcher.
    EventRules,
    /// Actions AWS allows only on `Resource: "*"` (describes, the ECR login token, ...).
    Anything,
}

/// One AWS call of the deploy commands and what IAM must allow for it: usually one action on one
/// resource; a create that tags also needs the tagging action, and a call that hands a role to a
/// service needs `iam:PassRole`.
#[derive(Debug)]
pub struct Call {
    /// The service as the SDK names it, as `-vv` prints it (`aws call: SQS GetQueueUrl`).
    pub service: &'static str,
    pub operation: &'static str,
    pub needs: &'static [(&'static str, On)],
}

const fn call(
    service: &'static str,
    operation: &'static str,
    needs: &'static [(&'static str, On)],
) -> Call {
    Call {
        service,
        operation,
        needs,
    }
}

/// Not SDK calls but the registry API `docker push` uses (after lew's `docker login` with the
/// token of `ecr:GetAuthorizationToken`), from AWS's "IAM permissions for pushing an image to an
/// Amazon ECR private repository": "The following IAM policy grants the required permissions for
/// pushing an image to a specific repository" (these six on the repository).
pub const DOCKER_PUSH: &[&str] = &[
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchGetImage",
];

use On::*;

/// Every AWS call `setup`, `deploy-lambda`, `push-image` and `status` can make (waiters and
/// paginators repeat one of these), with what it needs. Tagging on create: Lambda's "Using tags
/// on Lambda functions" says `lambda:TagResource` is needed "to call TagResource or perform a
/// tag on create", and that `lambda:ListTags` "is also necessary for GetFunction" of a tagged
/// function; SQS, CloudWatch Logs, ECR, ECS and EC2 authorize tags on create the same way.
pub const CALLS: &[Call] = &[
    // STS: who am I. GetCallerIdentity needs no permission ("no permissions are required to
    // perform this operation", its API reference), so it grants nothing.
    call("STS", "GetCallerIdentity", &[]),
    // IAM: the three roles and their inline policies.
    call("IAM", "GetRole", &[("iam:GetRole", Roles)]),
    call(
        "IAM",
        "CreateRole",
        &[("iam:CreateRole", Roles), ("iam:TagRole", Roles)],
    ),
    call("IAM", "TagRole", &[("iam:TagRole", Roles)]),
    call(
        "IAM",
        "UpdateAssumeRolePolicy",
        &[("iam:UpdateAssumeRolePolicy", Roles)],
    ),
    call("IAM", "GetRolePolicy", &[("iam:GetRolePolicy", Roles)]),
    call("IAM", "PutRolePolicy", &[("iam:PutRolePolicy", Roles)]),
    call(
        "IAM",
        "CreateServiceLinkedRole",
        &[("iam:CreateServiceLinkedRole", EcsServiceLinkedRole)],
    ),
    // S3: the bucket (ListObjectsV2, for status's recent renders, is s3:ListBucket).
    call("S3", "CreateBucket", &[("s3:CreateBucket", Bucket)]),
    call("S3", "GetBucketTagging", &[("s3:GetBucketTagging", Bucket)]),
    call("S3", "PutBucketTagging", &[("s3:PutBucketTagging", Bucket)]),
    call(
        "S3",
        "GetBucketEncryption",
        &[("s3:GetEncryptionConfiguration", Bucket)],
    ),
    call(
        "S3",
        "PutBucketEncryption",
        &[("s3:PutEncryptionConfiguration", Bucket)],
    ),
    call("S3", "GetBucketPolicy", &[("s3:GetBucketPolicy", Bucket)]),
    call("S3", "PutBucketPolicy", &[("s3:PutBucketPolicy", Bucket)]),
    call(
        "S3",
        "GetPublicAccessBlock",
        &[("s3:GetBucketPublicAccessBlock", Bucket)],
    ),
    call(
        "S3",
        "PutPublicAccessBlock",
        &[("s3:PutBucketPublicAccessBlock", Bucket)],
    ),
    call(
        "S3",
        "GetBucketNotificationConfiguration",
        &[("s3:GetBucketNotification", Bucket)],
    ),
    call(
        "S3",
        "PutBucketNotificationConfiguration",
        &[("s3:PutBucketNotification", Bucket)],
    ),
    call("S3", "ListObjectsV2", &[("s3:ListBucket", Bucket)]),
    call(
        "S3",
        "GetBucketLifecycleConfiguration",
        &[("s3:GetLifecycleConfiguration", Bucket)],
    ),
    call(
        "S3",
        "PutBucketLifecycleConfiguration",
        &[("s3:PutLifecycleConfiguration", Bucket)],
    ),
    // SQS: the job queue and its dead-letter queue.
    call("SQS", "GetQueueUrl", &[("sqs:GetQueueUrl", Queues)]),
    call(
        "SQS",
        "CreateQueue",
        &[("sqs:CreateQueue", Queues), ("sqs:TagQueue", Queues)],
    ),
    call(
        "SQS",
        "GetQueueAttributes",
        &[("sqs:GetQueueAttributes", Queues)],
    ),
    call(
        "SQS",
        "SetQueueAttributes",
        &[("sqs:SetQueueAttributes", Queues)],
    ),
    call("SQS", "ListQueueTags", &[("sqs:ListQueueTags", Queues)]),
    call("SQS", "TagQueue", &[("sqs:TagQueue", Queues)]),
    // Lambda: the launcher, its S3 permission, its retries and concurrency.
    call(
        "Lambda",
        "GetFunction",
        &[
            ("lambda:GetFunction", Function),
            ("lambda:ListTags", Function),
        ],
    ),
    call("Lambda", "ListTags", &[("lambda:ListTags", Function)]),
    call(
        "Lambda",
        "CreateFunction",
        &[
            ("lambda:CreateFunction", Function),
            ("lambda:TagResource", Function),
            ("iam:PassRole", PassLauncherRole),
        ],
    ),
    call(
        "Lambda",
        "UpdateFunctionCode",
        &[("lambda:UpdateFunctionCode", Function)],
    ),
    call(
        "Lambda",
        "UpdateFunctionConfiguration",
        &[
            ("lambda:UpdateFunctionConfiguration", Function),
            ("iam:PassRole", PassLauncherRole),
        ],
    ),
    call(
        "Lambda",
        "GetFunctionEventInvokeConfig",
        &[("lambda:GetFunctionEventInvokeConfig", Function)],
    ),
    call(
        "Lambda",
        "PutFunctionEventInvokeConfig",
        &[("lambda:PutFunctionEventInvokeConfig", Function)],
    ),
    call(
        "Lambda",
        "PutFunctionConcurrency",
        &[("lambda:PutFunctionConcurrency", Function)],
    ),
    call(
        "Lambda",
        "GetAccountSettings",
        &[("lambda:GetAccountSettings", Anything)],
    ),
    call("Lambda", "GetPolicy", &[("lambda:GetPolicy", Function)]),
    call(
        "Lambda",
        "AddPermission",
        &[("lambda:AddPermission", Function)],
    ),
    call(
        "Lambda",
        "RemovePermission",
        &[("lambda:RemovePermission", Function)],
    ),
    // EventBridge: the rules that have the launcher reconcile (a task stopped, the schedule),
    // tagged when PutRule creates them, each with the launcher as its target.
    call(
        "EventBridge",
        "DescribeRule",
        &[("events:DescribeRule", EventRules)],
    ),
    call(
        "EventBridge",
        "ListTagsForResource",
        &[("events:ListTagsForResource", EventRules)],
    ),
    call(
        "EventBridge",
        "ListTargetsByRule",
        &[("events:ListTargetsByRule", EventRules)],
    ),
    call(
        "EventBridge",
        "PutRule",
        &[
            ("events:PutRule", EventRules),
            ("events:TagResource", EventRules),
        ],
    ),
    call(
        "EventBridge",
        "TagResource",
        &[("events:TagResource", EventRules)],
    ),
    call(
        "EventBridge",
        "PutTargets",
        &[("events:PutTargets", EventRules)],
    ),
    // ECS: the cluster, the task definition, the worker tasks.
    call(
        "ECS",
        "DescribeClusters",
        &[("ecs:DescribeClusters", Cluster)],
    ),
    call(
        "ECS",
        "CreateCluster",
        &[("ecs:CreateCluster", Cluster), ("ecs:TagResource", Cluster)],
    ),
    call(
        "ECS",
        "PutClusterCapacityProviders",
        &[("ecs:PutClusterCapacityProviders", Cluster)],
    ),
    call(
        "ECS",
        "DescribeTaskDefinition",
        &[("ecs:DescribeTaskDefinition", Anything)],
    ),
    call(
        "ECS",
        "RegisterTaskDefinition",
        &[
            ("ecs:RegisterTaskDefinition", TaskDefinitions),
            ("ecs:TagResource", TaskDefinitions),
            ("iam:PassRole", PassTaskRoles),
        ],
    ),
    call("ECS", "ListTasks", &[("ecs:ListTasks", InCluster)]),
    call("ECS", "DescribeTasks", &[("ecs:DescribeTasks", Tasks)]),
    // ECR: the repository, and the login for the push.
    call(
        "ECR",
        "DescribeRepositories",
        &[("ecr:DescribeRepositories", Repository)],
    ),
    call(
        "ECR",
        "CreateRepository",
        &[
            ("ecr:CreateRepository", Repository),
            ("ecr:TagResource", Repository),
        ],
    ),
    call(
        "ECR",
        "ListTagsForResource",
        &[("ecr:ListTagsForResource", Repository)],
    ),
    call(
        "ECR",
        "GetLifecyclePolicy",
        &[("ecr:GetLifecyclePolicy", Repository)],
    ),
    call(
        "ECR",
        "PutLifecyclePolicy",
        &[("ecr:PutLifecyclePolicy", Repository)],
    ),
    call(
        "ECR",
        "PutImageScanningConfiguration",
        &[("ecr:PutImageScanningConfiguration", Repository)],
    ),
    call(
        "ECR",
        "DescribeImages",
        &[("ecr:DescribeImages", Repository)],
    ),
    call(
        "ECR",
        "GetAuthorizationToken",
        &[("ecr:GetAuthorizationToken", Anything)],
    ),
    // CloudWatch Logs: the two log groups.
    call(
        "CloudWatch Logs",
        "DescribeLogGroups",
        &[("logs:DescribeLogGroups", Anything)],
    ),
    call(
        "CloudWatch Logs",
        "CreateLogGroup",
        &[
            ("logs:CreateLogGroup", LogGroups),
            ("logs:TagResource", LogGroups),
        ],
    ),
    call(
        "CloudWatch Logs",
        "TagResource",
        &[("logs:TagResource", LogGroups)],
    ),
    call(
        "CloudWatch Logs",
        "ListTagsForResource",
        &[("logs:ListTagsForResource", LogGroups)],
    ),
    call(
        "CloudWatch Logs",
        "PutRetentionPolicy",
        &[("logs:PutRetentionPolicy", LogGroups)],
    ),
    // EC2: the default VPC's subnets, the worker's security group, the routes status checks.
    call("EC2", "DescribeVpcs", &[("ec2:DescribeVpcs", Anything)]),
    call(
        "EC2",
        "DescribeSubnets",
        &[("ec2:DescribeSubnets", Anything)],
    ),
    call(
        "EC2",
        "DescribeSecurityGroups",
        &[("ec2:DescribeSecurityGroups", Anything)],
    ),
    call(
        "EC2",
        "DescribeRouteTables",
        &[("ec2:DescribeRouteTables", Anything)],
    ),
    call(
        "EC2",
        "CreateSecurityGroup",
        &[
            ("ec2:CreateSecurityGroup", NewSecurityGroup),
            ("ec2:CreateTags", NewSecurityGroupTags),
        ],
    ),
    call(
        "EC2",
        "AuthorizeSecurityGroupEgress",
        &[("ec2:AuthorizeSecurityGroupEgress", OwnedSecurityGroups)],
    ),
    call(
        "EC2",
        "RevokeSecurityGroupIngress",
        &[("ec2:RevokeSecurityGroupIngress", OwnedSecurityGroups)],
    ),
];

/// The call of this service and operation, if the deploy commands make it.
pub fn find(service: &str, operation: &str) -> Option<&'static Call> {
    CALLS
        .iter()
        .find(|c| c.service == service && c.operation == operation)
}

/// The statement for one scope: its Sid, resources and condition.
fn scope(d: &Deployment, on: On) -> (&'static str, Vec<String>, Option<Value>) {
    let aws = &d.aws;
    let n = &d.names;
    let ec2 = |resource: &str| aws.arn("ec2", resource);
    match on {
        Roles => (
            "LewRoles",
            [&n.launcher_role, &n.task_role, &n.execution_role]
                .map(|r| d.role_arn(r))
                .to_vec(),
            None,
        ),
        PassLauncherRole => (
            "LewPassLauncherRoleToLambda",
            vec![d.role_arn(&n.launcher_role)],
            Some(json!({"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}})),
        ),
        PassTaskRoles => (
            "LewPassTaskRolesToEcsTasks",
            vec![d.role_arn(&n.task_role), d.role_arn(&n.execution_role)],
            Some(json!({"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}})),
        ),
        EcsServiceLinkedRole => (
            "LewEcsServiceLinkedRole",
            vec![aws.iam_arn("role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS")],
            Some(json!({"StringEquals": {"iam:AWSServiceName": "ecs.amazonaws.com"}})),
        ),
        Bucket => ("LewBucket", vec![d.bucket_arn()], None),
        Queues => ("LewQueues", vec![d.queue_arn(), d.dlq_arn()], None),
        Function => ("LewFunction", vec![d.function_arn()], None),
        Cluster => ("LewCluster", vec![d.cluster_arn()], None),
        TaskDefinitions => (
            "LewTaskDefinition",
            vec![aws.arn("ecs", &format!("task-definition/{}:*", n.task_family))],
            None,
        ),
        Tasks => (
            "LewTasks",
            vec![aws.arn("ecs", &format!("task/{}/*", n.cluster))],
            None,
        ),
        InCluster => (
            "LewListTasksInCluster",
            vec!["*".into()],
            Some(json!({"ArnEquals": {"ecs:cluster": d.cluster_arn()}})),
        ),
        Repository => ("LewRepository", vec![d.repository_arn()], None),
        LogGroups => (
            "LewLogGroups",
            [&n.worker_log_group, &n.launcher_log_group]
                .iter()
                .flat_map(|g| [d.log_group_arn(g), format!("{}:*", d.log_group_arn(g))])
                .collect(),
            None,
        ),
        NewSecurityGroup => (
            "LewCreateSecurityGroup",
            vec![ec2("security-group/*"), ec2("vpc/*")],
            None,
        ),
        NewSecurityGroupTags => (
            "LewTagNewSecurityGroup",
            vec![ec2("security-group/*")],
            Some(json!({"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}})),
        ),
        OwnedSecurityGroups => (
            "LewOwnSecurityGroup",
            vec![ec2("security-group/*")],
            Some(json!({"StringEquals": {format!("aws:ResourceTag/{APP_TAG}"): d.cfg.app}})),
        ),
        EventRules => (
            "LewEventRules",
            [&n.task_stopped_rule, &n.reconcile_rule]
                .map(|r| d.rule_arn(r))
                .to_vec(),
            None,
        ),
        Anything => ("LewOnlyGrantableOnAnyResource", vec!["*".into()], None),
    }
}

/// The policy document: one statement per scope, its actions sorted.
pub fn document(d: &Deployment) -> Value {
    let mut by_scope: BTreeMap<On, Vec<&str>> = BTreeMap::new();
    for (action, on) in CALLS.iter().flat_map(|c| c.needs) {
        by_scope.entry(*on).or_default().push(action);
    }
    by_scope.entry(Repository).or_default().extend(DOCKER_PUSH);
    let statements: Vec<Value> = by_scope
        .into_iter()
        .map(|(on, mut actions)| {
            actions.sort_unstable();
            actions.dedup();
            let (sid, resources, condition) = scope(d, on);
            let mut s = json!({
                "Sid": sid,
                "Effect": "Allow",
                "Action": actions,
                "Resource": resources,
            });
            if let Some(c) = condition {
                s["Condition"] = c;
            }
            s
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The policy document itself, in text and JSON alike, so `lew iam-policy > policy.json` is the
/// file `aws iam put-role-policy --policy-document file://policy.json` takes.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct PolicyReport {
    pub document: Value,
}

impl fmt::Display for PolicyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string_pretty(&self.document).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Report for PolicyReport {}

pub async fn run(ctx: &Ctx) -> Result<PolicyReport> {
    let d = ctx.deployment().await?;
    Ok(PolicyReport {
        document: document(&d),
    })
}

"""The sequential boto3 reference for `scripts/bench`: what a Fabric-style deploy script does.

    python bench/reference.py setup APP      creates everything `lew setup` creates, from nothing
    python bench/reference.py teardown APP   deletes it again, in reverse order

It makes the create calls `lew setup` makes (same names, settings, policies and tags: see
src/resources/*.rs), one after another, with no existence checks beyond what such a script needs
(the default VPC's subnets, the security group's id, the task definition's revisions). Teardown
deletes one resource after the other and ignores "not found". The endpoint comes from
AWS_ENDPOINT_URL, as for every AWS SDK.

`reference.py warm APP` only makes one read call per service (the bench runs it, untimed, right
after resetting the emulator). The last line on stdout is a JSON summary: {"command", "app",
"calls", "import_s", "clients_s", "calls_s", "total_s"} (time to import boto3, to build the
clients, and spent in API calls).
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import io  # noqa: E402 (timed from the very start)
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

IMPORTED = time.perf_counter()

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "launcher" / "launcher.py"
VERSION = "0.1.0"
POLICY_NAME = "lew"
TLS_SID = "LewDenyInsecureTransport"
PERMISSION_SID = "LewS3Invoke"
CONTAINER = "worker"
SCRATCH = "/scratch"

# The defaults of lew.toml (see config.example.toml).
INPUT_PREFIX = "scenes/"
OUTPUT_PREFIX = "renders/"
VISIBILITY_TIMEOUT_S = 900
MAX_RECEIVES = 3
LAUNCHER_MEMORY_MB = 128
LAUNCHER_TIMEOUT_S = 30
WORKER_CPU = 1024
WORKER_MEMORY_MB = 2048
MAX_TASKS = 4
RENDER_TIMEOUT_S = 3600
RETENTION_DAYS = 14
KEEP_IMAGES = 10

# "Not there" in each service's words: teardown treats it as done.
MISSING = {
    "NoSuchEntity",
    "NoSuchBucket",
    "NoSuchKey",
    "ResourceNotFoundException",
    "RepositoryNotFoundException",
    "ClusterNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "InvalidGroup.NotFound",
    "ClientException",
}


class Script:
    def __init__(self, app: str) -> None:
        self.app = app
        self.region = (
            os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-west-1"
        )
        config = Config(s3={"addressing_style": "path"})
        self.iam = boto3.client("iam", region_name=self.region)
        self.s3 = boto3.client("s3", region_name=self.region, config=config)
        self.sqs = boto3.client("sqs", region_name=self.region)
        self.ecs = boto3.client("ecs", region_name=self.region)
        self.ecr = boto3.client("ecr", region_name=self.region)
        self.logs = boto3.client("logs", region_name=self.region)
        self.ec2 = boto3.client("ec2", region_name=self.region)
        self.awslambda = boto3.client("lambda", region_name=self.region)
        self.events = boto3.client("events", region_name=self.region)
        self.sts = boto3.client("sts", region_name=self.region)
        self.calls = 0
        for c in (
            self.iam,
            self.s3,
            self.sqs,
            self.ecs,
            self.ecr,
            self.logs,
            self.ec2,
            self.awslambda,
            self.events,
            self.sts,
        ):
            c.meta.events.register("before-send", self._count)

        p = f"lew-{app}"
        self.prefix = p
        self.queue = f"{p}-jobs"
        self.dlq = f"{p}-jobs-dlq"
        self.function = f"{p}-launcher"
        self.launcher_role = f"{p}-launcher"
        self.task_role = f"{p}-task"
        self.execution_role = f"{p}-execution"
        self.cluster = p
        self.family = f"{p}-worker"
        self.repository = f"{p}-worker"
        self.worker_logs = f"/lew/{app}/worker"
        self.launcher_logs = f"/aws/lambda/{p}-launcher"
        self.security_group = f"{p}-worker"
        self.account = ""

    def _count(self, **_: Any) -> None:
        self.calls += 1

    # -- names and documents ------------------------------------------------------------------

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def role_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.account}:role/{name}"

    @property
    def bucket(self) -> str:
        return f"{self.prefix}-{self.account}-{self.region}"

    def tags(self) -> dict[str, str]:
        return {"lew:app": self.app, "lew:version": VERSION}

    def tag_list(self, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
        return [{key: k, value: v} for k, v in self.tags().items()]

    def trust(self, service: str, guard: bool) -> str:
        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
        }
        if guard:
            statement["Condition"] = {
                "ArnLike": {"aws:SourceArn": self.arn("ecs", "*")},
                "StringEquals": {"aws:SourceAccount": self.account},
            }
        return json.dumps({"Version": "2012-10-17", "Statement": [statement]})

    def policies(self) -> list[tuple[str, str, str, bool, dict[str, Any]]]:
        """(role, description, trusted service, account guard, inline policy) per role."""
        queue_arn = self.arn("sqs", self.queue)
        cluster_arn = self.arn("ecs", f"cluster/{self.cluster}")
        bucket_arn = f"arn:aws:s3:::{self.bucket}"

        def group_arn(name: str) -> str:
            return self.arn("logs", f"log-group:{name}") + ":*"

        launcher = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "QueueJobs",
                    "Effect": "Allow",
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                },
                {
                    "Sid": "CountJobs",
                    "Effect": "Allow",
                    "Action": "sqs:GetQueueAttributes",
                    "Resource": queue_arn,
                },
                {
                    "Sid": "StartWorkers",
                    "Effect": "Allow",
                    "Action": "ecs:RunTask",
                    "Resource": self.arn("ecs", f"task-definition/{self.family}:*"),
                    "Condition": {"ArnEquals": {"ecs:cluster": cluster_arn}},
                },
                {
                    "Sid": "CountWorkers",
                    "Effect": "Allow",
                    "Action": "ecs:ListTasks",
                    "Resource": "*",
                    "Condition": {"ArnEquals": {"ecs:cluster": cluster_arn}},
                },
                {
                    "Sid": "PassTaskRoles",
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": [
                        self.role_arn(self.task_role),
                        self.role_arn(self.execution_role),
                    ],
                    "Condition": {
                        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
                    },
                },
                {
                    "Sid": "WriteOwnLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": group_arn(self.launcher_logs),
                },
            ],
        }
        task = {
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
                    "Resource": queue_arn,
                },
                {
                    "Sid": "ReadScenes",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"{bucket_arn}/{INPUT_PREFIX}*",
                },
                {
                    "Sid": "WriteRenders",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject"],
                    "Resource": f"{bucket_arn}/{OUTPUT_PREFIX}*",
                },
                {
                    "Sid": "SeeMissingRenders",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": bucket_arn,
                },
            ],
        }
        execution = {
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
                    "Resource": self.arn("ecr", f"repository/{self.repository}"),
                },
                {
                    "Sid": "WriteWorkerLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": group_arn(self.worker_logs),
                },
            ],
        }
        return [
            (
                self.launcher_role,
                "lew launcher Lambda: queues render jobs and starts worker tasks",
                "lambda.amazonaws.com",
                False,
                launcher,
            ),
            (
                self.task_role,
                "lew worker task: takes render jobs off the queue, reads scenes, writes renders",
                "ecs-tasks.amazonaws.com",
                True,
                task,
            ),
            (
                self.execution_role,
                "lew worker task execution: pulls the worker image, ships its logs",
                "ecs-tasks.amazonaws.com",
                True,
                execution,
            ),
        ]

    # -- setup --------------------------------------------------------------------------------

    def setup(self) -> None:
        self.account = self.sts.get_caller_identity()["Account"]

        for name, description, service, guard, policy in self.policies():
            self.iam.create_role(
                RoleName=name,
                Description=description,
                AssumeRolePolicyDocument=self.trust(service, guard),
                Tags=self.tag_list(),
            )
            self.iam.put_role_policy(
                RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy)
            )

        bucket = self.bucket
        create: dict[str, Any] = {"Bucket": bucket, "ObjectOwnership": "BucketOwnerEnforced"}
        if self.region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        self.s3.create_bucket(**create)
        self.s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        self.s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        bucket_arn = f"arn:aws:s3:::{bucket}"
        tls = {
            "Sid": TLS_SID,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
        self.s3.put_bucket_policy(
            Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [tls]})
        )
        self.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": self.tag_list()})
        self.s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": f"lew-abort-incomplete-uploads-{which}",
                        "Filter": {"Prefix": prefix},
                        "Status": "Enabled",
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    }
                    for which, prefix in (("input", INPUT_PREFIX), ("output", OUTPUT_PREFIX))
                ]
            },
        )

        self.sqs.create_queue(
            QueueName=self.dlq,
            Attributes={"SqsManagedSseEnabled": "true", "MessageRetentionPeriod": "1209600"},
            tags=self.tags(),
        )
        redrive = {"deadLetterTargetArn": self.arn("sqs", self.dlq), "maxReceiveCount": 3}
        queue_url = self.sqs.create_queue(
            QueueName=self.queue,
            Attributes={
                "SqsManagedSseEnabled": "true",
                "VisibilityTimeout": str(VISIBILITY_TIMEOUT_S),
                "ReceiveMessageWaitTimeSeconds": "20",
                "RedrivePolicy": json.dumps(redrive),
            },
            tags=self.tags(),
        )["QueueUrl"]

        self.ecs.create_cluster(
            clusterName=self.cluster,
            capacityProviders=["FARGATE", "FARGATE_SPOT"],
            tags=self.tag_list("key", "value"),
        )

        self.ecr.create_repository(
            repositoryName=self.repository,
            imageScanningConfiguration={"scanOnPush": True},
            imageTagMutability="MUTABLE",
            tags=self.tag_list(),
        )
        lifecycle = {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"keep the last {KEEP_IMAGES} worker images",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": KEEP_IMAGES,
                    },
                    "action": {"type": "expire"},
                }
            ]
        }
        self.ecr.put_lifecycle_policy(
            repositoryName=self.repository, lifecyclePolicyText=json.dumps(lifecycle)
        )

        for group in (self.worker_logs, self.launcher_logs):
            self.logs.create_log_group(logGroupName=group, tags=self.tags())
            self.logs.put_retention_policy(logGroupName=group, retentionInDays=RETENTION_DAYS)

        vpc = self.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][
            0
        ]["VpcId"]
        subnets = sorted(
            s["SubnetId"]
            for s in self.ec2.describe_subnets(
                Filters=[
                    {"Name": "vpc-id", "Values": [vpc]},
                    {"Name": "default-for-az", "Values": ["true"]},
                ]
            )["Subnets"]
        )
        group_id = self.ec2.create_security_group(
            GroupName=self.security_group,
            Description="lew worker tasks: outbound only",
            VpcId=vpc,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": self.tag_list()}],
        )["GroupId"]

        self.register_task_definition(queue_url)
        self.create_function(queue_url, subnets, group_id)

        self.awslambda.add_permission(
            FunctionName=self.function,
            StatementId=PERMISSION_SID,
            Action="lambda:InvokeFunction",
            Principal="s3.amazonaws.com",
            SourceArn=bucket_arn,
            SourceAccount=self.account,
        )
        self.s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "LambdaFunctionConfigurations": [
                    {
                        "Id": f"lew-{self.app}-launcher",
                        "LambdaFunctionArn": self.arn("lambda", f"function:{self.function}"),
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {
                                "FilterRules": [
                                    {"Name": "prefix", "Value": INPUT_PREFIX},
                                    {"Name": "suffix", "Value": ".zip"},
                                ]
                            }
                        },
                    }
                ]
            },
        )

        # The EventBridge rules: a worker task stops, and the schedule (src/resources/events.rs).
        function_arn = self.arn("lambda", f"function:{self.function}")
        for rule, sid, kind in self.rules():
            self.events.put_rule(Name=rule, Tags=self.tag_list(), **kind)
            self.awslambda.add_permission(
                FunctionName=self.function,
                StatementId=sid,
                Action="lambda:InvokeFunction",
                Principal="events.amazonaws.com",
                SourceArn=self.arn("events", f"rule/{rule}"),
            )
            self.events.put_targets(
                Rule=rule, Targets=[{"Id": "lew-launcher", "Arn": function_arn}]
            )

    def rules(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(name, permission statement id, PutRule's pattern or schedule) of each rule."""
        pattern = {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {
                "clusterArn": [self.arn("ecs", f"cluster/{self.cluster}")],
                "lastStatus": ["STOPPED"],
            },
        }
        return [
            (
                f"{self.prefix}-task-stopped",
                "LewTaskStoppedInvoke",
                {"EventPattern": json.dumps(pattern)},
            ),
            (
                f"{self.prefix}-reconcile",
                "LewScheduleInvoke",
                {"ScheduleExpression": "rate(5 minutes)"},
            ),
        ]

    def register_task_definition(self, queue_url: str) -> None:
        environment = {
            "LEW_QUEUE_URL": queue_url,
            "LEW_INPUT_PREFIX": INPUT_PREFIX,
            "LEW_OUTPUT_PREFIX": OUTPUT_PREFIX,
            "LEW_RENDER_TIMEOUT_S": str(RENDER_TIMEOUT_S),
            "LEW_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
            "LEW_HEARTBEAT_S": str(min(max(VISIBILITY_TIMEOUT_S // 3, 5), 60)),
            "LEW_POVRAY_THREADS": str(max(WORKER_CPU // 1024, 1)),
            "LEW_WORK_DIR": SCRATCH,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }
        image = f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{self.repository}:latest"
        self.ecs.register_task_definition(
            family=self.family,
            taskRoleArn=self.role_arn(self.task_role),
            executionRoleArn=self.role_arn(self.execution_role),
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            runtimePlatform={"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
            cpu=str(WORKER_CPU),
            memory=str(WORKER_MEMORY_MB),
            containerDefinitions=[
                {
                    "name": CONTAINER,
                    "image": image,
                    "essential": True,
                    "memoryReservation": WORKER_MEMORY_MB,
                    "readonlyRootFilesystem": True,
                    "mountPoints": [
                        {"sourceVolume": "scratch", "containerPath": SCRATCH, "readOnly": False}
                    ],
                    "stopTimeout": 120,
                    "environment": [
                        {"name": k, "value": v} for k, v in sorted(environment.items())
                    ],
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": self.worker_logs,
                            "awslogs-region": self.region,
                            "awslogs-stream-prefix": CONTAINER,
                        },
                    },
                }
            ],
            volumes=[{"name": "scratch"}],
            tags=self.tag_list("key", "value"),
        )

    def create_function(self, queue_url: str, subnets: list[str], group_id: str) -> None:
        package = io.BytesIO()
        with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("launcher.py", LAUNCHER.read_text())
        environment = {
            "LEW_QUEUE_URL": queue_url,
            "LEW_CLUSTER": self.cluster,
            "LEW_TASK_FAMILY": self.family,
            "LEW_CONTAINER_NAME": CONTAINER,
            "LEW_SUBNETS": ",".join(subnets),
            "LEW_SECURITY_GROUPS": group_id,
            "LEW_ASSIGN_PUBLIC_IP": "ENABLED",
            "LEW_MAX_TASKS": str(MAX_TASKS),
            "LEW_CAPACITY_PROVIDER": "FARGATE",
            "LEW_INPUT_PREFIX": INPUT_PREFIX,
            "LEW_INPUT_SUFFIX": ".zip",
            "LEW_STARTED_BY": "lew-launcher",
        }
        self.awslambda.create_function(
            FunctionName=self.function,
            Description="lew launcher: queues render jobs and starts worker tasks",
            Runtime="python3.12",
            Handler="launcher.handler",
            Role=self.role_arn(self.launcher_role),
            MemorySize=LAUNCHER_MEMORY_MB,
            Timeout=LAUNCHER_TIMEOUT_S,
            Environment={"Variables": environment},
            Code={"ZipFile": package.getvalue()},
            Tags=self.tags(),
        )
        self.awslambda.get_waiter("function_active_v2").wait(FunctionName=self.function)
        self.awslambda.put_function_event_invoke_config(
            FunctionName=self.function, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=3600
        )
        self.awslambda.put_function_concurrency(
            FunctionName=self.function, ReservedConcurrentExecutions=1
        )

    # -- teardown -----------------------------------------------------------------------------

    def teardown(self) -> None:
        self.account = self.sts.get_caller_identity()["Account"]
        bucket = self.bucket
        gone(
            self.s3.put_bucket_notification_configuration,
            Bucket=bucket,
            NotificationConfiguration={},
        )
        for rule, _, _ in self.rules():
            gone(self.events.remove_targets, Rule=rule, Ids=["lew-launcher"])
            gone(self.events.delete_rule, Name=rule)
        gone(
            self.awslambda.remove_permission, FunctionName=self.function, StatementId=PERMISSION_SID
        )
        gone(self.awslambda.delete_function, FunctionName=self.function)

        revisions = self.ecs.list_task_definitions(familyPrefix=self.family)["taskDefinitionArns"]
        for arn in revisions:
            gone(self.ecs.deregister_task_definition, taskDefinition=arn)
        if revisions:
            gone(self.ecs.delete_task_definitions, taskDefinitions=revisions)

        groups = self.ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [self.security_group]}]
        )["SecurityGroups"]
        for group in groups:
            gone(self.ec2.delete_security_group, GroupId=group["GroupId"])

        for group in (self.launcher_logs, self.worker_logs):
            gone(self.logs.delete_log_group, logGroupName=group)
        gone(self.ecr.delete_repository, repositoryName=self.repository, force=True)
        gone(self.ecs.delete_cluster, cluster=self.cluster)

        for name in (self.queue, self.dlq):
            url = gone(self.sqs.get_queue_url, QueueName=name)
            if url:
                gone(self.sqs.delete_queue, QueueUrl=url["QueueUrl"])

        versions = gone(self.s3.list_object_versions, Bucket=bucket) or {}
        objects = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])
        ]
        if objects:
            gone(self.s3.delete_objects, Bucket=bucket, Delete={"Objects": objects})
        gone(self.s3.delete_bucket, Bucket=bucket)

        for name in (self.launcher_role, self.task_role, self.execution_role):
            gone(self.iam.delete_role_policy, RoleName=name, PolicyName=POLICY_NAME)
            gone(self.iam.delete_role, RoleName=name)

    # -- warm-up (not part of the reference) ---------------------------------------------------

    def warm(self) -> None:
        """One cheap read per service, so an emulator that was just reset has built its
        per-service state (moto creates the default VPC, for one) before a measured command."""
        self.sts.get_caller_identity()
        self.iam.list_roles(MaxItems=1)
        self.s3.list_buckets()
        self.sqs.list_queues()
        self.ecs.list_clusters()
        self.ecr.describe_repositories()
        self.logs.describe_log_groups(limit=1)
        self.ec2.describe_vpcs()
        self.awslambda.list_functions(MaxItems=1)
        self.events.list_rules(Limit=1)
        boto3.client("resourcegroupstaggingapi", region_name=self.region).get_resources()


def gone(call: Any, **kwargs: Any) -> Any:
    """Calls; a "not found" error means there is nothing to do (None)."""
    try:
        return call(**kwargs)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in MISSING:
            return None
        raise


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("setup", "teardown", "warm"):
        print("usage: reference.py setup|teardown|warm APP", file=sys.stderr)
        return 2
    command, app = argv
    script = Script(app)
    clients_done = time.perf_counter()
    getattr(script, command)()
    done = time.perf_counter()
    summary = {
        "command": command,
        "app": app,
        "calls": script.calls,
        "import_s": round(IMPORTED - STARTED, 4),
        "clients_s": round(clients_done - IMPORTED, 4),
        "calls_s": round(done - clients_done, 4),
        "total_s": round(done - STARTED, 4),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The rules the emulator (scripts/moto_server.py) enforces where plain moto 5.2.5 is kinder than
AWS: one test (or more) per rule, each showing the request AWS refuses refused, and the request
AWS accepts accepted.

One emulator serves the module, with the documented waits at their defaults (a new Lambda
function is Pending for 1 s, a new queue cannot be used for 1 s); every test names its own
resources.
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from testkit import emulator

REGION = "eu-west-1"
ACCOUNT = "123456789012"
NO_RETRIES = Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"})


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    log = tmp_path_factory.mktemp("emulator") / "moto.log"
    settings = {"LEW_EMULATOR_LAMBDA_PENDING_S": "1", "LEW_EMULATOR_SQS_READY_S": "1"}
    with emulator.running(log, settings) as url:
        yield url


@pytest.fixture
def aws(endpoint: str) -> Callable[[str], Any]:
    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=REGION,
            config=NO_RETRIES,
        )

    return client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def wait_until(what: str, check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# ECS


@pytest.fixture
def cluster(aws: Callable[[str], Any]) -> dict[str, Any]:
    """A Fargate cluster with a registered task family and the default VPC's network."""
    ecs, ec2 = aws("ecs"), aws("ec2")
    name = unique("cluster")
    ecs.create_cluster(clusterName=name, capacityProviders=["FARGATE"])
    family = unique("family")
    ecs.register_task_definition(
        family=family,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "c", "image": "busybox", "memoryReservation": 64}],
    )
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}
    return {"ecs": ecs, "name": name, "family": family, "network": network}


def run(cluster: dict[str, Any], count: int = 1, **extra: Any) -> list[str]:
    params = {"launchType": "FARGATE", **extra}
    tasks = cluster["ecs"].run_task(
        cluster=cluster["name"],
        taskDefinition=cluster["family"],
        count=count,
        startedBy="lew-launcher",
        networkConfiguration=cluster["network"],
        **params,
    )["tasks"]
    return [t["taskArn"] for t in tasks]


def test_list_tasks_refuses_started_by_with_another_filter(cluster: dict[str, Any]) -> None:
    ecs, name = cluster["ecs"], cluster["name"]
    [arn] = run(cluster)
    for other in (
        {"desiredStatus": "RUNNING"},
        {"desiredStatus": "STOPPED"},
        {"family": cluster["family"]},
        {"launchType": "FARGATE"},
    ):
        with pytest.raises(ClientError) as caught:
            ecs.list_tasks(cluster=name, startedBy="lew-launcher", **other)
        code, message = error(caught)
        assert code == "InvalidParameterException", other
        assert "startedBy" in message and next(iter(other)) in message
    # Alone (in a cluster, which is no filter) it works, and lists the running task.
    assert ecs.list_tasks(cluster=name, startedBy="lew-launcher")["taskArns"] == [arn]


def test_list_tasks_lists_running_tasks_unless_told_otherwise(cluster: dict[str, Any]) -> None:
    ecs, name = cluster["ecs"], cluster["name"]
    running, stopped = run(cluster, count=2)
    ecs.stop_task(cluster=name, task=stopped, reason="test")
    assert ecs.list_tasks(cluster=name)["taskArns"] == [running]
    assert ecs.list_tasks(cluster=name, startedBy="lew-launcher")["taskArns"] == [running]
    assert ecs.list_tasks(cluster=name, desiredStatus="STOPPED")["taskArns"] == [stopped]
    assert ecs.list_tasks(cluster=name, desiredStatus="RUNNING")["taskArns"] == [running]


def test_run_task_starts_at_most_ten_tasks_per_call(cluster: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as caught:
        run(cluster, count=11)
    assert error(caught)[0] == "InvalidParameterException"
    assert len(run(cluster, count=10)) == 10


def test_run_task_uses_only_capacity_providers_of_the_cluster(cluster: dict[str, Any]) -> None:
    ecs = cluster["ecs"]

    def run_on_spot() -> list[dict[str, Any]]:
        return ecs.run_task(
            cluster=cluster["name"],
            taskDefinition=cluster["family"],
            startedBy="lew-launcher",
            networkConfiguration=cluster["network"],
            capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
        )["tasks"]

    with pytest.raises(ClientError) as caught:
        run_on_spot()
    code, message = error(caught)
    assert code == "InvalidParameterException" and "FARGATE_SPOT" in message
    ecs.put_cluster_capacity_providers(
        cluster=cluster["name"],
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[],
    )
    assert len(run_on_spot()) == 1


def test_describe_tasks_takes_at_most_100_tasks(cluster: dict[str, Any]) -> None:
    [arn] = run(cluster)
    with pytest.raises(ClientError) as caught:
        cluster["ecs"].describe_tasks(cluster=cluster["name"], tasks=[arn] * 101)
    assert error(caught)[0] == "InvalidParameterException"
    described = cluster["ecs"].describe_tasks(cluster=cluster["name"], tasks=[arn] * 100)
    assert [t["taskArn"] for t in described["tasks"]] == [arn]


def test_stop_task_reason_is_at_most_255_characters(cluster: dict[str, Any]) -> None:
    [arn] = run(cluster)
    with pytest.raises(ClientError) as caught:
        cluster["ecs"].stop_task(cluster=cluster["name"], task=arn, reason="x" * 256)
    assert error(caught)[0] == "InvalidParameterException"
    cluster["ecs"].stop_task(cluster=cluster["name"], task=arn, reason="x" * 255)


@pytest.mark.parametrize(
    ("cpu", "memory", "valid"),
    [
        ("256", "512", True),
        ("256", "4096", False),
        ("1024", "3072", True),
        ("1024", "3000", False),
        ("4096", "30720", True),
        ("8192", "20480", True),
        ("8192", "18432", False),
        ("300", "2048", False),
    ],
)
def test_fargate_task_definitions_take_only_fargate_sizes(
    aws: Callable[[str], Any], cpu: str, memory: str, valid: bool
) -> None:
    def register() -> None:
        aws("ecs").register_task_definition(
            family=unique("family"),
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu=cpu,
            memory=memory,
            containerDefinitions=[{"name": "c", "image": "busybox", "memoryReservation": 64}],
        )

    if valid:
        register()
    else:
        with pytest.raises(ClientError) as caught:
            register()
        code, message = error(caught)
        assert code == "ClientException" and f"{cpu} CPU, {memory} memory" in message


def test_a_task_says_when_it_was_created(cluster: dict[str, Any]) -> None:
    before = datetime.now(UTC)
    [arn] = run(cluster)
    [task] = cluster["ecs"].describe_tasks(cluster=cluster["name"], tasks=[arn])["tasks"]
    assert before - timedelta(seconds=1) <= task["createdAt"] <= datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# Lambda


def lambda_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return 1\n")
    return buf.getvalue()


def new_function(aws: Callable[[str], Any]) -> str:
    role = unique("role")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn = aws("iam").create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    name = unique("fn")
    aws("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=arn["Role"]["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": lambda_zip()},
    )
    return name


def state(aws: Callable[[str], Any], name: str) -> tuple[str, str | None]:
    config = aws("lambda").get_function(FunctionName=name)["Configuration"]
    return config["State"], config.get("LastUpdateStatus")


def wait_active(aws: Callable[[str], Any], name: str) -> None:
    wait_until(f"{name} Active", lambda: state(aws, name)[0] == "Active")


def test_a_new_function_is_pending_and_refuses_configuration_until_active(
    aws: Callable[[str], Any],
) -> None:
    lam = aws("lambda")
    name = new_function(aws)
    assert state(aws, name)[0] == "Pending"
    refused = [
        lambda: lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1),
        lambda: lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=2),
        lambda: lam.update_function_configuration(FunctionName=name, Timeout=10),
        lambda: lam.update_function_code(FunctionName=name, ZipFile=lambda_zip()),
        lambda: lam.publish_version(FunctionName=name),
        lambda: lam.invoke(FunctionName=name, Payload=b"{}"),
    ]
    for call in refused:
        with pytest.raises(ClientError) as caught:
            call()
        code, message = error(caught)
        assert code == "ResourceConflictException"
        assert "Pending" in message
    # Reading it works meanwhile, and the SDKs' waiter sees it become Active.
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10}
    )
    assert state(aws, name) == ("Active", "Successful")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=2)


def test_an_update_in_progress_refuses_another_update(aws: Callable[[str], Any]) -> None:
    lam = aws("lambda")
    name = new_function(aws)
    wait_active(aws, name)
    lam.update_function_configuration(FunctionName=name, Timeout=10)
    assert state(aws, name) == ("Active", "InProgress")
    for call in (
        lambda: lam.update_function_configuration(FunctionName=name, Timeout=11),
        lambda: lam.update_function_code(FunctionName=name, ZipFile=lambda_zip()),
        lambda: lam.publish_version(FunctionName=name),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        code, message = error(caught)
        assert code == "ResourceConflictException" and "update is in progress" in message
    # Settings that are no update of the function still work.
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10}
    )
    lam.update_function_code(FunctionName=name, ZipFile=lambda_zip())
    assert state(aws, name) == ("Active", "InProgress")


# ---------------------------------------------------------------------------------------------
# S3 event notifications


def new_bucket(aws: Callable[[str], Any]) -> str:
    name = unique("bucket")
    aws("s3").create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


def allow_s3(aws: Callable[[str], Any], function: str, bucket: str, sid: str = "s3") -> None:
    aws("lambda").add_permission(
        FunctionName=function,
        StatementId=sid,
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn=f"arn:aws:s3:::{bucket}",
        SourceAccount=ACCOUNT,
    )


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def lambda_entry(
    name: str, id_: str, prefix: str | None = None, suffix: str | None = None, event: str = ""
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Id": id_,
        "LambdaFunctionArn": function_arn(name),
        "Events": [event or "s3:ObjectCreated:*"],
    }
    rules = [{"Name": "prefix", "Value": prefix}] if prefix is not None else []
    rules += [{"Name": "suffix", "Value": suffix}] if suffix is not None else []
    if rules:
        entry["Filter"] = {"Key": {"FilterRules": rules}}
    return entry


def put(aws: Callable[[str], Any], bucket: str, *lambdas: dict[str, Any], **more: Any) -> None:
    aws("s3").put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"LambdaFunctionConfigurations": list(lambdas), **more},
    )


@pytest.fixture
def invokable(aws: Callable[[str], Any]) -> tuple[str, str]:
    """A bucket and a function S3 may invoke for it."""
    bucket, function = new_bucket(aws), new_function(aws)
    allow_s3(aws, function, bucket)
    return bucket, function


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("scenes/", ".zip"), ("scenes/", ".zip")),
        (("scenes/", ".zip"), ("scenes/a/", None)),  # one prefix within the other
        (("scenes/", ".zip"), (None, "a.zip")),  # no prefix: every key; suffixes overlap
        (("scenes/", None), ("scenes/", ".png")),  # no suffix: every key under the prefix
    ],
)
def test_overlapping_rules_for_a_common_event_type_are_refused(
    aws: Callable[[str], Any],
    invokable: tuple[str, str],
    first: tuple[str | None, str | None],
    second: tuple[str | None, str | None],
) -> None:
    bucket, function = invokable
    with pytest.raises(ClientError) as caught:
        put(
            aws,
            bucket,
            lambda_entry(function, "one", *first),
            lambda_entry(function, "two", *second),
        )
    code, message = error(caught)
    assert code == "InvalidArgument"
    assert message.startswith("Configuration is ambiguously defined.")
    assert (
        aws("s3")
        .get_bucket_notification_configuration(Bucket=bucket)
        .get("LambdaFunctionConfigurations")
        is None
    )


def test_two_unfiltered_rules_for_a_common_event_type_are_refused(
    aws: Callable[[str], Any], invokable: tuple[str, str]
) -> None:
    bucket, function = invokable
    with pytest.raises(ClientError) as caught:
        put(
            aws,
            bucket,
            lambda_entry(function, "all"),
            lambda_entry(function, "puts", event="s3:ObjectCreated:Put"),
        )
    assert error(caught) == (
        "InvalidArgument",
        "Configurations overlap. Configurations on the same bucket cannot share a common event "
        "type.",
    )


def test_rules_that_cannot_match_the_same_event_are_accepted(
    aws: Callable[[str], Any], invokable: tuple[str, str]
) -> None:
    bucket, function = invokable
    entries = [
        lambda_entry(function, "scenes", "scenes/", ".zip"),
        lambda_entry(function, "other-prefix", "renders/", ".zip"),
        lambda_entry(function, "other-suffix", "scenes/", ".png"),
        lambda_entry(function, "other-event", "scenes/", ".zip", event="s3:ObjectRemoved:*"),
    ]
    put(aws, bucket, *entries)
    stored = aws("s3").get_bucket_notification_configuration(Bucket=bucket)
    assert sorted(c["Id"] for c in stored["LambdaFunctionConfigurations"]) == sorted(
        e["Id"] for e in entries
    )


def arguments(caught: pytest.ExceptionInfo[ClientError]) -> dict[str, str]:
    """The ArgumentName<n> -> ArgumentValue<n> pairs of an S3 error."""
    err = caught.value.response["Error"]
    return {err[k]: err[k.replace("Name", "Value")] for k in err if k.startswith("ArgumentName")}


def test_a_function_without_a_permission_for_s3_is_refused_as_a_destination(
    aws: Callable[[str], Any],
) -> None:
    bucket, function = new_bucket(aws), new_function(aws)
    with pytest.raises(ClientError) as caught:
        put(aws, bucket, lambda_entry(function, "launcher", "scenes/", ".zip"))
    code, message = error(caught)
    assert (code, message) == (
        "InvalidArgument",
        "Unable to validate the following destination configurations",
    )
    assert arguments(caught) == {
        function_arn(function): f"Not authorized to invoke function [{function_arn(function)}]."
    }
    # A permission for another bucket, or another account, is no permission for this one.
    allow_s3(aws, function, "another-bucket", sid="other-bucket")
    aws("lambda").add_permission(
        FunctionName=function,
        StatementId="other-account",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn=f"arn:aws:s3:::{bucket}",
        SourceAccount="210987654321",
    )
    with pytest.raises(ClientError):
        put(aws, bucket, lambda_entry(function, "launcher", "scenes/", ".zip"))
    allow_s3(aws, function, bucket)
    put(aws, bucket, lambda_entry(function, "launcher", "scenes/", ".zip"))


def test_every_destination_is_tested_including_entries_carried_over(
    aws: Callable[[str], Any], invokable: tuple[str, str]
) -> None:
    bucket, function = invokable
    other = new_function(aws)
    allow_s3(aws, other, bucket)
    theirs = lambda_entry(other, "theirs", "uploads/", None)
    put(aws, bucket, theirs)
    aws("lambda").delete_function(FunctionName=other)
    # Adding an entry of one's own, and keeping theirs: their missing function fails the write.
    with pytest.raises(ClientError) as caught:
        put(aws, bucket, theirs, lambda_entry(function, "mine", "scenes/", ".zip"))
    assert error(caught)[0] == "InvalidArgument"
    assert list(arguments(caught)) == [function_arn(other)]
    assert "does not exist" in arguments(caught)[function_arn(other)]


def test_a_queue_destination_needs_a_policy_that_lets_s3_send(
    aws: Callable[[str], Any],
) -> None:
    bucket, sqs = new_bucket(aws), aws("sqs")
    url = sqs.create_queue(QueueName=unique("events"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    entry = {"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]}
    with pytest.raises(ClientError) as caught:
        aws("s3").put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=entry
        )
    assert list(arguments(caught)) == [arn]
    missing = {
        "QueueConfigurations": [
            {"QueueArn": f"{arn}-gone", "Events": ["s3:ObjectCreated:*"]},
        ]
    }
    with pytest.raises(ClientError) as caught:
        aws("s3").put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=missing
        )
    assert "does not exist" in arguments(caught)[f"{arn}-gone"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    aws("s3").put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=entry)


# ---------------------------------------------------------------------------------------------
# SQS


def test_a_queue_just_created_is_no_dead_letter_target_yet(aws: Callable[[str], Any]) -> None:
    sqs = aws("sqs")
    dlq = unique("dlq")
    sqs.create_queue(QueueName=dlq)
    redrive = json.dumps(
        {"deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{dlq}", "maxReceiveCount": 3}
    )
    jobs = unique("jobs")
    with pytest.raises(ClientError) as caught:
        sqs.create_queue(QueueName=jobs, Attributes={"RedrivePolicy": redrive})
    code, message = error(caught)
    assert code == "InvalidParameterValue"
    assert "RedrivePolicy" in message and "Dead letter target does not exist" in message
    # SetQueueAttributes too.
    url = sqs.create_queue(QueueName=unique("other"))["QueueUrl"]
    with pytest.raises(ClientError):
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": redrive})
    time.sleep(1.1)  # the documented second
    sqs.create_queue(QueueName=jobs, Attributes={"RedrivePolicy": redrive})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": redrive})


@pytest.mark.parametrize(
    ("attribute", "low", "high"),
    [
        ("DelaySeconds", 0, 900),
        ("MessageRetentionPeriod", 60, 1_209_600),
        ("ReceiveMessageWaitTimeSeconds", 0, 20),
        ("VisibilityTimeout", 0, 43_200),
    ],
)
def test_queue_attributes_stay_in_their_documented_ranges(
    aws: Callable[[str], Any], attribute: str, low: int, high: int
) -> None:
    sqs = aws("sqs")
    for value in (low - 1, high + 1):
        with pytest.raises(ClientError) as caught:
            sqs.create_queue(QueueName=unique("q"), Attributes={attribute: str(value)})
        assert error(caught)[0] == "InvalidAttributeValue", value
    url = sqs.create_queue(QueueName=unique("q"), Attributes={attribute: str(high)})["QueueUrl"]
    with pytest.raises(ClientError):
        sqs.set_queue_attributes(QueueUrl=url, Attributes={attribute: str(high + 1)})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={attribute: str(low)})


def test_a_redrive_policy_allows_1_to_1000_receives(aws: Callable[[str], Any]) -> None:
    sqs = aws("sqs")
    dlq = unique("dlq")
    sqs.create_queue(QueueName=dlq)
    time.sleep(1.1)  # usable a second after its creation
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{dlq}"
    for count, valid in ((0, False), (1, True), (1000, True), (1001, False)):
        redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": count})
        if valid:
            sqs.create_queue(QueueName=unique("jobs"), Attributes={"RedrivePolicy": redrive})
        else:
            with pytest.raises(ClientError) as caught:
                sqs.create_queue(QueueName=unique("jobs"), Attributes={"RedrivePolicy": redrive})
            assert error(caught)[0] == "InvalidParameterValue", count


def test_visibility_can_be_extended_to_12_hours_from_the_receive(
    aws: Callable[[str], Any],
) -> None:
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName=unique("jobs"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="job")
    [message] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"]
    receipt = message["ReceiptHandle"]
    time.sleep(1.1)
    # 12 hours from now ends after 12 hours from the receive.
    with pytest.raises(ClientError) as caught:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=43200)
    code, message_text = error(caught)
    assert code == "InvalidParameterValue" and "43200" in message_text
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=43190)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0)
    # A new receive starts a new 12 hours, however long ago the message was sent.
    [again] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"]
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=43199
    )

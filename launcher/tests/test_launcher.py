"""Tests of the launcher Lambda against a real moto server (see the root conftest.py).

Every test builds its own queue, cluster, task definition and security group, calls the
launcher, and then reads the outcome back from moto: the messages on the queue, and the tasks
that RunTask recorded (startedBy, task definition, capacity, network interface). Faults that
moto cannot produce (SQS entries reported as Failed, RunTask `failures`) are injected by a thin
wrapper around the real client, so the rest of each call still goes to moto.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from testkit.iam import queue_policy_for_s3

LAUNCHER_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(LAUNCHER_DIR))

import launcher  # noqa: E402

# --- helpers -------------------------------------------------------------------------------


class Recorder:
    """Forwards calls to a real boto3 client and records them; `overrides` replace methods.

    An override is called as `override(real_client, **kwargs)`.
    """

    def __init__(self, real: Any, **overrides: Callable[..., Any]) -> None:
        self._real = real
        self._overrides = overrides
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name == "get_paginator" or not callable(attr):
            return attr

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, copy.deepcopy(kwargs)))
            if name in self._overrides:
                return self._overrides[name](self._real, **kwargs)
            return attr(**kwargs)

        return call

    def kwargs(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for called, kwargs in self.calls if called == name]


@dataclass
class Stack:
    """The AWS side of one test, created in moto."""

    sqs: Any
    ecs: Any
    ec2: Any
    queue_url: str
    cluster: str
    family: str
    task_definition_arn: str  # the latest revision
    subnets: list[str]
    security_group: str
    bucket: str


def s3_record(
    key: str,
    *,
    bucket: str = "lew-test-bucket",
    encoding: str = "aws",
    size: int = 123,
    etag: str | None = "d41d8cd98f00b204e9800998ecf8427e",
    sequencer: str | None = None,
    event_name: str = "ObjectCreated:Put",
) -> dict[str, Any]:
    """One S3 event record, with the key encoded as AWS does (`/` kept) or as moto does."""
    if encoding == "aws":
        raw_key = urllib.parse.quote_plus(key, safe="/")
    elif encoding == "moto":
        raw_key = urllib.parse.quote_plus(key, safe="")
    else:
        raise ValueError(encoding)
    obj: dict[str, Any] = {"key": raw_key, "size": size}
    if etag is not None:
        obj["eTag"] = etag
    if sequencer is not None:
        obj["sequencer"] = sequencer
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-01-01T00:00:00.000Z",
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "lew",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }


def s3_event(*records: dict[str, Any], put: bool = True) -> dict[str, Any]:
    """The event of `records`. As when S3 sends it, the objects exist (the launcher reads each
    object's metadata): they are put into moto first, unless `put` is false."""
    if put:
        s3 = boto3.client("s3")
        for record in records:
            bucket = ((record.get("s3") or {}).get("bucket") or {}).get("name")
            raw_key = ((record.get("s3") or {}).get("object") or {}).get("key")
            if not bucket or not isinstance(raw_key, str):
                continue
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key=urllib.parse.unquote_plus(raw_key), Body=b"")
    return {"Records": list(records)}


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message body on the queue (they stay invisible for the rest of the test)."""
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(json.loads(m["Body"]) for m in messages)


def lew_task_arns(ecs: Any, cluster: str) -> list[str]:
    """The tasks the launcher started that run (ListTasks takes startedBy only as its one
    filter, and then lists the tasks whose desired status is RUNNING)."""
    return ecs.list_tasks(cluster=cluster, startedBy="lew-launcher")["taskArns"]


def describe(ecs: Any, cluster: str, arns: list[str]) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns), 100):
        tasks += ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100])["tasks"]
    return tasks


def start_existing(stack: Stack, count: int, started_by: str = "lew-launcher") -> list[str]:
    """Tasks started outside the launcher (e.g. by an earlier invocation)."""
    response = stack.ecs.run_task(
        cluster=stack.cluster,
        taskDefinition=stack.family,
        count=count,
        startedBy=started_by,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": stack.subnets[:1],
                "securityGroups": [stack.security_group],
                "assignPublicIp": "ENABLED",
            }
        },
    )
    assert response["failures"] == []
    return [t["taskArn"] for t in response["tasks"]]


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The launcher's stdout: every line must be one JSON object with an `event`."""
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(p, dict) and "event" in p for p in parsed)
    return parsed


def events(lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == name]


# --- fixtures ------------------------------------------------------------------------------


@dataclass
class Aws:
    """Clients and the default VPC's subnets, shared by the session (creating them is slow)."""

    sqs: Any
    ecs: Any
    ec2: Any
    vpc_id: str
    subnets: list[str]


@pytest.fixture(scope="session")
def aws(moto_endpoint: str) -> Aws:
    ec2 = boto3.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    return Aws(
        sqs=boto3.client("sqs"),
        ecs=boto3.client("ecs"),
        ec2=ec2,
        vpc_id=vpc["VpcId"],
        subnets=[s["SubnetId"] for s in subnets["Subnets"]][:2],
    )


@pytest.fixture
def stack(aws: Aws, unique: str, monkeypatch: pytest.MonkeyPatch) -> Stack:
    sqs, ecs, ec2, subnets = aws.sqs, aws.ecs, aws.ec2, aws.subnets
    queue_url = sqs.create_queue(QueueName=f"lew-{unique}-jobs")["QueueUrl"]
    cluster = f"lew-{unique}"
    ecs.create_cluster(clusterName=cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    family = f"lew-{unique}-worker"
    arn = ""
    for image in ("worker:old", "worker:new"):  # two revisions: RunTask must take the latest
        arn = ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="1024",
            memory="2048",
            containerDefinitions=[
                # moto answers RunTask with HTTP 500 without memory/memoryReservation
                {"name": "worker", "image": image, "memoryReservation": 2048, "essential": True}
            ],
        )["taskDefinition"]["taskDefinitionArn"]
    sg = ec2.create_security_group(
        GroupName=f"lew-{unique}-worker", Description="lew worker", VpcId=aws.vpc_id
    )["GroupId"]

    for name in list(os.environ):
        if name.startswith("LEW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LEW_QUEUE_URL", queue_url)
    monkeypatch.setenv("LEW_CLUSTER", cluster)
    monkeypatch.setenv("LEW_TASK_FAMILY", family)
    monkeypatch.setenv("LEW_SUBNETS", ",".join(subnets))
    monkeypatch.setenv("LEW_SECURITY_GROUPS", sg)
    # the launcher's own clients, fresh for every test (so injected wrappers never leak)
    monkeypatch.setattr(launcher, "_CLIENTS", {"sqs": sqs, "ecs": ecs, "s3": boto3.client("s3")})
    # no sleeping between SendMessageBatch retries
    monkeypatch.setattr(launcher, "SEND_BACKOFF_S", 0.0)
    return Stack(
        sqs=sqs,
        ecs=ecs,
        ec2=ec2,
        queue_url=queue_url,
        cluster=cluster,
        family=family,
        task_definition_arn=arn,
        subnets=subnets,
        security_group=sg,
        bucket=f"lew-{unique}-data",
    )


def record_clients(**overrides: dict[str, Callable[..., Any]]) -> dict[str, Recorder]:
    """Wrap the launcher's sqs and ecs clients (set by `stack`) in recorders."""
    recorders = {}
    for service in ("sqs", "ecs"):
        recorders[service] = Recorder(launcher._CLIENTS[service], **overrides.get(service, {}))
        launcher._CLIENTS[service] = recorders[service]
    return recorders


# --- end to end against moto ---------------------------------------------------------------


def test_one_record_queues_one_job_and_starts_one_task(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "scenes/job-1/scene.zip"
    recorders = record_clients()
    result = launcher.handler(
        s3_event(s3_record(key, bucket=stack.bucket, size=4096, etag="abc123")), None
    )

    assert drain(stack.sqs, stack.queue_url) == [
        {
            "version": 1,
            "job_id": "job-1",
            "bucket": stack.bucket,
            "key": key,
            "size": 4096,
            "etag": "abc123",
        }
    ]
    arns = lew_task_arns(stack.ecs, stack.cluster)
    assert len(arns) == 1
    (task,) = describe(stack.ecs, stack.cluster, arns)
    assert task["startedBy"] == "lew-launcher"
    assert task["taskDefinitionArn"] == stack.task_definition_arn  # latest revision
    assert task["launchType"] == "FARGATE"
    details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    assert details["subnetId"] == stack.subnets[0]
    eni = stack.ec2.describe_network_interfaces(
        NetworkInterfaceIds=[details["networkInterfaceId"]]
    )["NetworkInterfaces"][0]
    assert [g["GroupId"] for g in eni["Groups"]] == [stack.security_group]
    # describe_tasks has no networkConfiguration in moto (nor on AWS): the full request
    (call,) = recorders["ecs"].kwargs("run_task")
    assert call["networkConfiguration"] == {
        "awsvpcConfiguration": {
            "subnets": stack.subnets,
            "securityGroups": [stack.security_group],
            "assignPublicIp": "ENABLED",
        }
    }

    assert result == {"queued": 1, "skipped": 0, "started": 1, "running": 0}
    lines = log_lines(capsys)
    assert events(lines, "queued")[0]["key"] == key
    assert events(lines, "tasks") == [
        {"event": "tasks", "running": 0, "starting": 1, "max_tasks": 4, "new_jobs": 1}
    ]
    assert events(lines, "started")[0]["task_arns"] == arns


def test_three_records_queue_three_jobs_and_start_three_tasks(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launcher, "_CLIENTS", {})  # the launcher makes its own clients here
    keys = ["scenes/a/a.zip", "scenes/b/b.zip", "scenes/c.zip"]
    result = launcher.handler(s3_event(*(s3_record(k, etag=k) for k in keys)), None)
    assert sorted(launcher._CLIENTS) == ["ecs", "s3", "sqs"]

    bodies = drain(stack.sqs, stack.queue_url)
    assert sorted((b["job_id"], b["key"]) for b in bodies) == [
        ("a", "scenes/a/a.zip"),
        ("b", "scenes/b/b.zip"),
        ("c", "scenes/c.zip"),
    ]
    assert len(lew_task_arns(stack.ecs, stack.cluster)) == 3
    assert result["queued"] == 3
    assert result["started"] == 3


def test_25_records_are_sent_in_three_batches_and_tasks_are_capped(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEW_MAX_TASKS", "4")
    recorders = record_clients()
    records = [
        s3_record(f"scenes/job-{i:02d}/scene {i}.zip", size=i, etag=f"etag{i}") for i in range(25)
    ]

    result = launcher.handler(s3_event(*records), None)

    batches = recorders["sqs"].kwargs("send_message_batch")
    assert [len(b["Entries"]) for b in batches] == [10, 10, 5]
    for batch in batches:
        ids = [e["Id"] for e in batch["Entries"]]
        assert len(set(ids)) == len(ids)
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,80}", i) for i in ids)
    bodies = drain(stack.sqs, stack.queue_url)
    assert sorted(bodies, key=lambda b: b["size"]) == [
        {
            "version": 1,
            "job_id": f"job-{i:02d}",
            "bucket": "lew-test-bucket",
            "key": f"scenes/job-{i:02d}/scene {i}.zip",
            "size": i,
            "etag": f"etag{i}",
        }
        for i in range(25)
    ]
    assert len(lew_task_arns(stack.ecs, stack.cluster)) == 4
    assert [c["count"] for c in recorders["ecs"].kwargs("run_task")] == [4]
    assert result == {"queued": 25, "skipped": 0, "started": 4, "running": 0}


def test_run_task_is_called_with_at_most_ten_tasks(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEW_MAX_TASKS", "30")
    recorders = record_clients()
    records = [s3_record(f"scenes/j{i}/s.zip", etag=str(i)) for i in range(25)]

    launcher.handler(s3_event(*records), None)

    assert [c["count"] for c in recorders["ecs"].kwargs("run_task")] == [10, 10, 5]
    arns = lew_task_arns(stack.ecs, stack.cluster)
    assert len(arns) == 25
    assert {t["startedBy"] for t in describe(stack.ecs, stack.cluster, arns)} == {"lew-launcher"}


KEYS = [
    "scenes/my job/my scene.zip",
    "scenes/a+b/c+d.zip",
    "scenes/ünï cödé ✓/场景.zip",
    "scenes/pct/a%2Fb.zip",
    "scenes/odd & = ? #/x.zip",
]


@pytest.mark.parametrize("encoding", ["aws", "moto"])
def test_keys_are_decoded(stack: Stack, encoding: str) -> None:
    records = [s3_record(k, encoding=encoding, etag=str(i)) for i, k in enumerate(KEYS)]
    if encoding == "moto":
        assert "%2F" in records[0]["s3"]["object"]["key"]
    else:
        assert records[0]["s3"]["object"]["key"] == "scenes/my+job/my+scene.zip"

    launcher.handler(s3_event(*records), None)

    bodies = drain(stack.sqs, stack.queue_url)
    assert sorted((b["key"], b["job_id"]) for b in bodies) == sorted(
        [
            ("scenes/my job/my scene.zip", "my job"),
            ("scenes/a+b/c+d.zip", "a+b"),
            ("scenes/ünï cödé ✓/场景.zip", "ünï cödé ✓"),
            ("scenes/pct/a%2Fb.zip", "pct"),
            ("scenes/odd & = ? #/x.zip", "odd & = ? #"),
        ]
    )


def test_events_that_moto_s3_really_emits(stack: Stack, unique: str) -> None:
    """Upload to a moto bucket that notifies a queue, and feed those exact events in."""
    s3 = boto3.client("s3", config=BotoConfig(s3={"addressing_style": "path"}))
    events_url = stack.sqs.create_queue(QueueName=f"lew-{unique}-s3events")["QueueUrl"]
    events_arn = stack.sqs.get_queue_attributes(QueueUrl=events_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.create_bucket(Bucket=stack.bucket)
    # S3 checks that it may send to the queue before it stores the configuration.
    stack.sqs.set_queue_attributes(
        QueueUrl=events_url, Attributes={"Policy": queue_policy_for_s3(events_arn, stack.bucket)}
    )
    s3.put_bucket_notification_configuration(
        Bucket=stack.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": events_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    s3.put_object(Bucket=stack.bucket, Key="scenes/my job/a b+c é.zip", Body=b"zip")
    s3.put_object(Bucket=stack.bucket, Key="renders/my job/a.png", Body=b"png")
    upload = s3.create_multipart_upload(Bucket=stack.bucket, Key="scenes/big/big.zip")
    part = s3.upload_part(
        Bucket=stack.bucket,
        Key="scenes/big/big.zip",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"x" * 100,
    )
    s3.complete_multipart_upload(
        Bucket=stack.bucket,
        Key="scenes/big/big.zip",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    notifications = drain(stack.sqs, events_url)
    test_events = [n for n in notifications if n.get("Event") == "s3:TestEvent"]
    records = [r for n in notifications for r in n.get("Records", [])]
    # moto: one test event, one record per PutObject, two for the multipart upload
    assert len(test_events) == 1
    assert len(records) == 4

    assert launcher.handler(test_events[0], None)["queued"] == 0
    result = launcher.handler({"Records": records}, None)

    bodies = drain(stack.sqs, stack.queue_url)
    assert sorted((b["job_id"], b["key"], b["size"]) for b in bodies) == [
        ("big", "scenes/big/big.zip", 100),
        ("my job", "scenes/my job/a b+c é.zip", 3),
    ]
    assert result == {"queued": 2, "skipped": 2, "started": 2, "running": 0}


def test_keys_outside_the_filter_and_other_events_are_skipped(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [
        s3_record("renders/job/scene.png"),
        s3_record("other/job/scene.zip"),
        s3_record("scenes/job/scene.txt"),
        s3_record("scenes/job/scene.zip.bak"),
        s3_record("Scenes/job/scene.zip"),
        s3_record("scenes/.zip"),
        s3_record("scenes/job/scene.zip", event_name="ObjectRemoved:Delete"),
    ]

    result = launcher.handler(s3_event(*records), None)

    assert drain(stack.sqs, stack.queue_url) == []
    assert lew_task_arns(stack.ecs, stack.cluster) == []
    assert result == {"queued": 0, "skipped": 7, "started": 0, "running": 0}
    skipped = events(log_lines(capsys), "skipped")
    assert [s["key"] for s in skipped] == [
        "renders/job/scene.png",
        "other/job/scene.zip",
        "scenes/job/scene.txt",
        "scenes/job/scene.zip.bak",
        "Scenes/job/scene.zip",
        "scenes/.zip",
        "scenes/job/scene.zip",
    ]
    assert "scenes/" in skipped[0]["reason"]
    assert ".zip" in skipped[2]["reason"]
    assert "ObjectRemoved:Delete" in skipped[-1]["reason"]


def test_custom_prefix_and_suffix(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEW_INPUT_PREFIX", "in/")
    monkeypatch.setenv("LEW_INPUT_SUFFIX", ".tar")
    launcher.handler(
        s3_event(s3_record("in/x/y.tar"), s3_record("scenes/x/y.zip"), s3_record("in/z.tar")),
        None,
    )
    assert sorted(b["job_id"] for b in drain(stack.sqs, stack.queue_url)) == ["x", "z"]


def test_s3_test_event_is_ignored(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-01-01T00:00:00.000Z",
        "Bucket": stack.bucket,
        "RequestId": "R",
        "HostId": "H",
    }
    result = launcher.handler(event, None)

    assert result == {"queued": 0, "skipped": 0, "started": 0, "running": 0}
    assert drain(stack.sqs, stack.queue_url) == []
    assert lew_task_arns(stack.ecs, stack.cluster) == []
    assert log_lines(capsys) == [
        {"event": "ignored", "reason": "s3:TestEvent", "bucket": stack.bucket}
    ]


def test_duplicate_records_give_one_message(stack: Stack) -> None:
    key = "scenes/job/scene.zip"
    result = launcher.handler(
        s3_event(
            s3_record(key, etag="e1", event_name="ObjectCreated:Put"),
            s3_record(key, etag="e1", event_name="ObjectCreated:CompleteMultipartUpload"),
            s3_record(key, encoding="moto", etag="e1"),  # same object, other encoding
            s3_record(key, etag="e2"),  # a new version of the object: a new job
            s3_record("scenes/seq/a.zip", etag=None, sequencer="0A1"),
            s3_record("scenes/seq/a.zip", etag=None, sequencer="0A1"),
        ),
        None,
    )

    bodies = drain(stack.sqs, stack.queue_url)
    assert sorted((b["key"], b["etag"]) for b in bodies) == [
        ("scenes/job/scene.zip", "e1"),
        ("scenes/job/scene.zip", "e2"),
        ("scenes/seq/a.zip", ""),
    ]
    assert result["queued"] == 3
    assert result["skipped"] == 3


def test_started_by_comes_from_the_environment_lew_sets(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEW_MAX_TASKS", "2")
    monkeypatch.setenv("LEW_STARTED_BY", "lew-other")
    start_existing(stack, 1, started_by="lew-other")  # counted: the same marker
    start_existing(stack, 1)  # the default marker: not this launcher's now

    result = launcher.handler(
        s3_event(*(s3_record(f"scenes/m{i}/s.zip", etag=str(i)) for i in range(3))), None
    )
    assert result == {"queued": 3, "skipped": 0, "started": 1, "running": 1}
    mine = stack.ecs.list_tasks(cluster=stack.cluster, startedBy="lew-other")["taskArns"]
    assert len(mine) == 2


def test_task_cap_counts_only_running_tasks_of_the_launcher(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEW_MAX_TASKS", "4")
    mine = start_existing(stack, 3)
    start_existing(stack, 2, started_by="someone-else")  # not counted
    stack.ecs.stop_task(cluster=stack.cluster, task=mine[0], reason="test")  # not counted
    capsys.readouterr()

    # 2 running: room for 2 more, although 5 jobs arrive
    result = launcher.handler(
        s3_event(*(s3_record(f"scenes/j{i}/s.zip", etag=str(i)) for i in range(5))), None
    )
    assert result == {"queued": 5, "skipped": 0, "started": 2, "running": 2}
    assert len(lew_task_arns(stack.ecs, stack.cluster)) == 4
    assert events(log_lines(capsys), "tasks") == [
        {"event": "tasks", "running": 2, "starting": 2, "max_tasks": 4, "new_jobs": 5}
    ]

    # at the cap: jobs are queued, no task is started, and that is not an error
    result = launcher.handler(s3_event(s3_record("scenes/late/s.zip")), None)
    assert result == {"queued": 1, "skipped": 0, "started": 0, "running": 4}
    assert len(lew_task_arns(stack.ecs, stack.cluster)) == 4
    stopped = stack.ecs.list_tasks(cluster=stack.cluster, desiredStatus="STOPPED")["taskArns"]
    assert stopped == [mine[0]]
    assert len(drain(stack.sqs, stack.queue_url)) == 6


def test_running_above_the_cap_starts_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEW_MAX_TASKS", "1")
    start_existing(stack, 3)  # e.g. max_tasks was lowered
    result = launcher.handler(s3_event(s3_record("scenes/j/s.zip")), None)
    assert result["started"] == 0
    assert len(lew_task_arns(stack.ecs, stack.cluster)) == 3


def test_never_more_tasks_than_new_jobs(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEW_MAX_TASKS", "10")
    start_existing(stack, 1)
    result = launcher.handler(
        s3_event(s3_record("scenes/a/s.zip"), s3_record("scenes/b/s.zip")), None
    )
    assert result["started"] == 2
    assert len(lew_task_arns(stack.ecs, stack.cluster)) == 3


def test_fargate_spot_and_no_public_ip(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEW_CAPACITY_PROVIDER", "FARGATE_SPOT")
    monkeypatch.setenv("LEW_ASSIGN_PUBLIC_IP", "DISABLED")
    recorders = record_clients()

    launcher.handler(s3_event(s3_record("scenes/a/s.zip")), None)

    (call,) = recorders["ecs"].kwargs("run_task")
    assert "launchType" not in call
    assert call["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    arns = lew_task_arns(stack.ecs, stack.cluster)
    (task,) = describe(stack.ecs, stack.cluster, arns)
    assert task["capacityProviderName"] == "FARGATE_SPOT"
    assert task["startedBy"] == "lew-launcher"
    assert call["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"


# --- faults --------------------------------------------------------------------------------


def failing_entries(ids: set[str], times: int | None) -> Callable[..., Any]:
    """A send_message_batch that reports `ids` as Failed (`times` calls each, None = always)."""
    left = dict.fromkeys(ids, times)

    def send_message_batch(real: Any, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        failing = []
        for entry in Entries:
            if entry["Id"] in left and (left[entry["Id"]] is None or left[entry["Id"]] > 0):
                failing.append(entry)
                if left[entry["Id"]] is not None:
                    left[entry["Id"]] -= 1
        passing = [e for e in Entries if e not in failing]
        response = (
            real.send_message_batch(QueueUrl=QueueUrl, Entries=passing)
            if passing
            else {"Successful": []}
        )
        response.setdefault("Failed", [])
        response["Failed"] += [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"}
            for e in failing
        ]
        return response

    return send_message_batch


def test_failed_batch_entries_are_retried(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    keys = [f"scenes/j{i}/s.zip" for i in range(12)]
    fail = {"job-1", "job-3", "job-11"}
    recorders = record_clients(sqs={"send_message_batch": failing_entries(fail, times=1)})

    result = launcher.handler(s3_event(*(s3_record(k, etag=k) for k in keys)), None)

    calls = recorders["sqs"].kwargs("send_message_batch")
    assert [sorted(e["Id"] for e in c["Entries"]) for c in calls[1::2]] == [
        ["job-1", "job-3"],
        ["job-11"],
    ]
    assert len(calls) == 4
    assert sorted(b["key"] for b in drain(stack.sqs, stack.queue_url)) == sorted(keys)
    assert result["queued"] == 12
    retries = events(log_lines(capsys), "send_retry")
    assert [sorted(f["key"] for f in r["failed"]) for r in retries] == [
        ["scenes/j1/s.zip", "scenes/j3/s.zip"],
        ["scenes/j11/s.zip"],
    ]


def test_entries_that_keep_failing_raise_after_the_rest_is_done(stack: Stack) -> None:
    keys = [f"scenes/j{i}/s.zip" for i in range(3)]
    recorders = record_clients(sqs={"send_message_batch": failing_entries({"job-2"}, None)})

    with pytest.raises(launcher.LauncherError, match=r"scenes/j2/s\.zip: InternalError"):
        launcher.handler(s3_event(*(s3_record(k, etag=k) for k in keys)), None)

    assert len(recorders["sqs"].kwargs("send_message_batch")) == launcher.SEND_ATTEMPTS
    assert sorted(b["key"] for b in drain(stack.sqs, stack.queue_url)) == keys[:2]
    # the jobs that were queued still get their workers before the handler raises
    assert len(lew_task_arns(stack.ecs, stack.cluster)) == 2


def no_capacity(real: Any, **kwargs: Any) -> dict[str, Any]:
    return {
        "tasks": [],
        "failures": [{"arn": "arn:aws:ecs:::capacity", "reason": "Capacity is unavailable"}],
    }


def test_run_task_failures_with_nothing_running_raise(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    record_clients(ecs={"run_task": no_capacity})

    with pytest.raises(launcher.LauncherError, match="Capacity is unavailable"):
        launcher.handler(s3_event(s3_record("scenes/a/s.zip")), None)

    assert len(drain(stack.sqs, stack.queue_url)) == 1  # the job stays queued
    assert events(log_lines(capsys), "run_task_failure") == [
        {
            "event": "run_task_failure",
            "arn": "arn:aws:ecs:::capacity",
            "reason": "Capacity is unavailable",
            "detail": None,
        }
    ]


def test_run_task_failures_with_a_task_running_do_not_raise(stack: Stack) -> None:
    start_existing(stack, 1)
    recorders = record_clients(ecs={"run_task": no_capacity})

    result = launcher.handler(
        s3_event(s3_record("scenes/a/s.zip"), s3_record("scenes/b/s.zip")), None
    )

    assert result == {"queued": 2, "skipped": 0, "started": 0, "running": 1}
    assert [c["count"] for c in recorders["ecs"].kwargs("run_task")] == [2]


def test_run_task_partly_failing_does_not_raise(stack: Stack) -> None:
    def one_short(real: Any, **kwargs: Any) -> Any:
        response = real.run_task(**{**kwargs, "count": kwargs["count"] - 1})
        response["failures"] = [{"reason": "RESOURCE:ENI"}]
        return response

    record_clients(ecs={"run_task": one_short})
    result = launcher.handler(
        s3_event(*(s3_record(f"scenes/{i}/s.zip", etag=str(i)) for i in range(3))), None
    )
    assert result["started"] == 2
    assert len(lew_task_arns(stack.ecs, stack.cluster)) == 2


def test_aws_errors_propagate(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEW_TASK_FAMILY", "no-such-family")
    with pytest.raises(stack.ecs.exceptions.ClientException):
        launcher.handler(s3_event(s3_record("scenes/a/s.zip")), None)

    monkeypatch.setenv("LEW_QUEUE_URL", stack.queue_url + "-missing")
    with pytest.raises(stack.sqs.exceptions.QueueDoesNotExist):
        launcher.handler(s3_event(s3_record("scenes/a/s.zip")), None)


# --- configuration -------------------------------------------------------------------------


def test_missing_env_var_is_named(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEW_QUEUE_URL")
    with pytest.raises(launcher.ConfigError, match="LEW_QUEUE_URL is not set"):
        launcher.handler(s3_event(s3_record("scenes/a/s.zip")), None)
    assert lew_task_arns(stack.ecs, stack.cluster) == []


BASE_ENV = {
    "LEW_QUEUE_URL": "https://sqs.example/1/q",
    "LEW_CLUSTER": "lew-povray",
    "LEW_TASK_FAMILY": "lew-povray-worker",
    "LEW_SUBNETS": "subnet-1",
}


def test_config_defaults() -> None:
    config = launcher.load_config(BASE_ENV)
    assert config == launcher.Config(
        queue_url="https://sqs.example/1/q",
        cluster="lew-povray",
        task_family="lew-povray-worker",
        container_name="worker",
        subnets=("subnet-1",),
        security_groups=(),
        assign_public_ip="ENABLED",
        max_tasks=4,
        capacity_provider="FARGATE",
        input_prefix="scenes/",
        input_suffix=".zip",
    )


def test_config_lists_ignore_empty_entries() -> None:
    config = launcher.load_config(
        {**BASE_ENV, "LEW_SUBNETS": " subnet-a,,subnet-b, ", "LEW_SECURITY_GROUPS": ",sg-1,"}
    )
    assert config.subnets == ("subnet-a", "subnet-b")
    assert config.security_groups == ("sg-1",)


@pytest.mark.parametrize("name", ["LEW_QUEUE_URL", "LEW_CLUSTER", "LEW_TASK_FAMILY", "LEW_SUBNETS"])
def test_config_required(name: str) -> None:
    env = {k: v for k, v in BASE_ENV.items() if k != name}
    with pytest.raises(launcher.ConfigError, match=name):
        launcher.load_config(env)
    with pytest.raises(launcher.ConfigError, match=name):
        launcher.load_config({**env, name: "  "})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LEW_MAX_TASKS", "0"),
        ("LEW_MAX_TASKS", "-1"),
        ("LEW_MAX_TASKS", "four"),
        ("LEW_MAX_TASKS", "1.5"),
        ("LEW_ASSIGN_PUBLIC_IP", "yes"),
        ("LEW_CAPACITY_PROVIDER", "EC2"),
    ],
)
def test_config_invalid(name: str, value: str) -> None:
    with pytest.raises(launcher.ConfigError, match=f"{name}.*{re.escape(repr(value))}"):
        launcher.load_config({**BASE_ENV, name: value})


def test_config_error_names_every_problem() -> None:
    with pytest.raises(launcher.ConfigError) as error:
        launcher.load_config({"LEW_MAX_TASKS": "0"})
    for name in ("LEW_QUEUE_URL", "LEW_CLUSTER", "LEW_TASK_FAMILY", "LEW_SUBNETS", "LEW_MAX_TASKS"):
        assert name in str(error.value)


def test_importing_needs_no_aws() -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(LAUNCHER_DIR)}
    code = "import launcher; assert not launcher._CLIENTS; print(launcher.tasks_to_start(3, 4, 2))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "2"


# --- pure functions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "job"),
    [
        ("scenes/job/name.zip", "job"),
        ("scenes/job/sub/name.zip", "job"),
        ("scenes/name.zip", "name"),
        ("scenes/my scene.v2.zip", "my scene.v2"),
        ("scenes/.zip", None),
        ("scenes//name.zip", None),
        ("other/job/name.zip", None),
        ("scenes/job/name.png", None),
    ],
)
def test_job_id_for_key(key: str, job: str | None) -> None:
    assert launcher.job_id_for_key(key, "scenes/", ".zip") == job


def test_job_id_with_empty_prefix_and_suffix() -> None:
    assert launcher.job_id_for_key("a/b.zip", "", "") == "a"
    assert launcher.job_id_for_key("b.zip", "", "") == "b.zip"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("scenes/my+scene.zip", "scenes/my scene.zip"),
        ("scenes%2Fmy+scene.zip", "scenes/my scene.zip"),
        ("scenes/a%2Bb.zip", "scenes/a+b.zip"),
        ("scenes/%C3%A9.zip", "scenes/é.zip"),
        ("scenes/a%252Fb.zip", "scenes/a%2Fb.zip"),
    ],
)
def test_decode_key(raw: str, key: str) -> None:
    assert launcher.decode_key(raw) == key


@pytest.mark.parametrize(
    ("new_jobs", "max_tasks", "running", "start"),
    [(1, 4, 0, 1), (25, 4, 0, 4), (5, 4, 2, 2), (5, 4, 4, 0), (5, 4, 9, 0), (0, 4, 0, 0)],
)
def test_tasks_to_start(new_jobs: int, max_tasks: int, running: int, start: int) -> None:
    assert launcher.tasks_to_start(new_jobs, max_tasks, running) == start


def test_batched() -> None:
    assert [len(b) for b in launcher.batched(list(range(25)), 10)] == [10, 10, 5]
    assert list(launcher.batched([], 10)) == []
    with pytest.raises(ValueError):
        list(launcher.batched([1], 0))


def test_entry_ids_are_valid_for_sqs() -> None:
    for i in (0, 9, 10**70):
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", launcher.entry_id(i))


def test_run_task_params() -> None:
    config = launcher.load_config({**BASE_ENV, "LEW_SECURITY_GROUPS": "sg-1"})
    assert launcher.run_task_params(config, 3) == {
        "cluster": "lew-povray",
        "taskDefinition": "lew-povray-worker",
        "count": 3,
        "startedBy": "lew-launcher",
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": ["subnet-1"],
                "securityGroups": ["sg-1"],
                "assignPublicIp": "ENABLED",
            }
        },
        "launchType": "FARGATE",
    }
    spot = launcher.load_config({**BASE_ENV, "LEW_CAPACITY_PROVIDER": "fargate_spot"})
    params = launcher.run_task_params(spot, 1)
    assert "launchType" not in params
    assert params["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    # no security groups configured: leave the field out (AWS then uses the VPC default)
    assert "securityGroups" not in params["networkConfiguration"]["awsvpcConfiguration"]


def test_parse_records_keeps_order_and_reports_skips() -> None:
    event = s3_event(
        s3_record("scenes/b/s.zip", etag="1"),
        s3_record("scenes/a/s.zip", etag="2"),
        s3_record("scenes/b/s.zip", etag="1"),
        {"eventName": "ObjectCreated:Put"},
    )
    objects, skips = launcher.parse_records(event, "scenes/", ".zip")
    assert [o.job_id for o in objects] == ["b", "a"]
    assert [s.reason for s in skips] == [
        "duplicate record for the same object",
        "record has no bucket name or object key",
    ]


# --- scenes that lew render split into parts -------------------------------------------------


def put_with_parts(stack: Stack, key: str, parts: str) -> dict[str, Any]:
    """Uploads `key` with lew render's plan in its metadata; returns its event record."""
    s3 = boto3.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=stack.bucket)
    s3.put_object(Bucket=stack.bucket, Key=key, Body=b"zip", Metadata={"lew-parts": parts})
    return s3_record(key, bucket=stack.bucket)


def test_an_animation_is_queued_as_runs_of_frames(stack: Stack) -> None:
    record = put_with_parts(stack, "scenes/j/anim.zip", "frames=1-10/3")
    result = launcher.handler(s3_event(record, put=False), None)

    bodies = drain(stack.sqs, stack.queue_url)
    assert sorted(tuple(b["part"]["frames"]) for b in bodies) == [(1, 3), (4, 6), (7, 9), (10, 10)]
    assert {b["key"] for b in bodies} == {"scenes/j/anim.zip"}
    assert result["queued"] == 4
    # as many workers as parts, up to max_tasks (4)
    assert len(lew_task_arns(stack.ecs, stack.cluster)) == 4


def test_a_split_still_is_queued_as_bands(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEW_MAX_TASKS", "2")
    record = put_with_parts(stack, "scenes/j/big.zip", "rows=1-64,65-160,161-240")
    result = launcher.handler(s3_event(record, put=False), None)

    bodies = drain(stack.sqs, stack.queue_url)
    assert sorted(b["part"]["band"] for b in bodies) == [1, 2, 3]
    assert all(b["part"]["rows"] == [[1, 64], [65, 160], [161, 240]] for b in bodies)
    assert result == {"queued": 3, "skipped": 0, "started": 2, "running": 0}


def test_a_plan_that_cannot_be_read_renders_the_scene_whole(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    record = put_with_parts(stack, "scenes/j/odd.zip", "frames=9-1/1")
    launcher.handler(s3_event(record, put=False), None)

    (body,) = drain(stack.sqs, stack.queue_url)
    assert "part" not in body
    (bad,) = events(log_lines(capsys), "bad_parts")
    assert bad["key"] == "scenes/j/odd.zip"


def test_an_object_deleted_before_the_launch_is_skipped(stack: Stack) -> None:
    result = launcher.handler(s3_event(s3_record("scenes/j/gone.zip"), put=False), None)
    assert drain(stack.sqs, stack.queue_url) == []
    assert lew_task_arns(stack.ecs, stack.cluster) == []
    assert result["skipped"] == 1


def test_plans_are_read_strictly() -> None:
    assert launcher.parse_parts("frames=0-4/2") == [
        {"frames": [0, 1]},
        {"frames": [2, 3]},
        {"frames": [4, 4]},
    ]
    assert launcher.parse_parts("rows=1-32,33-40") == [
        {"band": 1, "rows": [[1, 32], [33, 40]]},
        {"band": 2, "rows": [[1, 32], [33, 40]]},
    ]
    for bad in (
        "frames=1-5",
        "frames=5-1/1",
        "frames=1-5/0",
        "frames=0-100000/1",
        "rows=1-32",
        "rows=1-32,40-50",
        "rows=0-5,6-9",
        "tiles=4",
        "",
    ):
        with pytest.raises(ValueError):
            launcher.parse_parts(bad)

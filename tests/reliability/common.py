"""Shared parts of the reliability checks: the lew binary, the fault proxy, the local runner,
and reading an app's resources back from moto directly (never through the proxy, never from
lew's own reports).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
APP_TAG = "lew:app"

# Every child (lew, the runner) gets this and nothing of the host's AWS setup.
BASE_ENV = {
    "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
    "HOME": os.environ.get("HOME", "/root"),
    "LANG": "C.UTF-8",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "NO_COLOR": "1",
}

TINY_POV = (
    "camera { location <0, 1, -3> look_at <0, 0, 0> }\n"
    "light_source { <2, 4, -3> color rgb 1 }\n"
    "sphere { <0, 0, 0>, 1 pigment { color rgb <1, 0.5, 0.2> } }\n"
)


def lew_binary() -> Path:
    """target/debug/lew, or under CARGO_TARGET_DIR when set (CI keeps it outside the clone)."""
    if os.environ.get("LEW_BIN"):
        return Path(os.environ["LEW_BIN"])
    return REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "debug" / "lew"


def tiny_scene_zip(path: Path, name: str) -> Path:
    """A 64x48 scene that renders in well under a second."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.pov", TINY_POV)
        archive.writestr(
            f"{name}.ini", f"Input_File_Name={name}.pov\nWidth=64\nHeight=48\nAntialias=off\n"
        )
    path.write_bytes(buffer.getvalue())
    return path


def say(text: str) -> None:
    print(text, flush=True)


# ---------------------------------------------------------------------------------------------
# lew


@dataclass
class LewRun:
    args: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float

    def tail(self, lines: int = 12) -> str:
        text = (self.stderr.strip() + "\n" + self.stdout.strip()).strip()
        return "\n".join(text.splitlines()[-lines:])

    def json(self) -> Any:
        return json.loads(self.stdout)


def lew(
    app_dir: Path, endpoint: str, *args: str, timeout: float = 600, env: dict | None = None
) -> LewRun:
    argv = [str(lew_binary()), "--endpoint-url", endpoint, *args]
    started = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            cwd=app_dir,
            env={**BASE_ENV, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as timed_out:
        code = -999
        out = (timed_out.stdout or b"").decode() if isinstance(timed_out.stdout, bytes) else ""
        err = f"(timed out after {timeout} s)"
    return LewRun(list(args), code, out, err, time.monotonic() - started)


def new_app_dir(root: Path, app: str, extra: str = "") -> Path:
    folder = root / app
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lew.toml").write_text(f'app = "{app}"\nregion = "{REGION}"\n{extra}')
    return folder


# ---------------------------------------------------------------------------------------------
# The fault proxy (scripts/proxy/proxy.py)


class Proxy:
    """scripts/proxy/proxy.py in front of moto; stopped (SIGTERM) by close()."""

    def __init__(self, upstream: str, log: Path | None = None) -> None:
        argv = [
            str(PYTHON),
            str(REPO / "scripts" / "proxy" / "proxy.py"),
            "--upstream",
            upstream,
            "--port",
            "0",
        ]
        if log is not None:
            argv += ["--log", str(log)]
        self.log = log
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("scripts/proxy/proxy.py exited before it listened")
        self.url = f"http://127.0.0.1:{json.loads(line)['port']}"

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/__proxy/stats")

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "/__proxy/reset", {})

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self._call("POST", "/__proxy/config", changes)

    def release(self, forward: bool) -> dict[str, Any]:
        return self._call("POST", "/__proxy/release", {"forward": forward})

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log and self.log.exists() else 0

    def records_since(self, offset: int) -> list[dict[str, Any]]:
        """Every request logged after byte `offset` of the log (one JSON object each)."""
        if not self.log or not self.log.exists():
            return []
        with open(self.log, encoding="utf-8") as source:
            source.seek(offset)
            return [json.loads(line) for line in source if line.strip()]

    def faulted_since(self, offset: int) -> list[str]:
        """`op: fault` for every faulted request logged after byte `offset` of the log."""
        return [f"{r['op']}: {r['fault']}" for r in self.records_since(offset) if r.get("fault")]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ---------------------------------------------------------------------------------------------
# The local runner (scripts/runner/runner.py): plays Lambda and Fargate against moto directly


class Runner:
    def __init__(self, app: str, moto: str, extra: list[str] | None = None) -> None:
        self.work = tempfile.mkdtemp(prefix="lew-rel-runner-")
        os.chmod(self.work, 0o755)  # noqa: S103 (the render user traverses it)
        argv = [
            str(PYTHON),
            str(REPO / "scripts" / "runner" / "runner.py"),
            "--app",
            app,
            "--poll",
            "0.25",
            "--task-env",
            "LEW_WAIT_TIME_S=1",
            "--task-env",
            "LEW_IDLE_S=0",
            "--work-dir",
            self.work,
            *(extra or []),
        ]
        self.process = subprocess.Popen(
            argv,
            env={**BASE_ENV, "AWS_ENDPOINT_URL": moto},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._ready.wait(60):
            self.close()
            raise RuntimeError("the runner did not start watching within 60 s")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                with self._lock:
                    self.lines.append(record)
                if record.get("event") == "watching":
                    self._ready.set()

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.lines if r.get("event") == name]

    def wait_idle(self, timeout: float = 90) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.events("task_started")) > len(self.events("task_stopped")):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._thread.join(timeout=5)
        subprocess.run(["rm", "-rf", self.work], check=False)


# ---------------------------------------------------------------------------------------------
# Reading an app's resources back from moto


def clients(moto: str) -> dict[str, Any]:
    config = Config(
        retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"}
    )
    names = {
        "iam": "iam",
        "s3": "s3",
        "sqs": "sqs",
        "lambda": "lambda",
        "ecs": "ecs",
        "ecr": "ecr",
        "logs": "logs",
        "ec2": "ec2",
        "events": "events",
        "tagging": "resourcegroupstaggingapi",
    }
    return {
        key: boto3.client(
            service,
            endpoint_url=moto,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 (moto's dummy credentials)
            config=config,
        )
        for key, service in names.items()
    }


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@dataclass
class Inventory:
    """What exists of one app, as counts and names that show duplicates."""

    roles: dict[str, list[str]] = field(default_factory=dict)  # role -> inline policies
    attached: dict[str, int] = field(default_factory=dict)
    buckets: list[str] = field(default_factory=list)
    bucket_tagged: bool = False
    queues: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    permission_statements: int = 0
    clusters_active: list[str] = field(default_factory=list)
    task_definitions_active: list[str] = field(default_factory=list)
    task_definitions_all: list[str] = field(default_factory=list)
    repositories: list[str] = field(default_factory=list)
    log_groups: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    notifications: int = 0
    lifecycle_rules: int = 0  # lew's, by Id
    event_rules: dict[str, int] = field(default_factory=dict)  # rule -> targets
    tagged: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "roles": len(self.roles),
            "inline policies": sum(len(p) for p in self.roles.values()),
            "attached policies": sum(self.attached.values()),
            "buckets": len(self.buckets),
            "queues": len(self.queues),
            "functions": len(self.functions),
            "lambda permission statements": self.permission_statements,
            "clusters": len(self.clusters_active),
            "task definition revisions (active)": len(self.task_definitions_active),
            "task definition revisions (registered)": len(self.task_definitions_all),
            "ecr repositories": len(self.repositories),
            "log groups": len(self.log_groups),
            "security groups": len(self.security_groups),
            "bucket notifications": self.notifications,
            "bucket lifecycle rules of lew's": self.lifecycle_rules,
            "eventbridge rules": len(self.event_rules),
            "eventbridge targets": sum(self.event_rules.values()),
        }

    def leftovers(self) -> list[str]:
        """Everything of the app still there (deregistered task definitions do not count:
        ECS keeps INACTIVE revisions visible, as AWS does)."""
        left = [f"iam role {r}" for r in self.roles]
        left += [f"s3 bucket {b}" for b in self.buckets]
        left += [f"sqs queue {q}" for q in self.queues]
        left += [f"lambda function {f}" for f in self.functions]
        left += [f"ecs cluster {c}" for c in self.clusters_active]
        left += [f"task definition {t}" for t in self.task_definitions_active]
        left += [f"ecr repository {r}" for r in self.repositories]
        left += [f"log group {g}" for g in self.log_groups]
        left += [f"security group {g}" for g in self.security_groups]
        left += [f"eventbridge rule {r}" for r in self.event_rules]
        active = {t.rsplit("/", 1)[-1] for t in self.task_definitions_active}
        for arn in self.tagged:
            if ":task-definition/" in arn and arn.rsplit("/", 1)[-1] not in active:
                continue  # deregistered: INACTIVE stays listed by moto's tagging API
            if ":cluster/" in arn and not self.clusters_active:
                continue  # deleted clusters stay INACTIVE
            left.append(f"tagged {arn}")
        return sorted(set(left))


def inventory(aws: dict[str, Any], app: str) -> Inventory:
    prefix = f"lew-{app}-"
    inv = Inventory()
    iam = aws["iam"]
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            name = role["RoleName"]
            if name.startswith(prefix):
                inv.roles[name] = sorted(iam.list_role_policies(RoleName=name)["PolicyNames"])
                inv.attached[name] = len(
                    iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
                )
    s3 = aws["s3"]
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    inv.buckets = sorted(n for n in names if n.startswith(prefix))
    bucket = f"lew-{app}-{ACCOUNT}-{REGION}"
    if bucket in inv.buckets:
        try:
            tags = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
            inv.bucket_tagged = any(t["Key"] == APP_TAG and t["Value"] == app for t in tags)
        except ClientError:
            inv.bucket_tagged = False
        config = s3.get_bucket_notification_configuration(Bucket=bucket)
        inv.notifications = len(config.get("LambdaFunctionConfigurations", []))
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except ClientError as error:
            if _code(error) != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        inv.lifecycle_rules = sum(str(r.get("ID", "")).startswith("lew-") for r in rules)
    sqs = aws["sqs"]
    urls = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    inv.queues = sorted(url.rsplit("/", 1)[-1] for url in urls)
    lam = aws["lambda"]
    for page in lam.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            if function["FunctionName"].startswith(prefix):
                inv.functions.append(function["FunctionName"])
    for name in inv.functions:
        try:
            policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
        except ClientError:
            continue
        statements = policy.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        # Every statement as stored: scripts/moto_server.py refuses a second AddPermission
        # with the same id as AWS does, so a duplicate here is a second id of lew's.
        inv.permission_statements += len(statements)
    ecs = aws["ecs"]
    arns = ecs.list_clusters().get("clusterArns", [])
    mine = [a for a in arns if a.endswith(f":cluster/lew-{app}")]
    if mine:
        described = ecs.describe_clusters(clusters=mine).get("clusters", [])
        inv.clusters_active = [c["clusterArn"] for c in described if c.get("status") == "ACTIVE"]
    family = f"lew-{app}-worker"
    for status, target in (("ACTIVE", inv.task_definitions_active), ("INACTIVE", None)):
        found = ecs.list_task_definitions(familyPrefix=family, status=status)["taskDefinitionArns"]
        found = [a for a in found if a.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family]
        if target is not None:
            target.extend(found)
        inv.task_definitions_all.extend(found)
    ecr = aws["ecr"]
    inv.repositories = sorted(
        r["repositoryName"]
        for r in ecr.describe_repositories().get("repositories", [])
        if r["repositoryName"].startswith(prefix)
    )
    logs = aws["logs"]
    for group_prefix in (f"/lew/{app}/", f"/aws/lambda/{prefix}"):
        groups = logs.describe_log_groups(logGroupNamePrefix=group_prefix).get("logGroups", [])
        inv.log_groups += [g["logGroupName"] for g in groups]
    ec2 = aws["ec2"]
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"lew-{app}-worker"]}]
    )["SecurityGroups"]
    inv.security_groups = [g["GroupId"] for g in groups]
    events = aws["events"]
    for rule in events.list_rules(NamePrefix=prefix).get("Rules", []):
        targets = events.list_targets_by_rule(Rule=rule["Name"]).get("Targets", [])
        inv.event_rules[rule["Name"]] = len(targets)
    tagging = aws["tagging"]
    for page in tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": APP_TAG, "Values": [app]}]
    ):
        inv.tagged += [m["ResourceARN"] for m in page["ResourceTagMappingList"]]
    return inv


# What one complete setup leaves: one of each (two queues, two log groups, three roles with
# one inline policy each), one active task definition revision, three Lambda permissions (S3
# and the two EventBridge rules), one notification, two lifecycle rules and two EventBridge
# rules with one target each.
EXPECTED_AFTER_SETUP = {
    "roles": 3,
    "inline policies": 3,
    "attached policies": 0,
    "buckets": 1,
    "queues": 2,
    "functions": 1,
    "lambda permission statements": 3,
    "clusters": 1,
    "task definition revisions (active)": 1,
    "task definition revisions (registered)": 1,
    "ecr repositories": 1,
    "log groups": 2,
    "security groups": 1,
    "bucket notifications": 1,
    "bucket lifecycle rules of lew's": 2,
    "eventbridge rules": 2,
    "eventbridge targets": 2,
}


def duplicates(inv: Inventory) -> list[str]:
    """Where the app has more (or fewer) than one complete setup makes."""
    problems = []
    for key, expected in EXPECTED_AFTER_SETUP.items():
        have = inv.counts()[key]
        if have != expected:
            problems.append(f"{key}: {have} (expected {expected})")
    if inv.buckets and not inv.bucket_tagged:
        problems.append("the bucket lacks the lew:app tag")
    return problems


def worker_events(aws: dict[str, Any], app: str) -> list[dict[str, Any]]:
    """Every JSON line the workers logged to /lew/<app>/worker."""
    events = []
    paginator = aws["logs"].get_paginator("filter_log_events")
    try:
        for page in paginator.paginate(logGroupName=f"/lew/{app}/worker"):
            for event in page["events"]:
                with contextlib.suppress(ValueError):
                    events.append(json.loads(event["message"]))
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
    return events


def bucket_keys(aws: dict[str, Any], app: str, prefix: str = "") -> list[str]:
    bucket = f"lew-{app}-{ACCOUNT}-{REGION}"
    keys: list[str] = []
    for page in aws["s3"].get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


@contextlib.contextmanager
def stopwatch() -> Iterator[list[float]]:
    holder = [0.0]
    started = time.monotonic()
    try:
        yield holder
    finally:
        holder[0] = time.monotonic() - started


def eprint(text: str) -> None:
    print(text, file=sys.stderr, flush=True)

"""Tests of the fault-injecting, counting proxy (scripts/proxy/proxy.py) with boto3 through it
against a real moto server (scripts/moto_server.py), both started here.

Run with `.venv/bin/pytest scripts/proxy`. One moto and one proxy serve every test; each test
sets the proxy's behaviour through POST /__proxy/config and names its own resources.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REGION = "eu-west-1"
NO_RETRIES = Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback http)
        return json.loads(response.read())


def _post(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(url, data=data, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "scripts" / "moto_server.py"),
                *("-H", "127.0.0.1", "-p", str(port)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()  # noqa: S310
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "moto did not answer within 30 s"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def proxy_proc(moto: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("proxy")
    stats, stderr = folder / "stats.json", folder / "stderr.txt"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "proxy.py"),
                *("--upstream", moto, "--port", "0", "--stats", str(stats)),
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        info = {
            "line": line,
            "port": json.loads(line)["port"],
            "stats": stats,
            "stderr": stderr,
            "proc": proc,
        }
        info["url"] = f"http://127.0.0.1:{info['port']}"
        yield info
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


@pytest.fixture
def proxy(proxy_proc: dict[str, Any]) -> Iterator[str]:
    """The proxy's URL, with plain forwarding and zeroed counters for each test."""
    url = proxy_proc["url"]
    _post(f"{url}/__proxy/config", _PLAIN)
    _post(f"{url}/__proxy/reset")
    yield url
    _post(f"{url}/__proxy/config", _PLAIN)
    _post(f"{url}/__proxy/release", {"forward": False})


_PLAIN = {
    "latency_ms": 0,
    "fault_rate": 0,
    "faults": "500,503,throttle,reset-before,reset-after",
    "fault_match": "*",
    "hold_after": None,
    "hold_after_mutating": None,
    "hold_match": None,
}


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


def client(service: str, endpoint: str, config: Config = NO_RETRIES) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, config=config)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def stats(proxy: str) -> dict[str, Any]:
    return _get(f"{proxy}/__proxy/stats")


def faults(proxy: str, kind: str, match: str = "*") -> None:
    _post(
        f"{proxy}/__proxy/config",
        {"fault_rate": 1.0, "faults": kind, "fault_match": match, "seed": 1},
    )


def lambda_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return 1\n")
    return buf.getvalue()


def make_role(proxy: str) -> str:
    iam = client("iam", proxy)
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
    name = unique("role")
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _function(endpoint: str) -> str:
    """A new Lambda function's name (made through `endpoint`)."""
    name = unique("fn")
    client("lambda", endpoint).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=make_role(endpoint),
        Handler="handler.handler",
        Code={"ZipFile": lambda_zip()},
    )
    return name


# ---------------------------------------------------------------------------------------------
# Forwarding


def test_prints_its_port_once_it_listens(proxy_proc: dict[str, Any]) -> None:
    # One JSON line naming the port it chose (--port 0); by then it answers and the stats file
    # exists.
    assert proxy_proc["line"] == json.dumps({"port": proxy_proc["port"]}) + "\n"
    assert 0 < proxy_proc["port"] < 65536
    assert proxy_proc["proc"].poll() is None
    assert "config" in _get(f"{proxy_proc['url']}/__proxy/stats")
    assert "requests" in json.loads(proxy_proc["stats"].read_text())


def test_s3_objects_of_a_few_megabytes_round_trip(proxy: str) -> None:
    s3 = client("s3", proxy)
    bucket = unique("bucket")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    body = os.urandom(3 * 1024 * 1024 + 17)
    s3.put_object(Bucket=bucket, Key="dir/big.bin", Body=body)
    assert s3.head_object(Bucket=bucket, Key="dir/big.bin")["ContentLength"] == len(body)
    assert s3.get_object(Bucket=bucket, Key="dir/big.bin")["Body"].read() == body
    ops = stats(proxy)["by_operation"]
    assert ops["s3:CreateBucket"] == 1
    assert ops["s3:PutObject"] == 1
    assert ops["s3:HeadObject"] == 1
    assert ops["s3:GetObject"] == 1


def test_a_chunked_request_body_is_forwarded_whole(proxy: str, moto: str) -> None:
    s3 = client("s3", proxy)
    bucket = unique("bucket")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    parts = [os.urandom(70_000), b"x", os.urandom(5)]
    host, port = proxy.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("PUT", f"/{bucket}/chunked.bin")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for part in parts:
        conn.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")
    conn.send(b"0\r\n\r\n")
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    conn.close()
    got = client("s3", moto).get_object(Bucket=bucket, Key="chunked.bin")["Body"].read()
    assert got == b"".join(parts)


def test_sqs_json_protocol(proxy: str) -> None:
    sqs = client("sqs", proxy)
    url = sqs.create_queue(QueueName=unique("queue"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in messages] == ["hello"]
    ops = stats(proxy)["by_operation"]
    assert ops["sqs:CreateQueue"] == 1
    assert ops["sqs:SendMessage"] == 1


def test_iam_query_protocol(proxy: str) -> None:
    arn = make_role(proxy)
    name = arn.rsplit("/", 1)[1]
    assert client("iam", proxy).get_role(RoleName=name)["Role"]["Arn"] == arn
    s = stats(proxy)
    assert s["by_operation"] == {"iam:CreateRole": 1, "iam:GetRole": 1}
    assert (s["requests"], s["mutating"], s["reads"]) == (2, 1, 1)


def test_lambda_rest_json_protocol(proxy: str) -> None:
    role = make_role(proxy)
    lam = client("lambda", proxy)
    name = unique("fn")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": lambda_zip()},
    )
    assert lam.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name
    # A new function is Pending for a moment (the emulator's rule): configure it once Active.
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10}
    )
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    ops = stats(proxy)["by_operation"]
    assert ops["lambda:CreateFunction"] == 1
    assert ops["lambda:GetFunction"] >= 2
    assert ops["lambda:PutFunctionConcurrency"] == 1


# ---------------------------------------------------------------------------------------------
# Latency and counting


def test_latency_is_added_to_each_request_and_requests_overlap(proxy: str) -> None:
    sqs = client("sqs", proxy)
    sqs.list_queues()  # connect outside the measurement
    _post(f"{proxy}/__proxy/config", {"latency_ms": 300})
    started = time.monotonic()
    sqs.list_queues()
    assert time.monotonic() - started >= 0.3

    # Concurrent requests are handled at once, each in its own thread: with every request
    # held, all four are in the proxy together (no upper bound on a time: the machine is noisy).
    _post(f"{proxy}/__proxy/config", {"hold_after": stats(proxy)["requests"]})
    clients = [client("sqs", proxy) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(c.list_queues) for c in clients]
        _wait_for(proxy, lambda s: s["held"] == 4 and s["in_flight"] == 4)
        assert not any(a.done() for a in answers)
        released = time.monotonic()
        _post(f"{proxy}/__proxy/config", {"hold_after": None})
        for answer in answers:
            assert "ResponseMetadata" in answer.result(timeout=30)
        # ... and each still waited its latency once released.
        assert time.monotonic() - released >= 0.3
    assert stats(proxy)["in_flight"] == 0


def test_reads_and_mutations_are_counted_and_reset(proxy: str, proxy_proc: dict) -> None:
    sqs = client("sqs", proxy)
    url = sqs.create_queue(QueueName=unique("queue"))["QueueUrl"]
    sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    sqs.list_queues()
    client("s3", proxy).list_buckets()
    urllib.request.urlopen(f"{proxy}/moto-api/", timeout=10).close()  # noqa: S310
    s = stats(proxy)
    assert s["by_operation"] == {
        "s3:ListBuckets": 1,
        "sqs:CreateQueue": 1,
        "sqs:GetQueueAttributes": 1,
        "sqs:ListQueues": 1,
    }
    assert (s["requests"], s["mutating"], s["reads"], s["moto_api"]) == (4, 1, 3, 1)
    on_disk = json.loads(proxy_proc["stats"].read_text())
    assert on_disk["by_operation"] == s["by_operation"]
    assert on_disk["requests"] == 4

    before = _post(f"{proxy}/__proxy/reset")
    assert before["requests"] == 4
    assert stats(proxy)["requests"] == 0
    assert json.loads(proxy_proc["stats"].read_text())["requests"] == 0


# ---------------------------------------------------------------------------------------------
# Faults


def _code(error: botocore.exceptions.ClientError) -> tuple[str, int]:
    return (
        error.response["Error"]["Code"],
        error.response["ResponseMetadata"]["HTTPStatusCode"],
    )


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("sqs", ("ThrottlingException", 400)),
        ("iam", ("Throttling", 400)),
        ("ec2", ("RequestLimitExceeded", 503)),
        ("s3", ("SlowDown", 503)),
        ("lambda", ("TooManyRequestsException", 429)),
        ("ecs", ("ThrottlingException", 400)),
    ],
)
def test_throttling_in_each_services_own_format(
    proxy: str, service: str, expected: tuple[str, int]
) -> None:
    calls = {
        "sqs": lambda c: c.list_queues(),
        "iam": lambda c: c.list_roles(),
        "ec2": lambda c: c.describe_vpcs(),
        "s3": lambda c: c.list_buckets(),
        "lambda": lambda c: c.list_functions(),
        "ecs": lambda c: c.list_clusters(),
    }
    c = client(service, proxy)
    faults(proxy, "throttle")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        calls[service](c)
    assert _code(caught.value) == expected
    # botocore's own retry logic recognises it as throttling.
    assert caught.value.response["Error"]["Code"] in _botocore_throttling_codes()
    assert stats(proxy)["faults"] == {"throttle": 1}


def _botocore_throttling_codes() -> set[str]:
    from botocore.retries.standard import ThrottledRetryableChecker

    return set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)


@pytest.mark.parametrize("kind", ["500", "503"])
def test_server_errors(proxy: str, kind: str) -> None:
    sqs = client("sqs", proxy)
    faults(proxy, kind)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sqs.list_queues()
    assert _code(caught.value)[1] == int(kind)
    faults(proxy, kind, match="s3:*")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client("s3", proxy).list_buckets()
    assert _code(caught.value)[1] == int(kind)
    assert stats(proxy)["faults"] == {kind: 2}


def test_retries_ride_out_faults(proxy: str) -> None:
    _post(f"{proxy}/__proxy/config", {"fault_rate": 0.5, "seed": 3, "faults": "500,throttle"})
    sqs = client("sqs", proxy, Config(retries={"mode": "standard", "max_attempts": 10}))
    for _ in range(5):
        sqs.list_queues()
    s = stats(proxy)
    assert s["requests"] > 5
    assert sum(s["faults"].values()) == s["requests"] - 5


def test_reset_before_never_reaches_the_upstream(proxy: str, moto: str) -> None:
    name = unique("queue")
    sqs = client("sqs", proxy)
    faults(proxy, "reset-before", match="sqs:CreateQueue")
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        sqs.create_queue(QueueName=name)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client("sqs", moto).get_queue_url(QueueName=name)
    assert "NonExistentQueue" in caught.value.response["Error"]["Code"]
    assert stats(proxy)["faults"] == {"reset-before": 1}


def test_reset_after_is_applied_upstream_but_not_answered(proxy: str, moto: str) -> None:
    name = unique("queue")
    sqs = client("sqs", proxy)
    faults(proxy, "reset-after", match="sqs:CreateQueue")
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        sqs.create_queue(QueueName=name)
    assert client("sqs", moto).get_queue_url(QueueName=name)["QueueUrl"]
    assert stats(proxy)["faults"] == {"reset-after": 1}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("500-after", ("InternalFailure", 500)),
        ("503-after", ("ServiceUnavailable", 503)),
        ("throttle-after", ("ThrottlingException", 400)),
    ],
)
def test_error_after_is_applied_upstream_and_answered_with_the_error(
    proxy: str, moto: str, kind: str, expected: tuple[str, int]
) -> None:
    name = unique("queue")
    sqs = client("sqs", proxy)
    faults(proxy, kind, match="sqs:CreateQueue")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sqs.create_queue(QueueName=name)
    assert _code(caught.value) == expected
    assert client("sqs", moto).get_queue_url(QueueName=name)["QueueUrl"]
    assert stats(proxy)["faults"] == {kind: 1}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("500-after", ("ServiceException", 500)),
        ("503-after", ("ServiceUnavailable", 503)),
        ("throttle-after", ("TooManyRequestsException", 429)),
    ],
)
def test_a_retry_after_an_error_after_meets_the_work_already_done(
    proxy: str, moto: str, kind: str, expected: tuple[str, int]
) -> None:
    # A Lambda permission is not idempotent: the call the client repeats after the injected
    # error finds its statement there (409, as AWS answers; see scripts/moto_server.py).
    function = _function(proxy)
    lam = client("lambda", proxy)
    permission = {
        "FunctionName": function,
        "StatementId": "s3-invoke",
        "Action": "lambda:InvokeFunction",
        "Principal": "s3.amazonaws.com",
    }
    faults(proxy, kind, match="lambda:AddPermission")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        lam.add_permission(**permission)
    assert _code(caught.value) == expected
    _post(f"{proxy}/__proxy/config", {"fault_rate": 0})
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        lam.add_permission(**permission)
    assert _code(caught.value) == ("ResourceConflictException", 409)
    policy = json.loads(client("lambda", moto).get_policy(FunctionName=function)["Policy"])
    assert [st["Sid"] for st in policy["Statement"]] == ["s3-invoke"]


def test_a_client_resetting_its_connection_is_no_error(
    proxy: str, proxy_proc: dict[str, Any]
) -> None:
    # A killed client resets its connections, also in the middle of a request line.
    host, port = proxy.removeprefix("http://").split(":")
    for partial in (b"", b"GET /", b"PUT /bucket/key HTTP/1.1\r\nContent-Length: 10\r\n\r\nab"):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(partial)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    sqs = client("sqs", proxy)
    sqs.list_queues()  # the proxy still serves (a reset not read yet could only hide a failure)
    _wait_for(proxy, lambda s: s["in_flight"] == 0)
    assert "Traceback" not in proxy_proc["stderr"].read_text()


def test_moto_api_is_never_faulted(proxy: str) -> None:
    faults(proxy, "500,reset-before")
    for _ in range(3):
        urllib.request.urlopen(f"{proxy}/moto-api/", timeout=10).close()  # noqa: S310
    s = stats(proxy)
    assert (s["faults"], s["requests"], s["moto_api"]) == ({}, 0, 3)


def test_fault_draws_are_reproducible_with_a_seed(proxy: str) -> None:
    sqs = client("sqs", proxy)

    def outcomes() -> list[str]:
        _post(f"{proxy}/__proxy/config", {"fault_rate": 0.5, "faults": "500,503", "seed": 42})
        seen = []
        for _ in range(16):
            try:
                sqs.list_queues()
                seen.append("ok")
            except botocore.exceptions.ClientError as error:
                seen.append(str(_code(error)[1]))
        return seen

    first = outcomes()
    assert first == outcomes()
    assert {"ok", "500", "503"} <= set(first)


def _wait_for(proxy: str, predicate: Any, what: str = "the proxy's stats") -> dict[str, Any]:
    """Polls the stats until `predicate` holds (a generous deadline: a hang, not a timing)."""
    deadline = time.monotonic() + 30
    while True:
        s = stats(proxy)
        if predicate(s):
            return s
        assert time.monotonic() < deadline, f"{what} never held: {s}"
        time.sleep(0.02)


def test_hold_after_n_requests_until_released(proxy: str) -> None:
    sqs = client("sqs", proxy)
    _post(f"{proxy}/__proxy/config", {"hold_after": 1})
    sqs.list_queues()
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(sqs.list_queues()))
    thread.start()
    _wait_for(proxy, lambda s: s["held"] == 1, "the second request held")
    assert not result
    assert stats(proxy)["requests"] == 2
    _post(f"{proxy}/__proxy/config", {"hold_after": None})
    thread.join(timeout=5)
    assert result and "ResponseMetadata" in result[0]


def test_hold_after_mutating_lets_n_changes_through_then_holds_everything(
    proxy: str, moto: str
) -> None:
    sqs = client("sqs", proxy)
    _post(f"{proxy}/__proxy/config", {"hold_after_mutating": 2})
    # Reads before and between the first two changes pass.
    sqs.list_queues()
    url = sqs.create_queue(QueueName=unique("queue"))["QueueUrl"]
    sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    sqs.list_queues()
    sqs.send_message(QueueUrl=url, MessageBody="second change")
    s = stats(proxy)
    assert (s["requests"], s["mutating"], s["held"]) == (5, 2, 0)

    # After the second change every request is held: the third change and a read alike.
    third = unique("queue")
    with ThreadPoolExecutor(2) as pool:
        read = pool.submit(client("sqs", proxy).list_queues)
        change = pool.submit(client("sqs", proxy).create_queue, QueueName=third)
        s = _wait_for(proxy, lambda s: s["held"] == 2)
        assert (s["requests"], s["mutating"]) == (7, 3)
        assert not read.done() and not change.done()
        with pytest.raises(botocore.exceptions.ClientError):
            client("sqs", moto).get_queue_url(QueueName=third)  # not forwarded yet

        _post(f"{proxy}/__proxy/release", {"forward": True})
        assert "ResponseMetadata" in read.result(timeout=30)
        assert change.result(timeout=30)["QueueUrl"]
    assert client("sqs", moto).get_queue_url(QueueName=third)["QueueUrl"]

    # Still holding; turning it off lets the held request go.
    with ThreadPoolExecutor(1) as pool:
        later = pool.submit(sqs.list_queues)
        _wait_for(proxy, lambda s: s["held"] == 1)
        _post(f"{proxy}/__proxy/config", {"hold_after_mutating": None})
        assert "ResponseMetadata" in later.result(timeout=30)
    assert stats(proxy)["held"] == 0


def test_held_requests_released_without_forwarding_are_reset(proxy: str, moto: str) -> None:
    # What the kill loop does once it has killed the client: the held calls never happen.
    name = unique("queue")
    _post(f"{proxy}/__proxy/config", {"hold_after_mutating": 0})
    with ThreadPoolExecutor(1) as pool:
        create = pool.submit(client("sqs", proxy).create_queue, QueueName=name)
        _wait_for(proxy, lambda s: s["held"] == 1)
        _post(f"{proxy}/__proxy/release", {"forward": False})
        with pytest.raises(botocore.exceptions.ConnectionClosedError):
            create.result(timeout=30)
    with pytest.raises(botocore.exceptions.ClientError):
        client("sqs", moto).get_queue_url(QueueName=name)


def test_hold_match_holds_only_the_operations_it_names(proxy: str, moto: str) -> None:
    # What the killed-worker test does: hold a worker's DeleteMessage (only that), whatever
    # receives, heartbeats and uploads came before it.
    sqs = client("sqs", proxy)
    url = sqs.create_queue(QueueName=unique("queue"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="job")
    config = _post(f"{proxy}/__proxy/config", {"hold_after": 0, "hold_match": "sqs:DeleteMessage"})
    assert config["hold_match"] == ["sqs:DeleteMessage"]
    message = sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"][0]
    receipt = message["ReceiptHandle"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=60)
    client("s3", proxy).list_buckets()
    assert stats(proxy)["held"] == 0

    def not_visible() -> str:
        return client("sqs", moto).get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]

    with ThreadPoolExecutor(1) as pool:
        delete = pool.submit(
            client("sqs", proxy).delete_message, QueueUrl=url, ReceiptHandle=receipt
        )
        s = _wait_for(proxy, lambda s: s["held"] == 1, "the DeleteMessage held")
        assert s["by_operation"]["sqs:DeleteMessage"] == 1
        # Everything else still passes while the delete is held.
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        assert not delete.done()
        _post(f"{proxy}/__proxy/release", {"forward": False})
        with pytest.raises(botocore.exceptions.ConnectionClosedError):
            delete.result(timeout=30)
    assert not_visible() == "1", "a delete released without forwarding reached moto"

    # The next delete is held too; released with forwarding, it happens.
    with ThreadPoolExecutor(1) as pool:
        delete = pool.submit(
            client("sqs", proxy).delete_message, QueueUrl=url, ReceiptHandle=receipt
        )
        _wait_for(proxy, lambda s: s["held"] == 1, "the second DeleteMessage held")
        _post(f"{proxy}/__proxy/release", {"forward": True})
        assert "ResponseMetadata" in delete.result(timeout=30)
    assert not_visible() == "0"
    assert _post(f"{proxy}/__proxy/config", {"hold_match": None})["hold_match"] == ["*"]


def test_hold_after_mutating_on_the_command_line() -> None:
    sys.path.insert(0, str(HERE))
    try:
        import proxy as module
    finally:
        sys.path.remove(str(HERE))
    args = module.parse_args(["--upstream", "http://127.0.0.1:1", "--hold-after-mutating", "3"])
    assert module.State(args).config()["hold_after_mutating"] == 3
    assert module.State(args).config()["hold_match"] == ["*"]
    args = module.parse_args(["--upstream", "http://127.0.0.1:1", "--hold-match", "sqs:Del*, s3:*"])
    assert module.State(args).config()["hold_match"] == ["sqs:Del*", "s3:*"]
    kinds = "500-after,503-after,throttle-after"
    assert module.parse_faults(kinds) == ("500-after", "503-after", "throttle-after")


# ---------------------------------------------------------------------------------------------
# The emulator (scripts/moto_server.py) where it differs from plain moto


def test_a_duplicate_lambda_statement_id_is_a_conflict_as_on_aws(moto: str) -> None:
    function = _function(moto)
    lam = client("lambda", moto)
    permission = {
        "FunctionName": function,
        "Action": "lambda:InvokeFunction",
        "Principal": "s3.amazonaws.com",
    }
    lam.add_permission(StatementId="one", **permission)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        lam.add_permission(StatementId="one", **permission)
    assert _code(caught.value) == ("ResourceConflictException", 409)
    assert "one" in caught.value.response["Error"]["Message"]
    lam.add_permission(StatementId="two", **permission)
    lam.remove_permission(FunctionName=function, StatementId="one")
    lam.add_permission(StatementId="one", **permission)  # free again once removed
    policy = json.loads(lam.get_policy(FunctionName=function)["Policy"])
    assert sorted(st["Sid"] for st in policy["Statement"]) == ["one", "two"]

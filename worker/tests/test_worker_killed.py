"""A worker killed with SIGKILL in the middle of a render (a hard crash: the container dies,
nothing is handed back) must not lose the job: once the message's visibility lapses (no more
heartbeats), another worker takes it, renders it, and the bucket ends up with one PNG, the same
picture as a clean render of the same scene.

Run as the task runs it (worker/worker.py as a process, against moto, real POV-Ray), with a
short visibility (LEW_VISIBILITY_TIMEOUT_S=4, heartbeat every second) so the test waits
seconds, not the 15 minutes of lew's default.

About "the same bytes": POV-Ray writes the render time into every PNG (a tIME chunk and a
"Render Date" comment), so two renders of one scene never have the same bytes; the check
compares the decoded pixels instead. Those are identical for a deterministic scene. (Scenes
using `jitter` on area lights, or other random sampling, give slightly different pixels from
run to run when POV-Ray renders with more than one thread; either way only one PNG is ever
written, because the killed attempt dies before its upload.)

LEW_RELIABILITY_WORKER_KILLS=N (scripts/reliability sets it) repeats the kill at N different
moments of the render; the default is one.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "worker" / "worker.py"

pytestmark = pytest.mark.skipif(shutil.which("povray") is None, reason="povray is not installed")

# ~2-4 s of rendering on one core: enough to be killed in the middle. No jitter, no random
# sampling: the pixels do not depend on the run or on the thread count.
SLOW_POV = """#version 3.7;
global_settings { assumed_gamma 1 }
camera { location <0, 2, -6> look_at <0, 0.5, 0> }
light_source { <4, 8, -6> color rgb 1 area_light <2, 0, 0>, <0, 0, 2>, 6, 6 adaptive 1 }
plane { y, 0 pigment { checker color rgb 1 color rgb 0.2 } finish { reflection 0.3 } }
#declare I = 0;
#while (I < 60)
  sphere { <mod(I, 10) * 0.6 - 2.7, 0.25, div(I, 10) * 0.6 - 1>, 0.25
    pigment { color rgb <mod(I, 3) / 2, mod(I, 5) / 4, 0.5> } finish { reflection 0.4 } }
  #declare I = I + 1;
#end
"""
SLOW_INI = "Input_File_Name=scene.pov\nWidth=400\nHeight=300\nAntialias=on\n"
VISIBILITY_S = 4


def _worker_python() -> str:
    override = os.environ.get("LEW_TEST_WORKER_PYTHON")
    if override:
        return override
    system = "/usr/bin/python3"
    if os.path.exists(system):
        probe = subprocess.run([system, "-c", "import boto3"], capture_output=True, check=False)
        if probe.returncode == 0:
            return system
    return sys.executable


def scene_zip(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.ini", SLOW_INI)
        archive.writestr("scene.pov", SLOW_POV)
    return buffer.getvalue()


def pixels(png: bytes) -> tuple[bytes, bytes]:
    """(IHDR, decompressed image data): what the picture is, without the metadata chunks."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, header, data = 8, b"", b""
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at : at + 8])
        body = png[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            data += body
        at += 12 + length
    return header, zlib.decompress(data)


def children(pid: int) -> list[int]:
    """Every descendant of `pid` (POV-Ray runs in a session of its own, so not in the group)."""
    found: list[int] = []
    parents = {pid}
    changed = True
    while changed:
        changed = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in found:
                continue
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid in parents:
                found.append(int(entry))
                parents.add(int(entry))
                changed = True
    return found


class Stack:
    def __init__(self, suffix: str) -> None:
        self.s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
        self.sqs = boto3.client("sqs")
        self.bucket = f"lew-kill-test-{suffix}"
        region = self.s3.meta.region_name
        placement = {} if region == "us-east-1" else {"LocationConstraint": region}
        self.s3.create_bucket(Bucket=self.bucket, CreateBucketConfiguration=placement)
        self.dlq = self.sqs.create_queue(QueueName=f"lew-kill-test-{suffix}-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}
        self.queue = self.sqs.create_queue(
            QueueName=f"lew-kill-test-{suffix}",
            Attributes={"VisibilityTimeout": "30", "RedrivePolicy": json.dumps(redrive)},
        )["QueueUrl"]
        self.work = Path(tempfile.mkdtemp(prefix="lew-kill-test-", dir="/tmp"))
        self.work.chmod(0o755)

    def submit(self, job: str, name: str) -> str:
        key = f"scenes/{job}/{name}.zip"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=scene_zip(name))
        body = {"version": 1, "job_id": job, "bucket": self.bucket, "key": key, "size": 0}
        self.sqs.send_message(QueueUrl=self.queue, MessageBody=json.dumps(body))
        return key

    def keys(self, prefix: str) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def depth(self, url: str) -> tuple[int, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def start(self, **env: str) -> subprocess.Popen[str]:
        full = {k: v for k, v in os.environ.items() if not k.startswith("LEW_")}
        full.update(
            LEW_QUEUE_URL=self.queue,
            LEW_WORK_DIR=str(self.work),
            LEW_RENDER_TIMEOUT_S="120",
            LEW_POVRAY_THREADS="1",
            **env,
        )
        return subprocess.Popen(
            [_worker_python(), str(WORKER)],
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd="/",
        )

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip().startswith("{")]


def kill_delays() -> list[float]:
    """Seconds after POV-Ray starts at which the worker is killed."""
    count = int(os.environ.get("LEW_RELIABILITY_WORKER_KILLS", "1"))
    spread = [0.8, 0.2, 1.5, 0.5, 1.1, 0.1, 1.8, 0.35, 0.65, 1.3]
    return spread[: max(1, min(count, len(spread)))]


@pytest.mark.parametrize("delay", kill_delays())
def test_a_worker_killed_mid_render_loses_nothing_and_renders_once(
    moto_endpoint: str, delay: float
) -> None:
    stack = Stack(uuid.uuid4().hex[:10])
    try:
        # A clean render of the same scene first: the reference picture.
        reference_key = stack.submit("clean", "slow")
        clean = stack.start(LEW_WAIT_TIME_S="0")
        out, err = clean.communicate(timeout=120)
        assert clean.returncode == 0, out + err
        reference = stack.get("renders/clean/slow.png")
        clean_s = next(e for e in events(out) if e["event"] == "rendered")["render_seconds"]

        key = stack.submit("job1", "slow")
        assert key != reference_key
        # Worker A: short visibility, a heartbeat every second.
        a = stack.start(
            LEW_WAIT_TIME_S="0",
            LEW_VISIBILITY_TIMEOUT_S=str(VISIBILITY_S),
            LEW_HEARTBEAT_S="1",
        )
        deadline = time.monotonic() + 60
        povray: list[int] = []
        while not povray:
            assert a.poll() is None, "worker A ended before POV-Ray started: " + a.stdout.read()
            assert time.monotonic() < deadline, "POV-Ray never started"
            povray = [p for p in children(a.pid) if _comm(p) == "povray"]
            time.sleep(0.02)
        time.sleep(delay)
        killed_at = time.monotonic()
        # A hard crash: the worker and everything it started die at once, as when the
        # container is killed (POV-Ray runs in its own session, so kill it explicitly).
        victims = [a.pid, *children(a.pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        a_out, _ = a.communicate(timeout=10)
        assert a.returncode == -signal.SIGKILL
        a_events = events(a_out)
        assert [e["event"] for e in a_events if e["event"] in ("rendered", "scene_error")] == []
        assert "renders/job1/slow.png" not in stack.keys("renders/job1/"), "A uploaded?"
        # The job is not lost: held (in flight), not visible, nothing in the DLQ.
        assert stack.depth(stack.queue) == (0, 1)

        # Worker B waits on the queue; it gets the job once the visibility lapses (a worker
        # whose long poll comes back empty exits, as on Fargate; the next one is started).
        b_events: list[dict[str, Any]] = []
        b_out = ""
        for _ in range(4):
            b = stack.start(LEW_WAIT_TIME_S="5")
            out, err = b.communicate(timeout=120)
            assert b.returncode == 0, out + err
            b_out += out
            b_events += events(out)
            if any(e["event"] == "job_started" for e in b_events):
                break
        started = [e for e in b_events if e["event"] == "job_started"]
        rendered = [e for e in b_events if e["event"] == "rendered"]
        assert len(started) == 1 and started[0]["attempt"] == 2, b_out
        assert len(rendered) == 1, b_out
        waited = time.monotonic() - killed_at

        pngs = [k for k in stack.keys("renders/job1/") if k.endswith(".png")]
        assert pngs == ["renders/job1/slow.png"]
        assert not [k for k in stack.keys("renders/job1/") if k.endswith(".error.txt")]
        image = stack.get("renders/job1/slow.png")
        same_pixels = pixels(image) == pixels(reference)
        assert same_pixels, "the re-render differs from the clean render"
        assert stack.depth(stack.queue) == (0, 0)
        assert stack.depth(stack.dlq) == (0, 0)
        print(
            f"worker kill: SIGKILL {delay:.2f} s into a {clean_s:.1f} s render (worker + POV-Ray, "
            f"pids {victims}); visibility {VISIBILITY_S} s: attempt 2 rendered it, and its worker "
            f"had exited (after a 5 s idle poll) {waited:.1f} s after the kill; 1 PNG, pixels "
            "identical to a clean render: "
            f"{same_pixels}, "
            f"PNG bytes identical: {image == reference} (POV-Ray stamps the render time); "
            "queue and DLQ empty"
        )
    finally:
        stack.close()


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip()
    except OSError:
        return ""


def test_pixels_compare_only_the_picture() -> None:
    first = _png(b"\x00\x01\x02", b"tIME")
    second = _png(b"\x00\x01\x02", b"tEXt")
    assert first != second and pixels(first) == pixels(second)
    assert pixels(_png(b"\x00\x01\x03", b"tIME")) != pixels(first)


def _png(raw: bytes, extra: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + b"\0\0\0\0"

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(extra, b"x")
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )

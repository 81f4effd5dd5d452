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

The two paths where a first attempt does reach its upload are tested too: a worker killed after
it uploaded the PNG but before its DeleteMessage reached SQS (held by scripts/proxy/proxy.py with
--hold-match sqs:DeleteMessage), and a worker frozen (SIGSTOP) until another worker has taken
its job over, then thawed (see each test's docstring for what the worker does).
"""

from __future__ import annotations

import contextlib
import importlib.util
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
from testkit.processes import descendants, kill_tree
from testkit.sqs import create_queue_with_redrive

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
        # The dead-letter queue is usable a second after it is created: waited for.
        self.queue = create_queue_with_redrive(
            self.sqs,
            f"lew-kill-test-{suffix}",
            {"VisibilityTimeout": "30", "RedrivePolicy": json.dumps(redrive)},
        )
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
        )
        full.update(env)
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
            povray = [p for p in descendants(a.pid) if _comm(p) == "povray"]
            time.sleep(0.02)
        time.sleep(delay)
        killed_at = time.monotonic()
        # A hard crash: the worker and everything it started die at once, as when the
        # container is killed (POV-Ray runs in its own session, so kill it explicitly).
        victims = kill_tree(a.pid)
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


# ---------------------------------------------------------------------------------------------
# Killed after the upload, before the delete; frozen until another worker took the job


def _state(pid: int) -> str:
    """The process state letter (R, S, T stopped, Z exited but not reaped), "" once gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _wait(condition: Any, what: str, seconds: float = 120) -> None:
    """Polls until `condition()` holds; the deadline is an upper bound on a hang, not a timing."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds:g} s"
        time.sleep(0.02)


def _povray_of(worker: subprocess.Popen[str]) -> list[int]:
    return [p for p in descendants(worker.pid) if _comm(p) == "povray"]


# The fault proxy's client, shared with the reliability loops.
_spec = importlib.util.spec_from_file_location(
    "lew_reliability_common", REPO / "tests" / "reliability" / "common.py"
)
assert _spec is not None and _spec.loader is not None
reliability = importlib.util.module_from_spec(_spec)
sys.modules["lew_reliability_common"] = reliability
_spec.loader.exec_module(reliability)


def holding_deletes(upstream: str) -> Any:
    """scripts/proxy/proxy.py in front of moto, holding every sqs:DeleteMessage (and nothing
    else) until released."""
    proxy = reliability.Proxy(upstream)
    proxy.configure(hold_after=0, hold_match=["sqs:DeleteMessage"])
    return proxy


@pytest.fixture(scope="module")
def reference(moto_endpoint: str) -> bytes:
    """A clean render of the slow scene: the picture every other render must equal."""
    stack = Stack(uuid.uuid4().hex[:10])
    try:
        stack.submit("clean", "slow")
        clean = stack.start(LEW_WAIT_TIME_S="0")
        out, err = clean.communicate(timeout=120)
        assert clean.returncode == 0, out + err
        return stack.get("renders/clean/slow.png")
    finally:
        stack.close()


def _run_workers_until_taken(stack: Stack) -> tuple[list[dict[str, Any]], str]:
    """Starts workers straight against moto (a worker whose 5 s long poll comes back empty
    exits, as on Fargate, and the next one is started) until one has taken the job."""
    found: list[dict[str, Any]] = []
    text = ""
    for _ in range(6):
        worker = stack.start(LEW_WAIT_TIME_S="5")
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, out + err
        text += out
        found += events(out)
        if any(e["event"] in ("job_started", "skipped") for e in found):
            break
    return found, text


def test_a_worker_killed_after_its_upload_but_before_its_delete_is_not_rendered_again(
    moto_endpoint: str, reference: bytes
) -> None:
    """Worker A renders and uploads the PNG and the .log; its DeleteMessage is held by the
    proxy (it never reaches SQS) and A is SIGKILLed meanwhile. Its heartbeat stopped with the
    job, so the message comes back after the visibility timeout; worker B finds the PNG,
    skips the job (no render, no upload) and deletes the message."""
    stack = Stack(uuid.uuid4().hex[:10])
    proxy = holding_deletes(moto_endpoint)
    a: subprocess.Popen[str] | None = None
    try:
        stack.submit("job1", "slow")
        a = stack.start(
            AWS_ENDPOINT_URL=proxy.url,
            LEW_WAIT_TIME_S="0",
            LEW_VISIBILITY_TIMEOUT_S=str(VISIBILITY_S),
            LEW_HEARTBEAT_S="1",
        )
        worker_a = a

        def delete_held() -> bool:
            assert worker_a.poll() is None, "worker A ended: " + worker_a.communicate()[0]
            return proxy.stats()["held"] == 1

        _wait(delete_held, "worker A's DeleteMessage held by the proxy")
        # The PNG is in the bucket; the delete has not reached SQS.
        assert stack.keys("renders/job1/") == [
            "renders/job1/slow.log",
            "renders/job1/slow.png",
            "renders/job1/slow.started.json",
        ]
        first_png = stack.get("renders/job1/slow.png")
        victims = kill_tree(a.pid)
        a_out, _ = a.communicate(timeout=30)
        assert a.returncode == -signal.SIGKILL
        proxy.release(forward=False)  # the held delete is dropped: it never happens
        assert proxy.stats()["by_operation"].get("sqs:DeleteMessage") == 1
        a_events = events(a_out)
        assert [e["event"] for e in a_events if e["event"] in ("job_started", "rendered")] == [
            "job_started",
            "rendered",
        ], a_out
        # Not deleted: held by nobody, it comes back once its visibility lapses.
        assert stack.depth(stack.dlq) == (0, 0)
        assert sum(stack.depth(stack.queue)) == 1

        b_events, b_out = _run_workers_until_taken(stack)
        skipped = [e for e in b_events if e["event"] == "skipped"]
        assert len(skipped) == 1, b_out
        assert skipped[0]["output"] == "renders/job1/slow.png"
        assert skipped[0]["reason"] == "output exists"
        assert not [e for e in b_events if e["event"] in ("job_started", "rendered")], b_out
        assert not [e for e in b_events if e["event"] == "infra_error"], b_out

        rendered = [e for e in a_events + b_events if e["event"] == "rendered"]
        assert len(rendered) == 1
        outputs = stack.keys("renders/job1/")
        assert [k for k in outputs if k.endswith(".png")] == ["renders/job1/slow.png"]
        assert not [k for k in outputs if k.endswith(".error.txt")]
        image = stack.get("renders/job1/slow.png")
        assert image == first_png, "the PNG was written again"
        assert pixels(image) == pixels(reference), "the render differs from the clean render"
        assert stack.depth(stack.queue) == (0, 0)
        assert stack.depth(stack.dlq) == (0, 0)
        print(
            f"killed after upload: worker A (pids {victims}) uploaded the PNG and was SIGKILLed "
            "with its DeleteMessage held; after the visibility lapsed worker B skipped the job "
            "(output exists) and deleted the message: 1 render, 1 PNG (A's bytes, pixels equal "
            "to a clean render), queue and DLQ empty"
        )
    finally:
        if a is not None and a.poll() is None:
            kill_tree(a.pid)
            a.communicate(timeout=30)
        proxy.close()
        stack.close()


# A frozen worker's render timeout: long enough that its POV-Ray never reaches it before the
# freeze; the test waits until it has passed before it thaws the worker.
FROZEN_TIMEOUT_S = 15
SUPERSEDED = "output exists (written meanwhile by another attempt)"


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sigterm_pending(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            lines = status.read().splitlines()
    except OSError:
        return False
    pending = 0
    for line in lines:
        if line.startswith(("SigPnd:", "ShdPnd:")):
            pending |= int(line.split()[1], 16)
    return bool(pending & (1 << (signal.SIGTERM - 1)))


@pytest.mark.parametrize(
    "case", ["completes after B finished", "times out after B finished", "thawed while B renders"]
)
def test_a_frozen_worker_whose_job_was_taken_over_leaves_one_picture(
    moto_endpoint: str, reference: bytes, case: str
) -> None:
    """Worker A is frozen (SIGSTOP) mid-render: it is alive but its heartbeat stops, so the
    message becomes visible after the visibility timeout and worker B takes it (attempt 2).
    Then A is thawed (SIGCONT) and carries on as if it still held the job: its heartbeat's
    ChangeMessageVisibility with its old receipt handle fails once B has deleted the message
    (only logged, `heartbeat_error`), and its DeleteMessage with that handle at the end is
    harmless (B's delete has happened, or comes after; moto honours an old handle, AWS says
    such a delete "succeeds, but the message might not be deleted"; a failure is only logged).

    What must not happen is A's late outcome replacing B's: before it uploads anything, A looks
    for the PNG again, and when another attempt has written it meanwhile A logs `skipped`
    (reason SUPERSEDED) and uploads nothing, neither its own picture nor an error.

    - "completes after B finished": A's POV-Ray is frozen with it (a frozen task) and thawed
      after B has rendered, uploaded and deleted the message: A's render completes, and A
      keeps B's PNG and .log (it used to overwrite them: the same pixels, other bytes).
    - "times out after B finished": the same, but A's render timeout passes while it is
      frozen, so once thawed A stops POV-Ray and has a "scene error": it used to upload an
      .error.txt (and its .log) next to B's good PNG, and `lew render`/`lew status` showed the
      job as failed as well as rendered.
    - "thawed while B renders": only A's worker process is frozen (its POV-Ray runs on to the
      end), and it is thawed while B's POV-Ray runs. Each of A and B uploads its picture or,
      if the other's PNG is there by then, skips: one PNG either way, the same pixels as a
      clean render (the scene is deterministic), written twice only if both looked before
      either had uploaded.
    """
    stack = Stack(uuid.uuid4().hex[:10])
    a: subprocess.Popen[str] | None = None
    b: subprocess.Popen[str] | None = None
    png, log_key = "renders/job1/slow.png", "renders/job1/slow.log"
    try:
        stack.submit("job1", "slow")
        timeout = FROZEN_TIMEOUT_S if case == "times out after B finished" else 120
        a = stack.start(
            LEW_WAIT_TIME_S="0",
            LEW_VISIBILITY_TIMEOUT_S=str(VISIBILITY_S),
            LEW_HEARTBEAT_S="1",
            LEW_RENDER_TIMEOUT_S=str(timeout),
        )
        worker_a = a

        def a_rendering() -> bool:
            assert worker_a.poll() is None, "worker A ended: " + worker_a.communicate()[0]
            # Past POV-Ray's start-up, whose own (wall clock) waits a freeze there would trip.
            return any(_cpu_seconds(p) >= 0.3 for p in _povray_of(worker_a))

        _wait(a_rendering, "worker A's POV-Ray rendering")
        povray = _povray_of(a)
        seen = time.monotonic()
        frozen = [a.pid] if case == "thawed while B renders" else [a.pid, *povray]
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        _wait(lambda: all(_state(pid) in ("T", "Z", "") for pid in frozen), "worker A stopped")

        b_out = ""
        if case == "thawed while B renders":
            # A's POV-Ray runs on to its end (A cannot reap it), then B takes the job.
            _wait(lambda: all(_state(p) in ("Z", "") for p in povray), "A's POV-Ray finished")
            for _ in range(6):
                b = stack.start(LEW_WAIT_TIME_S="5")
                _wait(
                    lambda w=b: w.poll() is not None or bool(_povray_of(w)),
                    "worker B rendering or gone",
                )
                if b.poll() is None:
                    break  # B is rendering the job
                out, err = b.communicate(timeout=30)
                assert b.returncode == 0, out + err
                assert not [e for e in events(out) if e["event"] == "job_started"], out
                b_out += out
                b = None
            assert b is not None, "no worker B took the job: " + b_out
            os.kill(a.pid, signal.SIGCONT)
            out, err = b.communicate(timeout=120)
            assert b.returncode == 0, out + err
            b_out += out
        else:
            b_events, b_out = _run_workers_until_taken(stack)
            assert [e["event"] for e in b_events if e["event"] in ("job_started", "rendered")] == [
                "job_started",
                "rendered",
            ], b_out
            b_png, b_log = stack.get(png), stack.get(log_key)
            if case == "times out after B finished":
                # A's deadline passes while it is frozen (a wait for it, not a timing).
                time.sleep(max(0.0, seen + timeout - time.monotonic()))
                os.kill(a.pid, signal.SIGCONT)
                # A finds its render timed out and sends POV-Ray SIGTERM; then POV-Ray thaws.
                _wait(
                    lambda: all(_sigterm_pending(p) or _state(p) in ("Z", "") for p in povray),
                    "worker A stopping its POV-Ray",
                )
                for pid in povray:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGCONT)
            else:
                for pid in reversed(frozen):
                    os.kill(pid, signal.SIGCONT)
        a_out, a_err = a.communicate(timeout=120)
        assert a.returncode == 0, a_out + a_err
        a_events, b_events = events(a_out), events(b_out)

        assert [e["attempt"] for e in a_events if e["event"] == "job_started"] == [1], a_out
        assert [e["attempt"] for e in b_events if e["event"] == "job_started"] == [2], b_out
        for name, found in (("A", a_events), ("B", b_events)):
            assert not [
                e
                for e in found
                if e["event"] in ("scene_error", "retry_later", "handed_back", "infra_error")
                and e.get("stage") != "delete_message"
            ], f"worker {name}: {found}"
        outcomes = {
            name: [
                e["event"] if e["event"] == "rendered" else e["reason"]
                for e in found
                if e["event"] in ("rendered", "skipped")
            ]
            for name, found in (("A", a_events), ("B", b_events))
        }
        if case == "thawed while B renders":
            assert all(o in (["rendered"], [SUPERSEDED]) for o in outcomes.values()), outcomes
            assert ["rendered"] in outcomes.values(), outcomes
        else:
            assert outcomes == {"A": [SUPERSEDED], "B": ["rendered"]}, outcomes
            assert stack.get(png) == b_png, "A replaced B's PNG"
            assert stack.get(log_key) == b_log, "A replaced B's .log"
        outputs = stack.keys("renders/job1/")
        assert [k for k in outputs if k.endswith(".png")] == [png]
        assert not [k for k in outputs if k.endswith(".error.txt")], outputs
        assert pixels(stack.get(png)) == pixels(reference)
        assert stack.depth(stack.queue) == (0, 0)
        assert stack.depth(stack.dlq) == (0, 0)
        logged = sorted(
            {
                f"{name}: {e['event']} {e.get('stage', '')} {e['error'][:60]}"
                for name, found in (("A", a_events), ("B", b_events))
                for e in found
                if e["event"] in ("heartbeat_error", "infra_error")
            }
        )
        print(
            f"frozen worker, {case}: outcomes {outcomes}; 1 PNG, pixels equal to a clean "
            f"render, no error, queue and DLQ empty; errors logged: {logged or 'none'}"
        )
    finally:
        for worker in (a, b):
            if worker is not None and worker.poll() is None:
                kill_tree(worker.pid)
                worker.communicate(timeout=30)
        stack.close()

"""Tests of the lew worker against a real moto server and Debian's real POV-Ray.

The loop, signal and end-to-end behaviour run the worker script as a process, the way the ECS
task runs it; the fine-grained parts (keys, bodies, zip safety, .ini choice, POV-Ray errors) are
called as functions. Results are read back from moto: objects, queue depths, the dead-letter
queue. POV-Ray renders stay tiny (64x48) except the demo scene.

The worker process runs on Debian's /usr/bin/python3 with python3-boto3 when that is installed
(the interpreter and boto3 1.26 of the container image), else on this venv's interpreter;
LEW_TEST_WORKER_PYTHON overrides the choice.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import pwd
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from botocore.config import Config
from testkit.iam import queue_policy_for_s3
from testkit.sqs import create_queue_with_redrive

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "worker" / "worker.py"
DEMO = REPO / "assets" / "lew-demo"

_spec = importlib.util.spec_from_file_location("lew_worker", WORKER)
assert _spec is not None and _spec.loader is not None
worker = importlib.util.module_from_spec(_spec)
sys.modules["lew_worker"] = worker
_spec.loader.exec_module(worker)

pytestmark = pytest.mark.skipif(shutil.which("povray") is None, reason="povray is not installed")

NOBODY = pwd.getpwnam("nobody")
IS_ROOT = os.geteuid() == 0


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


WORKER_PYTHON = _worker_python()


# ---------------------------------------------------------------------------------------------
# Scenes and zips


def tiny_pov(body: str = "") -> str:
    return (
        "#version 3.7;\n"
        "global_settings { assumed_gamma 1 }\n"
        "camera { location <0, 0, -3> look_at 0 }\n"
        "light_source { <2, 4, -3> color rgb 1 }\n"
        "sphere { 0, 1 pigment { color rgb <1, 0.2, 0.1> } }\n" + body
    )


def tiny_ini(pov: str = "scene.pov", width: int = 64, height: int = 48) -> str:
    return f"Input_File_Name={pov}\nWidth={width}\nHeight={height}\n"


# A scene whose parse never ends, however fast the machine (POV-Ray stops it within a second):
# only the render timeout or SIGTERM ends its render.
SLOW_POV = (
    "#version 3.7;\n"
    "global_settings { assumed_gamma 1 }\n"
    "#declare I = 0;\n"
    "#while (true)\n"
    "  #declare I = I + 1;\n"
    "#end\n"
    "camera { location <0, 0, -3> look_at 0 }\n"
    "sphere { 0, 1 pigment { color rgb 1 } }\n"
)

Entry = tuple[str | zipfile.ZipInfo, bytes | str]


def make_zip(entries: list[Entry]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore")  # duplicate names are one of the hostile cases
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def scene_zip(name: str, pov: str | None = None, extra: list[Entry] | None = None) -> bytes:
    """A tiny scene whose .ini is named like the zip."""
    return make_zip([(f"{name}.ini", tiny_ini()), ("scene.pov", pov or tiny_pov()), *(extra or [])])


def special_entry(name: str, file_type: int, data: bytes = b"") -> Entry:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (file_type | 0o777) << 16
    return (info, data)


def lying_zip(real_size: int, claimed_size: int) -> bytes:
    """One deflated file of `real_size` zeros whose headers claim `claimed_size` bytes."""
    data = bytearray(make_zip([("bomb.bin", b"\0" * real_size)]))
    local = data.index(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, claimed_size)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, claimed_size)
    return bytes(data)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert chunk == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def zip_folder(folder: Path, prefix: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{prefix}{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# A bucket, a queue and a work folder in moto; running the worker against them


@dataclass
class Run:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]


def parse_events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@dataclass
class Stack:
    s3: Any
    sqs: Any
    bucket: str
    queue_url: str
    work_dir: Path
    dlq_url: str | None = None
    env_overrides: dict[str, str] = field(default_factory=dict)

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def keys(self, prefix: str = "") -> list[str]:
        response = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for obj in response.get("Contents", []))

    def send_job(self, key: str, bucket: str | None = None) -> None:
        body = {
            "version": 1,
            "job_id": key.split("/")[1],
            "bucket": bucket or self.bucket,
            "key": key,
            "size": 0,
            "etag": "x",
        }
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))

    def submit(self, key: str, data: bytes) -> None:
        self.put(key, data)
        self.send_job(key)

    def depth(self, url: str | None = None) -> tuple[int, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEW_")}
        env.update(
            LEW_QUEUE_URL=self.queue_url,
            LEW_WORK_DIR=str(self.work_dir),
            LEW_WAIT_TIME_S="0",
            LEW_POVRAY_THREADS="1",
            LEW_RENDER_TIMEOUT_S="60",
        )
        env.update(self.env_overrides)
        env.update(overrides)
        return env

    def start(self, user: int | None = None, **overrides: str) -> subprocess.Popen[str]:
        kwargs: dict[str, Any] = {}
        if user is not None:
            kwargs = {"user": user, "group": NOBODY.pw_gid, "extra_groups": []}
        return subprocess.Popen(
            [WORKER_PYTHON, str(WORKER)],
            env=self.env(**overrides),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd="/",
            **kwargs,
        )

    def run(self, timeout: float = 90, user: int | None = None, **overrides: str) -> Run:
        process = self.start(user=user, **overrides)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=30)
            pytest.fail(f"worker did not finish in {timeout} s:\n{stdout}\n{stderr}")
        return Run(process.returncode, parse_events(stdout), stderr)


def clients() -> tuple[Any, Any]:
    s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
    return s3, boto3.client("sqs")


def traversable_dir(prefix: str) -> Path:
    """A folder `nobody` can reach (pytest's tmp_path is inside a 0700 folder)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def make_stack(
    suffix: str, visibility: int = 30, max_receives: int | None = None
) -> tuple[Stack, Callable[[], None]]:
    s3, sqs = clients()
    bucket = f"lew-worker-test-{suffix}"
    s3.create_bucket(Bucket=bucket)
    attributes = {"VisibilityTimeout": str(visibility)}
    dlq_url = None
    if max_receives is not None:
        dlq_url = sqs.create_queue(QueueName=f"lew-worker-test-{suffix}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
        )
    # A dead-letter queue is usable a second after it is created: wait for it as lew does.
    queue_url = create_queue_with_redrive(sqs, f"lew-worker-test-{suffix}", attributes)
    work_dir = traversable_dir("lew-worker-test-")
    stack = Stack(s3, sqs, bucket, queue_url, work_dir, dlq_url)
    return stack, lambda: shutil.rmtree(work_dir, ignore_errors=True)


@pytest.fixture
def stack(moto_endpoint: str, unique: str) -> Iterator[Stack]:
    created, cleanup = make_stack(unique)
    yield created
    cleanup()


def wait_for_object(stack: Stack, key: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while stack.get(key) is None:
        assert time.monotonic() < deadline, f"{key} did not appear"
        time.sleep(0.1)


def first_line(data: bytes | None) -> str:
    assert data is not None, "no error.txt"
    return data.decode().splitlines()[0]


# ---------------------------------------------------------------------------------------------
# Pure functions


def test_output_keys() -> None:
    keys = worker.output_keys("scenes/j1/my scene.zip", "scenes/", "renders/")
    assert keys.png == "renders/j1/my scene.png"
    assert keys.log == "renders/j1/my scene.log"
    assert keys.error == "renders/j1/my scene.error.txt"
    assert keys.started == "renders/j1/my scene.started.json"
    assert (keys.name, keys.job_id) == ("my scene", "j1")
    assert worker.output_keys("in/a.ZIP", "in/", "out/").png == "out/a.png"
    for bad in ("other/j1/a.zip", "scenes/j1/a.tar", "scenes/j1/.zip"):
        with pytest.raises(ValueError):
            worker.output_keys(bad, "scenes/", "renders/")


def test_parse_body_formats() -> None:
    lew = {"version": 1, "job_id": "j1", "bucket": "b", "key": "scenes/j1/a.zip", "size": 3}
    assert worker.parse_body(json.dumps(lew)) == [
        worker.Job(bucket="b", key="scenes/j1/a.zip", job_id="j1", size=3)
    ]
    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": "b"},
            "object": {"key": quote_plus("scenes/j2/my scene+1.zip"), "size": 5, "eTag": "e"},
        },
    }
    removed = {**record, "eventName": "ObjectRemoved:Delete"}
    jobs = worker.parse_body(json.dumps({"Records": [record, removed, record]}))
    assert [job.key for job in jobs] == ["scenes/j2/my scene+1.zip"] * 2
    assert jobs[0].size == 5
    # A failed launch, as Lambda's on-failure destination writes it to the dead-letter queue.
    failed_launch = {
        "version": "1.0",
        "timestamp": "2026-11-27T23:50:00.000Z",
        "requestContext": {
            "requestId": "r1",
            "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:lew-p-launcher",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": {"Records": [record]},
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "boom"},
    }
    jobs = worker.parse_body(json.dumps(failed_launch))
    assert [job.key for job in jobs] == ["scenes/j2/my scene+1.zip"]
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}
    for body in ("not json", "[1]", json.dumps(test_event), json.dumps({"version": 2})):
        with pytest.raises(worker.BadMessage):
            worker.parse_body(body)


HOSTILE_ZIPS: dict[str, tuple[bytes, str]] = {
    "zip slip": (make_zip([("../evil.txt", "x")]), "contains '..'"),
    "deep zip slip": (make_zip([("a/../../evil.txt", "x")]), "contains '..'"),
    "absolute path": (make_zip([("/tmp/evil.txt", "x")]), "is absolute"),
    "backslash": (make_zip([("..\\evil.txt", "x")]), "contains a backslash"),
    "drive letter": (make_zip([("C:evil.txt", "x")]), "drive letter"),
    "symlink": (make_zip([special_entry("link", stat.S_IFLNK, b"/etc/passwd")]), "symbolic link"),
    "fifo": (make_zip([special_entry("fifo", stat.S_IFIFO)]), "not a regular file"),
    "device": (make_zip([special_entry("dev", stat.S_IFCHR)]), "not a regular file"),
    "too many files": (make_zip([(f"f{i}.txt", "x") for i in range(11)]), "11 entries"),
    "zip bomb": (make_zip([("bomb.bin", b"\0" * 3_000_000)]), "unpacks to 3000000 bytes"),
    "lying header": (lying_zip(3_000_000, 100), "the zip is corrupt"),
    "not a zip": (b"just some bytes, no zip here", "not a zip file"),
    "empty zip": (make_zip([]), "the zip is empty"),
    "only folders": (make_zip([("a/", ""), ("a/b/", "")]), "no files"),
    "duplicate": (make_zip([("a.txt", "1"), ("a.txt", "2")]), "twice"),
    "file and folder": (make_zip([("a", "1"), ("a/b", "2")]), "both as a file and as a folder"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_safe_extract_rejects(case: str, tmp_path: Path) -> None:
    data, reason = HOSTILE_ZIPS[case]
    zip_path = tmp_path / "scene.zip"
    zip_path.write_bytes(data)
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(worker.SceneError) as caught:
        worker.safe_extract(zip_path, dest, max_files=10, max_unpacked_bytes=1_000_000)
    assert reason in caught.value.reason
    assert not (tmp_path / "evil.txt").exists()
    assert not any(p.is_symlink() for p in dest.rglob("*"))


def test_safe_extract_writes_plain_files(tmp_path: Path) -> None:
    executable = zipfile.ZipInfo("bin/run.sh")
    executable.create_system = 3
    executable.external_attr = (stat.S_IFREG | 0o4777) << 16
    data = make_zip([("./a/b.txt", "hello"), ("a/", ""), (executable, "#!/bin/sh\n")])
    zip_path = tmp_path / "scene.zip"
    zip_path.write_bytes(data)
    dest = tmp_path / "out"
    dest.mkdir()
    files = worker.safe_extract(zip_path, dest, max_files=10, max_unpacked_bytes=1000)
    assert sorted(map(str, files)) == ["a/b.txt", "bin/run.sh"]
    assert (dest / "a" / "b.txt").read_text() == "hello"
    assert stat.S_IMODE((dest / "bin" / "run.sh").stat().st_mode) == 0o644  # no setuid, no +x


def without_utf8_flag(data: bytes) -> bytes:
    """The zip with the UTF-8 flag (bit 11) cleared on every entry, its names' bytes kept: what
    Info-ZIP's `zip` writes for a UTF-8 name."""
    raw = bytearray(data)
    eocd = raw.rindex(b"PK\x05\x06")
    count, _size, offset = struct.unpack_from("<HII", raw, eocd + 10)
    for _ in range(count):
        assert raw[offset : offset + 4] == b"PK\x01\x02"
        flags = struct.unpack_from("<H", raw, offset + 8)[0]
        struct.pack_into("<H", raw, offset + 8, flags & ~0x800)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", raw, offset + 28)
        local = struct.unpack_from("<I", raw, offset + 42)[0]
        assert raw[local : local + 4] == b"PK\x03\x04"
        flags = struct.unpack_from("<H", raw, local + 6)[0]
        struct.pack_into("<H", raw, local + 6, flags & ~0x800)
        offset += 46 + name_len + extra_len + comment_len
    return bytes(raw)


def test_safe_extract_reads_utf8_names_without_the_flag(tmp_path: Path) -> None:
    data = without_utf8_flag(
        make_zip([("scène.ini", tiny_ini()), ("décor/étoile.inc", "x"), ("scene.pov", tiny_pov())])
    )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        # Python reads the names as CP437, as the zip spec says for a name without the flag.
        assert archive.namelist()[0] == "sc├¿ne.ini"
    zip_path = tmp_path / "scene.zip"
    zip_path.write_bytes(data)
    dest = tmp_path / "out"
    dest.mkdir()
    files = worker.safe_extract(zip_path, dest, max_files=10, max_unpacked_bytes=10_000)
    assert sorted(map(str, files)) == ["décor/étoile.inc", "scene.pov", "scène.ini"]
    assert (dest / "scène.ini").read_text() == tiny_ini()
    assert (dest / "décor" / "étoile.inc").read_text() == "x"
    assert worker.choose_ini(files, "scène") == PurePosixPath("scène.ini")
    # Bytes that are not UTF-8 stay CP437 ("caf\x82.txt" is café.txt in CP437), and a name
    # flagged as UTF-8 is taken as it is.
    cp437 = zipfile.ZipInfo("café.txt")
    cp437.flag_bits = 0
    assert worker.entry_name(cp437) == "café.txt"
    flagged = zipfile.ZipInfo("sc├¿ne.ini")
    flagged.flag_bits = 0x800
    assert worker.entry_name(flagged) == "sc├¿ne.ini"


def test_declared_size_is_what_povray_renders() -> None:
    assert worker.declared_size("Input_File_Name=a.pov\n") == (800, 600)  # POV-Ray's default
    assert worker.declared_size("Width=64\nHeight = 48 ; small\n") == (64, 48)
    assert worker.declared_size("+W640 +H360\nWidth=100\n") == (100, 360)
    # POV-Ray reads an .ini named without a section only up to its first section.
    assert worker.declared_size("Width=64\n[large]\nWidth=1920\nHeight=1080\n") == (64, 600)
    assert worker.check_image_size("Width=64\nHeight=48\n") == (64, 48)
    with pytest.raises(worker.SceneError, match="100000x100000 image"):
        worker.check_image_size("Width=100000\nHeight=100000\n")
    own = worker.worker_ini(Path("/job/out/render.png"), [], (64, 48)).splitlines()
    assert "Width=64" in own and "Height=48" in own


def test_choose_ini() -> None:
    def paths(*names: str) -> list[PurePosixPath]:
        return [PurePosixPath(n) for n in names]

    choose = worker.choose_ini
    assert choose(paths("deep/demo.ini", "DEMO.INI", "other.ini"), "demo") == PurePosixPath(
        "DEMO.INI"
    )
    assert choose(paths("x/demo.ini", "x/other.ini"), "demo") == PurePosixPath("x/demo.ini")
    assert choose(paths("x/only.ini", "__MACOSX/x/._only.ini"), "demo") == PurePosixPath(
        "x/only.ini"
    )
    with pytest.raises(worker.SceneError, match=r"no \.ini file in the zip"):
        choose(paths("a.pov"), "demo")
    with pytest.raises(worker.SceneError) as caught:
        choose(paths("a.ini", "b/c.ini"), "demo")
    assert (
        caught.value.reason == "2 .ini files in the zip and none is named demo.ini: a.ini, b/c.ini"
    )
    with pytest.raises(worker.SceneError, match=r"2 files named demo\.ini"):
        choose(paths("a/demo.ini", "b/demo.ini"), "demo")


# Real POV-Ray 3.7 output, wrapped at 80 columns.
WRAPPED_OUTPUT = """\
==== [Parsing...] ==========================================================
File 'inc.pov' line 1: Possible Parse Error: Cannot find file
 'nonexistent_file_with_a_rather_long_name_to_wrap_the_line.inc', even after
 trying to append file type extension.
File 'inc.pov' line 1: Parse Error: Cannot open include file nonexistent_file_wi
th_a_rather_long_name_to_wrap_the_line.inc.
Fatal error in parser: Cannot parse input.
Render failed
"""


def test_povray_error_joins_wrapped_lines() -> None:
    assert worker.povray_error(WRAPPED_OUTPUT, 1) == (
        "File 'inc.pov' line 1: Parse Error: Cannot open include file "
        "nonexistent_file_with_a_rather_long_name_to_wrap_the_line.inc."
    )
    missing_input = (
        "Possible Parse Error: Cannot find file 'missing.pov', even after trying to\n"
        " append file type extension.\n"
        "Parse Error: Cannot open input file.\n"
    )
    assert worker.povray_error(missing_input, 1) == (
        "Parse Error: Cannot open input file. (Cannot find file 'missing.pov', even after "
        "trying to append file type extension.)"
    )
    assert worker.povray_error("\nProblem with option setting\npovray x.ini\n", 1) == (
        "Problem with option setting"
    )
    assert (
        worker.povray_error("nothing useful\n", -9)
        == "POV-Ray was killed by SIGKILL (out of memory?)"
    )
    assert worker.povray_error("", 3) == "POV-Ray failed (exit status 3)"


def test_settings_defaults_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = worker.Settings.from_env({"LEW_QUEUE_URL": "q"})
    assert settings.input_prefix == "scenes/"
    assert settings.output_prefix == "renders/"
    assert settings.render_timeout_s == 3600
    assert settings.wait_time_s == 20
    assert settings.visibility_timeout_s == 900
    assert settings.heartbeat_s == 60
    assert settings.retry_delay_s == 10  # shorter than the 20 s long poll
    assert settings.work_dir == Path("/scratch")
    assert settings.max_zip_bytes == 256 * 1024 * 1024
    assert settings.max_files == 1000
    assert settings.max_unpacked_bytes == 1024 * 1024 * 1024
    with pytest.raises(ValueError, match="LEW_QUEUE_URL"):
        worker.Settings.from_env({})
    with pytest.raises(ValueError, match="LEW_MAX_FILES"):
        worker.Settings.from_env({"LEW_QUEUE_URL": "q", "LEW_MAX_FILES": "many"})
    with pytest.raises(ValueError, match="LEW_WAIT_TIME_S"):
        worker.Settings.from_env({"LEW_QUEUE_URL": "q", "LEW_WAIT_TIME_S": "21"})
    monkeypatch.delenv("LEW_QUEUE_URL", raising=False)
    assert worker.main() == 2


@pytest.mark.skipif(not IS_ROOT, reason="the check applies when the worker runs as root")
def test_work_dir_out_of_nobodys_reach_is_fatal(stack: Stack, tmp_path: Path) -> None:
    # pytest's tmp_path lives in a 0700 folder: POV-Ray, running as nobody, could not reach it.
    stack.submit("scenes/j/a.zip", scene_zip("a"))
    run = stack.run(LEW_WORK_DIR=str(tmp_path / "work"))
    assert run.returncode == 2
    [fatal] = run.named("fatal")
    assert "not reachable by the render user" in fatal["reason"]
    assert stack.depth() == (1, 0)  # nothing was received


# ---------------------------------------------------------------------------------------------
# The worker process against moto


def test_demo_scene_renders(stack: Stack) -> None:
    key = "scenes/demo-job/lew-demo.zip"
    stack.submit(key, zip_folder(DEMO, "lew-demo/"))
    run = stack.run(LEW_POVRAY_THREADS="2")
    assert run.returncode == 0, run.stderr
    [rendered] = run.named("rendered")
    assert rendered["job_id"] == "demo-job"
    assert rendered["key"] == key
    assert rendered["output"] == "renders/demo-job/lew-demo.png"
    png = stack.get("renders/demo-job/lew-demo.png")
    assert png is not None
    assert png_size(png) == (640, 360)
    head = stack.s3.head_object(Bucket=stack.bucket, Key="renders/demo-job/lew-demo.png")
    assert head["ContentType"] == "image/png"
    log = stack.get("renders/demo-job/lew-demo.log")
    assert log is not None and b"POV-Ray finished" in log
    started = json.loads(stack.get("renders/demo-job/lew-demo.started.json") or b"{}")
    assert started["attempt"] == 1 and started["job_id"] == "demo-job" and started["started_at"]
    assert stack.get("renders/demo-job/lew-demo.error.txt") is None
    assert stack.depth() == (0, 0)
    assert list(stack.work_dir.iterdir()) == []
    assert run.events[-1] == {"event": "exit", "reason": "queue empty", "code": 0}


# Each scene error, then a good job: one worker run goes through all of them.
FORBIDDEN_DIR = Path(f"/tmp/lew-worker-test-forbidden-{uuid.uuid4().hex[:8]}")
FOPEN_POV = tiny_pov(
    f'#fopen Out "{FORBIDDEN_DIR}/pwned.txt" write\n#write (Out, "pwned")\n#fclose Out\n'
)
SCENE_ERRORS: dict[str, tuple[bytes, str]] = {
    "zipslip": (make_zip([("zipslip.ini", tiny_ini()), ("../x.pov", "x")]), "contains '..'"),
    "absolute": (make_zip([("/etc/lew-evil.ini", "x")]), "is absolute"),
    "symlink": (
        make_zip([("symlink.ini", tiny_ini()), special_entry("scene.pov", stat.S_IFLNK, b"/x")]),
        "is a symbolic link",
    ),
    "toomany": (make_zip([(f"f{i}.inc", "") for i in range(30)]), "30 entries, more than"),
    "bomb": (make_zip([("bomb.ini", "x" * 2_000_000)]), "unpacks to 2000000 bytes"),
    "liar": (lying_zip(2_000_000, 10), "the zip is corrupt"),
    "notzip": (b"PK but not really a zip", "the scene is not a zip file"),
    "emptyzip": (make_zip([]), "the zip is empty"),
    "noini": (make_zip([("scene.pov", tiny_pov())]), "no .ini file in the zip"),
    "twoinis": (
        make_zip([("a.ini", tiny_ini()), ("b.ini", tiny_ini()), ("scene.pov", tiny_pov())]),
        "2 .ini files in the zip and none is named twoinis.ini: a.ini, b.ini",
    ),
    "syntax": (
        scene_zip("syntax", tiny_pov("sphere { 0, 1 pigment { colour Nonesuch } }\n")),
        "File 'scene.pov' line 6: Parse Error:",
    ),
    "include": (
        scene_zip("include", '#include "no_such_file_anywhere.inc"\n' + tiny_pov()),
        "Parse Error: Cannot open include file no_such_file_anywhere.inc.",
    ),
    "badoption": (
        make_zip([("badoption.ini", tiny_ini() + "Width=wide\n"), ("scene.pov", tiny_pov())]),
        "Problem with option setting",
    ),
    "fopen": (
        scene_zip("fopen", FOPEN_POV),
        f"Parse Error: Cannot open user file {FORBIDDEN_DIR}/",
    ),
    "timeout": (scene_zip("timeout", SLOW_POV), "render timed out after 3 s"),
}


@pytest.fixture(scope="module")
def scene_error_run(moto_endpoint: str) -> Iterator[tuple[Stack, Run]]:
    stack, cleanup = make_stack(f"errors-{uuid.uuid4().hex[:10]}")
    FORBIDDEN_DIR.mkdir(mode=0o755)
    try:
        for name, (data, _reason) in SCENE_ERRORS.items():
            stack.submit(f"scenes/{name}-job/{name}.zip", data)
        stack.submit("scenes/good-job/good.zip", scene_zip("good"))
        run = stack.run(
            LEW_RENDER_TIMEOUT_S="3",
            LEW_MAX_FILES="20",
            LEW_MAX_UNPACKED_BYTES="1000000",
        )
        yield stack, run
    finally:
        cleanup()
        shutil.rmtree(FORBIDDEN_DIR, ignore_errors=True)


@pytest.mark.parametrize("name", list(SCENE_ERRORS))
def test_scene_error_is_reported(name: str, scene_error_run: tuple[Stack, Run]) -> None:
    stack, run = scene_error_run
    reason = SCENE_ERRORS[name][1]
    error = stack.get(f"renders/{name}-job/{name}.error.txt")
    assert reason in first_line(error)
    [event] = [e for e in run.named("scene_error") if e["job_id"] == f"{name}-job"]
    assert reason in event["reason"]
    assert event["output"] == f"renders/{name}-job/{name}.error.txt"
    assert stack.get(f"renders/{name}-job/{name}.png") is None
    assert error is not None
    povray_ran = name in ("syntax", "include", "badoption", "fopen", "timeout")
    log = stack.get(f"renders/{name}-job/{name}.log")
    assert (log is not None) == povray_ran
    if povray_ran:
        # reason, blank line, the tail of POV-Ray's output (which is the .log's tail)
        lines = error.decode().splitlines()
        assert lines[1] == ""
        assert 1 < len(lines) - 2 <= 40
        assert log is not None and log.decode().rstrip().endswith(lines[-1])
    else:
        assert error.decode().count("\n") == 1


def test_scene_errors_do_not_stop_the_worker(scene_error_run: tuple[Stack, Run]) -> None:
    stack, run = scene_error_run
    assert run.returncode == 0, run.stderr
    assert len(run.named("scene_error")) == len(SCENE_ERRORS)
    assert [e["job_id"] for e in run.named("rendered")] == ["good-job"]
    assert png_size(stack.get("renders/good-job/good.png") or b"") == (64, 48)
    assert stack.depth() == (0, 0)
    assert run.named("infra_error") == []
    assert list(stack.work_dir.iterdir()) == []


def test_scene_cannot_write_to_an_absolute_path(scene_error_run: tuple[Stack, Run]) -> None:
    _stack, _run = scene_error_run
    assert FORBIDDEN_DIR.is_dir()
    assert not (FORBIDDEN_DIR / "pwned.txt").exists()


def nobody_can_run_the_worker() -> bool:
    """Whether WORKER_PYTHON with boto3 works as `nobody` (a venv under a 0700 home may not)."""
    try:
        probe = subprocess.run(
            [WORKER_PYTHON, "-c", "import boto3"],
            user=NOBODY.pw_uid,
            capture_output=True,
            check=False,
        )
    except OSError:
        return False
    return probe.returncode == 0


def writes(*paths: str) -> str:
    """POV-Ray statements appending a line to each path (POV-Ray's working directory is the
    folder of the scene's .ini: <work dir>/job-*/scene/)."""
    return "".join(
        f'#fopen Out "{path}" append\n#write (Out, "written by the scene\\n")\n#fclose Out\n'
        for path in paths
    )


# Where a scene tries to write, outside the job's scene/ and out/ folders: each one a job.
ESCAPES: dict[str, str] = {
    "work-dir": "../../escaped.txt",  # the work dir (/scratch in the image)
    "job-folder": "../escaped.txt",  # the job folder, next to the worker's own files
    "worker-ini": f"../{worker.WORKER_INI_NAME}",  # the .ini the worker passes last
    "povray-log": "../povray.log",  # POV-Ray's output, uploaded as the .log
}


@pytest.fixture(scope="module", params=["worker-root", "worker-non-root"])
def escape_run(request: pytest.FixtureRequest, moto_endpoint: str) -> Iterator[tuple[Stack, Run]]:
    """One worker run over a job per ESCAPES entry, then a scene writing where it may.

    worker-root: the worker runs as root, POV-Ray as `nobody`. worker-non-root: as in the
    image, the worker runs as a user of its own (here `nobody`, or whoever runs the tests when
    that is not root) that owns the work dir, and POV-Ray runs as that same user: only the
    folders' modes confine it.
    """
    as_root = request.param == "worker-root"
    if as_root and not IS_ROOT:
        pytest.skip("needs root")
    stack, cleanup = make_stack(f"escape-{uuid.uuid4().hex[:10]}")
    try:
        user = None
        if not as_root and IS_ROOT:
            if not nobody_can_run_the_worker():
                pytest.skip(f"{WORKER_PYTHON} with boto3 is not usable by nobody")
            os.chown(stack.work_dir, NOBODY.pw_uid, NOBODY.pw_gid)
            user = NOBODY.pw_uid
        for name, path in ESCAPES.items():
            stack.submit(f"scenes/{name}-job/{name}.zip", scene_zip(name, tiny_pov(writes(path))))
        allowed = tiny_pov(writes("note.txt", "../out/note.txt"))
        stack.submit("scenes/allowed-job/allowed.zip", scene_zip("allowed", allowed))
        yield stack, stack.run(user=user)
    finally:
        cleanup()


@pytest.mark.parametrize("target", list(ESCAPES))
def test_scene_cannot_write_outside_its_folder(target: str, escape_run: tuple[Stack, Run]) -> None:
    """POV-Ray 3.7 does not enforce its own file I/O settings: the OS refuses the write."""
    stack, run = escape_run
    assert run.returncode == 0, run.stderr
    error = first_line(stack.get(f"renders/{target}-job/{target}.error.txt"))
    assert f"Parse Error: Cannot open user file {ESCAPES[target]}" in error
    assert stack.get(f"renders/{target}-job/{target}.png") is None


def test_scene_writes_only_in_its_scene_and_out_folders(escape_run: tuple[Stack, Run]) -> None:
    stack, run = escape_run
    assert run.returncode == 0, run.stderr
    [started] = run.named("worker_started")
    if started["render_user"] != "nobody":
        assert started["render_user"].endswith("(the worker's own)")
        # Between jobs the work dir is read-only, even for its owner.
        assert stat.S_IMODE(stack.work_dir.stat().st_mode) & 0o222 == 0
    # Writing where it may works: the refusals above are the confinement, not POV-Ray.
    [rendered] = run.named("rendered")
    assert rendered["job_id"] == "allowed-job"
    assert png_size(stack.get("renders/allowed-job/allowed.png") or b"") == (64, 48)
    assert len(run.named("scene_error")) == len(ESCAPES)
    # Nothing escaped into the work dir, and every job folder is gone.
    assert list(stack.work_dir.iterdir()) == []


def plants(path: str) -> str:
    """POV-Ray statements writing an include file at `path` for a later job to find."""
    return f'#fopen Out "{path}" write\n#write (Out, "#declare Planted = 1;\\n")\n#fclose Out\n'


@pytest.mark.parametrize("as_root", [True, False], ids=["worker-root", "worker-non-root"])
def test_nothing_a_job_writes_outside_its_folder_reaches_the_next_job(
    as_root: bool, moto_endpoint: str, unique: str
) -> None:
    """A scene writes an include file into /dev/shm (and, with POV-Ray running as nobody, /tmp
    and /var/tmp); a later job of the same worker #includes it and must not find it.

    worker-non-root is the image's case: POV-Ray runs as the worker's own user, /tmp and
    /var/tmp are left to the read-only root filesystem (here they are writable, which the
    worker says in a warning).
    """
    if as_root and not IS_ROOT:
        pytest.skip("needs root")
    stack, cleanup = make_stack(unique)
    tag = uuid.uuid4().hex[:10]
    places = {"dev-shm": f"/dev/shm/lew-worker-test-{tag}.inc"}
    if as_root:
        places |= {"tmp": f"/tmp/lew-worker-test-{tag}.inc"}
        places |= {"var-tmp": f"/var/tmp/lew-worker-test-{tag}.inc"}
    try:
        user = None
        if not as_root and IS_ROOT:
            if not nobody_can_run_the_worker():
                pytest.skip(f"{WORKER_PYTHON} with boto3 is not usable by nobody")
            os.chown(stack.work_dir, NOBODY.pw_uid, NOBODY.pw_gid)
            user = NOBODY.pw_uid
        for place, path in places.items():
            planter = tiny_pov(plants(path))
            stack.submit(f"scenes/plant-{place}/plant.zip", scene_zip("plant", planter))
        for place, path in places.items():
            reader = f'#include "{path}"\n' + tiny_pov()
            stack.submit(f"scenes/read-{place}/read.zip", scene_zip("read", reader))
        run = stack.run(user=user)
        assert run.returncode == 0, run.stderr
        for place, path in places.items():
            # The write worked: the file was there when the planting job ended ...
            assert png_size(stack.get(f"renders/plant-{place}/plant.png") or b"") == (64, 48)
            # ... and gone when the next one looked.
            error = first_line(stack.get(f"renders/read-{place}/read.error.txt"))
            assert f"Cannot open include file {path}" in error
            assert not os.path.lexists(path)
        removed = sorted(path for e in run.named("leftovers_removed") for path in e["paths"])
        assert removed == sorted(places.values())
        warnings = [e["reason"] for e in run.named("warning")]
        if as_root:
            assert warnings == []
        else:
            assert any("writable by the render user" in w and "/tmp" in w for w in warnings)
    finally:
        for path in places.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        cleanup()


@pytest.mark.skipif(not IS_ROOT, reason="needs root for a file nobody can remove (chattr +i)")
def test_a_worker_that_cannot_clear_up_after_a_job_takes_no_more(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job leaves a file the worker cannot remove: the job's message is dealt with, the next
    job is left on the queue for another worker, and the worker exits 1 saying why.

    The worker runs in this process with one shared folder of this test's (on tmpfs, where
    `chattr +i` works) and POV-Ray as root (a stand-in script), which makes its file immutable.
    """
    shared = Path(tempfile.mkdtemp(prefix="lew-worker-test-", dir="/dev/shm"))
    tools = traversable_dir("lew-fake-povray-")
    stuck = shared / "stuck"
    try:
        fake = tools / "povray"
        fake.write_text(f"#!/bin/sh\n: > {stuck}\n/usr/bin/chattr +i {stuck} || exit 9\nexit 3\n")
        fake.chmod(0o755)
        stack.submit("scenes/first-job/first.zip", scene_zip("first"))
        stack.submit("scenes/second-job/second.zip", scene_zip("second"))
        settings = worker.Settings.from_env(stack.env(LEW_POVRAY=str(fake)))
        stop = worker.StopState()
        runner = worker.Worker(settings, stack.s3, stack.sqs, str(fake), stop)
        runner.user = worker.RenderUser()  # POV-Ray as this process's user: root
        runner.shared_dirs = (shared,)
        code = runner.run()
        events = parse_events(capsys.readouterr().out)
        [failed] = [e for e in events if e["event"] == "scene_error"]
        if failed["reason"] == "POV-Ray failed (exit status 9)":
            pytest.skip(f"chattr +i does not work in {shared.parent}")
        assert code == 1
        [fatal] = [e for e in events if e["event"] == "fatal"]
        assert fatal["job_id"] == "first-job"
        assert f"{stuck}: Operation not permitted" in fatal["reason"]
        assert events[-1] == {"event": "exit", "reason": fatal["reason"], "code": 1}
        assert [e["job_id"] for e in events if e["event"] == "job_started"] == ["first-job"]
        # The first job is done (its error reported, its message deleted); the second waits.
        assert "exit status 3" in first_line(stack.get("renders/first-job/first.error.txt"))
        assert stack.depth() == (1, 0)
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], capture_output=True, check=False)
        shutil.rmtree(shared, ignore_errors=True)
        shutil.rmtree(tools, ignore_errors=True)


def test_leftovers_are_only_the_render_users_new_entries(tmp_path: Path) -> None:
    """What remove_leftovers takes: new entries of that user, also inside a folder anyone may
    write to; not what was there before, nor anyone else's."""
    shared = tmp_path / "shm"
    shared.mkdir()
    (shared / "before.txt").write_text("there before the job")
    (shared / "replaced.txt").write_text("there before the job")
    open_folder = shared / "open"
    open_folder.mkdir()
    open_folder.chmod(0o1777)
    own = os.geteuid()
    before = worker.scan_shared((shared,))
    # A name that was there before is the owner's, whatever the job does to it.
    (shared / "replaced.txt").unlink()
    (shared / "replaced.txt").write_text("another file of that name")
    (shared / "new.txt").write_text("left by the job")
    (shared / "new-folder").mkdir()
    (shared / "new-folder" / "inside.txt").write_text("left by the job")
    (open_folder / "nested.txt").write_text("left by the job")
    removed, problems = worker.remove_leftovers((shared,), before, own)
    assert problems == []
    assert sorted(removed) == sorted(
        str(shared / name) for name in ("new.txt", "new-folder", "open/nested.txt")
    )
    assert sorted(path.name for path in shared.iterdir()) == ["before.txt", "open", "replaced.txt"]
    assert list(open_folder.iterdir()) == []
    # Someone else's new file stays: the worker clears only what the render user made.
    if IS_ROOT:
        before = worker.scan_shared((shared,))
        theirs = shared / "theirs.txt"
        theirs.write_text("another user's")
        os.chown(theirs, NOBODY.pw_uid, NOBODY.pw_gid)
        assert worker.remove_leftovers((shared,), before, own) == ([], [])
        assert theirs.exists()


def test_both_body_formats(stack: Stack) -> None:
    # Two scenes uploaded before the bucket notifies the queue, announced by a hand-written
    # two-record S3 event; then real S3 -> SQS notifications from moto (which, like S3, sends a
    # test event when the configuration is set), and a garbage body.
    stack.put("scenes/two-1/a.zip", scene_zip("a"))
    stack.put("scenes/two-2/b.zip", scene_zip("b"))
    records = [
        {
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": stack.bucket}, "object": {"key": quote_plus(key)}},
        }
        for key in ("scenes/two-1/a.zip", "scenes/two-2/b.zip")
    ]
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps({"Records": records}))
    queue_arn = stack.sqs.get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    # S3 checks that it may send to the queue before it stores the configuration.
    stack.sqs.set_queue_attributes(
        QueueUrl=stack.queue_url,
        Attributes={"Policy": queue_policy_for_s3(queue_arn, stack.bucket)},
    )
    stack.s3.put_bucket_notification_configuration(
        Bucket=stack.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": "scenes/"},
                                {"Name": "suffix", "Value": ".zip"},
                            ]
                        }
                    },
                }
            ]
        },
    )
    # A name with a space and a plus: quote_plus-encoded in the event, and the .ini is passed
    # to POV-Ray quoted.
    spaced = make_zip([("my scene+1.ini", tiny_ini()), ("scene.pov", tiny_pov())])
    stack.put("scenes/event-job/my scene+1.zip", spaced)
    stack.put("not-scenes/ignored.zip", scene_zip("ignored"))
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="garbage")
    assert stack.depth() == (4, 0)

    run = stack.run()
    assert run.returncode == 0, run.stderr
    rendered = sorted(e["key"] for e in run.named("rendered"))
    assert rendered == [
        "scenes/event-job/my scene+1.zip",
        "scenes/two-1/a.zip",
        "scenes/two-2/b.zip",
    ]
    assert png_size(stack.get("renders/event-job/my scene+1.png") or b"") == (64, 48)
    assert stack.get("renders/two-1/a.png") is not None
    assert stack.get("renders/two-2/b.png") is not None
    reasons = sorted(e["reason"] for e in run.named("bad_message"))
    assert reasons == ["S3 test event", "message body is not JSON"]
    assert stack.depth() == (0, 0)
    assert stack.keys("renders/not-scenes") == []


def test_the_size_rendered_is_the_size_checked(stack: Stack) -> None:
    """An .ini the scene's .ini includes cannot change the image size the worker checked
    against its cap: the worker's own .ini, read last, restates it."""
    inner = ("inner.ini", "Width=96\nHeight=72\n")
    pov = ("scene.pov", tiny_pov())
    scenes = {
        # 64x48, then a line naming another .ini, which POV-Ray reads there and then
        "nested": make_zip([("nested.ini", tiny_ini() + "inner.ini\n"), inner, pov]),
        # no size of its own (so POV-Ray's 800x600 was checked), and Include_Ini=
        "included": make_zip(
            [("included.ini", "Input_File_Name=scene.pov\nInclude_Ini=inner.ini\n"), inner, pov]
        ),
        # a section POV-Ray does not read: its size is not the one checked either
        "sectioned": make_zip(
            [("sectioned.ini", tiny_ini() + "[large]\nWidth=96\nHeight=72\n"), pov]
        ),
    }
    for name, data in scenes.items():
        stack.submit(f"scenes/{name}-job/{name}.zip", data)
    run = stack.run()
    assert run.returncode == 0, run.stderr
    assert len(run.named("rendered")) == len(scenes), run.events
    assert png_size(stack.get("renders/nested-job/nested.png") or b"") == (64, 48)
    assert png_size(stack.get("renders/included-job/included.png") or b"") == (800, 600)
    assert png_size(stack.get("renders/sectioned-job/sectioned.png") or b"") == (64, 48)


def test_skip_when_output_exists(stack: Stack) -> None:
    key = "scenes/done-job/done.zip"
    stack.submit(key, scene_zip("done"))
    stack.put("renders/done-job/done.png", b"already rendered")
    run = stack.run()
    assert run.returncode == 0, run.stderr
    assert [e["key"] for e in run.named("skipped")] == [key]
    assert run.named("rendered") == []
    assert stack.get("renders/done-job/done.png") == b"already rendered"
    assert stack.keys("renders/") == ["renders/done-job/done.png"]
    assert stack.depth() == (0, 0)


def test_infra_errors_leave_the_message_for_the_dlq(moto_endpoint: str, unique: str) -> None:
    # The messages are received with a visibility timeout far longer than the test: they come
    # back only because the worker sets a short one (LEW_RETRY_DELAY_S) after the error, shorter
    # than its long poll, so the same worker takes them again before its poll comes back empty.
    stack, cleanup = make_stack(unique, visibility=600, max_receives=2)
    try:
        stack.send_job("scenes/gone-job/gone.zip")  # the object was never there (or deleted)
        stack.send_job("scenes/nobucket-job/x.zip", bucket=f"no-such-bucket-{unique}")
        run = stack.run(LEW_VISIBILITY_TIMEOUT_S="600", LEW_RETRY_DELAY_S="1", LEW_WAIT_TIME_S="5")
        assert run.returncode == 0, run.stderr
        errors = run.named("infra_error")
        assert sorted(e["job_id"] for e in errors) == ["gone-job"] * 2 + ["nobucket-job"] * 2
        retries = run.named("retry_later")
        assert (
            sorted(e["key"] for e in retries)
            == ["scenes/gone-job/gone.zip"] * 2 + ["scenes/nobucket-job/x.zip"] * 2
        )
        assert {e["delay_s"] for e in retries} == {1}
        assert run.named("scene_error") == []
        assert stack.depth() == (0, 0)
        assert stack.dlq_url is not None
        moved = stack.sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10)
        keys = sorted(json.loads(m["Body"])["key"] for m in moved["Messages"])
        assert keys == ["scenes/gone-job/gone.zip", "scenes/nobucket-job/x.zip"]
        assert stack.get("renders/gone-job/gone.error.txt") is None
        # The job was picked up twice: the marker says so.
        started = json.loads(stack.get("renders/gone-job/gone.started.json") or b"{}")
        assert started["attempt"] == 2
    finally:
        cleanup()


def probe_visible(stack: Stack) -> bool:
    """Whether the job message is visible, without taking it (visibility 0)."""
    response = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, WaitTimeSeconds=0, VisibilityTimeout=0
    )
    return bool(response.get("Messages"))


@pytest.mark.parametrize("heartbeat", [True, False], ids=["heartbeat", "no-heartbeat"])
def test_heartbeat_keeps_a_long_render_invisible(
    heartbeat: bool, moto_endpoint: str, unique: str
) -> None:
    """With heartbeats the message stays invisible for longer than its visibility timeout while
    the render runs; without, it reappears.

    The render never ends on its own (SLOW_POV), and the events prove it was still running when
    the test was done watching: it ends "interrupted" by the SIGTERM sent after that.
    """
    # Long enough that a heartbeat (every 0.25 s) delayed by a loaded machine still lands in
    # time: the margin is the whole timeout, not a fraction of a second.
    visibility = 8
    stack, cleanup = make_stack(unique, visibility=visibility)
    try:
        stack.submit("scenes/slow-job/slow.zip", scene_zip("slow", SLOW_POV))
        process = stack.start(
            LEW_VISIBILITY_TIMEOUT_S=str(visibility),
            LEW_HEARTBEAT_S="0.25" if heartbeat else "600",
            LEW_RENDER_TIMEOUT_S="600",
        )
        try:
            wait_for_object(stack, "renders/slow-job/slow.started.json")
            # The message was received before the marker was written: once `visibility` s more
            # have passed, it has been held past its visibility timeout. Without heartbeats it
            # reappears (the loop waits for that, however long it takes: a bound only against a
            # hang); with them it must still be hidden 2 s past that deadline.
            watched_until = time.monotonic() + (visibility + 2 if heartbeat else 120)
            seen = False
            while not seen and time.monotonic() < watched_until:
                seen = probe_visible(stack)
                time.sleep(0.25)
        finally:
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        events = [e["event"] for e in parse_events(stdout)]
        tail = [e for e in events if e in ("job_started", "interrupted", "handed_back", "exit")]
        assert tail[-4:] == ["job_started", "interrupted", "handed_back", "exit"], events
        assert "rendered" not in events and "scene_error" not in events
        assert "heartbeat_error" not in events
        assert seen is not heartbeat
    finally:
        cleanup()


def test_a_heartbeat_extends_only_within_the_12_hours_sqs_allows() -> None:
    limit = worker.SQS_MAX_HIDDEN_S - worker.HIDDEN_MARGIN_S
    assert worker.visibility_extension(900, 60) == 900
    assert worker.visibility_extension(900, limit - 900) == 900
    assert worker.visibility_extension(900, limit - 899.5) == 899
    assert worker.visibility_extension(900, limit) == 0
    assert worker.visibility_extension(900, limit + 3600) == 0
    # A visibility timeout at SQS's maximum leaves less than itself after any time held.
    assert worker.visibility_extension(43200, 1) == limit - 1


def test_heartbeats_with_a_12_hour_visibility_are_not_refused(stack: Stack) -> None:
    """With a visibility timeout of 12 hours every heartbeat asking for 12 hours more is past
    SQS's limit (12 hours from the receive): the heartbeat asks for what is left, says so once,
    and stops."""
    stack.submit("scenes/long-job/long.zip", scene_zip("long", SLOW_POV))
    process = stack.start(
        LEW_VISIBILITY_TIMEOUT_S="43200", LEW_HEARTBEAT_S="0.25", LEW_RENDER_TIMEOUT_S="600"
    )
    try:
        wait_for_object(stack, "renders/long-job/long.started.json")
        time.sleep(1.5)  # several heartbeat intervals
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    events = parse_events(stdout)
    assert [e for e in events if e["event"] == "heartbeat_error"] == []
    [limit] = [e for e in events if e["event"] == "heartbeat_limit"]
    assert 43000 < limit["visible_again_in_s"] < 43200
    assert limit["key"] == "scenes/long-job/long.zip"


def test_sigterm_hands_the_message_back(stack: Stack) -> None:
    key = "scenes/term-job/term.zip"
    stack.submit(key, scene_zip("term", SLOW_POV))
    process = stack.start(LEW_VISIBILITY_TIMEOUT_S="600", LEW_RENDER_TIMEOUT_S="600")
    wait_for_object(stack, "renders/term-job/term.started.json")
    time.sleep(1.0)  # let POV-Ray get going
    assert stack.depth() == (0, 1)
    process.send_signal(signal.SIGTERM)
    # The render never ends on its own (SLOW_POV) and the render timeout is 10 minutes: the
    # worker exiting at all shows POV-Ray was stopped. (The timeout only guards against a hang.)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    events = parse_events(stdout)
    names = [e["event"] for e in events]
    assert names[-3:] == ["interrupted", "handed_back", "exit"]
    # Visible again at once, although it was received with a 600 s visibility timeout.
    response = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, WaitTimeSeconds=0, AttributeNames=["ApproximateReceiveCount"]
    )
    [message] = response["Messages"]
    assert json.loads(message["Body"])["key"] == key
    assert message["Attributes"]["ApproximateReceiveCount"] == "2"  # the worker, then us
    assert stack.get("renders/term-job/term.error.txt") is None
    assert stack.get("renders/term-job/term.png") is None
    assert list(stack.work_dir.iterdir()) == []  # POV-Ray is gone and its folder removed


class SigtermDuringUpload:
    """The worker's S3 client, except that SIGTERM arrives (the worker's handler runs) just as
    the upload of a key ending in `suffix` starts."""

    def __init__(self, s3: Any, suffix: str, stop: Any) -> None:
        self._s3 = s3
        self._suffix = suffix
        self._stop = stop

    def put_object(self, **kwargs: Any) -> Any:
        if kwargs["Key"].endswith(self._suffix) and not self._stop.requested.is_set():
            self._stop.handle(signal.SIGTERM, None)
        return self._s3.put_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


@pytest.mark.parametrize(
    ("suffix", "outcome"),
    [(".log", "rendered"), (".png", "rendered"), (".error.txt", "scene_error")],
    ids=["during-log-upload", "during-png-upload", "during-error-upload"],
)
def test_sigterm_after_the_outcome_finishes_the_job(
    suffix: str, outcome: str, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once the job's outcome is decided, SIGTERM no longer hands it back: the worker uploads
    the result, deletes the message, and only then stops (the worker runs in this process, so
    the signal can come at an exact point)."""
    broken = "sphere { 0, 1 pigment { colour Nonesuch } }\n"
    pov = tiny_pov() if outcome == "rendered" else tiny_pov(broken)
    stack.submit("scenes/late-job/late.zip", scene_zip("late", pov))
    settings = worker.Settings.from_env(stack.env())
    stop = worker.StopState()
    s3 = SigtermDuringUpload(stack.s3, suffix, stop)
    povray = shutil.which("povray")
    assert povray is not None
    code = worker.Worker(settings, s3, stack.sqs, povray, stop).run()
    events = parse_events(capsys.readouterr().out)
    assert code == 0
    assert stop.requested.is_set()
    names = [e["event"] for e in events]
    assert outcome in names and "interrupted" not in names and "handed_back" not in names
    assert events[-1] == {"event": "exit", "reason": "stopped", "code": 0}
    assert stack.depth() == (0, 0)  # deleted, not handed back
    if outcome == "rendered":
        assert png_size(stack.get("renders/late-job/late.png") or b"") == (64, 48)
        assert stack.get("renders/late-job/late.log") is not None
    else:
        assert "Parse Error" in first_line(stack.get("renders/late-job/late.error.txt"))
    assert list(stack.work_dir.iterdir()) == []


FAKE_POVRAY = """#!/bin/sh
echo "uid=$(/usr/bin/id -u)"
if /bin/cat /proc/$PPID/environ > /dev/null 2>&1; then
  echo "parent environ: READABLE"
else
  echo "parent environ: denied"
fi
echo "--- environment"
/usr/bin/env
echo "--- end"
/bin/grep "Max msgqueue size" /proc/self/limits
exit 3
"""


@pytest.mark.skipif(not IS_ROOT, reason="needs root to switch users")
@pytest.mark.parametrize("as_root", [True, False], ids=["worker-root", "worker-non-root"])
def test_povray_runs_confined(as_root: bool, moto_endpoint: str, unique: str) -> None:
    """POV-Ray (here a stand-in script) gets an empty environment and cannot read the worker's.

    As root the worker runs it as `nobody`; as a non-root user (the container) as itself, and
    then the worker's own non-dumpable state keeps its /proc/<pid>/environ private.
    """
    stack, cleanup = make_stack(unique)
    tools = traversable_dir("lew-fake-povray-")
    try:
        fake = tools / "povray"
        fake.write_text(FAKE_POVRAY)
        fake.chmod(0o755)
        if not as_root:
            os.chown(stack.work_dir, NOBODY.pw_uid, NOBODY.pw_gid)
            if not nobody_can_run_the_worker():
                pytest.skip(f"{WORKER_PYTHON} with boto3 is not usable by nobody")
        stack.submit("scenes/fake-job/fake.zip", scene_zip("fake"))
        run = stack.run(user=None if as_root else NOBODY.pw_uid, LEW_POVRAY=str(fake))
        assert run.returncode == 0, run.stderr
        [event] = run.named("scene_error")
        assert event["reason"] == "POV-Ray failed (exit status 3)"
        log = (stack.get("renders/fake-job/fake.log") or b"").decode()
        assert f"uid={NOBODY.pw_uid}" in log
        assert "parent environ: denied" in log
        environment = log.split("--- environment\n")[1].split("--- end")[0]
        assert "AWS_" not in environment and "LEW_" not in environment
        assert "HOME=" not in environment
        # It cannot create a message queue (in /dev/mqueue or by mq_open): its limit is 0 bytes.
        assert re.search(r"^Max msgqueue size\s+0\s+0\s", log, re.MULTILINE), log
    finally:
        cleanup()
        shutil.rmtree(tools, ignore_errors=True)

"""The hostile corpus (tests/hostile): every case gives a clear error at the right place.

tests/hostile/make_corpus.py writes the cases, tests/hostile/manifest.json says what each must
do:
- lew: `lew render FILE` refuses it before anything is uploaded (exit 2 naming the problem; the
  endpoint is a port nobody answers, so no call can have been made), or accepts it (it then
  goes on to AWS: here, moto with no setup, so "run `lew setup` first"); `lew render --local`
  refuses it the same way, or renders it with the outcome in `local`;
- worker: every case is queued and the worker runs over all of them and then a good scene:
  each case's error.txt names the problem (or its PNG exists), the worker exits 0, and the good
  scene after them renders. This runs twice: the worker as a plain process, and the real image
  run as the task definition has Fargate run it (scripts/container/fargate-run.sh; skipped
  without scripts/test's container environment, except in CI). The render timeout in the
  manifest's worker_env is short, for the cases that must time out; they run in a second
  worker run with it, the others in a first one with a timeout far longer than any of them
  needs (a loaded machine must not turn a scene that renders into one that timed out);
- config: `lew setup --dry-run` with the case's lew.toml exits 2 naming the key.

Cases marked `known_bug` in the manifest show a lew bug (reported in issue 6): the test expects
the correct outcome and is an expected failure (strict) until lew is fixed.

The lew parts need the lew binary (target/debug/lew, or under CARGO_TARGET_DIR; scripts/test
builds it before pytest runs); without it they are skipped, except in CI.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
HOSTILE = REPO / "tests" / "hostile"
MANIFEST = json.loads((HOSTILE / "manifest.json").read_text())
CASES: list[dict[str, Any]] = MANIFEST["cases"]
WORKER = REPO / "worker" / "worker.py"
# target/debug/lew, or under CARGO_TARGET_DIR when set (CI keeps it outside the clone).
LEW = Path(
    os.environ.get("LEW_BIN")
    or REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "debug" / "lew"
)
DEAD_ENDPOINT = "http://127.0.0.1:9"
# Runs the worker image as the task definition has Fargate run it.
FARGATE_RUN = REPO / "scripts" / "container" / "fargate-run.sh"

_spec = importlib.util.spec_from_file_location("lew_make_corpus", HOSTILE / "make_corpus.py")
assert _spec is not None and _spec.loader is not None
make_corpus = importlib.util.module_from_spec(_spec)
sys.modules["lew_make_corpus"] = make_corpus
_spec.loader.exec_module(make_corpus)

needs_povray = pytest.mark.skipif(shutil.which("povray") is None, reason="povray is missing")


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


def _need_lew() -> None:
    if not LEW.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{LEW} is missing: scripts/test builds it before the Python tests")
        pytest.skip(f"{LEW} is missing (cargo build)")


@pytest.fixture(scope="module")
def corpus() -> Iterator[dict[str, Path]]:
    out = Path(tempfile.mkdtemp(prefix="lew-hostile-"))
    try:
        yield make_corpus.write(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def lew_env(tmp: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "TMPDIR": str(tmp),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def run_lew(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LEW), *args],
        cwd=cwd,
        env=lew_env(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _params(kind: str) -> list[Any]:
    params = []
    for case in CASES:
        if kind not in case:
            continue
        marks = []
        if case.get("known_bug") and kind == "lew":
            marks.append(pytest.mark.xfail(reason=case["known_bug"], strict=True))
        params.append(pytest.param(case, id=case["id"], marks=marks))
    return params


# ---------------------------------------------------------------------------------------------
# The corpus and its manifest


def test_the_manifest_covers_the_corpus(corpus: dict[str, Path]) -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), "duplicate ids in the manifest"
    files = {c["id"] for c in CASES if "lew" in c or "config" in c or "local" in c}
    files |= {c["id"] for c in CASES if "worker" in c and not c["id"].startswith("message-")}
    assert files == set(corpus), files ^ set(corpus)
    scenes = [c for c in CASES if "lew" in c or "worker" in c]
    configs = [c for c in CASES if "config" in c]
    assert len(scenes) >= 20 and len(configs) >= 10
    print(f"hostile corpus: {len(scenes)} scenes and messages, {len(configs)} configs")


# ---------------------------------------------------------------------------------------------
# lew: before upload, and --local


@pytest.mark.parametrize("case", _params("lew"))
def test_lew_refuses_before_upload_or_accepts(
    case: dict[str, Any], corpus: dict[str, Path], moto_endpoint: str, tmp_path: Path
) -> None:
    _need_lew()
    scene = corpus[case["id"]]
    expected = case["lew"]
    (tmp_path / "lew.toml").write_text(
        f'app = "h{uuid.uuid4().hex[:8]}"\n' + MANIFEST["local_config"]
    )
    out = tmp_path / "out"
    if expected["exit"] == 2:
        cloud = run_lew(tmp_path, "--endpoint-url", DEAD_ENDPOINT, "render", str(scene))
        assert cloud.returncode == 2, cloud.stderr + cloud.stdout
        assert expected["error"] in cloud.stderr, cloud.stderr
        assert "nothing was uploaded" in cloud.stderr
        local = run_lew(tmp_path, "render", "--local", "--out", str(out), str(scene))
        assert local.returncode == 2, local.stderr + local.stdout
        assert expected["error"] in local.stderr, local.stderr
        assert not out.exists() or not list(out.iterdir())
        return
    # Accepted: lew goes on to AWS (moto, where this app has no bucket).
    cloud = run_lew(tmp_path, "--endpoint-url", moto_endpoint, "render", str(scene))
    assert cloud.returncode == 1, cloud.stderr + cloud.stdout
    assert "run `lew setup` first" in cloud.stderr, cloud.stderr
    if not shutil.which("povray"):
        return
    local_expected = case.get("local", {"exit": 0})
    local = run_lew(tmp_path, "render", "--local", "--out", str(out), str(scene))
    assert local.returncode == local_expected["exit"], local.stderr + local.stdout
    if "error" in local_expected:
        assert local_expected["error"] in local.stdout, local.stdout
    if local_expected["exit"] == 0:
        png = local_expected.get("png") or scene.name.removesuffix(".zip") + ".png"
        assert (out / png).is_file(), list(out.iterdir())
    escaped = tmp_path / "lew-hostile-escape.txt"
    if local_expected.get("escapes"):
        # Documented, not wanted: --local runs POV-Ray as you, unconfined.
        assert escaped.exists(), "the scene's write outside its folder did not happen"
        print(f"{case['id']}: lew render --local let the scene write {escaped}")
    else:
        assert not escaped.exists()


@pytest.mark.parametrize("case", _params("config"))
def test_a_hostile_config_is_refused_naming_the_key(
    case: dict[str, Any], corpus: dict[str, Path], tmp_path: Path
) -> None:
    _need_lew()
    config = corpus[case["id"]]
    run = run_lew(
        tmp_path, "--config", str(config), "--endpoint-url", DEAD_ENDPOINT, "setup", "--dry-run"
    )
    assert run.returncode == case["config"]["exit"], run.stderr + run.stdout
    for name in case["config"]["names"]:
        assert name in run.stderr, f"{name} not named:\n{run.stderr}"


# ---------------------------------------------------------------------------------------------
# The worker: every case, then a good scene (in two runs: see the module docstring)


def _container_env() -> None:
    """Whether scripts/test started the container environment (the podman service); outside CI
    the image tests are skipped without it, as the Rust image tests are."""
    if os.environ.get("CONTAINER_HOST"):
        return
    if os.environ.get("CI"):
        pytest.fail("CI runs the worker image tests: scripts/test did not export CONTAINER_HOST")
    pytest.skip("no container environment (LEW_TEST_SKIP_CONTAINER=1?)")


@pytest.fixture(scope="module")
def worker_image() -> Iterator[str]:
    """The worker image, built as `lew push-image` builds it (docker, a context of just the
    Dockerfile and worker.py), so its layers are the ones the image tests cache."""
    _container_env()
    context = Path(tempfile.mkdtemp(prefix="lew-hostile-image-"))
    tag = f"localhost/lew-hostile-worker:{uuid.uuid4().hex[:12]}"
    try:
        shutil.copy(REPO / "worker" / "Dockerfile", context / "Dockerfile")
        shutil.copy(WORKER, context / "worker.py")
        build = subprocess.run(
            ["docker", "build", "-q", "-t", tag, str(context)],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        assert build.returncode == 0, build.stderr[-3000:]
        yield tag
    finally:
        shutil.rmtree(context, ignore_errors=True)
        subprocess.run(["docker", "rmi", tag], capture_output=True, check=False, timeout=120)


# Runs the worker over the queue with these LEW_ settings and this work dir; returns the run.
RunWorker = Callable[[dict[str, str], Path], subprocess.CompletedProcess[str]]


def _remove_planted() -> None:
    """The files the planting cases write, when a worker run as a plain process left them on
    this machine (only a worker without the cleanup does)."""
    for path in make_corpus.PLANTED_PATHS:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(path)


def _as_plain_process(settings: dict[str, str], work: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEW_")}
    env.update(settings, LEW_WORK_DIR=str(work))
    work.chmod(0o755)
    return subprocess.run(
        [_worker_python(), str(WORKER)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd="/",
        check=False,
    )


def _in_image(image: str) -> RunWorker:
    def run(settings: dict[str, str], work: Path) -> subprocess.CompletedProcess[str]:
        # Values reach the container from this environment (`-e NAME`), not the command line.
        names = [*settings, "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        names += ["AWS_REGION", "AWS_DEFAULT_REGION"]
        env = {**os.environ, **settings}
        options = [arg for name in names for arg in ("-e", name)]
        return subprocess.run(
            [str(FARGATE_RUN), str(work), image, *options],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            cwd="/",
            check=False,
        )

    return run


@needs_povray
def test_the_worker_survives_the_corpus_and_then_renders_a_good_scene(
    corpus: dict[str, Path], moto_endpoint: str
) -> None:
    """As a plain process (here as root: POV-Ray runs as nobody)."""
    _remove_planted()
    try:
        run_the_corpus(corpus, _as_plain_process, "a plain process")
        # Nothing a job planted is left on this machine either.
        left = [path for path in make_corpus.PLANTED_PATHS if os.path.lexists(path)]
        assert left == [], f"left behind by the worker: {left}"
    finally:
        _remove_planted()


def test_the_worker_image_survives_the_corpus_run_as_fargate_runs_it(
    corpus: dict[str, Path], moto_endpoint: str, worker_image: str
) -> None:
    """In the real image, as the task definition has Fargate run it (read-only root filesystem
    without tmpfs, /scratch as the image has it, the image's non-root user)."""
    run_the_corpus(corpus, _in_image(worker_image), "the image")


def run_the_corpus(corpus: dict[str, Path], run_worker: RunWorker, how: str) -> None:
    """Queues every worker case of the manifest, then a good scene; one worker run goes through
    them (in two runs: see the module docstring), and each case must have had its expected
    outcome."""
    suffix = uuid.uuid4().hex[:10]
    s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
    sqs = boto3.client("sqs")
    bucket = f"lew-hostile-{suffix}"
    region = s3.meta.region_name
    placement = {} if region == "us-east-1" else {"LocationConstraint": region}
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=placement)
    queue = sqs.create_queue(QueueName=f"lew-hostile-{suffix}")["QueueUrl"]
    work = Path(tempfile.mkdtemp(prefix="lew-hostile-work-", dir="/tmp"))
    messages = make_corpus.messages(bucket)

    expected: dict[str, tuple[str, dict[str, Any]]] = {}  # id -> (base key, expectation)
    short = MANIFEST["worker_env"]["LEW_RENDER_TIMEOUT_S"]
    bodies: tuple[list[str], list[str]] = ([], [])  # (first run, second run with `short`)
    for case in CASES:
        want = case.get("worker")
        if want is None:
            continue
        times_out = f"render timed out after {short} s" in want.get("error", "")
        if case["id"].startswith("message-"):
            bodies[times_out].append(messages[case["id"]])
            expected[case["id"]] = ("", want)
            continue
        path = corpus[case["id"]]
        key = f"scenes/{case['id']}/{path.name}"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        if want.get("message") == "s3-event":
            body = messages[case["id"]]
        else:
            body = json.dumps({"version": 1, "job_id": case["id"], "bucket": bucket, "key": key})
        bodies[times_out].append(body)
        expected[case["id"]] = (f"renders/{case['id']}/{path.name.removesuffix('.zip')}", want)
    good_key = "scenes/good/good.zip"
    s3.put_object(Bucket=bucket, Key=good_key, Body=make_corpus.scene("good"))
    good = json.dumps({"version": 1, "job_id": "good", "bucket": bucket, "key": good_key})

    def run_all(queued: list[str], render_timeout: str) -> tuple[list[Any], float]:
        for body in queued:
            sqs.send_message(QueueUrl=queue, MessageBody=body)
        settings = {
            "LEW_QUEUE_URL": queue,
            "LEW_WAIT_TIME_S": "0",
            "LEW_POVRAY_THREADS": "1",
            **MANIFEST["worker_env"],
            "LEW_RENDER_TIMEOUT_S": render_timeout,
        }
        started = time.monotonic()
        worker = run_worker(settings, work)
        assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]
        lines = worker.stdout.splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")], (
            time.monotonic() - started
        )

    # The short timeout is only for the scenes that must reach it: 600 s elsewhere only bounds
    # a hang (the first run queues the good scene last).
    try:
        events, first_s = run_all([*bodies[0], good], "600")
        more, second_s = run_all(bodies[1], short)
        events += more
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert bodies[1], "no case expects the short render timeout: the manifest changed?"

    def get(key: str) -> bytes | None:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    def position(event: str, job_id: str) -> int:
        """Where the first `event` of that job is in the worker's log (-1 if nowhere)."""
        return next(
            (i for i, e in enumerate(events) if e["event"] == event and e.get("job_id") == job_id),
            -1,
        )

    failures = []
    held = 0
    for case_id, (base, want) in expected.items():
        if "dropped" in want:
            dropped = [
                e
                for e in events
                if e["event"] == "bad_message" and want["dropped"] in e.get("reason", "")
            ]
            ok = bool(dropped)
            detail = "dropped" if ok else "not dropped"
        elif want.get("rendered"):
            png, error = get(base + ".png"), get(base + ".error.txt")
            ok = png is not None and png[:4] == b"\x89PNG" and error is None
            detail = "rendered" if ok else f"no PNG (error: {error!r})"
        elif want.get("planted"):
            # Either outcome: the case that reads it back is the check.
            png, error = get(base + ".png"), get(base + ".error.txt")
            ok = (png is None) != (error is None)
            first = error.decode("utf-8", "replace").splitlines()[0] if error else ""
            detail = f"write refused: {first[:120]}" if error else "planted (the scene rendered)"
        else:
            error, png = get(base + ".error.txt"), get(base + ".png")
            first = error.decode("utf-8", "replace").splitlines()[0] if error else ""
            ok = want["error"] in first and png is None
            detail = first[:160] if error else "no error.txt"
        if "after" in want:
            # The file was planted before this job looked for it: the earlier job had ended.
            ended = max(position(e, want["after"]) for e in ("rendered", "scene_error"))
            began = position("job_started", case_id)
            if not 0 <= ended < began:
                ok = False
                detail += f" (but it did not start after {want['after']} ended)"
        held += ok
        print(f"worker ({how}): {case_id}: {'ok' if ok else 'WRONG'}: {detail}")
        if not ok:
            failures.append(f"{case_id}: expected {want}, got {detail}")
    good = get("renders/good/good.png")
    assert good is not None and good[:4] == b"\x89PNG", "the good scene after the corpus"
    # Nothing is left on the queue: every case was final (a scene error or dropped).
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
    print(
        f"hostile corpus, worker as {how}: {held}/{len(expected)} cases gave their expected "
        f"outcome in two worker runs: {len(bodies[0])} with a 600 s render timeout and then a "
        f"good scene, which rendered ({first_s:.0f} s, exit 0), and {len(bodies[1])} that must "
        f"time out with {short} s ({second_s:.0f} s, exit 0); the queue is empty"
    )
    assert not failures, "\n".join(failures)
    # No warning: in the image, none about /tmp or /var/tmp being writable (the container is as
    # strict as the task definition) nor about the work dir.
    assert [e for e in events if e["event"] == "warning"] == []

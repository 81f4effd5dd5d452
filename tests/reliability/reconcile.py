#!/usr/bin/env python3
"""No job left waiting (issue 13), measured. Run by scripts/reliability, which starts moto.

    reconcile.py --moto URL [--kills 10] [--lost 5] [--redrives 5] [--period 10]

Each case deploys an app with `lew setup` and has the local runner (scripts/runner) play
Lambda, Fargate and EventBridge against moto as AWS would: the rules, targets and permissions
lew set up decide what is delivered. The scene is the killed-worker test's
(worker/tests/test_worker_killed.py: a few seconds of deterministic rendering on one core), and
every picture is compared, by its decoded pixels, with a clean render of it through the same
pipeline.

kills: the only worker is SIGKILLed (with its POV-Ray) 0.1-1.8 s into the render, and nothing
    is uploaded afterwards. The job it held comes back when its visibility lapses (4 s here, a
    heartbeat every second); what must start a worker for it is ECS's event for the killed
    task, through the rule lew-<app>-task-stopped. Held: the job rendered once (one "rendered"
    line, one PNG) by a task a stop event's reconcile started, pixels identical to the clean
    render, queue and dead-letter queue empty.
lost: the same, with the runner dropping every ECS event (--drop-task-events) and firing the
    schedule rule every --period seconds: the schedule's reconcile starts the worker.
redrives: a dead-letter batch moved back by hand with no worker running and nothing uploaded:
    a scene's job messages, as the launcher writes them, sit in the dead-letter queue (jobs
    that failed max_receives times), and are moved to the job queue; the schedule (every
    --period seconds) must start a worker within one period, and the job renders once.

Every run prints what it did and what held; the last lines are the figures. Exit status 1 when
a run did not hold.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from common import (
    ACCOUNT,
    REGION,
    REPO,
    Runner,
    bucket_keys,
    clients,
    lew,
    lew_binary,
    new_app_dir,
    say,
    worker_events,
)
from testkit.processes import descendants, kill_tree


def _module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The killed-worker test's scene and pixel comparison, and the launcher's own job message.
killed = _module("lew_worker_killed", REPO / "worker" / "tests" / "test_worker_killed.py")
launcher = _module("lew_launcher", REPO / "launcher" / "launcher.py")

# A job held by a dead worker comes back after 4 s (the worker's heartbeat runs every second);
# a new worker waits 10 s for it. One thread for POV-Ray, as on a 1-vCPU task.
TASK_ENV = [
    "--task-env",
    "LEW_VISIBILITY_TIMEOUT_S=4",
    "--task-env",
    "LEW_HEARTBEAT_S=1",
    "--task-env",
    "LEW_IDLE_S=10",
    "--task-env",
    "LEW_POVRAY_THREADS=1",
]
# How far into the render the worker is killed, run after run: shares of the time the clean
# render took (this machine's pace decides the seconds).
SHARES = [0.3, 0.08, 0.55, 0.2, 0.42, 0.04, 0.6, 0.14, 0.25, 0.5]


def slow_scene(folder: Path, name: str = "slow") -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.ini", killed.SLOW_INI)
        archive.writestr("scene.pov", killed.SLOW_POV)
    path = folder / f"{name}.zip"
    path.write_bytes(buffer.getvalue())
    return path


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _wait(condition: Any, what: str, seconds: float) -> float:
    """Polls until `condition()` holds; returns the seconds it took (the bound is a hang guard)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise TimeoutError(f"{what}: not within {seconds:g} s")
        time.sleep(0.05)
    return time.monotonic() - started


@dataclass
class Run:
    case: str
    n: int
    job: str = ""
    problems: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def check(self, holds: bool, problem: str) -> None:
        if not holds:
            self.problems.append(problem)

    def print(self) -> None:
        verdict = "held" if self.ok else "FAILED"
        say(f"{self.case} {self.n:2}: job {self.job}: {'; '.join(self.facts)} -> {verdict}")
        for p in self.problems:
            say(f"    PROBLEM: {p}")


class World:
    """One app deployed on moto, with the clean render every picture is compared with."""

    def __init__(self, moto: str, root: Path, name: str) -> None:
        self.moto = moto
        self.aws = clients(moto)
        self.app = name
        self.folder = new_app_dir(root, name)
        self.bucket = f"lew-{name}-{ACCOUNT}-{REGION}"
        setup = lew(self.folder, moto, "setup")
        if setup.code != 0:
            raise RuntimeError(f"lew setup failed:\n{setup.tail()}")
        self.scene = slow_scene(self.folder)
        runner = Runner(name, moto, TASK_ENV)
        try:
            out = self.folder / "clean"
            run = lew(
                self.folder,
                moto,
                "--output",
                "json",
                "render",
                "--timeout",
                "5m",
                "--out",
                str(out),
                str(self.scene),
            )
            if run.code != 0:
                raise RuntimeError(f"the clean render failed:\n{run.tail()}")
        finally:
            runner.close()
        self.reference = killed.pixels((out / "slow.png").read_bytes())
        job = run.json()["job_id"]
        rendered = [
            e
            for e in worker_events(self.aws, name)
            if e.get("event") == "rendered" and e.get("job_id") == job
        ]
        # How long POV-Ray took for the whole picture, for when to kill a worker.
        self.render_s = float(rendered[0]["render_seconds"])

    def depths(self) -> dict[str, tuple[int, int]]:
        sqs = self.aws["sqs"]
        found = {}
        for name in (f"lew-{self.app}-jobs", f"lew-{self.app}-jobs-dlq"):
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            a = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            found[name] = (
                int(a["ApproximateNumberOfMessages"]),
                int(a["ApproximateNumberOfMessagesNotVisible"]),
            )
        return found

    def submit(self) -> str:
        """`lew render --no-wait`: the one upload of the run; returns the job id."""
        run = lew(
            self.folder, self.moto, "--output", "json", "render", "--no-wait", str(self.scene)
        )
        if run.code != 0:
            raise RuntimeError(f"lew render --no-wait failed:\n{run.tail()}")
        return str(run.json()["job_id"])

    def held_once(self, r: Run, job: str) -> None:
        """The job rendered once, the same picture as the clean render, nothing left queued."""
        png = f"renders/{job}/slow.png"
        rendered = [
            e
            for e in worker_events(self.aws, self.app)
            if e.get("event") == "rendered" and e.get("job_id") == job
        ]
        r.check(len(rendered) == 1, f"rendered {len(rendered)} times")
        pngs = [k for k in bucket_keys(self.aws, self.app, f"renders/{job}/") if k.endswith(".png")]
        r.check(pngs == [png], f"PNGs: {pngs}")
        if pngs == [png]:
            body = self.aws["s3"].get_object(Bucket=self.bucket, Key=png)["Body"].read()
            same = killed.pixels(body) == self.reference
            r.check(same, "the picture differs from the clean render")
            r.facts.append(f"pixels identical: {same}")
        _wait(lambda: all(d == (0, 0) for d in self.depths().values()), "empty queues", 30)
        r.check(all(d == (0, 0) for d in self.depths().values()), f"queues: {self.depths()}")


def invocations(runner: Runner, suffix: str) -> list[dict[str, Any]]:
    return [i for i in runner.events("invoked") if str(i.get("key", "")).endswith(suffix)]


def kill_run(world: World, case: str, n: int, period: float) -> Run:
    """One worker killed mid-render; `lost`: ECS's events dropped, the schedule every `period`."""
    r = Run(case, n)
    lost = case == "lost"
    extra = [*TASK_ENV]
    if lost:
        extra += ["--drop-task-events", "--schedule-every", str(period)]
    runner = Runner(world.app, world.moto, extra)
    try:
        r.job = job = world.submit()
        _wait(lambda: len(runner.events("task_started")) >= 1, "the first task", 60)
        (first,) = runner.events("task_started")
        _wait(
            lambda: any(_comm(p) == "povray" for p in descendants(first["pid"])),
            "POV-Ray of the first worker",
            60,
        )
        delay = SHARES[(n - 1) % len(SHARES)] * world.render_s
        time.sleep(delay)  # how far into the render the crash comes
        # A kill after the render would measure nothing: POV-Ray must still be at work.
        rendering = any(_comm(p) == "povray" for p in descendants(first["pid"]))
        killed_at = time.monotonic()
        kill_tree(first["pid"])
        if not rendering:
            raise RuntimeError(f"POV-Ray had finished {delay:.2f} s in: the kill came too late")
        png = f"renders/{job}/slow.png"

        def rendered() -> bool:
            return png in bucket_keys(world.aws, world.app, f"renders/{job}/")

        _wait(rendered, "the PNG", 240)
        took = time.monotonic() - killed_at
        second = [t for t in runner.events("task_started") if t["task"] != first["task"]]
        r.check(bool(second), "no second task was started")
        exited = [e for e in runner.events("task_exited") if e["task"] == first["task"]]
        r.check(bool(exited) and exited[0]["code"] == -9, f"the first worker's exit: {exited}")
        uploads = [i for i in runner.events("invoked") if str(i["key"]).startswith("scenes/")]
        r.check(len(uploads) == 1, f"{len(uploads)} upload invocations (one upload only)")
        rule = f"lew-{world.app}-reconcile" if lost else f"lew-{world.app}-task-stopped"
        started_by = [
            i for i in invocations(runner, rule) if (i.get("result") or {}).get("started")
        ]
        r.check(bool(started_by), f"no invocation through {rule} started a task")
        if lost:
            r.check(bool(runner.events("event_dropped")), "no ECS event was dropped")
            r.check(
                not invocations(runner, f"lew-{world.app}-task-stopped"),
                "an ECS event reached the launcher though every one was dropped",
            )
        r.facts.append(
            f"killed {delay:.2f} s into a {world.render_s:.1f} s render; the "
            f"{'schedule' if lost else 'stop event'} "
            f"started a task, which rendered it {took:.1f} s after the kill"
        )
    except (TimeoutError, RuntimeError) as error:
        r.problems.append(str(error))
    finally:
        runner.close()  # which also sends the last log lines
    if r.job:
        world.held_once(r, r.job)
    return r


def redrive_run(world: World, n: int, period: float) -> Run:
    """A dead-letter batch moved back by hand, no worker running, nothing uploaded."""
    r = Run("redrive", n)
    sqs = world.aws["sqs"]
    jobs_url = sqs.get_queue_url(QueueName=f"lew-{world.app}-jobs")["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=f"lew-{world.app}-jobs-dlq")["QueueUrl"]
    # The scene is in the bucket (uploaded with no launcher playing: no job was queued then)
    # and its job, as the launcher writes it, is in the dead-letter queue.
    r.job = job = f"redrive-{n}-{int(time.time())}"
    key = f"scenes/{job}/slow.zip"
    world.aws["s3"].put_object(Bucket=world.bucket, Key=key, Body=world.scene.read_bytes())
    head = world.aws["s3"].head_object(Bucket=world.bucket, Key=key)
    obj = launcher.S3Object(
        world.bucket, key, int(head["ContentLength"]), head["ETag"].strip('"'), job
    )
    sqs.send_message(
        QueueUrl=dlq_url, MessageBody=json.dumps(launcher.job_message(launcher.Job(obj)))
    )
    runner = Runner(world.app, world.moto, [*TASK_ENV, "--schedule-every", str(period)])
    try:
        # First an idle firing: with nothing queued the reconcile starts nothing (and costs one
        # SQS call). Then the redrive comes at a different moment of the period each run.
        _wait(lambda: bool(invocations(runner, f"{world.app}-reconcile")), "an idle firing", 60)
        idle = invocations(runner, f"{world.app}-reconcile")[0].get("result") or {}
        r.check((idle.get("jobs"), idle.get("started")) == (0, 0), f"the idle reconcile did {idle}")
        time.sleep(period * ((n - 1) % 4) / 4)  # the phase of the redrive in the period
        # The redrive, by hand: every message of the dead-letter queue back to the job queue.
        moved = 0
        while True:
            got = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = got.get("Messages") or []
            if not messages:
                break
            for m in messages:
                sqs.send_message(QueueUrl=jobs_url, MessageBody=m["Body"])
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
                moved += 1
        redriven_at, redriven = time.monotonic(), datetime.now(UTC)
        r.check(moved == 1, f"{moved} messages moved")
        waited = _wait(
            lambda: bool(runner.events("task_started")), "a task after the redrive", 3 * period + 60
        )

        def after(event: str) -> list[dict[str, Any]]:
            return [e for e in runner.events(event) if _when(e) > redriven]

        # The first firing after the redrive, within one period of it, started the worker.
        fired = after("schedule_fired")
        r.check(bool(fired), "the schedule did not fire after the redrive")
        first_fire = (_when(fired[0]) - redriven).total_seconds() if fired else float("inf")
        r.check(first_fire <= period + 0.5, f"the schedule fired {first_fire:.1f} s after")
        through = [i for i in after("invoked") if i["key"].endswith(f"{world.app}-reconcile")]
        r.check(
            bool(through) and (through[0].get("result") or {}).get("started") == 1,
            f"the first scheduled reconcile after the redrive started no task: {through[:1]}",
        )
        png = f"renders/{job}/slow.png"
        _wait(lambda: png in bucket_keys(world.aws, world.app, f"renders/{job}/"), "the PNG", 240)
        took = time.monotonic() - redriven_at
        uploads = [i for i in runner.events("invoked") if str(i["key"]).startswith("scenes/")]
        r.check(uploads == [], "an upload invoked the launcher")
        r.facts.append(
            f"redriven with no worker running; the schedule (every {period:g} s) fired "
            f"{first_fire:.1f} s later and started a task ({waited:.1f} s after the redrive); "
            f"the PNG landed {took:.1f} s after the redrive"
        )
    except (TimeoutError, RuntimeError) as error:
        r.problems.append(str(error))
    finally:
        runner.close()  # which also sends the last log lines
    world.held_once(r, job)
    return r


def _when(line: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(line["time"]).replace("Z", "+00:00"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moto", required=True, help="moto's URL (scripts/moto_server.py)")
    parser.add_argument("--kills", type=int, default=10, help="runs of the killed worker")
    parser.add_argument("--lost", type=int, default=5, help="runs with ECS's events lost")
    parser.add_argument("--redrives", type=int, default=5, help="runs of a redriven batch")
    parser.add_argument("--period", type=float, default=10, help="the schedule's period (s)")
    args = parser.parse_args(argv)
    if not lew_binary().is_file():
        print(f"no lew binary at {lew_binary()}: run cargo build", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="lew-rel-reconcile-"))
    world = World(args.moto, root, f"rc{int(time.time()) % 100000}")
    say(
        f"reconcile: app {world.app}; the killed-worker test's scene renders in "
        f"{world.render_s:.1f} s here (clean render, the reference picture)"
    )
    runs: list[Run] = []
    for case, count in (("kills", args.kills), ("lost", args.lost)):
        for n in range(1, count + 1):
            run = kill_run(world, case, n, args.period)
            run.print()
            runs.append(run)
    for n in range(1, args.redrives + 1):
        run = redrive_run(world, n, args.period)
        run.print()
        runs.append(run)
    lew(world.folder, args.moto, "teardown", "--yes", "--delete-data")

    def held(case: str) -> str:
        mine = [r for r in runs if r.case == case]
        return f"{sum(r.ok for r in mine)}/{len(mine)}"

    say("")
    say(
        f"reconcile: the only worker SIGKILLed mid-render, no further upload: rendered by a task "
        f"its stop event started {held('kills')}, each once, pixels identical to a clean render"
    )
    say(
        f"reconcile: the same with every stop event lost: the schedule (every {args.period:g} s) "
        f"started a task and the job rendered once {held('lost')}"
    )
    say(
        f"reconcile: a dead-letter batch redriven by hand with no worker running: a worker "
        f"started within one schedule period ({args.period:g} s) and the job rendered once "
        f"{held('redrive')}"
    )
    failed = [f"{r.case} {r.n}" for r in runs if not r.ok]
    if failed:
        say("reconcile: did not hold: " + ", ".join(failed))
    return 0 if runs and not failed else 1


if __name__ == "__main__":
    sys.exit(main())

"""The measurements behind `scripts/bench` (run that: it starts moto and the proxies, then this).

Standard library only, but for the parallel section, which reads the stitched still's log from
moto with boto3 and compares images with pypng (both in the venv it runs with). It times
commands as a user runs them (wall time of the process), reads the API-call counts from the
counting proxies (never from lew's own counters), and prints the figures; it asserts nothing
about time. See `scripts/bench --help` for what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# What the test tooling shares (scripts/testkit), standard library only like this file.
sys.path.insert(0, str(REPO / "scripts"))
from testkit.processes import kill_tree  # noqa: E402

REFERENCE = REPO / "bench" / "reference.py"
RUNNER = REPO / "scripts" / "runner" / "runner.py"
DEMO = REPO / "assets" / "lew-demo"
REGION = "eu-west-1"

TARGETS = {
    "cold_setup_vs_reference": 0.4,
    "noop_setup_vs_cold_setup": 0.5,
    "teardown_vs_reference": 0.5,
    "pipeline_vs_povray": 1.2,
    "split_wall_vs_whole": 0.6,
    "split_cpu_vs_whole": 1.1,
    "animation_vs_povray": 1.2,
    "image_mb": 170,
}


class Failed(Exception):
    pass


def log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def http_json(url: str, method: str = "GET") -> Any:
    data = b"{}" if method == "POST" else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (loopback)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


# ---------------------------------------------------------------------------------------------
# Machine


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    load = os.getloadavg()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


# ---------------------------------------------------------------------------------------------
# Running and measuring one command


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)
        # The worker renders as `nobody` when run as root: every folder on the way to the
        # runner's task folders needs o+x.
        os.chmod(self.work, 0o711)  # noqa: S103 (traverse only, no listing)
        self.lew = args.lew
        self.python = args.python
        self.config = self.work / "lew.toml"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LEW_"))}
        self.env.update(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": str(self.work / "aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(self.work / "aws-credentials"),
                "LEW_CONFIG": str(self.config),
            }
        )
        self.endpoints = {
            "proxy": {"url": args.slow, "log": Path(args.slow_log)},
            "moto": {"url": args.fast, "log": Path(args.fast_log)},
        }

    def reset_moto(self) -> None:
        """Clears moto, then makes it build its per-service state again (untimed): right after
        a reset the first calls of each service are several times slower, which no real AWS
        endpoint does."""
        http_json(f"{self.args.moto}/moto-api/reset", "POST")
        self.run([self.python, str(REFERENCE), "warm", "-"], self.args.moto, "moto warm-up")

    def write_config(self, app: str, extra: str = "") -> None:
        self.config.write_text(f'app = "{app}"\n{extra}')

    def run(
        self, argv: list[str], endpoint: str, what: str, timeout: float = 600
    ) -> tuple[float, float, float, str]:
        """Runs a command against an endpoint URL; (seconds, start epoch, end epoch, stdout)."""
        env = dict(self.env, AWS_ENDPOINT_URL=endpoint)
        out_path = self.work / "last.out"
        err_path = self.work / "last.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            wall_start = time.time()
            started = time.perf_counter()
            proc = subprocess.run(argv, env=env, stdout=out, stderr=err, timeout=timeout)
            seconds = time.perf_counter() - started
            wall_end = time.time()
        if proc.returncode != 0:
            raise Failed(
                f"{what} failed (exit {proc.returncode}): {' '.join(argv)}\n"
                f"--- stdout\n{out_path.read_text(errors='replace')[-3000:]}"
                f"--- stderr\n{err_path.read_text(errors='replace')[-3000:]}"
            )
        return seconds, wall_start, wall_end, out_path.read_text(errors="replace")

    def measure(self, endpoint: str, argv: list[str], what: str) -> dict[str, Any]:
        """One timed command through a counting proxy: time, calls, and where the time went."""
        proxy = self.endpoints[endpoint]
        http_json(f"{proxy['url']}/__proxy/reset", "POST")
        proxy["log"].write_text("")
        seconds, start, end, stdout = self.run(argv, proxy["url"], what)
        stats = http_json(f"{proxy['url']}/__proxy/stats")
        records = []
        for line in proxy["log"].read_text().splitlines():
            if line.strip():
                records.append(json.loads(line))
        sample = {
            "seconds": seconds,
            "calls": stats["requests"],
            "mutating": stats["mutating"],
            "by_operation": stats["by_operation"],
            "profile": profile(records, start, end),
        }
        if what.startswith("reference"):
            summary = json.loads(stdout.strip().splitlines()[-1])
            sample["reference"] = summary
        sample["timeline"] = [
            (round(r["t"] - start, 3), round(r["ms"], 1), r["op"]) for r in records
        ]
        return sample


def profile(records: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """Where a command's wall time went: waiting on API calls (the union of the intervals with
    at least one call in flight) or not (start-up, own work, sleeps); how many sequential rounds
    of calls that makes, and the most calls in flight at once."""
    wall = end - start
    if not records:
        return {"wall_s": wall, "in_calls_s": 0.0, "outside_calls_s": wall}
    spans = sorted((r["t"], r["t"] + r["ms"] / 1000) for r in records)
    busy = 0.0
    current_start, current_end = spans[0]
    for s, e in spans[1:]:
        if s > current_end:
            busy += current_end - current_start
            current_start, current_end = s, e
        else:
            current_end = max(current_end, e)
    busy += current_end - current_start
    # Ends count 2 ms early: the proxy logs a call after answering it, so a client's next call
    # can be logged as starting a moment before the previous one ended.
    events = sorted([(s, 1) for s, _ in spans] + [(e - 0.002, -1) for _, e in spans])
    in_flight = most = 0
    for _, delta in events:
        in_flight += delta
        most = max(most, in_flight)
    mean = statistics.fmean(r["ms"] for r in records) / 1000
    return {
        "wall_s": wall,
        "before_first_call_s": spans[0][0] - start,
        "in_calls_s": busy,
        "outside_calls_s": max(0.0, wall - busy),
        "after_last_call_s": max(0.0, end - max(e for _, e in spans)),
        "mean_call_s": mean,
        "rounds": busy / mean if mean > 0 else 0.0,
        "max_in_flight": most,
    }


# ---------------------------------------------------------------------------------------------
# Setup and teardown


FIGURES = [
    ("lew_setup_cold", "lew setup (cold)"),
    ("lew_setup_noop", "lew setup (no-op, 2nd run)"),
    ("lew_teardown", "lew teardown --yes --delete-data"),
    ("reference_setup", "reference setup (boto3, sequential)"),
    ("reference_teardown", "reference teardown (boto3, sequential)"),
]


def setup_figures(b: Bench) -> dict[str, dict[str, list[dict[str, Any]]]]:
    lew, ref = b.lew, [b.python, str(REFERENCE)]
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {
        endpoint: {key: [] for key, _ in FIGURES} for endpoint in b.endpoints
    }

    def one_round(endpoint: str, app: str, keep: bool) -> None:
        b.reset_moto()
        b.write_config(app)
        results = {
            "lew_setup_cold": b.measure(endpoint, [lew, "setup"], "lew setup (cold)"),
            "lew_setup_noop": b.measure(endpoint, [lew, "setup"], "lew setup (no-op)"),
            "lew_teardown": b.measure(
                endpoint, [lew, "teardown", "--yes", "--delete-data"], "lew teardown"
            ),
        }
        b.reset_moto()
        results["reference_setup"] = b.measure(
            endpoint, [*ref, "setup", f"{app}-r"], "reference setup"
        )
        results["reference_teardown"] = b.measure(
            endpoint, [*ref, "teardown", f"{app}-r"], "reference teardown"
        )
        if keep:
            for key, sample in results.items():
                samples[endpoint][key].append(sample)

    step("warming up moto and the proxies (one untimed round per endpoint)")
    for endpoint in b.endpoints:
        one_round(endpoint, f"warm-{endpoint}", keep=False)
    for run in range(1, b.args.runs + 1):
        step(f"setup/teardown run {run}/{b.args.runs}")
        for endpoint in b.endpoints:
            one_round(endpoint, f"b{run}-{endpoint}", keep=True)
            s = samples[endpoint]
            proxy_ms = b.args.latency_ms if endpoint == "proxy" else 0
            log(
                f"{int(proxy_ms):3} ms: lew cold {s['lew_setup_cold'][-1]['seconds']:.2f} s, no-op "
                f"{s['lew_setup_noop'][-1]['seconds']:.2f} s, teardown "
                f"{s['lew_teardown'][-1]['seconds']:.2f} s; reference setup "
                f"{s['reference_setup'][-1]['seconds']:.2f} s, teardown "
                f"{s['reference_teardown'][-1]['seconds']:.2f} s"
            )
    return samples


def median_sample(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The sample with the median time (the lower middle one for an even count)."""
    ordered = sorted(samples, key=lambda s: s["seconds"])
    return ordered[(len(ordered) - 1) // 2]


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    times = [s["seconds"] for s in samples]
    calls = sorted({s["calls"] for s in samples})
    mutating = sorted({s["mutating"] for s in samples})
    mid = median_sample(samples)
    out = {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "samples_s": [round(t, 4) for t in times],
        "calls": statistics.median_low([s["calls"] for s in samples]),
        "mutating": statistics.median_low([s["mutating"] for s in samples]),
        "calls_seen": calls,
        "mutating_seen": mutating,
        "by_operation": mid["by_operation"],
        "profile": {k: round(v, 4) for k, v in mid["profile"].items()},
    }
    if "reference" in mid:
        out["reference_calls_s"] = statistics.median(s["reference"]["calls_s"] for s in samples)
        out["reference_startup_s"] = statistics.median(
            s["reference"]["import_s"] + s["reference"]["clients_s"] for s in samples
        )
    return out


# ---------------------------------------------------------------------------------------------
# Pipeline overhead


def scene_zips(b: Bench, count: int, width: int, height: int) -> list[Path]:
    """`count` copies of the demo scene at width x height, each zip and ini named differently."""
    folder = b.work / "scenes"
    folder.mkdir(exist_ok=True)
    ini = (DEMO / "lew-demo.ini").read_text()
    ini = re.sub(r"(?m)^Width=.*$", f"Width={width}", ini)
    ini = re.sub(r"(?m)^Height=.*$", f"Height={height}", ini)
    zips = []
    for i in range(1, count + 1):
        name = f"bench-{i:02d}"
        path = folder / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"{name}.ini", ini)
            z.write(DEMO / "lew-demo.pov", "lew-demo.pov")
        zips.append(path)
    return zips


def povray_alone(b: Bench, zips: list[Path], parallel: int, threads: int) -> float:
    """POV-Ray rendering the same scenes `parallel` at a time, as the worker runs it."""
    povray = shutil.which("povray")
    if povray is None:
        raise Failed("povray is not installed (Debian package povray)")
    root = b.work / "alone"
    shutil.rmtree(root, ignore_errors=True)
    dirs = []
    for z in zips:
        d = root / z.stem
        d.mkdir(parents=True)
        with zipfile.ZipFile(z) as archive:
            archive.extractall(d)
        dirs.append(d)

    def render(d: Path) -> None:
        command = [
            povray,
            f"./{d.name}.ini",
            "Display=off",
            "Pause_When_Done=off",
            "Output_To_File=on",
            "Output_File_Type=N",
            f"Output_File_Name={d.name}.png",
            f"+WT{threads}",
        ]
        proc = subprocess.run(
            command, cwd=d, env={}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if proc.returncode != 0 or not (d / f"{d.name}.png").is_file():
            raise Failed(f"povray failed in {d}:\n{proc.stderr.decode(errors='replace')[-2000:]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(render, dirs))
    return time.perf_counter() - started


def pipeline(b: Bench) -> dict[str, Any]:
    """lew render through the whole local pipeline, lew's calls through the slow proxy (the
    target's figure) and to moto directly, against POV-Ray alone. The runner, playing Lambda
    and Fargate, talks to moto directly either way: AWS runs those next to the services."""
    a = b.args
    width, height = (int(x) for x in a.scene_size.lower().split("x"))
    step(
        f"pipeline: {a.scenes} scenes at {width}x{height}, worker.max_tasks = {a.max_tasks}, "
        f"{a.pipeline_runs} run(s), lew through the {int(a.latency_ms)} ms proxy and on moto"
    )
    zips = scene_zips(b, a.scenes, width, height)
    threads = max(a.worker_cpu // 1024, 1)
    runs = []
    for run in range(1, a.pipeline_runs + 1):
        sample = pipeline_once(b, zips, f"bench-pipe{run}", a.slow)
        plain = pipeline_once(b, zips, f"bench-pipe{run}m", a.moto)
        for result in (sample, plain):  # what only the parallel section reads
            del result["out_dir"], result["worker_events"], result["machine_busy_s"]
            del result["lew_cpu_s"]
        sample["moto"] = plain
        sample["povray_alone_s"] = povray_alone(b, zips, a.max_tasks, threads)
        log(
            f"run {run}: lew render {sample['lew_render_s']:.2f} s through the proxy, "
            f"{plain['lew_render_s']:.2f} s on moto ({sample['tasks_started']} and "
            f"{plain['tasks_started']} worker task(s)); POV-Ray alone, {a.max_tasks} at a time, "
            f"+WT{threads}: {sample['povray_alone_s']:.2f} s"
        )
        runs.append(sample)
    render = statistics.median(r["lew_render_s"] for r in runs)
    render_moto = statistics.median(r["moto"]["lew_render_s"] for r in runs)
    alone = statistics.median(r["povray_alone_s"] for r in runs)
    mid = sorted(runs, key=lambda r: r["lew_render_s"])[(len(runs) - 1) // 2]
    return {
        "scenes": a.scenes,
        "size": f"{width}x{height}",
        "max_tasks": a.max_tasks,
        "povray_threads": threads,
        "runs": len(runs),
        "latency_ms": a.latency_ms,
        "lew_render_s": render,
        "lew_render_moto_s": render_moto,
        "povray_alone_s": alone,
        "ratio": render / alone,
        "ratio_moto": render_moto / alone,
        "overhead_s": render - alone,
        "overhead_moto_s": render_moto - alone,
        "samples": runs,
        "breakdown": mid["breakdown"],
    }


def pipeline_once(
    b: Bench,
    zips: list[Path],
    app: str,
    endpoint: str,
    render_args: tuple[str, ...] = (),
    one_png_each: bool = True,
) -> dict[str, Any]:
    """Deploys a fresh app, starts the local runner, times `lew render` of every zip (with
    `render_args`); lew talks to `endpoint` (the slow proxy or moto), the runner to moto.
    With `one_png_each`, lew must have written one PNG per zip into the output folder (an
    animation's frames go into a folder of their own: its caller checks them). The runner
    copies its workers' output (their JSON lines: what each job took) into its log."""
    a = b.args
    b.reset_moto()
    b.write_config(app, f"\n[worker]\nmax_tasks = {a.max_tasks}\n")
    b.run([b.lew, "setup"], endpoint, "lew setup (pipeline)")

    runner_log = b.work / f"runner-{app}.log"  # one per run: nothing of an earlier run in it
    runner_dir = b.work / "runner"
    runner_dir.mkdir(exist_ok=True)
    env = dict(b.env, AWS_ENDPOINT_URL=a.moto)
    with open(runner_log, "wb") as out:
        runner = subprocess.Popen(
            [
                b.python,
                str(RUNNER),
                *("--app", app, "--task-env", "LEW_WAIT_TIME_S=1", "--task-env", "LEW_IDLE_S=0"),
                *("--work-dir", str(runner_dir), "--verbose"),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while '"watching"' not in runner_log.read_text(errors="replace"):
            if runner.poll() is not None:
                raise Failed(f"the runner exited:\n{runner_log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise Failed("the runner did not start watching within 60 s")
            time.sleep(0.1)
        out_dir = b.work / f"renders-{app}"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir()
        argv = [b.lew, "render", *map(str, zips), *render_args]
        argv += ["--out", str(out_dir), "--timeout", "15m"]
        started = time.time()
        busy = machine_busy_s()
        # lew is the only child this process reaps meanwhile: the difference is its CPU time.
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds = render_watched(b, argv, runner_log, endpoint)
        busy = machine_busy_s() - busy
        now = resource.getrusage(resource.RUSAGE_CHILDREN)
        lew_cpu = now.ru_utime + now.ru_stime - reaped.ru_utime - reaped.ru_stime
        written = sorted(p.name for p in out_dir.glob("*.png"))
        if one_png_each and len(written) != len(zips):
            raise Failed(f"lew render wrote {len(written)} of {len(zips)} images: {written}")
    finally:
        stop_runner(runner, 30)
    events = runner_events(runner_log)
    shutil.copy(b.work / "render.err", b.work / f"render-{app}.err")
    return {
        "lew_render_s": seconds,
        "tasks_started": sum(1 for e in events if e["event"] == "task_started"),
        "breakdown": pipeline_breakdown(events, started),
        "out_dir": out_dir,
        "worker_events": worker_events(runner_log),
        "machine_busy_s": busy,
        "lew_cpu_s": lew_cpu,
    }


def worker_events(runner_log: Path) -> list[dict[str, Any]]:
    """The workers' own JSON lines, as the runner (--verbose) copied them: `[task ID] {...}`."""
    events = []
    for line in runner_log.read_text(errors="replace").splitlines():
        match = re.match(r"^\[task [0-9a-f]+\] (\{.*\})$", line)
        if match:
            try:
                events.append(json.loads(match.group(1)))
            except ValueError:
                continue
    return events


def runner_events(runner_log: Path) -> list[dict[str, Any]]:
    events = []
    for line in runner_log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "time" in event and "event" in event:
            stamp = event["time"].replace("Z", "+00:00")
            event["epoch"] = datetime.fromisoformat(stamp).timestamp()
            events.append(event)
    return events


def pipeline_breakdown(events: list[dict[str, Any]], start: float) -> dict[str, Any]:
    """How long the pipeline took to get going, as the runner saw it (its polls are 0.5 s
    apart), and what playing Lambda cost on this machine."""

    def first(predicate: Any) -> float | None:
        times = [e["epoch"] for e in events if predicate(e)]
        return min(times) - start if times else None

    def key(e: dict[str, Any]) -> str:
        return str(e.get("key", "")) if e["event"] == "object" else ""

    invocations = [e.get("seconds", 0.0) for e in events if e["event"] == "invoked"]
    return {
        "first_upload_seen_s": first(lambda e: key(e).endswith(".zip")),
        "first_task_started_s": first(lambda e: e["event"] == "task_started"),
        "first_render_started_s": first(lambda e: key(e).endswith(".started.json")),
        "launcher_invocations": len(invocations),
        "launcher_invocations_s": sum(invocations),
    }


def runner_problem(runner_log: Path) -> str | None:
    """A worker that failed to start or died (it would leave lew render waiting forever)."""
    for line in runner_log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "warning" or (
            event.get("event") == "task_exited" and event.get("code") not in (0, None)
        ):
            return line
    return None


def render_watched(b: Bench, argv: list[str], runner_log: Path, endpoint: str) -> float:
    """Times `lew render`, stopping it as soon as the runner reports a broken worker."""
    env = dict(b.env, AWS_ENDPOINT_URL=endpoint)
    out_path, err_path = b.work / "render.out", b.work / "render.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        try:
            while proc.poll() is None:
                problem = runner_problem(runner_log)
                if problem:
                    raise Failed(
                        f"the local pipeline is broken; the runner says:\n{problem}\n"
                        f"--- runner log tail\n{runner_log.read_text()[-3000:]}"
                    )
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise Failed(
            f"lew render failed (exit {proc.returncode})\n"
            f"--- stderr\n{err_path.read_text(errors='replace')[-3000:]}"
        )
    return seconds


def stop_runner(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Stops the runner (SIGTERM: it stops its workers and Lambda runtimes itself); one that has
    not ended within `grace` is killed with everything it started. Those run in sessions of
    their own, so the runner's process group would not reach them: the process tree does."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            kill_tree(proc.pid)
            proc.wait()


# ---------------------------------------------------------------------------------------------
# Parallel: a still split in bands, and an animation, across the workers

SCENES = REPO / "bench" / "scenes"


def size_arg(text: str) -> tuple[int, int]:
    width, height = (int(x) for x in text.lower().split("x"))
    return width, height


def demo_ini(width: int, height: int, pov: str = "lew-demo.pov", extra: str = "") -> str:
    """The demo's own .ini (its anti-aliasing) at another size, for another .pov."""
    ini = (DEMO / "lew-demo.ini").read_text()
    ini = re.sub(r"(?m)^Width=.*$", f"Width={width}", ini)
    ini = re.sub(r"(?m)^Height=.*$", f"Height={height}", ini)
    ini = re.sub(r"(?m)^Input_File_Name=.*$", f"Input_File_Name={pov}", ini)
    return ini + extra


def write_zip(path: Path, ini_name: str, ini: str, extra: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(ini_name, ini)
        z.write(DEMO / "lew-demo.pov", "lew-demo.pov")
        for name, text in extra.items():
            z.writestr(name, text)
    return path


def unpack(zip_path: Path, folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    return folder


def machine_busy_s() -> float:
    """The CPU-seconds all CPUs of this machine have been busy since boot (/proc/stat): the
    difference over a phase, less what POV-Ray used, is what everything else took meanwhile
    (lew's pipeline, and whoever else uses this shared machine)."""
    with open("/proc/stat", encoding="ascii") as stat:
        # user nice system idle iowait irq softirq steal (guest time is counted in user)
        ticks = [int(x) for x in stat.readline().split()[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def povray_cpu_seconds(log: str) -> float:
    """The CPU time POV-Ray reports for a render: its "using N thread(s) with X CPU-seconds
    total" lines (parse, bounding, trace) added up."""
    return sum(float(x) for x in re.findall(r"with\s+([0-9.]+)\s+CPU-seconds\s+total", log))


def run_povray(folder: Path, args: list[str]) -> dict[str, Any]:
    """POV-Ray alone, as the worker runs it (display off, PNG, an empty environment): its wall
    time, the CPU time of the process (rusage) and the CPU time it reports itself."""
    povray = shutil.which("povray")
    if povray is None:
        raise Failed("povray is not installed (Debian package povray)")
    command = [povray, *args]
    command += ["Display=off", "Pause_When_Done=off", "Output_To_File=on", "Output_File_Type=N"]
    log_path = folder / "povray.log"
    with open(log_path, "wb") as err:
        started = time.perf_counter()
        busy = machine_busy_s()
        proc = subprocess.Popen(command, cwd=folder, env={}, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        busy = machine_busy_s() - busy
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, for its rusage
    log_text = log_path.read_text(errors="replace")
    if proc.returncode != 0:
        raise Failed(f"povray failed in {folder} (exit {proc.returncode}):\n{log_text[-2000:]}")
    return {
        "wall_s": seconds,
        "process_cpu_s": usage.ru_utime + usage.ru_stime,
        "povray_cpu_s": povray_cpu_seconds(log_text),
        "machine_busy_s": busy,
    }


def compare_pixels(a: Path, b: Path) -> dict[str, Any]:
    """Two PNGs decoded (pypng): the same size and sample format, and how many rows differ and
    by how much at most (POV-Ray writes the render time into every PNG: bytes always differ)."""
    import png

    wa, ha, rows_a, info_a = png.Reader(filename=str(a)).read()
    wb, hb, rows_b, info_b = png.Reader(filename=str(b)).read()
    shape_a = (wa, ha, info_a["bitdepth"], info_a["planes"])
    shape_b = (wb, hb, info_b["bitdepth"], info_b["planes"])
    if shape_a != shape_b:
        return {"identical": False, "shape": [shape_a, shape_b], "rows": ha, "rows_differing": ha}
    differing = most = 0
    for row_a, row_b in zip(rows_a, rows_b, strict=True):
        if row_a != row_b:
            differing += 1
            most = max(most, max(abs(x - y) for x, y in zip(row_a, row_b, strict=True)))
    return {
        "identical": differing == 0,
        "rows": ha,
        "rows_differing": differing,
        "max_difference": most,
        "bitdepth": info_a["bitdepth"],
    }


def s3_text(b: Bench, app: str, suffix: str) -> str:
    """The object under renders/ whose key ends with `suffix`, in the app's bucket in moto
    (read with boto3, the venv's: lew downloads images, not logs)."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=b.args.moto,
        region_name=REGION,
        aws_access_key_id=b.env["AWS_ACCESS_KEY_ID"],  # the emulator's, as lew's
        aws_secret_access_key=b.env["AWS_SECRET_ACCESS_KEY"],
    )
    buckets = [x["Name"] for x in s3.list_buckets()["Buckets"]]
    bucket = next((x for x in buckets if x.startswith(f"lew-{app}-")), None)
    if bucket is None:
        raise Failed(f"no bucket of app {app} in moto: {buckets}")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="renders/"):
        for obj in page.get("Contents") or []:
            if obj["Key"].endswith(suffix):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
                return body.read().decode("utf-8", errors="replace")
    raise Failed(f"no renders/...{suffix} in {bucket}")


def band_cpu_seconds(stitched_log: str) -> list[dict[str, Any]]:
    """Each band's rows and POV-Ray CPU time, from the stitched still's log (the worker puts
    every band's POV-Ray output under a `==== band i of n: rows a-b ====` heading)."""
    parts = re.split(r"(?m)^==== band (\d+) of \d+: rows (\d+)-(\d+) ====$", stitched_log)
    bands = []
    for i in range(1, len(parts) - 1, 4):
        bands.append(
            {
                "band": int(parts[i]),
                "rows": f"{parts[i + 1]}-{parts[i + 2]}",
                "povray_cpu_s": povray_cpu_seconds(parts[i + 3]),
            }
        )
    return bands


def split_run(b: Bench, zip_path: Path, name: str, app: str, bands: int) -> dict[str, Any]:
    """`lew render --split N` through the pipeline: its time, and each band's rows, POV-Ray
    CPU-seconds (from the stitched still's log) and time in the worker (its render_seconds)."""
    piped = pipeline_once(b, [zip_path], app, b.args.slow, ("--split", str(bands)))
    logged = band_cpu_seconds(s3_text(b, app, f"/{name}.log"))
    rendered = [e for e in piped["worker_events"] if e.get("event") == "rendered" and "band" in e]
    stitched = [e for e in piped["worker_events"] if e.get("event") == "stitched"]
    if len(logged) != bands or len(rendered) != bands or len(stitched) != 1:
        raise Failed(
            f"expected {bands} bands rendered and one stitch: the log has {len(logged)} bands, "
            f"the workers logged {len(rendered)} bands and {len(stitched)} stitches"
        )
    for band in logged:
        event = next(e for e in rendered if e["band"].startswith(f"{band['band']}/"))
        band["render_s"] = float(event["render_seconds"])
    return {
        "bands": bands,
        "lew_render_s": piped["lew_render_s"],
        "tasks_started": piped["tasks_started"],
        "per_band": logged,
        "bands_povray_cpu_s": sum(x["povray_cpu_s"] for x in logged),
        "bands_render_s": sum(x["render_s"] for x in logged),
        # CPUs kept busy on average by everything but the bands' POV-Ray meanwhile.
        "other_cpus": (piped["machine_busy_s"] - sum(x["povray_cpu_s"] for x in logged))
        / piped["lew_render_s"],
        "lew_cpu_s": piped["lew_cpu_s"],
        "image": piped["out_dir"] / f"{name}.png",
    }


def split_cases(b: Bench) -> list[dict[str, Any]]:
    """The stills to split: the demo scene (the target's figure), and a scene whose rows all
    cost the same (what lew's split itself costs)."""
    a = b.args
    folder = b.work / "parallel"
    width, height = size_arg(a.split_size)
    demo = write_zip(folder / "bench-split.zip", "bench-split.ini", demo_ini(width, height), {})
    width, height = size_arg(a.tiles_size)
    tiles_ini = demo_ini(width, height, "tiles.pov")
    tiles = write_zip(
        folder / "bench-tiles.zip",
        "bench-tiles.ini",
        tiles_ini,
        {"tiles.pov": (SCENES / "tiles.pov").read_text()},
    )
    splits = [a.bands, *([a.more_bands] if a.more_bands else [])]
    return [
        {
            "key": "demo",
            "scene": f"assets/lew-demo at {a.split_size}",
            "zip": demo,
            "name": "bench-split",
            "splits": splits,
        },
        {
            "key": "tiles",
            "scene": f"bench/scenes/tiles.pov at {a.tiles_size} (every row costs about the same)",
            "zip": tiles,
            "name": "bench-tiles",
            "splits": [a.bands],
        },
    ]


def split_once(b: Bench, case: dict[str, Any], run: int) -> dict[str, Any]:
    """One still: POV-Ray alone rendering it whole on one CPU, then `lew render --split N`
    for each N of the case, each stitched image compared with the whole one."""
    name = case["name"]
    folder = unpack(case["zip"], b.work / "parallel" / f"alone-{name}")
    alone = run_povray(folder, [f"./{name}.ini", f"Output_File_Name={name}.png", "+WT1"])
    sample: dict[str, Any] = {"alone": alone, "splits": {}}
    for bands in case["splits"]:
        split = split_run(b, case["zip"], name, f"{name}{run}-{bands}", bands)
        image = split.pop("image")
        split["pixels"] = compare_pixels(image, folder / f"{name}.png")
        split["wall_ratio"] = split["lew_render_s"] / alone["wall_s"]
        split["cpu_ratio"] = split["bands_povray_cpu_s"] / alone["povray_cpu_s"]
        sample["splits"][str(bands)] = split
        per_band = ", ".join(f"{x['povray_cpu_s']:.2f}" for x in split["per_band"])
        log(
            f"{case['key']} run {run}: lew render --split {bands} {split['lew_render_s']:.2f} s "
            f"({split['tasks_started']} worker task(s)), POV-Ray alone whole +WT1 "
            f"{alone['wall_s']:.2f} s; CPU {split['bands_povray_cpu_s']:.2f} s in bands "
            f"({per_band}), "
            f"{alone['povray_cpu_s']:.2f} s whole; pixels "
            f"{'identical' if split['pixels']['identical'] else 'DIFFER'}"
        )
    return sample


def animation_once(b: Bench, run: int) -> dict[str, Any]:
    """An animation of --anim-frames frames through the pipeline, and POV-Ray alone rendering
    its frames max_tasks at a time (as many processes, each a run of frames, +WT1)."""
    a = b.args
    width, height = size_arg(a.anim_size)
    name, frames = "bench-anim", a.anim_frames
    animated = f"Initial_Frame=1\nFinal_Frame={frames}\nInitial_Clock=0\nFinal_Clock=1\n"
    zip_path = write_zip(
        b.work / "parallel" / f"{name}.zip",
        f"{name}.ini",
        demo_ini(width, height, f"{name}.pov", animated),
        {f"{name}.pov": (SCENES / "orbit.pov").read_text()},
    )
    piped = pipeline_once(b, [zip_path], f"bench-anim{run}", a.slow, one_png_each=False)
    lew_frames = sorted((piped["out_dir"] / name).glob("*.png"))
    if len(lew_frames) != frames:
        raise Failed(f"lew render wrote {len(lew_frames)} of {frames} frames: {lew_frames}")
    jobs = [e for e in piped["worker_events"] if e.get("event") == "rendered" and "frames" in e]
    logged = sum(int(e.get("uploaded_frames", 0)) for e in jobs)
    if logged != frames:
        raise Failed(
            f"the workers logged {logged} of {frames} frames rendered (see the runner's log, "
            "with BENCH_KEEP=1)"
        )

    # POV-Ray alone: the frames in max_tasks contiguous runs, one process each, all at once.
    per = -(-frames // a.max_tasks)
    runs = [(first, min(first + per - 1, frames)) for first in range(1, frames + 1, per)]
    folders = [unpack(zip_path, b.work / "parallel" / f"alone-anim-{i}") for i in range(len(runs))]

    def render(index: int) -> dict[str, Any]:
        first, last = runs[index]
        args = [f"./{name}.ini", f"Output_File_Name={name}.png", "+WT1", f"+SF{first}"]
        return run_povray(folders[index], [*args, f"+EF{last}"])

    started = time.perf_counter()
    busy = machine_busy_s()
    with ThreadPoolExecutor(len(runs)) as pool:
        alone = list(pool.map(render, range(len(runs))))
    alone_s = time.perf_counter() - started
    busy = machine_busy_s() - busy
    alone_cpu = sum(x["process_cpu_s"] for x in alone)
    alone_frames = {p.name: p for folder in folders for p in folder.glob(f"{name}*.png")}
    identical = sum(
        1
        for frame in lew_frames
        if frame.name in alone_frames
        and compare_pixels(frame, alone_frames[frame.name])["identical"]
    )
    sample = {
        "lew_render_s": piped["lew_render_s"],
        "tasks_started": piped["tasks_started"],
        "jobs": len(jobs),
        "alone_s": alone_s,
        "alone_runs": [f"{x}-{y}" for x, y in runs],
        "alone_povray_cpu_s": sum(x["povray_cpu_s"] for x in alone),
        "alone_cpu_share": alone_cpu / (len(runs) * alone_s),
        # CPUs kept busy on average by everything but POV-Ray, during each; the frames' CPU in
        # lew's workers taken as POV-Ray alone's (the same frames, identical pixels).
        "other_cpus": (piped["machine_busy_s"] - alone_cpu) / piped["lew_render_s"],
        "alone_other_cpus": (busy - alone_cpu) / alone_s,
        "lew_cpu_s": piped["lew_cpu_s"],
        "ratio": piped["lew_render_s"] / alone_s,
        "frames": frames,
        "frames_identical": identical,
    }
    log(
        f"animation run {run}: lew render {piped['lew_render_s']:.2f} s ({len(jobs)} jobs, "
        f"{piped['tasks_started']} worker task(s)), POV-Ray alone {len(runs)} at a time "
        f"{alone_s:.2f} s; frames identical {identical}/{frames}"
    )
    return sample


def parallel(b: Bench) -> dict[str, Any]:
    a = b.args
    step(
        f"parallel: stills split in {a.bands} (and {a.more_bands}) bands and {a.anim_frames} "
        f"frames at {a.anim_size}, worker.max_tasks = {a.max_tasks}, {a.parallel_runs} run(s), "
        f"lew through the {int(a.latency_ms)} ms proxy"
    )
    cases = split_cases(b)
    stills: dict[str, list[dict[str, Any]]] = {case["key"]: [] for case in cases}
    animations = []
    # Each run measures everything once, so a busy spell of this shared machine spreads over
    # all the figures rather than spoiling one.
    for run in range(1, a.parallel_runs + 1):
        for case in cases:
            stills[case["key"]].append(split_once(b, case, run))
        animations.append(animation_once(b, run))

    def median(samples: list[dict[str, Any]], key: Any) -> float:
        return statistics.median(key(x) for x in samples)

    split_figures = []
    for case in cases:
        samples = stills[case["key"]]
        figure: dict[str, Any] = {
            "key": case["key"],
            "scene": case["scene"],
            "alone_s": median(samples, lambda x: x["alone"]["wall_s"]),
            "alone_povray_cpu_s": median(samples, lambda x: x["alone"]["povray_cpu_s"]),
            "alone_process_cpu_s": median(samples, lambda x: x["alone"]["process_cpu_s"]),
            # How much of a CPU POV-Ray alone got (its process CPU over its wall time): well
            # below 1, this shared machine was busy with something else while it rendered
            # (POV-Ray itself idles about 0.7 s per run, 0.2 s per frame: 0.96 for 20 s).
            "alone_cpu_share": [
                round(x["alone"]["process_cpu_s"] / x["alone"]["wall_s"], 2) for x in samples
            ],
            "alone_other_cpus": median(
                samples,
                lambda x: (
                    (x["alone"]["machine_busy_s"] - x["alone"]["process_cpu_s"])
                    / x["alone"]["wall_s"]
                ),
            ),
            "splits": [],
            "samples": samples,
        }
        for bands in case["splits"]:
            runs = [x["splits"][str(bands)] for x in samples]
            mid = sorted(runs, key=lambda x: x["lew_render_s"])[(len(runs) - 1) // 2]
            figure["splits"].append(
                {
                    "bands": bands,
                    "lew_render_s": median(runs, lambda x: x["lew_render_s"]),
                    "wall_ratio": median(runs, lambda x: x["wall_ratio"]),
                    "bands_povray_cpu_s": median(runs, lambda x: x["bands_povray_cpu_s"]),
                    "cpu_ratio": median(runs, lambda x: x["cpu_ratio"]),
                    "other_cpus": median(runs, lambda x: x["other_cpus"]),
                    "lew_cpu_s": median(runs, lambda x: x["lew_cpu_s"]),
                    # The share of a CPU each band's POV-Ray got in its worker.
                    "band_cpu_share": [
                        round(x["povray_cpu_s"] / x["render_s"], 2) for x in mid["per_band"]
                    ],
                    "identical_runs": sum(1 for x in runs if x["pixels"]["identical"]),
                    "per_band": mid["per_band"],
                    "pixels": mid["pixels"],
                }
            )
        split_figures.append(figure)
    return {
        "max_tasks": a.max_tasks,
        "runs": a.parallel_runs,
        "latency_ms": a.latency_ms,
        "target_bands": a.bands,
        "stills": split_figures,
        "animation": {
            "scene": f"bench/scenes/orbit.pov (assets/lew-demo, its camera orbiting), "
            f"{a.anim_frames} frames at {a.anim_size}",
            "lew_render_s": median(animations, lambda x: x["lew_render_s"]),
            "alone_s": median(animations, lambda x: x["alone_s"]),
            "ratio": median(animations, lambda x: x["ratio"]),
            "jobs": animations[0]["jobs"],
            "alone_runs": animations[0]["alone_runs"],
            "frames": a.anim_frames,
            "frames_identical_min": min(x["frames_identical"] for x in animations),
            "alone_cpu_share": [round(x["alone_cpu_share"], 2) for x in animations],
            "other_cpus": median(animations, lambda x: x["other_cpus"]),
            "alone_other_cpus": median(animations, lambda x: x["alone_other_cpus"]),
            "lew_cpu_s": median(animations, lambda x: x["lew_cpu_s"]),
            "samples": animations,
        },
    }


# ---------------------------------------------------------------------------------------------
# The worker image


def worker_image() -> dict[str, Any]:
    """The worker image built as `lew push-image` builds it (the docker CLI, a context of just
    worker/Dockerfile and worker/worker.py), its size as `docker images` shows it, and what
    gzip makes of `docker save` (about what a push sends and Fargate pulls)."""
    import uuid

    docker = shutil.which("docker")
    if docker is None or not os.environ.get("DOCKER_HOST"):
        raise Failed("no container environment (scripts/bench starts one for the image part)")
    context = Path(tempfile.mkdtemp(prefix="lew-bench-image-"))
    tag = f"localhost/lew-bench-worker:{uuid.uuid4().hex[:12]}"
    try:
        shutil.copy(REPO / "worker" / "Dockerfile", context / "Dockerfile")
        shutil.copy(REPO / "worker" / "worker.py", context / "worker.py")
        started = time.perf_counter()
        build = subprocess.run(
            [docker, "build", "-q", "-t", tag, str(context)],
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        build_s = time.perf_counter() - started
        if build.returncode != 0:
            raise Failed(f"docker build failed:\n{build.stderr[-3000:]}")
        inspect = subprocess.run(
            [docker, "image", "inspect", "--format", "{{.Size}}", tag],
            capture_output=True,
            text=True,
            check=True,
        )
        size = int(inspect.stdout.strip())
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip, as a push compresses
        compressed = 0
        with subprocess.Popen([docker, "save", tag], stdout=subprocess.PIPE) as save:
            assert save.stdout is not None
            while chunk := save.stdout.read(1 << 20):
                compressed += len(compressor.compress(chunk))
        compressed += len(compressor.flush())
        if save.returncode != 0:
            raise Failed(f"docker save {tag} failed (exit {save.returncode})")
        return {"size_bytes": size, "gzip_bytes": compressed, "build_s": build_s}
    finally:
        shutil.rmtree(context, ignore_errors=True)
        subprocess.run([docker, "rmi", tag], capture_output=True, check=False, timeout=120)


# ---------------------------------------------------------------------------------------------
# Start-up and size


def startup(b: Bench) -> dict[str, Any]:
    def timed(argv: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - started

    runs = b.args.startup_runs
    timed([b.lew, "--version"])  # page the binary in
    lew = [timed([b.lew, "--version"]) for _ in range(runs)]
    true = shutil.which("true") or "/bin/true"
    baseline = [timed([true]) for _ in range(runs)]
    return {
        "runs": runs,
        "median_ms": statistics.median(lew) * 1000,
        "min_ms": min(lew) * 1000,
        "spawn_baseline_ms": statistics.median(baseline) * 1000,
    }


# ---------------------------------------------------------------------------------------------
# Report


def step(message: str) -> None:
    print(f"\n==> {message}", file=sys.stderr, flush=True)


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return ""
    return "met" if value <= target else "MISSED"


def report(results: dict[str, Any]) -> str:
    lines: list[str] = []
    m = results["machine"]
    lw = results["lew"]
    lines.append(
        f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM, Linux {m['kernel']}, "
        f"load {m['loadavg_at_start'][0]} at start"
    )
    lines.append(
        f"lew:     {lw['version']} ({lw['kind']}); moto {results['moto_version']}; "
        f"medians of {results['runs']} setup/teardown run(s)"
    )
    setup = results.get("setup")
    if setup:
        lat = results["latency_ms"]
        lines.append("")
        through = f"through the {int(lat)} ms proxy"
        plain = "plain moto (a 0 ms proxy)"
        lines.append(f"{'':40} {through:^26}   {plain:^26}")
        group = f"{'median s':>10} {'calls':>6} {'mutating':>8}"
        lines.append(f"{'figure':40} {group}   {group}")
        for key, label in FIGURES:
            cells = []
            for endpoint in ("proxy", "moto"):
                f = setup[endpoint][key]
                cells.append(f"{f['median_s']:10.3f} {f['calls']:6d} {f['mutating']:8d}")
            lines.append(f"{label:40} {cells[0]}   {cells[1]}")
            if key.startswith("reference"):
                cells = [
                    f"{setup[endpoint][key]['reference_startup_s']:10.3f}{'':16}"
                    for endpoint in ("proxy", "moto")
                ]
                lines.append(f"{'  of which boto3 import + clients':40} {cells[0]}   {cells[1]}")
        lines.append("")
        lines.append(f"{'ratio':44} {str(int(lat)) + ' ms':>8} {'0 ms':>8}   target")
        for key, label, detail in [
            ("cold_setup_vs_reference", "lew cold setup / reference setup", ""),
            (
                "noop_setup_vs_cold_setup",
                "lew no-op setup / lew cold setup",
                f", {setup['proxy']['lew_setup_noop']['mutating']} mutating calls (target 0)",
            ),
            ("teardown_vs_reference", "lew teardown / reference teardown", ""),
        ]:
            r = results["ratios"]
            target = TARGETS[key]
            lines.append(
                f"{label:44} {r['proxy'][key]:8.2f} {r['moto'][key]:8.2f}   "
                f"≤ {target}: {verdict(r['proxy'][key], target)}{detail}"
            )
        r = results["ratios"]
        for key, label in [
            ("cold_setup_vs_reference_without_startup", "  (setup, reference minus its start-up)"),
            ("teardown_vs_reference_without_startup", "  (teardown, reference minus start-up)"),
        ]:
            lines.append(f"{label:44} {r['proxy'][key]:8.2f} {r['moto'][key]:8.2f}   informational")
        lines.append("")
        lines.append(f"where the time goes (through the {int(lat)} ms proxy, median run of each):")
        lines.append(
            f"{'':40} {'wall s':>7} {'in calls':>9} {'outside':>8} {'1st call':>9} "
            f"{'rounds':>7} {'max':>4}"
        )
        for key, label in FIGURES:
            p = setup["proxy"][key]["profile"]
            lines.append(
                f"{label:40} {p['wall_s']:7.3f} {p['in_calls_s']:9.3f} "
                f"{p['outside_calls_s']:8.3f} {p.get('before_first_call_s', 0):9.3f} "
                f"{p.get('rounds', 0):7.1f} {p.get('max_in_flight', 0):4d}"
            )
        lines.append(
            "  in calls: time with at least one API call in flight; outside: the rest (start-up,"
        )
        lines.append(
            "  own work, sleeps); 1st call: from process start; rounds: in-calls time / mean call"
        )
        lines.append("  time (the length of the chain of dependent calls); max: calls in flight.")
    pipe = results.get("pipeline")
    if pipe:
        lines.append("")
        plat = int(pipe["latency_ms"])
        lines.append(
            f"pipeline: {pipe['scenes']} scenes at {pipe['size']}, worker.max_tasks = "
            f"{pipe['max_tasks']}, POV-Ray +WT{pipe['povray_threads']}, median of "
            f"{pipe['runs']} run(s); lew's calls through the {plat} ms proxy, and to plain moto "
            "(the runner playing Lambda and Fargate talks to moto directly)"
        )
        lines.append(f"{'':44} {str(plat) + ' ms':>8}   {'moto':>8}")
        lines.append(
            f"{'lew render (whole local pipeline)':44} {pipe['lew_render_s']:8.2f} s "
            f"{pipe['lew_render_moto_s']:8.2f} s"
        )
        lines.append(
            f"{'POV-Ray alone, ' + str(pipe['max_tasks']) + ' at a time':44} "
            f"{pipe['povray_alone_s']:8.2f} s {pipe['povray_alone_s']:8.2f} s"
        )
        bd = pipe["breakdown"]

        def secs(value: float | None) -> str:
            return "?" if value is None else f"{value:.2f} s"

        lines.append(
            "  as the runner saw it (median run through the proxy): upload seen "
            f"{secs(bd['first_upload_seen_s'])}, first task {secs(bd['first_task_started_s'])}, "
            "first render "
            f"{secs(bd['first_render_started_s'])};"
        )
        lines.append(
            f"  {bd['launcher_invocations']} launcher runs took "
            f"{bd['launcher_invocations_s']:.2f} s (in the runner's warm Lambda environment, "
            "on the same cores as POV-Ray)"
        )
        target = TARGETS["pipeline_vs_povray"]
        lines.append(
            f"{'ratio':44} {pipe['ratio']:8.2f}   {pipe['ratio_moto']:8.2f}     ≤ {target} "
            f"({plat} ms): {verdict(pipe['ratio'], target)} (overhead {pipe['overhead_s']:.2f} s;"
            f" on moto {pipe['overhead_moto_s']:.2f} s)"
        )
    par = results.get("parallel")
    if par:
        an = par["animation"]
        lines.append("")
        lines.append(
            f"parallel: worker.max_tasks = {par['max_tasks']}, POV-Ray +WT1 in every worker and "
            f"alone, lew's calls through the {int(par['latency_ms'])} ms proxy, median of "
            f"{par['runs']} run(s)"
        )
        for still in par["stills"]:
            lines.append(
                f"still: {still['scene']}; POV-Ray alone, whole, one CPU: "
                f"{still['alone_s']:.2f} s ({still['alone_povray_cpu_s']:.2f} CPU-seconds by "
                f"its count, {still['alone_process_cpu_s']:.2f} s by the kernel's; the share of "
                f"a CPU it got, run by run: {', '.join(map(str, still['alone_cpu_share']))})"
            )
            for split in still["splits"]:
                target = par["target_bands"] == split["bands"]
                wall_target = TARGETS["split_wall_vs_whole"]
                cpu_target = TARGETS["split_cpu_vs_whole"]
                lines.append(
                    f"  --split {split['bands']}: lew render {split['lew_render_s']:.2f} s, "
                    f"{split['wall_ratio']:.2f} of the whole's wall time"
                    + (
                        f" (≤ {wall_target}: {verdict(split['wall_ratio'], wall_target)})"
                        if target
                        else " (informational)"
                    )
                    + f"; render CPU {split['bands_povray_cpu_s']:.2f} s, "
                    f"{split['cpu_ratio']:.2f} of the whole's (≤ {cpu_target}: "
                    f"{verdict(split['cpu_ratio'], cpu_target)})"
                )
                bands = ", ".join(
                    f"{x['rows']}: {x['povray_cpu_s']:.2f} s ({x['render_s']:.2f} s in the worker)"
                    for x in split["per_band"]
                )
                lines.append(f"    bands' rows and CPU-seconds: {bands}")
                lines.append(
                    f"    each band's POV-Ray got {', '.join(map(str, split['band_cpu_share']))} "
                    f"of a CPU; everything else kept {split['other_cpus']:.2f} CPUs busy during "
                    f"lew render (lew itself {split['lew_cpu_s']:.2f} CPU-seconds), "
                    f"{still['alone_other_cpus']:.2f} during POV-Ray alone"
                )
                px = split["pixels"]
                if px["identical"]:
                    same = f"identical pixel for pixel ({px['rows']} rows, {px['bitdepth']}-bit)"
                else:
                    same = (
                        f"DIFFERENT: {px['rows_differing']} of {px['rows']} rows differ, by up "
                        f"to {px.get('max_difference', '?')}"
                    )
                lines.append(
                    f"    stitched vs whole: {same}; identical in "
                    f"{split['identical_runs']}/{par['runs']} runs"
                )
        lines.append(f"animation: {an['scene']}, {an['jobs']} jobs")
        lines.append(f"{'  lew render (every frame downloaded)':56} {an['lew_render_s']:8.2f} s")
        runs = " and ".join(an["alone_runs"])
        lines.append(f"{'  POV-Ray alone, frames ' + runs + ' at once':56} {an['alone_s']:8.2f} s")
        target = TARGETS["animation_vs_povray"]
        lines.append(
            f"{'  ratio':56} {an['ratio']:8.2f}     ≤ {target}: {verdict(an['ratio'], target)}"
        )
        lines.append(
            f"  frames identical to POV-Ray alone's: {an['frames_identical_min']}/{an['frames']}"
            " (the worst run); the share of a CPU each POV-Ray alone got, run by run: "
            + ", ".join(map(str, an["alone_cpu_share"]))
        )
        lines.append(
            f"  everything but POV-Ray kept {an['other_cpus']:.2f} CPUs busy during lew render "
            f"(the frames' CPU taken as POV-Ray alone's; lew itself {an['lew_cpu_s']:.2f} "
            f"CPU-seconds), {an['alone_other_cpus']:.2f} during POV-Ray alone"
        )
    st = results.get("startup")
    if st:
        lines.append("")
        lines.append(
            f"lew --version: median {st['median_ms']:.1f} ms, min {st['min_ms']:.1f} ms over "
            f"{st['runs']} runs (spawning /bin/true: {st['spawn_baseline_ms']:.1f} ms)"
        )
    lines.append(f"binary size: {lw['size_bytes'] / 1e6:.1f} MB ({lw['kind']})")
    image = results.get("image")
    if image:
        mb = image["size_bytes"] / 1e6
        lines.append(
            f"worker image: {mb:.1f} MB (as `docker images` shows it; built from worker/Dockerfile "
            f"as push-image builds it), ≤ {TARGETS['image_mb']} MB: "
            f"{verdict(mb, TARGETS['image_mb'])}; {image['gzip_bytes'] / 1e6:.1f} MB gzipped "
            "(docker save | gzip: about what a push sends)"
        )
    return "\n".join(line.rstrip() for line in lines)


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moto", required=True, help="moto's URL (resets, pipeline)")
    parser.add_argument("--slow", required=True, help="the counting proxy adding latency")
    parser.add_argument("--slow-log", required=True, help="its --log file")
    parser.add_argument("--fast", required=True, help="the counting proxy without latency")
    parser.add_argument("--fast-log", required=True, help="its --log file")
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--lew", required=True)
    parser.add_argument("--lew-kind", default="release build")
    parser.add_argument("--python", default=sys.executable, help="Python with boto3 (the venv)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--scene-size", default="640x360")
    parser.add_argument("--max-tasks", type=int, default=2)
    parser.add_argument("--pipeline-runs", type=int, default=1)
    parser.add_argument("--worker-cpu", type=int, default=1024)
    parser.add_argument("--startup-runs", type=int, default=20)
    parser.add_argument("--parallel-runs", type=int, default=1)
    parser.add_argument("--split-size", default="2400x1350", help="the split still's size")
    parser.add_argument("--bands", type=int, default=2, help="--split N of the still")
    parser.add_argument("--more-bands", type=int, default=4, help="an informational --split")
    parser.add_argument("--tiles-size", default="1920x1080", help="the even still's size")
    parser.add_argument("--anim-frames", type=int, default=24)
    parser.add_argument("--anim-size", default="640x360", help="the animation's frame size")
    parser.add_argument(
        "--only", default="setup,pipeline,parallel,startup,image", help="parts to run"
    )
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.work is None:
        args.work = tempfile.mkdtemp(prefix="lew-bench-")
    parts = {p.strip() for p in args.only.split(",") if p.strip()}

    # SIGTERM (the wrapper's trap) unwinds like Ctrl-C, so the runner is stopped.
    signal.signal(signal.SIGTERM, _interrupt)

    b = Bench(args)
    version = subprocess.run(
        [args.lew, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    moto_version = subprocess.run(
        [args.python, "-c", "import moto; print(moto.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    results: dict[str, Any] = {
        "machine": machine(),
        "lew": {
            "binary": args.lew,
            "kind": args.lew_kind,
            "version": version,
            "size_bytes": os.path.getsize(args.lew),
        },
        "moto_version": moto_version,
        "runs": args.runs,
        "latency_ms": args.latency_ms,
    }
    m = results["machine"]
    print(
        f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM; {version} "
        f"({args.lew_kind})",
        file=sys.stderr,
    )
    try:
        if "setup" in parts:
            samples = setup_figures(b)
            results["setup"] = {
                endpoint: {key: summarize(s) for key, s in figures.items()}
                for endpoint, figures in samples.items()
            }
            ratios = {}
            for endpoint, f in results["setup"].items():
                ratios[endpoint] = {
                    "cold_setup_vs_reference": f["lew_setup_cold"]["median_s"]
                    / f["reference_setup"]["median_s"],
                    "noop_setup_vs_cold_setup": f["lew_setup_noop"]["median_s"]
                    / f["lew_setup_cold"]["median_s"],
                    "teardown_vs_reference": f["lew_teardown"]["median_s"]
                    / f["reference_teardown"]["median_s"],
                    # Informational: against the reference without Python's start-up (import
                    # boto3, build nine clients), i.e. its API calls and its own work only.
                    "cold_setup_vs_reference_without_startup": f["lew_setup_cold"]["median_s"]
                    / (
                        f["reference_setup"]["median_s"]
                        - f["reference_setup"]["reference_startup_s"]
                    ),
                    "teardown_vs_reference_without_startup": f["lew_teardown"]["median_s"]
                    / (
                        f["reference_teardown"]["median_s"]
                        - f["reference_teardown"]["reference_startup_s"]
                    ),
                }
            results["ratios"] = ratios
            # The call timelines of the last run through the slow proxy, for digging in.
            timelines = {key: s[-1]["timeline"] for key, s in samples["proxy"].items()}
            (b.work / "timelines.json").write_text(json.dumps(timelines, indent=1))
        if "pipeline" in parts:
            results["pipeline"] = pipeline(b)
        if "parallel" in parts:
            results["parallel"] = parallel(b)
        if "startup" in parts:
            step("start-up time")
            results["startup"] = startup(b)
        if "image" in parts:
            step("the worker image (built as lew push-image builds it)")
            results["image"] = worker_image()
    except Failed as error:
        print(f"\nbench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        return 130

    text = report(results)
    print("\n" + text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nfigures written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

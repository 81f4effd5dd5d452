#!/usr/bin/env python3
"""lew under faults and kills, measured (issue 6). Run by scripts/reliability, which starts moto.

    reliability.py --moto URL faults [--runs 20] [--seed 1000] [--rate 0.2]
    reliability.py --moto URL kills  [--points 10]
    reliability.py --moto URL replays [--nth 1]

faults: N runs, each for a fresh app, with lew talking to moto through scripts/proxy/proxy.py
    set to fault a `--rate` share of requests (500, 503, throttling or a connection reset, each
    either before forwarding or after moto acted; seed = --seed + run): `lew setup`, `lew setup`
    again, `lew render` of a tiny scene (the local runner plays Lambda and Fargate against moto
    directly), `lew teardown --yes --delete-data`. After each step, moto is read directly: no
    duplicate resource (each setup leaves exactly what one clean setup does), the scene rendered
    exactly once (one "rendered" line in the worker log group, one PNG), and nothing of the app
    left after teardown.

kills: a full setup's mutating API calls are counted (through the proxy, no faults); for
    --points distinct N spread over 1 .. that count - 1, `lew setup` is SIGKILLed once the proxy
    has let exactly N mutating calls through (and the reads around them; it holds every request
    after the Nth change), then (a) `lew teardown --yes --delete-data` must leave nothing, and
    (b) on a second app killed at the same point, `lew setup` must complete, `lew status` must
    show every resource present, and there must be no duplicates. Counting changes rather than
    calls puts every point where something exists: the first half of a cold setup's calls are
    reads.

replays: for every mutating operation a cycle makes (found from a clean reference cycle), a
    cycle in which only that operation's first call (--nth 2: also its second) is answered by a
    connection reset after moto acted: the retried call already happened, the case idempotency
    must cover.

Every check prints what it tried and what held; the last lines are the figures. Exit status 1
when any run did not converge.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BASE_ENV,
    Proxy,
    Runner,
    bucket_keys,
    clients,
    duplicates,
    inventory,
    lew,
    lew_binary,
    new_app_dir,
    say,
    tiny_scene_zip,
    worker_events,
)

# Before forwarding (moto never sees the call) and after it (moto acted, the client gets an error
# or a reset, and its retry meets work already done).
FAULT_KINDS = (
    "500",
    "503",
    "throttle",
    "reset-before",
    "500-after",
    "503-after",
    "throttle-after",
    "reset-after",
)


def app_name(kind: str, run: int) -> str:
    # 1-20 of [a-z0-9-], unique per invocation so a rerun against the same moto cannot clash.
    return f"{kind}{secrets.token_hex(3)}-{run}"


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str = ""
    faults: list[str] = field(default_factory=list)


def _fault_summary(faulted: list[str]) -> str:
    counts: dict[str, int] = {}
    for f in faulted:
        kind = f.rsplit(": ", 1)[-1]
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


# ---------------------------------------------------------------------------------------------
# One cycle: setup, setup again, render, teardown through the proxy; then moto read directly


@dataclass
class Cycle:
    app: str
    steps: list[Step] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    renders: int = -1
    pngs: int = -1
    left: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rendered_ok: bool = False

    @property
    def ok(self) -> bool:
        steps_ok = all(s.ok for s in self.steps) and len(self.steps) == 4
        return steps_ok and not self.duplicates and self.rendered_ok and not self.left

    def print(self) -> None:
        for s in self.steps:
            say(
                f"    {s.name:<12} {'ok ' if s.ok else 'FAILED'} {s.seconds:5.1f} s, "
                f"{len(s.faults)} faults ({_fault_summary(s.faults)})"
            )
            if s.detail:
                say(f"      {s.detail}")
            if not s.ok:
                say("      faulted calls in this step: " + "; ".join(s.faults))
        held = [
            f"duplicates {'none' if not self.duplicates else len(self.duplicates)}",
            f"renders {self.renders}",
            f"PNGs {self.pngs}",
            f"left after teardown {len(self.left)}",
        ]
        say("    held: " + ", ".join(held))
        for p in self.problems:
            say(f"    PROBLEM: {p}")


def cycle(proxy: Proxy, aws: dict, moto: str, root: Path, app: str) -> Cycle:
    folder = new_app_dir(root, app)
    scene = tiny_scene_zip(folder / "tiny.zip", "tiny")
    result = Cycle(app)

    def step(name: str, *lew_args: str, timeout: float = 600) -> Step:
        offset = proxy.log_size()
        run = lew(folder, proxy.url, *lew_args, timeout=timeout)
        s = Step(name, run.code == 0, run.seconds, faults=proxy.faulted_since(offset))
        if run.code != 0:
            s.detail = f"exit {run.code}:\n      " + run.tail().replace("\n", "\n      ")
        result.steps.append(s)
        return s

    first = step("setup", "setup")
    inv_first = inventory(aws, app)
    first_bare = duplicates(inv_first) if first.ok else []
    dup = [f"after setup: {d}" for d in first_bare]
    if dup:
        first.detail = "faulted calls: " + "; ".join(first.faults)
    second = step("setup again", "setup") if first.ok else None
    if second is not None and second.ok:
        inv_second = inventory(aws, app)
        again = [f"after setup again: {d}" for d in duplicates(inv_second) if d not in first_bare]
        if inv_second.task_definitions_all != inv_first.task_definitions_all:
            again.append(
                "the second setup registered a task definition revision: "
                f"{inv_first.task_definitions_all} -> {inv_second.task_definitions_all}"
            )
        if again:
            second.detail = "faulted calls: " + "; ".join(second.faults)
        dup += again
    result.duplicates = dup
    result.problems += [f"duplicate: {d}" for d in dup]

    if second is not None and second.ok:
        runner = Runner(app, moto)
        out = folder / "out"
        try:
            render = step(
                "render",
                "--output",
                "json",
                "render",
                "--timeout",
                "3m",
                "--out",
                str(out),
                str(scene),
                timeout=400,
            )
            runner.wait_idle()
        finally:
            runner.close()
        events = worker_events(aws, app)
        result.renders = len([e for e in events if e.get("event") == "rendered"])
        result.pngs = len([k for k in bucket_keys(aws, app, "renders/") if k.endswith(".png")])
        have_png = (out / "tiny.png").is_file()
        result.rendered_ok = render.ok and have_png and result.renders == 1 and result.pngs == 1
        if result.renders > 1 or result.pngs > 1:
            launches = len(runner.events("invoked"))
            result.problems.append(
                f"rendered {result.renders} times ({result.pngs} PNG): the launcher ran "
                f"{launches} times; faulted calls of the render step: " + "; ".join(render.faults)
            )
        if not render.ok:
            # What the runner (Lambda and Fargate's stand-in) saw, to tell lew from the emulator.
            counts: dict[str, int] = {}
            for line in runner.lines:
                counts[line.get("event", "?")] = counts.get(line.get("event", "?"), 0) + 1
            errors = [json.dumps(line) for line in runner.lines if line.get("event") == "error"]
            result.problems.append(
                f"render failed; the runner's events: {json.dumps(counts, sort_keys=True)}"
                + "".join(f"\n      {e}" for e in errors[:5])
            )
        if render.ok and not have_png:
            result.problems.append("lew render exited 0 without writing out/tiny.png")
        if result.renders == 0:
            result.problems.append("no 'rendered' line in the worker log group")

    # Teardown runs whatever happened before (with faults), then the leak check.
    step("teardown", "teardown", "--yes", "--delete-data")
    result.left = inventory(aws, app).leftovers()
    if result.left:
        result.problems.append("left after teardown: " + ", ".join(result.left))
    if not result.ok:
        # Whatever the faults left, the next run starts clean.
        proxy.configure(fault_rate=0)
        lew(folder, moto, "teardown", "--yes", "--delete-data")
    return result


# ---------------------------------------------------------------------------------------------
# faults


def faults(args: argparse.Namespace) -> int:
    aws = clients(args.moto)
    root = Path(tempfile.mkdtemp(prefix="lew-rel-faults-"))
    proxy = Proxy(args.moto, log=root / "proxy.log")
    totals: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
    total_requests = 0
    converged = duplicate_runs = leak_runs = double_renders = 0
    failures: list[str] = []
    say(
        f"faults: {args.runs} runs, {args.rate:.0%} of lew's requests faulted "
        f"({', '.join(FAULT_KINDS)}), seeds {args.seed}..{args.seed + args.runs - 1}"
    )
    try:
        for run in range(1, args.runs + 1):
            seed = args.seed + run - 1
            app = app_name("f", run)
            proxy.configure(
                fault_rate=args.rate, faults=list(FAULT_KINDS), fault_match=["*"], seed=seed
            )
            proxy.reset()
            result = cycle(proxy, aws, args.moto, root, app)
            stats = proxy.stats()
            total_requests += stats["requests"]
            for kind, count in stats["faults"].items():
                totals[kind] = totals.get(kind, 0) + count
            # A run through a proxy that faulted nothing showed nothing about faults.
            faulted = sum(stats["faults"].values())
            if faulted == 0:
                result.problems.append("no fault was injected: the run proved nothing")
            converged += result.ok and faulted > 0
            duplicate_runs += bool(result.duplicates)
            leak_runs += bool(result.left)
            double_renders += result.renders > 1 or result.pngs > 1
            say(
                f"run {run:2}/{args.runs} app {app} seed {seed}: {stats['requests']} requests, "
                f"faults {json.dumps(stats['faults'], sort_keys=True)}"
            )
            result.print()
            if not result.ok or faulted == 0:
                failures.append(f"run {run} (app {app}, seed {seed})")
    finally:
        proxy.close()
        subprocess.run(["rm", "-rf", str(root)], check=False)

    injected = sum(totals.values())
    kinds = ", ".join(f"{k}: {totals.get(k, 0)}" for k in FAULT_KINDS)
    say("")
    say(
        f"faults: {converged}/{args.runs} runs converged (setup, setup, render, teardown), "
        f"{duplicate_runs} with duplicates, {leak_runs} with leaks, {double_renders} with double "
        f"renders; {injected} faults injected in {total_requests} requests ({kinds})"
    )
    if failures:
        say("faults: runs that did not converge: " + ", ".join(failures))
    if args.runs < 1:
        say("faults: no run was made")
        return 1
    return 0 if converged == args.runs else 1


# ---------------------------------------------------------------------------------------------
# replays: each mutating call answered by a reset after moto acted


def replay_seed(nth: int, rate: float = 0.5, calls: int = 12) -> int:
    """A proxy seed under which, at `rate`, exactly the `nth` matching call (1-based) of the
    first `calls` is faulted. scripts/proxy/proxy.py draws `random()` from Random(seed) for
    each call matching --fault-match and, when it faults, `choice()` of the kinds; this replays
    those draws (the proxy's log then shows which calls were faulted)."""
    want = [i == nth - 1 for i in range(calls)]
    for seed in range(1_000_000):
        rng = random.Random(seed)  # noqa: S311 (the proxy's reproducible draws)
        got = []
        for _ in range(calls):
            faulted = rng.random() < rate
            if faulted:
                rng.choice(["reset-after"])
            got.append(faulted)
        if got == want:
            return seed
    raise RuntimeError(f"no seed faults only call {nth}")


def replays(args: argparse.Namespace) -> int:
    """For every mutating operation of a cycle, a cycle in which that operation's first call
    (and, with --nth 2, its second) is answered by a connection reset after moto acted: the
    client never sees the answer to a call that happened and retries it, which is the case
    idempotency must cover."""
    aws = clients(args.moto)
    root = Path(tempfile.mkdtemp(prefix="lew-rel-replays-"))
    proxy = Proxy(args.moto, log=root / "proxy.log")
    held = tried = 0
    replayed_total = 0
    failures: list[str] = []
    try:
        proxy.configure(fault_rate=0, fault_match=["*"])
        offset = proxy.log_size()
        reference = cycle(proxy, aws, args.moto, root, app_name("r", 0))
        if not reference.ok:
            say("replays: the reference cycle failed")
            reference.print()
            return 1
        with open(root / "proxy.log", encoding="utf-8") as log:
            log.seek(offset)
            records = [json.loads(line) for line in log if line.strip()]
        calls: dict[str, int] = {}
        for r in records:
            if r["mutating"]:
                calls[r["op"]] = calls.get(r["op"], 0) + 1
        operations = sorted(calls)
        seeds = {nth: replay_seed(nth) for nth in range(1, args.nth + 1)}
        say(
            f"replays: {len(operations)} mutating operations in a cycle (setup, setup, render, "
            f"teardown); for each, call n of that operation (n = 1..{args.nth}) is answered by "
            "a reset after moto acted"
        )
        for op in operations:
            for nth, seed in seeds.items():
                if nth > calls[op]:
                    continue  # the reference cycle makes this call fewer than nth times
                proxy.configure(fault_rate=0.5, faults=["reset-after"], fault_match=[op], seed=seed)
                result = cycle(proxy, aws, args.moto, root, app_name("r", tried + 1))
                tried += 1
                replayed = sum(len(s.faults) for s in result.steps)
                replayed_total += replayed
                # A cycle in which the call was not replayed checked nothing.
                ok = result.ok and replayed > 0
                held += ok
                say(f"{op:<40} call {nth}: {replayed} replayed -> {'ok' if ok else 'FAILED'}")
                if replayed == 0:
                    say("    nothing was replayed: the operation's call never met the fault")
                if not ok:
                    result.print()
                    failures.append(f"{op} (call {nth})")
    finally:
        proxy.close()
        subprocess.run(["rm", "-rf", str(root)], check=False)
    say("")
    say(
        f"replays: {held}/{tried} cycles held with one mutating operation answered by a reset "
        f"after it happened ({replayed_total} replayed calls over {tried} cycles)"
    )
    if failures:
        say("replays: did not hold: " + ", ".join(failures))
    if tried == 0:
        say("replays: no cycle was tried")
        return 1
    return 0 if held == tried else 1


# ---------------------------------------------------------------------------------------------
# kills


def kill_points(mutating: int, count: int) -> list[int]:
    """`count` distinct N spread evenly over 1 .. mutating - 1 (both ends included): after all
    `mutating` changes a setup may finish before it can be stopped."""
    last = mutating - 1
    if count < 1 or last < count:
        return []
    if count == 1:
        return [(last + 1) // 2]
    step = (last - 1) / (count - 1)  # >= 1, so half-up rounding keeps the points distinct
    return sorted({1 + int(k * step + 0.5) for k in range(count)})


@dataclass
class Kill:
    outcome: str  # "killed", or why not
    mutating: int  # mutating calls let through (and applied by moto)
    calls: int  # every call let through


def kill_setup_after(proxy: Proxy, folder: Path, changes: int) -> Kill:
    """Starts `lew setup` through the proxy and SIGKILLs it once the proxy has let `changes`
    mutating requests through and holds the next request. What was let through is read from
    the proxy's log once every request has ended (the held ones are reset, never forwarded)."""
    proxy.configure(fault_rate=0, hold_after=None, hold_after_mutating=None)
    proxy.reset()
    offset = proxy.log_size()
    proxy.configure(hold_after_mutating=changes)
    process = subprocess.Popen(
        [str(lew_binary()), "--endpoint-url", proxy.url, "setup"],
        cwd=folder,
        env=BASE_ENV,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    outcome = "killed"
    while True:
        if proxy.stats()["held"] >= 1:
            # Let anything still on its way to the proxy arrive and be held too.
            time.sleep(0.05)
            process.send_signal(signal.SIGKILL)
            process.wait()
            break
        if process.poll() is not None:
            outcome = f"finished (exit {process.returncode}) before a request was held"
            break
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            outcome = "timed out waiting for the hold"
            break
        time.sleep(0.01)
    # Requests of the dead client can still reach the proxy after the kill (sent, not yet read
    # from its socket); none of them may reach moto. Whatever arrives from now on is reset
    # without forwarding, the held requests are reset too, and holding stops only once the
    # proxy has been quiet for a while.
    proxy.configure(fault_rate=1.0, faults=["reset-before"], fault_match=["*"])
    deadline = time.monotonic() + 60
    quiet_since, seen = time.monotonic(), -1
    while time.monotonic() < deadline:
        proxy.release(forward=False)
        stats = proxy.stats()
        if stats["requests"] != seen or stats["in_flight"] > 0:
            quiet_since, seen = time.monotonic(), stats["requests"]
        elif time.monotonic() - quiet_since > 0.5:
            break
        time.sleep(0.02)
    proxy.configure(hold_after_mutating=None, fault_rate=0)
    # Let through: the requests without a fault (the hold's resets and the stragglers' are
    # logged with theirs); they finished at moto before the proxy went quiet.
    through = [r for r in proxy.records_since(offset) if not r.get("fault")]
    return Kill(outcome, sum(1 for r in through if r["mutating"]), len(through))


def kills(args: argparse.Namespace) -> int:
    aws = clients(args.moto)
    root = Path(tempfile.mkdtemp(prefix="lew-rel-kills-"))
    proxy = Proxy(args.moto, log=root / "proxy.log")
    teardown_clean = 0
    resumed = 0
    problems_total: list[str] = []
    let_through: list[str] = []
    try:
        # How many calls, and how many changes, a full setup makes.
        app = app_name("k", 0)
        folder = new_app_dir(root, app)
        proxy.configure(fault_rate=0, hold_after=None, hold_after_mutating=None)
        proxy.reset()
        full = lew(folder, proxy.url, "setup")
        stats = proxy.stats()
        total, mutating = stats["requests"], stats["mutating"]
        if full.code != 0:
            say(f"kills: the reference setup failed:\n{full.tail()}")
            return 1
        lew(folder, args.moto, "teardown", "--yes", "--delete-data")
        points = kill_points(mutating, args.points)
        if len(points) != args.points:
            say(
                f"kills: a full setup makes {mutating} mutating calls: no {args.points} distinct "
                f"kill points in 1..{mutating - 1} (got {points})"
            )
            return 1
        say(
            f"kills: a full setup makes {total} API calls, {mutating} of them mutating; SIGKILL "
            f"after N mutating calls (every request after the Nth change held) for N in {points}"
        )
        for n in points:
            # (a) killed, then teardown: nothing left.
            app = app_name("ka", n)
            folder = new_app_dir(root, app)
            kill = kill_setup_after(proxy, folder, n)
            half = inventory(aws, app)
            present = {k: v for k, v in half.counts().items() if v}
            down = lew(folder, proxy.url, "teardown", "--yes", "--delete-data")
            left = inventory(aws, app).leftovers()
            ok_a = kill.outcome == "killed" and kill.mutating == n and down.code == 0 and not left
            teardown_clean += ok_a
            let_through.append(f"{kill.mutating}/{kill.calls}")
            say(
                f"kill after {n:2} mutating calls ({kill.outcome}; let through {kill.mutating} "
                f"mutating, {kill.calls} in all); half-built: {json.dumps(present, sort_keys=True)}"
            )
            say(
                f"    then teardown: exit {down.code}, left: {', '.join(left) or 'nothing'}"
                f" -> {'ok' if ok_a else 'FAILED'}"
            )
            if down.code != 0:
                say("      " + down.tail().replace("\n", "\n      "))
            if not ok_a:
                problems_total.append(
                    f"kill after {n} changes ({kill.outcome}, {kill.mutating} let through) then "
                    f"teardown: left {left}, exit {down.code}"
                )
                lew(folder, args.moto, "teardown", "--yes", "--delete-data")

            # (b) killed, then setup again: completes, status all present, no duplicates.
            app = app_name("kb", n)
            folder = new_app_dir(root, app)
            kill = kill_setup_after(proxy, folder, n)
            again = lew(folder, proxy.url, "setup")
            status = lew(folder, proxy.url, "--output", "json", "status")
            not_present = []
            try:
                doc = status.json()
                not_present = [
                    f"{r['resource']} {r['name']}: {r['state']}"
                    for r in doc["resources"]
                    if r["state"] != "present"
                ]
                resources = len(doc["resources"])
            except (ValueError, KeyError):
                not_present = [f"status printed no JSON report (exit {status.code})"]
                resources = 0
            dup = duplicates(inventory(aws, app))
            ok_b = (
                kill.outcome == "killed"
                and kill.mutating == n
                and again.code == 0
                and status.code == 0
                and not not_present
                and not dup
            )
            resumed += ok_b
            say(
                f"    kill after {n} mutating calls again ({kill.outcome}; {kill.mutating} "
                f"mutating, {kill.calls} in all), then setup: exit {again.code}; status: "
                f"{resources - len(not_present)}/{resources} present (exit {status.code}); "
                f"duplicates: {', '.join(dup) or 'none'} -> {'ok' if ok_b else 'FAILED'}"
            )
            for line in not_present:
                say(f"      not present: {line}")
            if again.code != 0:
                say("      " + again.tail().replace("\n", "\n      "))
            if not ok_b:
                problems_total.append(
                    f"kill after {n} changes ({kill.outcome}, {kill.mutating} let through) then "
                    f"setup: exit {again.code}, {not_present}, {dup}"
                )
            down = lew(folder, args.moto, "teardown", "--yes", "--delete-data")
            left = inventory(aws, app).leftovers()
            if left:
                say(f"      (cleanup) left after teardown: {', '.join(left)}")
    finally:
        proxy.close()
        subprocess.run(["rm", "-rf", str(root)], check=False)
    say("")
    say(
        f"kills: setup SIGKILLed after N of its {mutating} mutating calls ({total} calls in all), "
        f"{len(points)} points, N in {points} (mutating/all calls let through: "
        f"{', '.join(let_through)}): teardown left nothing {teardown_clean}/{len(points)}; setup "
        f"from the half-built state completed with every resource present and no duplicates "
        f"{resumed}/{len(points)}"
    )
    for p in problems_total:
        say(f"kills: PROBLEM: {p}")
    return 0 if teardown_clean == resumed == len(points) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moto", required=True, help="moto's URL (scripts/moto_server.py)")
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("faults")
    f.add_argument("--runs", type=int, default=int(os.environ.get("RELIABILITY_RUNS", "20")))
    f.add_argument("--seed", type=int, default=1000)
    f.add_argument("--rate", type=float, default=0.2)
    k = sub.add_parser("kills")
    k.add_argument("--points", type=int, default=10, help="distinct kill points")
    r = sub.add_parser("replays")
    r.add_argument("--nth", type=int, default=1, help="replay calls 1..N of each operation")
    args = parser.parse_args(argv)
    if not lew_binary().is_file():
        print(f"no lew binary at {lew_binary()}: run cargo build", file=sys.stderr)
        return 2
    return {"faults": faults, "kills": kills, "replays": replays}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

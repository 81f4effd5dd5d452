"""The runner's command line: arguments, the checks made before any work, and `main`.

Every action is one JSON line on stdout. SIGTERM/SIGINT close the Lambda environments, stop the
workers (SIGTERM, then SIGKILL after the container's stopTimeout), stop their tasks and exit 0;
a second signal cuts the workers' grace short. SIGUSR1 fires every enabled EventBridge schedule
rule at once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from testkit.processes import others_can_traverse

from .aws import Aws
from .fargate_side import hold_task_states
from .lambda_side import lambda_python_problem
from .output import Output, describe_error
from .pipeline import Pipeline

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORKER = REPO / "worker" / "worker.py"
DEFAULT_LAUNCHER_CODE = REPO / "launcher" / "launcher.py"
# Environment every child gets so nothing of the host's AWS setup leaks in.
ISOLATION_ENV = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "LANG": "C.UTF-8",
}


def parse_env_pairs(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--task-env expects NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Play Lambda (launcher) and Fargate (worker) for a lew stack in moto.",
    )
    parser.add_argument("--app", required=True, help="lew app name (resources lew-<app>-...)")
    parser.add_argument("--region", help="default: AWS_REGION / AWS_DEFAULT_REGION")
    parser.add_argument("--endpoint-url", help="default: AWS_ENDPOINT_URL (required)")
    parser.add_argument("--bucket", help="default: lew-<app>-<account>-<region>")
    parser.add_argument("--cluster", help="default: lew-<app>")
    parser.add_argument("--container", default="worker", help="container to run (worker)")
    parser.add_argument(
        "--poll", type=float, default=0.5, help="seconds between polls of S3 and of ECS (0.5)"
    )
    parser.add_argument("--work-dir", type=Path, help="default: a temporary folder")
    parser.add_argument(
        "--python", default="/usr/bin/python3", help="Python for the worker (the image's)"
    )
    parser.add_argument(
        "--lambda-python",
        default=sys.executable,
        help="Python for the launcher (needs a boto3 that reads AWS_ENDPOINT_URL)",
    )
    parser.add_argument("--worker", type=Path, default=DEFAULT_WORKER, help="worker script")
    parser.add_argument(
        "--launcher-code",
        type=Path,
        default=DEFAULT_LAUNCHER_CODE,
        help="code used when Code.Location cannot be fetched (.py, .zip or folder)",
    )
    parser.add_argument(
        "--require-deployed-code",
        action="store_true",
        help="fail invocations instead of using --launcher-code",
    )
    parser.add_argument(
        "--include-existing", action="store_true", help="notify objects present at start too"
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="notify the objects there now, run the tasks that follow, wait, exit",
    )
    parser.add_argument(
        "--retry-delay",
        type=float,
        default=1.0,
        help="seconds before the first retry of a failed invocation (doubles; Lambda: 60)",
    )
    parser.add_argument(
        "--task-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra container environment, applied after the overrides (e.g. LEW_WAIT_TIME_S=1)",
    )
    parser.add_argument(
        "--schedule-every",
        type=float,
        metavar="SECONDS",
        help="fire EventBridge schedule rules this often instead of at their rate (SIGUSR1 "
        "fires them at once)",
    )
    parser.add_argument(
        "--drop-task-events",
        action="store_true",
        help="deliver no ECS task state change event to EventBridge's rules (a lost event)",
    )
    parser.add_argument("--keep-work", action="store_true", help="keep the task folders")
    parser.add_argument(
        "--no-hold-task-state",
        action="store_true",
        help="leave moto's ecs::task state transitions as they are",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="copy launcher and worker output to stderr"
    )
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Settings:
    """What the command line and the environment say, checked before anything is started."""

    args: argparse.Namespace
    endpoint: str
    region: str
    task_env: dict[str, str]


def check(args: argparse.Namespace, out: Output) -> Settings | None:
    """The settings, or None after a `fatal` line saying what is missing or unusable."""
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not endpoint:
        out("fatal", reason="no endpoint: set AWS_ENDPOINT_URL (this runner is for emulators)")
        return None
    if not region:
        out("fatal", reason="no region: pass --region or set AWS_REGION")
        return None
    task_env = parse_env_pairs(args.task_env)
    problem = lambda_python_problem(args.lambda_python)
    if problem:
        out("fatal", reason=problem)
        return None
    return Settings(args, endpoint, region, task_env)


def stop_on_signals() -> tuple[threading.Event, threading.Event]:
    """(stop: set by SIGTERM/SIGINT, force: set by a second one)."""
    stop = threading.Event()
    force = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            force.set()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop, force


def connect(aws: Aws, out: Output) -> tuple[str, dict[str, str]] | None:
    """(account, credentials for the children), or None after a `fatal` line."""
    try:
        account = aws.sts.get_caller_identity()["Account"]
        credentials = aws.credentials_env()
    except (ClientError, BotoCoreError, RuntimeError) as error:
        out("fatal", reason=f"cannot reach {aws.endpoint_url}: {describe_error(error)}")
        return None
    return account, credentials


def prepare_work_root(work_dir: Path | None, out: Output) -> Path:
    """The folder the tasks' folders go in (a temporary one unless --work-dir), o+x for `nobody`."""
    work_root = Path(tempfile.mkdtemp(prefix="lew-runner-")) if work_dir is None else work_dir
    work_root = work_root.absolute()
    work_root.mkdir(parents=True, exist_ok=True)
    os.chmod(work_root, 0o755)  # noqa: S103 (the worker's render user must traverse it)
    if os.geteuid() == 0 and not others_can_traverse(work_root):
        out(
            "warning",
            reason=f"{work_root} is not reachable by `nobody` (o+x on every parent folder); "
            "the worker will refuse to start",
        )
    return work_root


def start(
    settings: Settings,
    *,
    aws: Aws,
    out: Output,
    account: str,
    credentials: dict[str, str],
    work_root: Path,
    stop: threading.Event,
) -> Pipeline:
    """Says what it runs (`runner_started`), holds moto's tasks RUNNING, wires both sides."""
    args, endpoint, region = settings.args, settings.endpoint, settings.region
    bucket = args.bucket or f"lew-{args.app}-{account}-{region}"
    cluster = args.cluster or f"lew-{args.app}"
    child_env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        **ISOLATION_ENV,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **credentials,
    }
    out(
        "runner_started",
        app=args.app,
        endpoint=endpoint,
        region=region,
        account=account,
        bucket=bucket,
        cluster=cluster,
        work_dir=str(work_root),
        worker=str(args.worker),
        python=args.python,
        lambda_python=args.lambda_python,
        task_env=settings.task_env or None,
        once=args.once or None,
        schedule_every=args.schedule_every,
        drop_task_events=args.drop_task_events or None,
    )
    if not args.no_hold_task_state:
        hold_task_states(aws, out)
    return Pipeline(
        args,
        aws=aws,
        out=out,
        account=account,
        bucket=bucket,
        cluster=cluster,
        work_root=work_root,
        child_env=child_env,
        task_env=settings.task_env,
        stop=stop,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Output(echo=args.verbose)
    settings = check(args, out)
    if settings is None:
        return 2
    stop, force = stop_on_signals()
    aws = Aws(settings.endpoint, settings.region)
    identity = connect(aws, out)
    if identity is None:
        return 1
    account, credentials = identity
    work_root = prepare_work_root(args.work_dir, out)
    pipeline = start(
        settings,
        aws=aws,
        out=out,
        account=account,
        credentials=credentials,
        work_root=work_root,
        stop=stop,
    )
    signal.signal(signal.SIGUSR1, lambda _signum, _frame: pipeline.events.fire_schedules())
    try:
        pipeline.run()
    finally:
        pipeline.close(force)
        if args.work_dir is None and not args.keep_work:
            shutil.rmtree(work_root, ignore_errors=True)
    failures = out.failures
    out("stopped", failures=failures)
    if args.once and not stop.is_set():
        return 1 if failures else 0
    return 0

"""EventBridge's part (a task stops, a schedule fires -> launcher), played as AWS would.

moto stores EventBridge rules and their targets but delivers nothing. Here, when a task the
Fargate side plays stops (StopTask, whatever the reason), ECS's "ECS Task State Change" event
is built from the task as ECS reported it and delivered to the targets of every ENABLED rule of
the default event bus whose event pattern matches it; and every ENABLED rule with a
`rate(...)` schedule fires its "Scheduled Event" at its rate (or every --schedule-every
seconds), and at once on SIGUSR1 (`fire_schedules`). Rules, patterns, targets and states are
read back from moto at every event, so what lew set up is what decides. Only the app's rules
(named `lew-<app>-...`) are played: one moto server may hold many apps, each with a runner of
its own, and each runner must not fire the others' schedules.

A Lambda target is invoked only when the function's resource policy lets
`events.amazonaws.com` invoke it from the rule's ARN (as on AWS, where a missing permission
fails every invocation), asynchronously through the Invoker (lambda_side), which retries and
honours the function's reserved concurrency as Lambda does. A target's constant `Input`
replaces the event, as EventBridge does; other input transformations and other kinds of
target are reported and skipped. `--drop-task-events` drops ECS's events (a lost event, for
the reliability measurements) and says so.

The event pattern grammar covered: nested objects, arrays of values (exact match; an array in
the event matches when any element does), and the filters prefix, suffix, anything-but,
exists, equals-ignore-case and numeric. A pattern using anything else is reported as an error.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from .aws import Aws, error_code
from .lambda_side import invoke_allowed
from .output import Output

if TYPE_CHECKING:
    from .lambda_side import Invoker

# What ECS and EventBridge's scheduler put in `source` and `detail-type`.
TASK_STATE_CHANGE = ("aws.ecs", "ECS Task State Change")
SCHEDULED_EVENT = ("aws.events", "Scheduled Event")
# Seconds of each schedule unit.
UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")


class PatternError(ValueError):
    """An event pattern this runner cannot evaluate."""


_MISSING = object()
FILTERS = ("prefix", "suffix", "anything-but", "exists", "equals-ignore-case", "numeric")


def pattern_matches(pattern: dict[str, Any], event: Any) -> bool:
    """Whether `event` matches an EventBridge event pattern (see the module docstring)."""
    if not isinstance(pattern, dict):
        raise PatternError("an event pattern is a JSON object")
    for key, want in pattern.items():
        have = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(want, dict):
            # An array of objects in the event matches when one of them does.
            objects = have if isinstance(have, list) else [have]
            if not any(isinstance(o, dict) and pattern_matches(want, o) for o in objects):
                return False
        elif isinstance(want, list):
            if not _any_matches(want, have):
                return False
        else:
            raise PatternError(f"the value of {key!r} is neither an object nor an array")
    return True


def _any_matches(options: list[Any], have: Any) -> bool:
    values = have if isinstance(have, list) else [have]
    for option in options:
        if isinstance(option, dict):
            if _filter_matches(option, have, values):
                return True
        elif have is not _MISSING and any(_same(option, v) for v in values):
            return True
    return False


def _same(option: Any, value: Any) -> bool:
    # JSON's true is not the number 1 (Python's True == 1).
    if _is_number(option) and _is_number(value):
        return option == value
    return type(option) is type(value) and option == value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _filter_matches(flt: dict[str, Any], have: Any, values: list[Any]) -> bool:
    if len(flt) != 1:
        raise PatternError(f"a filter has one operator, not {sorted(flt)}")
    ((op, arg),) = flt.items()
    if op not in FILTERS:
        raise PatternError(f"the filter {op!r} is not one this runner evaluates")
    if op == "exists":
        return (have is not _MISSING) == bool(arg)
    if have is _MISSING:
        return False  # every other filter needs the field
    strings = [v for v in values if isinstance(v, str)]
    if op in ("prefix", "suffix"):
        fold = isinstance(arg, dict) and set(arg) == {"equals-ignore-case"}
        part = str(arg["equals-ignore-case"] if fold else arg)
        if fold:
            part, strings = part.lower(), [v.lower() for v in strings]
        ends = str.startswith if op == "prefix" else str.endswith
        return any(ends(v, part) for v in strings)
    if op == "equals-ignore-case":
        return any(v.lower() == str(arg).lower() for v in strings)
    if op == "anything-but":
        if isinstance(arg, dict):
            return not _filter_matches(arg, have, values)
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_same(e, v) for e in excluded for v in values)
    return any(_numeric(arg, v) for v in values if _is_number(v))


def _numeric(conditions: list[Any], value: float) -> bool:
    checks = {
        "<": lambda a: value < a,
        "<=": lambda a: value <= a,
        "=": lambda a: value == a,
        ">": lambda a: value > a,
        ">=": lambda a: value >= a,
    }
    if len(conditions) % 2:
        raise PatternError(f"numeric filter {conditions!r} is not operator/value pairs")
    pairs = zip(conditions[::2], conditions[1::2], strict=True)
    return all(checks[op](arg) for op, arg in pairs)


def rate_seconds(expression: str) -> float | None:
    """The period of a `rate(N unit)` expression in seconds (None for cron and anything else)."""
    match = _RATE.fullmatch(expression)
    return int(match.group(1)) * UNITS[match.group(2)] if match else None


def iso(value: Any) -> Any:
    """Timestamps as EventBridge writes them in an event's detail (ISO 8601, UTC)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: iso(v) for k, v in value.items()}
    if isinstance(value, list):
        return [iso(v) for v in value]
    return value


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def task_state_change(
    task: dict[str, Any],
    *,
    account: str,
    region: str,
    container: str,
    exit_code: int | None,
    stop_code: str,
) -> dict[str, Any]:
    """ECS's event for a task that stopped, from the task as StopTask/DescribeTasks returned
    it (AWS's "Amazon ECS task state change events"). moto keeps neither a container's exit
    code nor a stop code: the Fargate side says what they were."""
    detail = iso(
        {
            k: v
            for k, v in task.items()
            if k not in ("ResponseMetadata", "attachments", "tags", "inferenceAccelerators")
        }
    )
    detail["lastStatus"] = "STOPPED"
    detail["desiredStatus"] = "STOPPED"
    detail["stopCode"] = stop_code
    detail.setdefault("stoppedAt", now_iso())
    containers = []
    for c in detail.get("containers") or []:
        c = {**c, "lastStatus": "STOPPED"}
        c.pop("exitCode", None)
        if c.get("name") == container and exit_code is not None:
            c["exitCode"] = exit_code
        containers.append(c)
    detail["containers"] = containers
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": TASK_STATE_CHANGE[1],
        "source": TASK_STATE_CHANGE[0],
        "account": account,
        "time": now_iso(),
        "region": region,
        "resources": [task.get("taskArn")],
        "detail": detail,
    }


def scheduled_event(rule_arn: str, *, account: str, region: str) -> dict[str, Any]:
    """EventBridge's event for a schedule rule firing."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": SCHEDULED_EVENT[1],
        "source": SCHEDULED_EVENT[0],
        "account": account,
        "time": now_iso(),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class EventBus:
    """The default event bus: delivers ECS's task events and fires schedules, to Lambda targets."""

    def __init__(
        self,
        *,
        aws: Aws,
        out: Output,
        invoker: Invoker,
        account: str,
        rule_prefix: str,
        schedule_every: float | None,
        drop_task_events: bool,
    ) -> None:
        self._aws = aws
        self._rule_prefix = rule_prefix
        self._events = aws.client("events")
        self._out = out
        self._invoker = invoker
        self._account = account
        self._schedule_every = schedule_every
        self._drop_task_events = drop_task_events
        self._closing = threading.Event()
        self._fire_now = threading.Event()
        self._last_fired: dict[str, float] = {}
        self._unplayable: set[str] = set()  # schedules reported as not played here
        self._lock = threading.Lock()  # one delivery at a time: rules are read for each
        self._thread = threading.Thread(target=self._schedule_loop, name="schedules", daemon=True)

    # -- the rules, read back from moto

    def _rules(self) -> Iterator[dict[str, Any]]:
        pages = self._events.get_paginator("list_rules").paginate(NamePrefix=self._rule_prefix)
        for page in pages:
            yield from page.get("Rules") or []

    def _targets(self, rule: str) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = []
        for page in self._events.get_paginator("list_targets_by_rule").paginate(Rule=rule):
            targets.extend(page.get("Targets") or [])
        return targets

    # -- ECS's events

    def task_stopped(
        self, task: dict[str, Any], *, container: str, exit_code: int | None, stop_code: str
    ) -> None:
        """Delivers ECS's event for a task that stopped (the Fargate side calls this)."""
        if self._closing.is_set():
            return
        event = task_state_change(
            task,
            account=self._account,
            region=self._aws.region,
            container=container,
            exit_code=exit_code,
            stop_code=stop_code,
        )
        if self._drop_task_events:
            self._out(
                "event_dropped",
                source="aws.ecs",
                task=task.get("taskArn"),
                reason="--drop-task-events",
            )
            return
        self._deliver(event, what=f"task {str(task.get('taskArn', '')).rsplit('/', 1)[-1]}")

    def _deliver(self, event: dict[str, Any], what: str) -> None:
        with self._lock:
            try:
                rules = [r for r in self._rules() if r.get("EventPattern")]
            except (ClientError, BotoCoreError) as error:
                self._out.error("events", error, event=event["detail-type"])
                return
            matched = []
            for rule in rules:
                if rule.get("State") != "ENABLED":
                    continue
                try:
                    if not pattern_matches(json.loads(rule["EventPattern"]), event):
                        continue
                except (PatternError, ValueError) as error:
                    self._out.error("events", f"rule {rule['Name']}: {error}", rule=rule["Name"])
                    continue
                matched.append(rule["Name"])
                self._to_targets(rule, event)
            self._out(
                "event",
                source=event["source"],
                detail_type=event["detail-type"],
                about=what,
                rules=matched,
            )

    # -- schedules

    def start(self) -> None:
        self._thread.start()

    def fire_schedules(self) -> None:
        """Fires every enabled schedule rule now (SIGUSR1)."""
        self._fire_now.set()

    def _schedule_loop(self) -> None:
        pause = 0.0
        while not self._closing.is_set():
            # Rules are read again at least every second (a rule added, changed, disabled).
            now = self._fire_now.wait(min(1.0, pause))
            self._fire_now.clear()
            if self._closing.is_set():
                return
            try:
                pause = self._fire_due(everything=now)
            except Exception as error:  # a bug here must not silently end the schedules
                self._out.error("schedules", error)
                pause = 1.0

    def _fire_due(self, everything: bool) -> float:
        """Fires what is due (everything, when asked); returns the seconds to the next due."""
        try:
            rules = [r for r in self._rules() if r.get("ScheduleExpression")]
        except (ClientError, BotoCoreError) as error:
            self._out.error("schedules", error)
            return 1.0
        clock = time.monotonic()
        next_due = 1.0
        for rule in rules:
            arn = rule["Arn"]
            # A rate expression starts when the rule is created: here, when it is first seen.
            first = self._last_fired.setdefault(arn, clock)
            if rule.get("State") != "ENABLED":
                self._last_fired[arn] = clock
                if everything:
                    self._out("schedule_skipped", rule=rule["Name"], state=rule.get("State"))
                continue
            period = self._schedule_every or rate_seconds(rule["ScheduleExpression"])
            if period is None:
                if arn not in self._unplayable:
                    self._unplayable.add(arn)
                    self._out.error(
                        "schedules",
                        f"rule {rule['Name']}: {rule['ScheduleExpression']} is not a rate "
                        "expression (only those fire here)",
                    )
                continue
            if everything or clock - first >= period:
                # On the rate's own beat (not drifting by how late this pass came), unless asked.
                self._last_fired[arn] = clock if everything else max(first + period, clock - 1)
                next_due = min(next_due, self._last_fired[arn] + period - clock)
                event = scheduled_event(arn, account=self._account, region=self._aws.region)
                with self._lock:
                    self._out(
                        "schedule_fired",
                        rule=rule["Name"],
                        period_s=period,
                        asked=everything or None,
                    )
                    self._to_targets(rule, event)
            else:
                next_due = min(next_due, first + period - clock)
        return max(0.01, next_due)

    # -- targets

    def _to_targets(self, rule: dict[str, Any], event: dict[str, Any]) -> None:
        name = rule["Name"]
        try:
            targets = self._targets(name)
        except (ClientError, BotoCoreError) as error:
            self._out.error("events", error, rule=name)
            return
        for target in targets:
            arn = str(target.get("Arn", ""))
            if ":lambda:" not in arn or ":function:" not in arn:
                self._out(
                    "event_target_skipped",
                    rule=name,
                    target=target.get("Id"),
                    arn=arn,
                    reason="only Lambda targets are played here",
                )
                continue
            if target.get("InputPath") or target.get("InputTransformer"):
                self._out.error(
                    "events",
                    f"target {target.get('Id')} of rule {name} transforms its input, which "
                    "this runner does not play",
                    rule=name,
                )
                continue
            allowed, why = self._may_invoke(arn, rule["Arn"])
            if not allowed:
                self._out.error("events", f"EventBridge cannot invoke {arn}: {why}", rule=name)
                continue
            payload = json.loads(target["Input"]) if target.get("Input") else event
            self._invoker.submit(arn, payload, f"events:{name}")

    def _may_invoke(self, function_arn: str, rule_arn: str) -> tuple[bool, str]:
        try:
            policy = self._aws.lambda_.get_policy(FunctionName=function_arn).get("Policy")
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                return False, f"cannot read its policy ({error_code(error)})"
            policy = None
        return invoke_allowed(
            policy,
            "events.amazonaws.com",
            {"aws:sourcearn": rule_arn, "aws:sourceaccount": self._account},
        )

    def close(self) -> None:
        """No more deliveries (the runner is stopping); ends the schedule thread."""
        self._closing.set()
        self._fire_now.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=30)

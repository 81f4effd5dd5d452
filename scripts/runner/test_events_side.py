"""EventBridge's part of the runner without AWS: event patterns, rates, and the events it builds.
(The deliveries themselves are tested end to end in test_runner.py.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from runner.events_side import (
    PatternError,
    pattern_matches,
    rate_seconds,
    scheduled_event,
    task_state_change,
)

CLUSTER = "arn:aws:ecs:eu-west-1:123456789012:cluster/lew-povray"
# lew's rule (src/resources/events.rs), as EventBridge stores it.
LEW_PATTERN = {
    "source": ["aws.ecs"],
    "detail-type": ["ECS Task State Change"],
    "detail": {"clusterArn": [CLUSTER], "lastStatus": ["STOPPED"]},
}


def stopped_task(**changes: Any) -> dict[str, Any]:
    """A task as moto's StopTask returns it."""
    task = {
        "taskArn": "arn:aws:ecs:eu-west-1:123456789012:task/lew-povray/abc",
        "clusterArn": CLUSTER,
        "taskDefinitionArn": CLUSTER.replace("cluster/lew-povray", "task-definition/worker:3"),
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "startedBy": "lew-launcher",
        "stoppedReason": "Essential container in task exited",
        "createdAt": datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        "containers": [{"name": "worker", "lastStatus": "RUNNING", "exitCode": 0}],
        "attachments": [{"type": "ElasticNetworkInterface"}],
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }
    task.update(changes)
    return task


def event(**changes: Any) -> dict[str, Any]:
    return task_state_change(
        stopped_task(**changes),
        account="123456789012",
        region="eu-west-1",
        container="worker",
        exit_code=137,
        stop_code="EssentialContainerExited",
    )


def test_the_event_ecs_sends_for_a_stopped_task() -> None:
    e = event()
    assert (e["source"], e["detail-type"], e["account"], e["region"]) == (
        "aws.ecs",
        "ECS Task State Change",
        "123456789012",
        "eu-west-1",
    )
    assert e["resources"] == [stopped_task()["taskArn"]]
    detail = e["detail"]
    assert (detail["lastStatus"], detail["desiredStatus"], detail["stopCode"]) == (
        "STOPPED",
        "STOPPED",
        "EssentialContainerExited",
    )
    assert detail["containers"] == [{"name": "worker", "lastStatus": "STOPPED", "exitCode": 137}]
    assert detail["createdAt"] == "2026-01-01T12:00:00.000Z"
    assert "ResponseMetadata" not in detail and "attachments" not in detail


def test_lews_pattern_matches_its_clusters_stopped_tasks_only() -> None:
    assert pattern_matches(LEW_PATTERN, event())
    assert not pattern_matches(LEW_PATTERN, event(clusterArn=CLUSTER + "-other"))
    running = event()
    running["detail"]["lastStatus"] = "RUNNING"
    assert not pattern_matches(LEW_PATTERN, running)
    schedule = scheduled_event("arn:aws:events:eu-west-1:1:rule/r", account="1", region="r")
    assert not pattern_matches(LEW_PATTERN, schedule)
    assert pattern_matches({"source": ["aws.events"]}, schedule)


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ({"detail": {"startedBy": [{"prefix": "lew-"}]}}, True),
        ({"detail": {"startedBy": [{"prefix": "ecs-svc"}]}}, False),
        ({"detail": {"stoppedReason": [{"suffix": "exited"}]}}, True),
        ({"detail": {"startedBy": [{"equals-ignore-case": "LEW-LAUNCHER"}]}}, True),
        ({"detail": {"startedBy": [{"anything-but": ["lew-launcher"]}]}}, False),
        ({"detail": {"startedBy": [{"anything-but": {"prefix": "ecs"}}]}}, True),
        ({"detail": {"group": [{"exists": False}]}}, True),
        ({"detail": {"group": [{"exists": True}]}}, False),
        ({"detail": {"containers": {"exitCode": [{"numeric": [">", 128]}]}}}, True),
        ({"detail": {"containers": {"exitCode": [{"numeric": ["<", 128]}]}}}, False),
        ({"detail": {"containers": {"name": ["worker", "other"]}}}, True),
        ({"detail": {"stopCode": ["TaskFailedToStart", "EssentialContainerExited"]}}, True),
        ({"detail": {"missing": ["x"]}}, False),
    ],
)
def test_pattern_filters(pattern: dict[str, Any], matches: bool) -> None:
    assert pattern_matches(pattern, event()) is matches


def test_patterns_this_runner_cannot_evaluate_are_refused() -> None:
    with pytest.raises(PatternError):
        pattern_matches({"detail": {"x": [{"wildcard": "*"}]}}, event())
    with pytest.raises(PatternError):
        pattern_matches({"source": "aws.ecs"}, event())


def test_true_is_not_one() -> None:
    assert not pattern_matches({"a": [1]}, {"a": True})
    assert pattern_matches({"a": [1]}, {"a": 1.0})


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
        ("cron(0 12 * * ? *)", None),
    ],
)
def test_rates(expression: str, seconds: int | None) -> None:
    assert rate_seconds(expression) == seconds

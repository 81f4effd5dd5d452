"""The emulator refuses, as AWS does, an EventBridge rate expression whose unit does not agree
with its value and an S3 lifecycle configuration with two rules of one ID
(scripts/moto_server.py; moto 5.2.5 accepts both). Run against the server conftest.py starts
(or the one AWS_ENDPOINT_URL names: scripts/test starts it through scripts/moto_server.py).
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@pytest.mark.parametrize("expression", ["rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)"])
def test_a_rate_whose_unit_does_not_agree_with_its_value_is_refused(
    moto_endpoint: str, unique: str, expression: str
) -> None:
    events = boto3.client("events")
    with pytest.raises(ClientError) as refused:
        events.put_rule(Name=f"r-{unique}", ScheduleExpression=expression)
    assert _code(refused.value) == "ValidationException"
    assert "ScheduleExpression is not valid" in str(refused.value)
    names = [r["Name"] for r in events.list_rules(NamePrefix=f"r-{unique}")["Rules"]]
    assert names == []


@pytest.mark.parametrize(
    "expression", ["rate(1 minute)", "rate(5 minutes)", "rate(1 day)", "cron(0 12 * * ? *)"]
)
def test_valid_schedules_are_stored(moto_endpoint: str, unique: str, expression: str) -> None:
    events = boto3.client("events")
    events.put_rule(Name=f"r-{unique}", ScheduleExpression=expression, State="DISABLED")
    rule = events.describe_rule(Name=f"r-{unique}")
    assert (rule["ScheduleExpression"], rule["State"]) == (expression, "DISABLED")


def _rule(rule_id: str, prefix: str) -> dict[str, Any]:
    return {
        "ID": rule_id,
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }


def test_two_lifecycle_rules_with_one_id_are_refused(moto_endpoint: str, unique: str) -> None:
    s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
    bucket = f"lifecycle-{unique}"
    s3.create_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as refused:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={"Rules": [_rule("same", "a/"), _rule("same", "b/")]},
        )
    assert _code(refused.value) == "InvalidArgument"
    assert "Rule ID must be unique" in str(refused.value)
    # Two ids are fine, and stored.
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={"Rules": [_rule("one", "a/"), _rule("two", "b/")]},
    )
    stored = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert sorted(r["ID"] for r in stored) == ["one", "two"]

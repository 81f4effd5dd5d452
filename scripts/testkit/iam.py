"""IAM policy conditions, evaluated one way for every stand-in for AWS: the moto wrapper's bucket
policies and its check of S3 notification destinations (scripts/moto_server.py), and the local
runner's check that a function's resource policy lets S3 invoke it (scripts/runner/s3_side.py).

The rules are those of the IAM User Guide, "IAM JSON policy elements: Condition operators", for
the operators the stand-ins meet: String(Not)Equals, StringLike, ArnEquals, ArnLike, Bool, Null
and the ...IfExists forms. A condition with an operator not known here does not hold, so a
statement using one does not apply: an evaluator that guessed would let the stand-ins accept
what AWS may refuse. Condition keys are case-insensitive: the request context's keys are given
in lower case. Several values for one key are alternatives (any one matches; for a negated
operator, none may).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Mapping
from typing import Any

Matcher = Callable[[str, list[str]], bool]


def _like(actual: str, values: list[str]) -> bool:
    # IAM wildcards: `*` any run of characters, `?` one character; case-sensitive.
    return any(fnmatch.fnmatchcase(actual, v) for v in values)


MATCHERS: dict[str, Matcher] = {
    "StringEquals": lambda actual, values: actual in values,
    "StringNotEquals": lambda actual, values: actual not in values,
    "StringLike": _like,
    "ArnEquals": lambda actual, values: actual in values,
    "ArnLike": _like,
    "Bool": lambda actual, values: actual.lower() in [v.lower() for v in values],
}
# "If the policy condition requires that the key is not matched, such as StringNotLike or
# ArnNotLike, and the right key is not present, the condition is true." (the page above)
NEGATED = frozenset({"StringNotEquals"})


def as_list(value: Any) -> list[Any]:
    """A policy element that may be one value or a list of them, as a list."""
    return value if isinstance(value, list) else [value]


def condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, str]) -> bool:
    """Whether `operator` holds for condition key `key` with the policy's `expected` value(s)."""
    actual = context.get(key.lower())
    if operator == "Null":
        # The page's "Condition operator to check existence of condition keys": `true` asks for
        # the key to be absent from the request context, `false` for it to be there.
        return (actual is None) in {str(v).lower() == "true" for v in as_list(expected)}
    base = operator.removesuffix("IfExists")
    if actual is None:
        # "If the key that you specify in a policy condition is not present in the request
        # context, the values do not match and the condition is false." (the page above), but for
        # a negated operator (see NEGATED) and for ...IfExists, which the page's "...IfExists
        # condition operators" makes true when the key is absent.
        return base != operator or base in NEGATED
    matcher = MATCHERS.get(base)
    return matcher is not None and matcher(actual, [str(v) for v in as_list(expected)])


def conditions_hold(
    block: Mapping[str, Mapping[str, Any]] | None, context: Mapping[str, str]
) -> bool:
    """Whether a statement's Condition block holds: every operator's every key (an AND)."""
    return all(
        condition_holds(operator, key, expected, context)
        for operator, pairs in (block or {}).items()
        for key, expected in pairs.items()
    )


def _matches(patterns: Any, value: str) -> bool:
    # IAM wildcards in Action and Resource: `*` any run of characters, `?` one character.
    return any(fnmatch.fnmatchcase(value, str(p)) for p in as_list(patterns))


def service_allowed(
    policy: str | Mapping[str, Any] | None,
    service: str,
    action: str,
    resource: str,
    context: Mapping[str, str],
) -> str | None:
    """Whether a resource policy lets the AWS service principal `service` (say
    `s3.amazonaws.com`) call `action` on `resource` in the request context: the Sid of the
    statement that allows it (`?` for one without a Sid), or None when none does or a Deny
    applies. Statements without Resource apply to the resource the policy is attached to."""
    if not policy:
        return None
    document = json.loads(policy) if isinstance(policy, str) else policy
    allowed = None
    for statement in as_list(document.get("Statement", [])):
        principal = statement.get("Principal")
        services = as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
        if principal not in ("*", {"AWS": "*"}) and service not in services:
            continue
        if not _matches(statement.get("Action", []), action):
            continue
        if "Resource" in statement and not _matches(statement["Resource"], resource):
            continue
        if not conditions_hold(statement.get("Condition"), context):
            continue
        if statement.get("Effect") == "Deny":
            return None
        if statement.get("Effect") == "Allow" and allowed is None:
            allowed = str(statement.get("Sid") or "?")
    return allowed


def queue_policy_for_s3(queue_arn: str, bucket: str) -> str:
    """A queue policy that lets S3 send the bucket's event notifications to the queue, which S3
    checks before it stores a notification configuration naming the queue."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "S3Notifications",
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
                }
            ],
        }
    )

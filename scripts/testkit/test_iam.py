"""The shared IAM-condition evaluator, operator by operator (no AWS, no moto: pure functions).

The request contexts are those the stand-ins build: the moto wrapper's (a request over TLS) and
the local runner's (S3 invoking a function for a bucket of an account).
"""

from __future__ import annotations

import json

import pytest

from testkit.iam import condition_holds, conditions_hold, service_allowed

TLS = {"aws:securetransport": "true"}
S3 = {
    "aws:sourcearn": "arn:aws:s3:::lew-app-123456789012-eu-west-1",
    "aws:sourceaccount": "123456789012",
}
BUCKET_ARN = "arn:aws:s3:::lew-app-123456789012-eu-west-1"


@pytest.mark.parametrize(
    ("operator", "key", "expected", "context", "holds"),
    [
        # StringEquals: exact and case-sensitive; a list is alternatives.
        ("StringEquals", "aws:SourceAccount", "123456789012", S3, True),
        ("StringEquals", "aws:SourceAccount", "210987654321", S3, False),
        ("StringEquals", "aws:SourceAccount", ["1", "123456789012"], S3, True),
        ("StringEquals", "aws:SecureTransport", "TRUE", TLS, False),
        # StringNotEquals: none of the values.
        ("StringNotEquals", "aws:SourceAccount", "210987654321", S3, True),
        ("StringNotEquals", "aws:SourceAccount", ["1", "123456789012"], S3, False),
        # StringLike: `*` and `?` wildcards, case-sensitive.
        ("StringLike", "aws:SourceArn", "arn:aws:s3:::lew-app-*", S3, True),
        ("StringLike", "aws:SourceArn", "arn:aws:s3:::LEW-APP-*", S3, False),
        ("StringLike", "aws:SourceAccount", "12345678901?", S3, True),
        # ArnEquals: the whole ARN.
        ("ArnEquals", "aws:SourceArn", BUCKET_ARN, S3, True),
        ("ArnEquals", "aws:SourceArn", "arn:aws:s3:::other", S3, False),
        # ArnLike: with wildcards (lew's Lambda permission uses it for the bucket).
        ("ArnLike", "aws:SourceArn", BUCKET_ARN, S3, True),
        ("ArnLike", "aws:SourceArn", "arn:aws:s3:::lew-*", S3, True),
        ("ArnLike", "aws:SourceArn", "arn:aws:s3:::other-*", S3, False),
        # Bool: "true"/"false" in any case (lew's bucket policy denies aws:SecureTransport false).
        ("Bool", "aws:SecureTransport", "false", TLS, False),
        ("Bool", "aws:SecureTransport", "true", TLS, True),
        ("Bool", "aws:SecureTransport", "True", TLS, True),
        ("Bool", "aws:SecureTransport", True, TLS, True),
        # Null: true asks for the key to be absent, false for it to be there.
        ("Null", "aws:SecureTransport", "false", TLS, True),
        ("Null", "aws:SecureTransport", "true", TLS, False),
        ("Null", "aws:PrincipalOrgID", "true", TLS, True),
        ("Null", "aws:PrincipalOrgID", "false", TLS, False),
        ("Null", "aws:PrincipalOrgID", True, TLS, True),
        # A key the request does not carry: false, ...
        ("StringEquals", "aws:PrincipalOrgID", "o-1", TLS, False),
        ("StringLike", "aws:PrincipalOrgID", "*", TLS, False),
        ("ArnLike", "aws:SourceArn", "*", TLS, False),
        ("Bool", "aws:ViaAWSService", "false", TLS, False),
        # ... but true for a negated operator ...
        ("StringNotEquals", "aws:PrincipalOrgID", "o-1", TLS, True),
        # ... and for ...IfExists, which otherwise is its operator.
        ("StringEqualsIfExists", "aws:PrincipalOrgID", "o-1", TLS, True),
        ("ArnLikeIfExists", "aws:SourceArn", "arn:aws:s3:::other", TLS, True),
        ("BoolIfExists", "aws:SecureTransport", "false", TLS, False),
        ("StringEqualsIfExists", "aws:SourceAccount", "123456789012", S3, True),
        ("StringEqualsIfExists", "aws:SourceAccount", "210987654321", S3, False),
        # Condition keys are case-insensitive (the context's are lower case).
        ("StringEquals", "AWS:SOURCEACCOUNT", "123456789012", S3, True),
        ("Bool", "aws:securetransport", "true", TLS, True),
        # An operator not known here never holds, so its statement does not apply.
        ("NumericLessThan", "aws:SecureTransport", "1", TLS, False),
        ("StringEqualsIgnoreCase", "aws:SourceAccount", "123456789012", S3, False),
    ],
)
def test_condition_holds(
    operator: str, key: str, expected: object, context: dict[str, str], holds: bool
) -> None:
    assert condition_holds(operator, key, expected, context) is holds


def test_a_condition_block_holds_when_every_condition_does() -> None:
    # lew's Lambda permission for S3: both conditions must hold.
    block = {
        "StringEquals": {"AWS:SourceAccount": "123456789012"},
        "ArnLike": {"AWS:SourceArn": BUCKET_ARN},
    }
    assert conditions_hold(block, S3)
    assert not conditions_hold({**block, "StringEquals": {"AWS:SourceAccount": "1"}}, S3)
    assert not conditions_hold({"ArnLike": {"AWS:SourceArn": BUCKET_ARN, "x:y": "z"}}, S3)


def test_no_condition_block_holds() -> None:
    assert conditions_hold(None, TLS)
    assert conditions_hold({}, TLS)


def test_a_resource_policy_allows_a_service_with_its_conditions() -> None:
    queue = "arn:aws:sqs:eu-west-1:123456789012:events"
    allow = {
        "Sid": "S3Sends",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue,
        "Condition": {"ArnLike": {"aws:SourceArn": BUCKET_ARN}},
    }
    policy = {"Statement": [allow]}
    assert service_allowed(policy, "s3.amazonaws.com", "sqs:SendMessage", queue, S3) == "S3Sends"
    assert service_allowed(json.dumps(policy), "s3.amazonaws.com", "sqs:SendMessage", queue, S3)
    # Another service, action, resource or source is not allowed.
    assert service_allowed(policy, "sns.amazonaws.com", "sqs:SendMessage", queue, S3) is None
    assert service_allowed(policy, "s3.amazonaws.com", "sqs:DeleteMessage", queue, S3) is None
    assert service_allowed(policy, "s3.amazonaws.com", "sqs:SendMessage", queue + "2", S3) is None
    other = {**S3, "aws:sourcearn": "arn:aws:s3:::other"}
    assert service_allowed(policy, "s3.amazonaws.com", "sqs:SendMessage", queue, other) is None
    # Wildcards, no Sid, and a Deny that applies wins.
    loose = {**allow, "Action": "sqs:*", "Principal": "*", "Sid": None}
    assert service_allowed({"Statement": loose}, "s3.amazonaws.com", "sqs:SendMessage", queue, S3)
    deny = {**allow, "Effect": "Deny", "Condition": None}
    both = {"Statement": [allow, deny]}
    assert service_allowed(both, "s3.amazonaws.com", "sqs:SendMessage", queue, S3) is None
    assert service_allowed(None, "s3.amazonaws.com", "sqs:SendMessage", queue, S3) is None

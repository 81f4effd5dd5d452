"""The Lambda side's first half, S3's part (S3 -> launcher): what S3 does before Lambda runs.

Polls the bucket (ListObjectsV2) for new objects. For each, it reads the bucket's notification
configuration and, for every LambdaFunctionConfiguration whose events and prefix/suffix filter
match, checks that the function's resource policy lets S3 invoke it, builds the S3 event the way
S3 does and hands it to the Invoker (lambda_side), which runs the deployed handler.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from testkit.iam import as_list, service_allowed

from .aws import Aws, error_code
from .output import Output

if TYPE_CHECKING:
    from .lambda_side import Invoker


@dataclass(frozen=True)
class S3Object:
    key: str
    etag: str  # without quotes
    size: int
    last_modified: datetime

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.key, self.etag, self.last_modified.isoformat())

    @property
    def event_name(self) -> str:
        # A multipart upload's ETag is "<md5>-<parts>"; S3 then sends CompleteMultipartUpload.
        return "ObjectCreated:CompleteMultipartUpload" if "-" in self.etag else "ObjectCreated:Put"


def filter_rules(configuration: dict[str, Any]) -> tuple[str, str]:
    """(prefix, suffix) of a notification configuration's key filter (names are any case)."""
    prefix = suffix = ""
    for rule in (configuration.get("Filter") or {}).get("Key", {}).get("FilterRules") or []:
        name = str(rule.get("Name", "")).lower()
        if name == "prefix":
            prefix = str(rule.get("Value", ""))
        elif name == "suffix":
            suffix = str(rule.get("Value", ""))
    return prefix, suffix


def event_matches(patterns: Iterable[str], event_name: str) -> bool:
    """Whether S3 event `ObjectCreated:Put` is covered by e.g. `s3:ObjectCreated:*`."""
    return any(fnmatch.fnmatchcase(f"s3:{event_name}", p) for p in patterns)


def matching_lambda_configurations(
    notification: dict[str, Any], key: str, event_name: str
) -> list[dict[str, Any]]:
    """The LambdaFunctionConfigurations S3 would notify for this key and event."""
    matches = []
    for configuration in notification.get("LambdaFunctionConfigurations") or []:
        prefix, suffix = filter_rules(configuration)
        if not (key.startswith(prefix) and key.endswith(suffix)):
            continue
        if event_matches(configuration.get("Events") or [], event_name):
            matches.append(configuration)
    return matches


def encode_event_key(key: str) -> str:
    """S3 event keys are form-encoded: space -> `+`, other specials -> %XX; AWS keeps `/`."""
    return urllib.parse.quote_plus(key, safe="/")


def s3_event(
    *,
    bucket: str,
    region: str,
    account: str,
    obj: S3Object,
    configuration_id: str,
    sequencer: str,
) -> dict[str, Any]:
    """The event S3 sends to a Lambda function for one new object."""
    request_id = uuid.uuid4().hex[:16].upper()
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": obj.last_modified.astimezone(UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "eventName": obj.event_name,
                "userIdentity": {"principalId": f"AWS:{account}"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": request_id,
                    "x-amz-id-2": base64.b64encode(uuid.uuid4().bytes * 2).decode(),
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": configuration_id,
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": account},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": encode_event_key(obj.key),
                        "size": obj.size,
                        "eTag": obj.etag,
                        "sequencer": sequencer,
                    },
                },
            }
        ]
    }


def s3_may_invoke(policy: str | None, bucket: str, account: str) -> tuple[bool, str]:
    """Whether the function's resource policy lets S3 (this bucket, this account) invoke it."""
    if not policy:
        return False, "the function has no resource policy (no permission for s3.amazonaws.com)"
    context = {"aws:sourcearn": f"arn:aws:s3:::{bucket}", "aws:sourceaccount": account}
    # The policy is the function's own: its statements apply to it whatever their Resource.
    document = json.loads(policy)
    for statement in as_list(document.get("Statement", [])):
        statement.pop("Resource", None)
    sid = service_allowed(document, "s3.amazonaws.com", "lambda:InvokeFunction", "", context)
    if sid is not None:
        return True, f"statement {sid}"
    return False, (
        "no statement of the function's resource policy allows s3.amazonaws.com to call "
        f"lambda:InvokeFunction for {context['aws:sourcearn']} in account {account}"
    )


class BucketWatcher:
    """New objects (key + ETag + LastModified not seen before) in a bucket, by polling."""

    def __init__(self, aws: Aws, bucket: str, out: Output, include_existing: bool) -> None:
        self._aws = aws
        self.bucket = bucket
        self._out = out
        self._skip_first = not include_existing
        self._seen: set[tuple[str, str, str]] = set()
        self._waiting_reported = False
        self._watching = False

    def _list(self) -> Iterator[S3Object]:
        pages = self._aws.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        for page in pages:
            for item in page.get("Contents") or []:
                yield S3Object(
                    key=item["Key"],
                    etag=str(item.get("ETag", "")).strip('"'),
                    size=int(item.get("Size", 0)),
                    last_modified=item["LastModified"],
                )

    def poll(self) -> list[S3Object]:
        try:
            objects = list(self._list())
        except ClientError as error:
            if error_code(error) != "NoSuchBucket":
                raise
            if not self._waiting_reported:
                self._waiting_reported = True
                self._out("waiting", what="bucket", bucket=self.bucket, reason="NoSuchBucket")
            self._skip_first = False  # whatever lands in a bucket created later is new
            return []
        new = [o for o in objects if o.identity not in self._seen]
        self._seen.update(o.identity for o in new)
        if not self._watching:
            self._watching = True
            self._out(
                "watching",
                bucket=self.bucket,
                existing_objects=len(new),
                existing="skipped" if self._skip_first else "notified",
            )
        if self._skip_first:
            self._skip_first = False
            return []
        return sorted(new, key=lambda o: (o.last_modified, o.key))


def dispatch(
    objects: list[S3Object],
    *,
    aws: Aws,
    out: Output,
    invoker: Invoker,
    bucket: str,
    account: str,
) -> None:
    """S3's part for new objects: match the notification configuration, invoke.

    The configuration and each function's policy are read once per batch of objects (those
    one poll found), not once per object: the objects were created within one poll interval.
    """
    if not objects:
        return
    try:
        notification = aws.s3.get_bucket_notification_configuration(Bucket=bucket)
    except (ClientError, BotoCoreError) as error:
        for obj in objects:
            out.error("s3_notification", error, key=obj.key)
        return
    permissions: dict[str, tuple[bool, str]] = {}
    for obj in objects:
        try:
            dispatch_one(
                obj,
                notification=notification,
                permissions=permissions,
                aws=aws,
                out=out,
                invoker=invoker,
                bucket=bucket,
                account=account,
            )
        except (ClientError, BotoCoreError) as error:
            out.error("s3_notification", error, key=obj.key)


def dispatch_one(
    obj: S3Object,
    *,
    notification: dict[str, Any],
    permissions: dict[str, tuple[bool, str]],
    aws: Aws,
    out: Output,
    invoker: Invoker,
    bucket: str,
    account: str,
) -> None:
    configurations = matching_lambda_configurations(notification, obj.key, obj.event_name)
    out(
        "object",
        key=obj.key,
        etag=obj.etag,
        size=obj.size,
        event_name=obj.event_name,
        notifies=[c.get("LambdaFunctionArn") for c in configurations],
    )
    for configuration in configurations:
        function_arn = configuration["LambdaFunctionArn"]
        if function_arn not in permissions:
            try:
                policy = aws.lambda_.get_policy(FunctionName=function_arn).get("Policy")
            except ClientError as error:
                if error_code(error) != "ResourceNotFoundException":
                    raise
                policy = None
            permissions[function_arn] = s3_may_invoke(policy, bucket, account)
        allowed, why = permissions[function_arn]
        if not allowed:
            out.error("s3_notification", f"S3 cannot invoke {function_arn}: {why}", key=obj.key)
            continue
        event = s3_event(
            bucket=bucket,
            region=aws.region,
            account=account,
            obj=obj,
            configuration_id=str(configuration.get("Id", "")),
            sequencer=f"{time.time_ns():016X}",
        )
        invoker.submit(function_arn, event, obj.key)

"""Starts moto's server (same arguments as `moto_server`) with S3 bucket policies evaluated
the way S3 evaluates them for a request made over TLS.

moto 5.2.5 applies bucket policies to object requests but ignores condition operators it does
not implement (such as `Bool`) and treats a statement whose condition fails as a deny. lew's
bucket policy denies every request with `aws:SecureTransport = false`, so under moto that one
statement would deny all object access. Here a statement applies only when its conditions hold
for the request context, and every request counts as made over TLS: the emulator stands in for
S3's HTTPS endpoint.

One more correction: CloudWatch Logs stores event timestamps as integer milliseconds, but
moto's own Lambda invoker (which cannot run code without Docker and logs that failure into the
function's log group) writes a fractional one, which a strict client such as the AWS SDK for
Rust refuses to parse. Timestamps are stored as integers.

And Lambda's AddPermission refuses a StatementId the function's policy already has, with
409 ResourceConflictException as AWS does; moto 5.2.5 stores the statement a second time, so a
retried AddPermission would go unnoticed.

EventBridge refuses a rate expression whose unit does not agree with its value
(`rate(1 minutes)`, `rate(5 minute)`) or whose value is not positive, and S3 a lifecycle
configuration with two rules of one ID; moto 5.2.5 accepts both.

With LEW_EMULATOR_ECR_REGISTRY=localhost:PORT (a Docker registry; see the ECR section at the
end), ECR answers as if that registry were the account's ECR registry. Nothing else of moto is
changed.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import json
import os
import re
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.policy import Policy
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.ecr.models import ECRBackend, Image, Repository
from moto.ecr.responses import ECRResponse
from moto.events.exceptions import ValidationException as EventsValidationException
from moto.events.models import EventsBackend
from moto.iam.access_control import PermissionResult
from moto.logs.models import LogEvent
from moto.s3.exceptions import InvalidArgumentError
from moto.s3.models import FakeBucket
from moto.server import main

# One evaluator for the conditions of every stand-in's policies (scripts/ is on sys.path).
from testkit.iam import conditions_hold

# What S3 knows about every request to the emulator.
REQUEST_CONTEXT = {"aws:securetransport": "true"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str) -> bool:
    # IAM wildcards: `*` any run of characters, `?` one character; case-sensitive.
    return any(fnmatch.fnmatchcase(value, str(p)) for p in _as_list(patterns))


def _statement_applies(statement: dict[str, Any], action: str, resource: str) -> bool:
    principal = statement.get("Principal")
    if principal not in ("*", {"AWS": "*"}):
        return False  # moto does not model callers; only "everyone" statements are evaluated
    if "NotAction" in statement:
        if _matches(statement["NotAction"], action):
            return False
    elif not _matches(statement.get("Action", []), action):
        return False
    if not _matches(statement.get("Resource", []), resource):
        return False
    return conditions_hold(statement.get("Condition"), REQUEST_CONTEXT)


def get_permission(self: FakeBucket, action: str, resource: str) -> PermissionResult:
    if self.policy is None:
        return PermissionResult.NEUTRAL
    policy = json.loads(self.policy.decode())
    result = PermissionResult.NEUTRAL
    for statement in _as_list(policy.get("Statement", [])):
        if _statement_applies(statement, action, resource):
            if statement.get("Effect") == "Deny":
                return PermissionResult.DENIED
            result = PermissionResult.PERMITTED
    return result


FakeBucket.get_permission = get_permission  # type: ignore[method-assign]

_log_event_init = LogEvent.__init__


def _integer_timestamps(self: LogEvent, ingestion_time: int, log_event: dict[str, Any]) -> None:
    _log_event_init(
        self, int(ingestion_time), {**log_event, "timestamp": int(log_event["timestamp"])}
    )


LogEvent.__init__ = _integer_timestamps  # type: ignore[method-assign]


class StatementIdConflict(LambdaClientError):
    code = 409

    def __init__(self, sid: str) -> None:
        super().__init__(
            "ResourceConflictException",
            f"The statement id ({sid}) provided already exists. Please provide a new statement "
            "id, or remove the existing statement.",
        )


_add_statement = Policy.add_statement


def _unique_statement_ids(self: Policy, raw: str, qualifier: str | None = None) -> tuple[Any, str]:
    sid = json.loads(raw).get("StatementId")
    if sid is not None and any(st.get("Sid") == sid for st in self.statements):
        raise StatementIdConflict(sid)
    return _add_statement(self, raw, qualifier)


Policy.add_statement = _unique_statement_ids  # type: ignore[method-assign]

# ---------------------------------------------------------------------------------------------
# EventBridge schedule expressions and S3 lifecycle rule ids, refused where AWS refuses them

# The unit must agree with the value; moto 5.2.5's pattern takes any of them with any value.
_RATE = re.compile(r"rate\((\d+) (minute|hour|day)(s?)\)")


def _valid_rate(expression: str) -> bool:
    # AWS, "Rate expressions reference" (EventBridge User Guide): the value is "A positive
    # number", and "If the value is equal to 1, then the unit must be singular. If the value is
    # greater than 1, the unit must be plural. For example, rate(1 hours) and rate(5 hour)
    # aren't valid, but rate(1 hour) and rate(5 hours) are valid."
    match = _RATE.fullmatch(expression)
    if match is None:
        return False
    value, plural = int(match.group(1)), match.group(3) == "s"
    return value >= 1 and plural == (value > 1)


_put_rule = EventsBackend.put_rule


def _strict_rates(self: EventsBackend, name: str, *args: Any, **kwargs: Any) -> Any:
    expression = kwargs.get("scheduled_expression")
    if expression and expression.startswith("rate(") and not _valid_rate(expression):
        raise EventsValidationException("Parameter ScheduleExpression is not valid.")
    return _put_rule(self, name, *args, **kwargs)


EventsBackend.put_rule = _strict_rates  # type: ignore[method-assign]

_set_lifecycle = FakeBucket.set_lifecycle


def _unique_rule_ids(self: FakeBucket, rules: list[dict[str, Any]]) -> None:
    # AWS, "LifecycleRule" (S3 API reference): "ID: Unique identifier for the rule." S3 refuses a
    # configuration that gives two rules one ID (400 InvalidArgument); moto 5.2.5 stores both,
    # so a rule merged in twice would go unnoticed.
    ids = [str(rule["ID"]) for rule in rules if rule.get("ID")]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise InvalidArgumentError(
            "Rule ID must be unique. Found same ID for more than one rule", "ID", twice[0]
        )
    _set_lifecycle(self, rules)


FakeBucket.set_lifecycle = _unique_rule_ids  # type: ignore[method-assign]

# ---------------------------------------------------------------------------------------------
# ECR backed by a real registry: only with LEW_EMULATOR_ECR_REGISTRY=localhost:PORT
#
# moto's ECR has no registry (its `/v2/` is 404): the repository URIs and the token's proxy
# endpoint it answers name `<account>.dkr.ecr.<region>.amazonaws.com`, which nothing here
# serves, and an image exists for its API only when PutImage is called. Given a Docker registry
# on loopback that accepts the login moto's tokens carry (scripts/container/env.sh starts
# Debian's docker-registry so), ECR's answers lead there instead, and what was pushed there is
# what ECR's API reports. A client then takes the one path it takes on AWS: the token from
# GetAuthorizationToken, `docker login` to its proxy endpoint, a push to the repository URI, the
# digest read back with DescribeImages. (One registry serves every account and region, so
# repository names must differ between them; tests use unique names anyway.)
#
# Not mirrored: PutImage and BatchDeleteImage stay moto's own (an image put through the API is
# not in the registry, and one deleted through it comes back from the registry on the next
# read); nothing of lew uses either.

ECR_REGISTRY = os.environ.get("LEW_EMULATOR_ECR_REGISTRY", "")

# Every manifest format a push may store, so the registry answers with the stored one (and its
# digest) rather than converting it.
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)

# Reads of the registry and changes to a repository's image list happen one at a time.
_registry_lock = threading.Lock()


def _from_registry(image: Image) -> bool:
    """Whether ECR reports the image because it is in the registry (not put through the API).
    (moto's models cannot be subclassed outside moto: its metaclass names the service by the
    module.)"""
    return getattr(image, "lew_from_registry", False)


def _registry_login(registry_id: str) -> str:
    # What moto's GetAuthorizationToken hands out for this registry id (AWS:<id>-auth-token):
    # the emulator reads the registry with the very login it gives clients.
    return base64.b64encode(f"AWS:{registry_id}-auth-token".encode()).decode()


def _registry_failure(what: str) -> ServiceException:
    # ECR's error for a failure on its side; the message says which registry and why.
    return ServiceException(
        "ServerException",
        f"the emulator's registry {ECR_REGISTRY} (LEW_EMULATOR_ECR_REGISTRY): {what}",
    )


def _registry(
    method: str, path: str, registry_id: str, accept: str | None = None
) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(f"http://{ECR_REGISTRY}{path}", method=method)
    request.add_header("Authorization", f"Basic {_registry_login(registry_id)}")
    if accept:
        request.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (http only)
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()
    except OSError as error:
        raise _registry_failure(f"{method} {path}: {error}") from error


def _pushed(repository: Repository) -> dict[str, tuple[list[str], bytes, str]]:
    """Every tagged manifest of the repository in the registry: digest -> (tags, manifest,
    media type)."""
    name, registry_id = repository.name, repository.registry_id
    status, _, body = _registry("GET", f"/v2/{name}/tags/list", registry_id)
    if status == 404:
        return {}  # nothing pushed yet: the registry does not know the name
    if status != 200:
        raise _registry_failure(f"listing the tags of {name} answered {status}: {body[:200]!r}")
    found: dict[str, tuple[list[str], bytes, str]] = {}
    for tag in sorted(json.loads(body).get("tags") or []):
        status, headers, manifest = _registry(
            "GET", f"/v2/{name}/manifests/{tag}", registry_id, accept=MANIFEST_TYPES
        )
        if status == 404:
            continue  # deleted since the listing
        if status != 200:
            raise _registry_failure(f"reading {name}:{tag} answered {status}")
        digest = headers.get("Docker-Content-Digest", "")
        tags, _, _ = found.setdefault(digest, ([], manifest, headers.get("Content-Type", "")))
        tags.append(tag)
    return found


def _sync_images(repository: Repository) -> None:
    """Makes the repository's image list hold what the registry holds (images put through the
    API stay, minus any tag the registry now has on a pushed image)."""
    pushed = _pushed(repository)
    known = {i.image_digest: i for i in repository.images if _from_registry(i)}
    images = [i for i in repository.images if not _from_registry(i)]
    for digest, (tags, manifest, media_type) in pushed.items():
        for other in images:
            for tag in tags:
                other.remove_tag(tag)
        image = known.get(digest) or Image(
            repository.account_id,
            tags[0],
            manifest.decode(),
            repository.name,
            image_manifest_mediatype=media_type,
            digest=digest,
            registry_id=repository.registry_id,
        )
        image.lew_from_registry = True  # type: ignore[attr-defined]
        image.image_tags = list(tags)
        image.image_tag = tags[-1]
        images.append(image)
    repository.images = images


def _reads_the_registry(method: Callable[..., Any]) -> Callable[..., Any]:
    # AWS, "DescribeImages" (ECR API reference): "Returns metadata about the images in a
    # repository", each with "imageDigest: The sha256 digest of the image manifest" and
    # "imageTags: The list of tags associated with this image"; "BatchGetImage": "Gets detailed
    # information for an image. Images are specified with either an imageTag or imageDigest."
    # An image pushed to the repository URI is one of them, with the digest the registry
    # computed for its manifest.
    @functools.wraps(method)
    def synced(self: ECRBackend, repository_name: str, *args: Any, **kwargs: Any) -> Any:
        with _registry_lock:
            repository = self.repositories.get(repository_name)
            if repository is not None:
                _sync_images(repository)
            return method(self, repository_name, *args, **kwargs)

    return synced


_delete_repository = ECRBackend.delete_repository


def _delete_repository_and_images(
    self: ECRBackend, repository_name: str, registry_id: str | None = None, force: bool = False
) -> Repository:
    # AWS, "DeleteRepository" (ECR API reference): "If the repository isn't empty, you must
    # either delete the contents of the repository or use the force option to delete the
    # repository and have Amazon ECR delete all of its contents on your behalf." Pushed images
    # count as contents, and a forced delete removes them from the registry, so a repository
    # created again under the name starts empty.
    with _registry_lock:
        repository = self.repositories.get(repository_name)
        if repository is not None:
            _sync_images(repository)
        deleted = _delete_repository(self, repository_name, registry_id, force)
        for image in deleted.images:
            if _from_registry(image):
                path = f"/v2/{deleted.name}/manifests/{image.image_digest}"
                status, _, body = _registry("DELETE", path, deleted.registry_id)
                if status not in (202, 404):
                    raise _registry_failure(f"DELETE {path} answered {status}: {body[:200]!r}")
        return deleted


_repository_init = Repository.__init__


def _uri_in_the_registry(self: Repository, *args: Any, **kwargs: Any) -> None:
    # AWS, "Repository" (ECR API reference): "repositoryUri: The URI for the repository. You can
    # use this URI for container image push and pull operations." Here that is the repository's
    # name in the local registry.
    _repository_init(self, *args, **kwargs)
    self.uri = f"{ECR_REGISTRY}/{self.name}"


_get_authorization_token = ECRResponse.get_authorization_token


def _token_for_the_registry(self: ECRResponse) -> ActionResult:
    # AWS, "AuthorizationData" (ECR API reference): "proxyEndpoint: The registry URL to use for
    # this authorization token in a docker login command", and "authorizationToken: A
    # base64-encoded string that contains authorization data for the specified Amazon ECR
    # registry. When the string is decoded, it is presented in the format user:password for
    # private registry authentication using docker login." moto's token decodes to
    # AWS:<account>-auth-token, the login the local registry accepts; the proxy endpoint becomes
    # that registry (plain HTTP on loopback). "Authorization tokens are valid for 12 hours"
    # (moto's expired in 2015).
    result = _get_authorization_token(self)
    expires = datetime.now(UTC) + timedelta(hours=12)
    for data in result.result["authorizationData"]:  # type: ignore[index]
        data["proxyEndpoint"] = f"http://{ECR_REGISTRY}"
        data["expiresAt"] = expires
    return result


if ECR_REGISTRY:
    Repository.__init__ = _uri_in_the_registry  # type: ignore[method-assign]
    ECRResponse.get_authorization_token = _token_for_the_registry  # type: ignore[method-assign]
    for _name in ("describe_images", "batch_get_image", "list_images"):
        setattr(ECRBackend, _name, _reads_the_registry(getattr(ECRBackend, _name)))
    ECRBackend.delete_repository = _delete_repository_and_images  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())

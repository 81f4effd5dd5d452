#!/usr/bin/env python3
"""A loopback HTTP reverse proxy in front of an AWS emulator (moto): adds latency, injects faults
and counts API calls. Standard library only, so it starts in a few tens of milliseconds.

    python3 scripts/proxy/proxy.py --upstream http://127.0.0.1:MOTO_PORT --port 0 \\
        [--latency-ms 50] [--fault-rate 0.2] [--faults 500,503,throttle,reset-before,reset-after] \\
        [--fault-match 'sqs:*,s3:Put*'] [--seed N] [--hold-after N] [--hold-after-mutating N] \\
        [--hold-match 'sqs:DeleteMessage'] [--stats FILE] [--log FILE]

When it listens it prints one line, `{"port": N}`, on stdout; it serves until SIGTERM or SIGINT.

Forwarding: every request (method, path and query, headers, body) goes to the upstream and the
response comes back unchanged but for the hop-by-hop headers. HTTP/1.1 keep-alive on both sides;
a chunked request body is de-chunked and sent on with a Content-Length (an `aws-chunked`
content encoding is part of the body and passes through untouched); `Expect: 100-continue` is
answered here.

Latency: each request waits `--latency-ms` before it is handled (each in its own thread, so
concurrent requests overlap as they do against AWS).

Faults: a `--fault-rate` share of requests (drawn from `random.Random(--seed)`; only requests whose
"service:Operation" matches `--fault-match`) gets one of the enabled kinds, picked at random:
    500, 503       that status, not forwarded, with an error body in the service's format
    throttle       the service's own throttling error, not forwarded: awsJson `ThrottlingException`
                   (400), query `Throttling` (400), EC2 `RequestLimitExceeded` (503), S3 `SlowDown`
                   (503), REST-JSON (Lambda) 429 `TooManyRequestsException`
    reset-before   the connection is reset (SO_LINGER 0) without forwarding
    reset-after    the request is forwarded (the upstream acts), then the connection is reset
                   without an answer: the client retries a request that already happened
    500-after, 503-after, throttle-after
                   the request is forwarded (the upstream acts), its answer is dropped and the
                   error above is sent instead: a retry repeats a request that already happened
Paths under /moto-api/ are forwarded without latency, faults or counting.

Counting: every request is classified as (service, operation, mutating): the service from the
SigV4 credential scope, the operation from X-Amz-Target (JSON protocols), the `Action` (query
protocols) or the method and path (S3 and Lambda REST); JSON and query operations whose names
start with Get/List/Describe/Head/... are reads, REST GET/HEAD are reads, the rest mutate.

Control (never forwarded):
    GET  /__proxy/stats    {"requests", "mutating", "reads", "by_operation": {"sqs:CreateQueue": k},
                            "faults": {kind: k}, "moto_api", "in_flight", "held", "config"}
    POST /__proxy/reset    zeroes the counters (answers the stats before the reset)
    POST /__proxy/config   JSON with any of latency_ms, fault_rate, faults, fault_match, seed,
                           hold_after, hold_after_mutating (null: off), hold_match (null: "*");
                           answers the new config
    POST /__proxy/release  lets held requests go; body {"forward": false} resets them instead
`--stats FILE` is rewritten (atomically) with the stats after every request. `--log FILE` gets one
JSON line per request: start time (epoch s), duration (ms), op, mutating, status, fault, body
size and framing headers (Transfer-Encoding, Content-Encoding, Expect) when present.
`--hold-after N` holds every counted request after the first N until released: a test can stop
a client (SIGKILL) at exactly N API calls. `--hold-after-mutating N` lets the first N mutating
requests through (and the reads before them), then holds every request: a stop after exactly N
changes, whatever reads came between. `--hold-match GLOBS` (default `*`) narrows both to the
requests whose "service:Operation" matches: the others pass, and still count. With
`--hold-after 0 --hold-match sqs:DeleteMessage` every DeleteMessage is held and nothing else: a
test can kill a client between its last upload and the delete of its message, whatever came
before. Changing it does not let go of requests already held (release does).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import http.client
import json
import os
import random
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULT_KINDS = (
    "500",
    "503",
    "throttle",
    "reset-before",
    "reset-after",
    "500-after",
    "503-after",
    "throttle-after",
)
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
}
READ_PREFIXES = (
    "Get",
    "List",
    "Describe",
    "Head",
    "BatchGet",
    "Lookup",
    "Search",
    "Query",
    "Scan",
    "Filter",
    "Select",
    "Check",
    "Validate",
    "Simulate",
    "Test",
    "Preview",
    "Estimate",
)
# Signing names for JSON targets when a request carries no SigV4 credential scope.
TARGET_SERVICES = {
    "AmazonSQS": "sqs",
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
    "Logs_20140328": "logs",
    "ResourceGroupsTaggingAPI_20170126": "tagging",
    "DynamoDB_20120810": "dynamodb",
    "AWSEvents": "events",
    "secretsmanager": "secretsmanager",
    "AmazonSSM": "ssm",
    "TrentService": "kms",
}
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
DATE_PATH = re.compile(r"^/\d{4}-\d\d-\d\d(/|$)")
# Lambda's REST routes: (method, path pattern after the API date, operation).
_FN = r"/functions/[^/]+"
LAMBDA_ROUTES = [
    (m, re.compile(f"^{p}$"), op)
    for m, p, op in [
        ("POST", r"/functions/?", "CreateFunction"),
        ("GET", r"/functions/?", "ListFunctions"),
        ("GET", _FN + "/?", "GetFunction"),
        ("DELETE", _FN + "/?", "DeleteFunction"),
        ("GET", _FN + "/configuration", "GetFunctionConfiguration"),
        ("PUT", _FN + "/configuration", "UpdateFunctionConfiguration"),
        ("PUT", _FN + "/code", "UpdateFunctionCode"),
        ("POST", _FN + "/policy", "AddPermission"),
        ("GET", _FN + "/policy", "GetPolicy"),
        ("DELETE", _FN + "/policy/[^/]+", "RemovePermission"),
        ("GET", _FN + "/event-invoke-config", "GetFunctionEventInvokeConfig"),
        ("PUT", _FN + "/event-invoke-config", "PutFunctionEventInvokeConfig"),
        ("POST", _FN + "/event-invoke-config", "UpdateFunctionEventInvokeConfig"),
        ("DELETE", _FN + "/event-invoke-config", "DeleteFunctionEventInvokeConfig"),
        ("GET", _FN + "/concurrency", "GetFunctionConcurrency"),
        ("PUT", _FN + "/concurrency", "PutFunctionConcurrency"),
        ("DELETE", _FN + "/concurrency", "DeleteFunctionConcurrency"),
        ("POST", _FN + "/invocations", "Invoke"),
        ("POST", _FN + "/invoke-async/?", "InvokeAsync"),
        ("GET", _FN + "/versions", "ListVersionsByFunction"),
        ("POST", _FN + "/versions", "PublishVersion"),
        ("GET", r"/tags/.+", "ListTags"),
        ("POST", r"/tags/.+", "TagResource"),
        ("DELETE", r"/tags/.+", "UntagResource"),
        ("GET", r"/event-source-mappings/?", "ListEventSourceMappings"),
        ("POST", r"/event-source-mappings/?", "CreateEventSourceMapping"),
    ]
]
# S3 sub-resources (query keys) and the noun of their operations.
S3_BUCKET_SUBRESOURCES = {
    "policy": "BucketPolicy",
    "tagging": "BucketTagging",
    "encryption": "BucketEncryption",
    "publicAccessBlock": "PublicAccessBlock",
    "notification": "BucketNotificationConfiguration",
    "versioning": "BucketVersioning",
    "lifecycle": "BucketLifecycleConfiguration",
    "cors": "BucketCors",
    "acl": "BucketAcl",
    "website": "BucketWebsite",
    "logging": "BucketLogging",
    "ownershipControls": "BucketOwnershipControls",
    "replication": "BucketReplication",
    "object-lock": "ObjectLockConfiguration",
    "accelerate": "BucketAccelerateConfiguration",
    "requestPayment": "BucketRequestPayment",
    "policyStatus": "BucketPolicyStatus",
    "location": "BucketLocation",
}
S3_OBJECT_SUBRESOURCES = {
    "tagging": "ObjectTagging",
    "acl": "ObjectAcl",
    "retention": "ObjectRetention",
    "legal-hold": "ObjectLegalHold",
    "attributes": "ObjectAttributes",
}
VERBS = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "POST": "Post"}


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    mutating: bool
    protocol: str  # json, query, ec2, rest-json, rest-xml

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"


def _is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES)


def _header(headers: Any, name: str) -> str:
    return headers.get(name) or ""


def classify(method: str, target: str, headers: Any, body: bytes) -> Call:
    """What a request is: service, operation, whether it mutates, and its protocol."""
    parsed = urllib.parse.urlsplit(target)
    path, query = parsed.path or "/", parsed.query
    scope = CREDENTIAL_SCOPE.search(_header(headers, "Authorization"))
    if scope is None:
        credential = urllib.parse.parse_qs(query).get("X-Amz-Credential", [""])[0]
        parts = credential.split("/")
        service = parts[3] if len(parts) >= 5 else ""
    else:
        service = scope.group(1)

    amz_target = _header(headers, "X-Amz-Target")
    if amz_target:
        prefix, _, operation = amz_target.partition(".")
        service = service or TARGET_SERVICES.get(prefix, prefix.lower())
        return Call(service, operation or prefix, not _is_read(operation), "json")

    content_type = _header(headers, "Content-Type").lower()
    action = ""
    if method == "POST" and "x-www-form-urlencoded" in content_type:
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        action = form.get("Action", [""])[0]
        version = form.get("Version", [""])[0]
    else:
        params = urllib.parse.parse_qs(query)
        action = params.get("Action", [""])[0]
        version = params.get("Version", [""])[0]
    if action:
        service = service or "query"
        protocol = "ec2" if service == "ec2" or version == "2016-11-15" else "query"
        return Call(service, action, not _is_read(action), protocol)

    mutating = method not in ("GET", "HEAD", "OPTIONS")
    if DATE_PATH.match(path) and service != "s3":
        rest = path[11:]
        for route_method, pattern, operation in LAMBDA_ROUTES:
            if method == route_method and pattern.match(rest):
                return Call(service or "lambda", operation, mutating, "rest-json")
        first = rest.strip("/").split("/")[0]
        return Call(service or "rest", f"{method} {path[:11]}{first}", mutating, "rest-json")
    operation = s3_operation(method, path, query, headers)
    return Call(service or "s3", operation, mutating, "rest-xml")


def s3_operation(method: str, path: str, query: str, headers: Any) -> str:
    """The S3 operation name of a REST request, from method, bucket/key and sub-resource."""
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    if "x-id" in params:  # the AWS SDKs name the operation themselves
        return params["x-id"][0]
    host = _header(headers, "Host").rsplit(":", 1)[0].strip("[]").lower()
    virtual = not host.startswith("s3.") and (".s3." in host or host.endswith(".localhost"))
    if virtual:  # virtual-hosted style: the bucket is the first label of the host
        bucket, key = host.split(".", 1)[0], path.lstrip("/")
    else:
        bucket, _, key = path.lstrip("/").partition("/")
    verb = VERBS.get(method, method.title())
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method} /"
    if not key:
        if method == "POST" and "delete" in params:
            return "DeleteObjects"
        if method == "GET" and "versions" in params:
            return "ListObjectVersions"
        if method == "GET" and "uploads" in params:
            return "ListMultipartUploads"
        for sub, noun in S3_BUCKET_SUBRESOURCES.items():
            if sub in params:
                return verb + noun
        return {
            "PUT": "CreateBucket",
            "DELETE": "DeleteBucket",
            "HEAD": "HeadBucket",
            "GET": "ListObjectsV2" if params.get("list-type") == ["2"] else "ListObjects",
        }.get(method, f"{method} bucket")
    copy = bool(_header(headers, "x-amz-copy-source"))
    if "uploads" in params and method == "POST":
        return "CreateMultipartUpload"
    if "uploadId" in params:
        return {
            "POST": "CompleteMultipartUpload",
            "PUT": "UploadPartCopy" if copy else "UploadPart",
            "GET": "ListParts",
            "DELETE": "AbortMultipartUpload",
        }.get(method, f"{method} upload")
    if method == "POST" and "select" in params:
        return "SelectObjectContent"
    if method == "POST" and "restore" in params:
        return "RestoreObject"
    for sub, noun in S3_OBJECT_SUBRESOURCES.items():
        if sub in params:
            return verb + noun
    if method == "PUT":
        return "CopyObject" if copy else "PutObject"
    return verb + "Object"


# ---------------------------------------------------------------------------------------------
# Error answers in each protocol's own format


def _request_id() -> str:
    return str(uuid.uuid4())


def fault_response(kind: str, call: Call, headers: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """The status, headers and body of an injected 500, 503 or throttling error."""
    rid = _request_id()
    if kind == "throttle":
        code, message = "ThrottlingException", "Rate exceeded"
    elif kind == "503":
        code, message = "ServiceUnavailable", "Service is unavailable, try again later."
    else:
        code, message = "InternalFailure", "We encountered an internal error. Please try again."
    status = {"500": 500, "503": 503}.get(kind, 400)

    if call.protocol == "json":
        content_type = _header(headers, "Content-Type")
        if not content_type.startswith("application/x-amz-json"):
            content_type = "application/x-amz-json-1.1"
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, [("Content-Type", content_type), ("x-amzn-RequestId", rid)], body
    if call.protocol == "rest-json":
        if kind == "throttle":
            status, code = 429, "TooManyRequestsException"
        elif kind == "500":
            code = "ServiceException"
        hdrs = [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", rid),
        ]
        return status, hdrs, json.dumps({"message": message}).encode()
    if call.protocol == "ec2":
        if kind == "throttle":
            status, code, message = 503, "RequestLimitExceeded", "Request limit exceeded."
        elif kind == "500":
            code = "InternalError"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{rid}</RequestID></Response>"
        ).encode()
        return status, [("Content-Type", "text/xml;charset=UTF-8")], body
    if call.protocol == "query":
        error_type = "Sender" if kind == "throttle" else "Receiver"
        if kind == "throttle":
            code = "Throttling"
        body = (
            f'<ErrorResponse xmlns="https://{call.service}.amazonaws.com/doc/">'
            f"<Error><Type>{error_type}</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{rid}</RequestId></ErrorResponse>"
        ).encode()
        return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body
    # S3 (REST-XML)
    if kind == "throttle":
        status, code, message = 503, "SlowDown", "Please reduce your request rate."
    elif kind == "500":
        code = "InternalError"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{rid}</RequestId></Error>"
    ).encode()
    return status, [("Content-Type", "application/xml"), ("x-amz-request-id", rid)], body


# ---------------------------------------------------------------------------------------------
# Shared state: configuration, counters, held requests


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        self.lock = threading.Lock()
        self.latency_ms = float(args.latency_ms)
        self.fault_rate = float(args.fault_rate)
        self.faults = parse_faults(args.faults)
        self.fault_match = parse_match(args.fault_match)
        self.seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
        self.random = random.Random(self.seed)  # noqa: S311 (reproducible draws, not secrets)
        self.hold_after: int | None = args.hold_after
        self.hold_after_mutating: int | None = args.hold_after_mutating
        self.hold_match = parse_match(args.hold_match)
        self.stats_path: str | None = args.stats
        self.log_path: str | None = args.log
        self.held = 0
        self.release = threading.Condition(self.lock)
        self.release_generation = 0
        self.release_forward = True
        self.zero()

    def zero(self) -> None:
        self.requests = 0
        self.mutating = 0
        self.by_operation: dict[str, int] = {}
        self.fault_counts: dict[str, int] = {}
        self.moto_api = 0
        self.in_flight = 0

    def config(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "fault_rate": self.fault_rate,
            "faults": list(self.faults),
            "fault_match": list(self.fault_match),
            "seed": self.seed,
            "hold_after": self.hold_after,
            "hold_after_mutating": self.hold_after_mutating,
            "hold_match": list(self.hold_match),
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "mutating": self.mutating,
            "reads": self.requests - self.mutating,
            "by_operation": dict(sorted(self.by_operation.items())),
            "faults": dict(sorted(self.fault_counts.items())),
            "moto_api": self.moto_api,
            "in_flight": self.in_flight,
            "held": self.held,
            "config": self.config(),
        }

    def configure(self, changes: dict[str, Any]) -> None:
        with self.lock:
            if "latency_ms" in changes:
                self.latency_ms = float(changes["latency_ms"])
            if "fault_rate" in changes:
                self.fault_rate = float(changes["fault_rate"])
            if "faults" in changes:
                faults = changes["faults"]
                self.faults = parse_faults(faults if isinstance(faults, str) else ",".join(faults))
            if "fault_match" in changes:
                match = changes["fault_match"]
                self.fault_match = parse_match(match if isinstance(match, str) else ",".join(match))
            if "seed" in changes:
                self.seed = int(changes["seed"])
                self.random = random.Random(self.seed)  # noqa: S311 (reproducible draws, not secrets)
            if "hold_after" in changes:
                value = changes["hold_after"]
                self.hold_after = None if value is None else int(value)
                if self.hold_after is None:
                    self._release_locked(True)
            if "hold_after_mutating" in changes:
                value = changes["hold_after_mutating"]
                self.hold_after_mutating = None if value is None else int(value)
                if self.hold_after_mutating is None:
                    self._release_locked(True)
            if "hold_match" in changes:
                match = changes["hold_match"]
                if match is None:
                    match = "*"
                self.hold_match = parse_match(match if isinstance(match, str) else ",".join(match))

    def _release_locked(self, forward: bool) -> None:
        self.release_generation += 1
        self.release_forward = forward
        self.release.notify_all()

    def release_held(self, forward: bool) -> None:
        with self.lock:
            self._release_locked(forward)

    def admit(self, call: Call) -> tuple[str | None, bool]:
        """Counts a request and decides its fault; holds it while `hold_after` says so.
        Returns (fault kind or None, whether a held request is to be forwarded)."""
        with self.lock:
            mutating_before = self.mutating
            self.requests += 1
            self.in_flight += 1
            if call.mutating:
                self.mutating += 1
            self.by_operation[call.name] = self.by_operation.get(call.name, 0) + 1
            fault = None
            if (
                self.fault_rate > 0
                and self.faults
                and any(fnmatch.fnmatchcase(call.name, p) for p in self.fault_match)
                and self.random.random() < self.fault_rate
            ):
                fault = self.random.choice(self.faults)
                self.fault_counts[fault] = self.fault_counts.get(fault, 0) + 1
            forward = True
            hold = (
                (self.hold_after is not None and self.requests > self.hold_after)
                or (
                    self.hold_after_mutating is not None
                    and mutating_before >= self.hold_after_mutating
                )
            ) and any(fnmatch.fnmatchcase(call.name, p) for p in self.hold_match)
            if hold:
                self.held += 1
                generation = self.release_generation
                self._write_stats_locked()
                while self.release_generation == generation:
                    self.release.wait()
                self.held -= 1
                forward = self.release_forward
            return fault, forward

    def done(self, record: dict[str, Any] | None) -> None:
        with self.lock:
            if record is not None:
                self.in_flight = max(0, self.in_flight - 1)
                if self.log_path:
                    with open(self.log_path, "a", encoding="utf-8") as log:
                        log.write(json.dumps(record) + "\n")
            self._write_stats_locked()

    def _write_stats_locked(self) -> None:
        if not self.stats_path:
            return
        tmp = f"{self.stats_path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(self.snapshot(), out)
        os.replace(tmp, self.stats_path)


def parse_faults(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kind(s) {unknown}; known: {', '.join(FAULT_KINDS)}")
    return kinds


def parse_match(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip()) or ("*",)


# ---------------------------------------------------------------------------------------------
# The upstream connection pool


class Upstream:
    def __init__(self, url: str, timeout: float) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"--upstream must be an http(s) URL, not {url!r}")
        self.https = parsed.scheme == "https"
        self.host = parsed.hostname
        self.port = parsed.port or (443 if self.https else 80)
        self.base = parsed.path.rstrip("/")
        self.timeout = timeout
        self.idle: list[http.client.HTTPConnection] = []
        self.lock = threading.Lock()

    def _new(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        conn.connect()
        with contextlib.suppress(OSError):
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        with self.lock:
            conn = self.idle.pop() if self.idle else None
        reused = conn is not None
        if conn is None:
            conn = self._new()
        while True:
            try:
                conn.putrequest(
                    method, self.base + target, skip_host=True, skip_accept_encoding=True
                )
                for name, value in headers:
                    conn.putheader(name, value)
                conn.endheaders(body if body else None)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                if not reused:
                    raise
                # An idle keep-alive connection the upstream had closed: it never saw this
                # request, so sending it again on a new connection is safe.
                conn, reused = self._new(), False
            except Exception:
                conn.close()
                raise
        if response.will_close:
            conn.close()
        else:
            with self.lock:
                self.idle.append(conn)
        return response.status, response.reason, response.getheaders(), data


# ---------------------------------------------------------------------------------------------
# The handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: State, upstream: Upstream) -> None:
        self.state = state
        self.upstream = upstream
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-request (a killed lew resets its connections) is no
        # error of the proxy's: no traceback for it.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer's own looks up the host's FQDN (a DNS query) for nothing.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in one write (see answer), and nothing waits for Nagle: a
        # small second segment held for the client's delayed ACK costs ~40 ms per request.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_expect_100(self) -> bool:
        # Let the client send its body; the upstream gets the whole request at once.
        self.send_response_only(100)
        self.end_headers()
        return True

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers: dropped (hop-by-hop framing)
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline(3)  # the CRLF after the chunk
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def handle_any(self) -> None:
        started = time.time()
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self.answer(400, [("Content-Type", "text/plain")], b"malformed request body\n")
            return
        if self.path.startswith("/__proxy/"):
            self.control(body)
            return
        state = self.server.state
        if self.path.startswith("/moto-api/"):
            with state.lock:
                state.moto_api += 1
            self.forward(body)
            state.done(None)
            return

        call = classify(self.command, self.path, self.headers, body)
        fault, forward_held = state.admit(call)
        status: int | None = None
        try:
            if not forward_held:
                fault = "dropped"  # held, then released with forward=false
            if state.latency_ms > 0:
                time.sleep(state.latency_ms / 1000)
            if fault in ("500", "503", "throttle"):
                status, headers, error = fault_response(fault, call, self.headers)
                self.answer(status, headers, error)
            elif fault in ("500-after", "503-after", "throttle-after"):
                self.forward(body, answer=False)
                status, headers, error = fault_response(fault[: -len("-after")], call, self.headers)
                self.answer(status, headers, error)
            elif fault in ("reset-before", "dropped"):
                self.reset()
            elif fault == "reset-after":
                self.forward(body, answer=False)
                self.reset()
            else:
                status = self.forward(body)
        finally:
            record = {
                "t": round(started, 6),
                "ms": round((time.time() - started) * 1000, 3),
                "op": call.name,
                "mutating": call.mutating,
                "status": status,
                "fault": fault,
                "bytes_in": len(body),
            }
            framing = [
                f"{name}: {self.headers[name]}"
                for name in ("Transfer-Encoding", "Content-Encoding", "Expect")
                if self.headers.get(name)
            ]
            if framing:
                record["framing"] = framing
            state.done(record)

    def forward(self, body: bytes, answer: bool = True) -> int:
        headers = []
        connection_tokens = {
            t.strip().lower() for t in self.headers.get("Connection", "").split(",") if t.strip()
        }
        had_length = "Content-Length" in self.headers or "Transfer-Encoding" in self.headers
        for name, value in self.headers.items():
            lower = name.lower()
            if lower in HOP_BY_HOP or lower in connection_tokens:
                continue
            if lower in ("content-length", "expect"):
                continue
            headers.append((name, value))
        if body or had_length or self.command in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(body))))
        try:
            status, reason, upstream_headers, data = self.server.upstream.request(
                self.command, self.path, headers, body
            )
        except (OSError, http.client.HTTPException) as error:
            if answer:
                message = f"proxy: upstream unreachable: {error}\n".encode()
                self.answer(502, [("Content-Type", "text/plain")], message)
            return 502
        if answer:
            self.answer(status, upstream_headers, data, reason)
        return status

    def answer(
        self, status: int, headers: list[tuple[str, str]], body: bytes, reason: str | None = None
    ) -> None:
        self.send_response_only(status, reason)
        no_body = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
        names = set()
        for name, value in headers:
            lower = name.lower()
            if lower in HOP_BY_HOP or (lower == "content-length" and not no_body):
                continue
            names.add(lower)
            self.send_header(name, value)
        if "date" not in names:
            self.send_header("Date", formatdate(usegmt=True))
        if not no_body:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self._headers_buffer.append(b"\r\n")
        if not no_body:
            self._headers_buffer.append(body)
        data = b"".join(self._headers_buffer)
        self._headers_buffer = []
        self.wfile.write(data)

    def reset(self) -> None:
        """Drops the connection with a TCP reset and no answer."""
        self.close_connection = True
        sock = self.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.rfile.close()  # the makefile reference; the socket closes only without it
        sock.close()

    def control(self, body: bytes) -> None:
        state = self.server.state
        path = urllib.parse.urlsplit(self.path).path
        try:
            request = json.loads(body) if body.strip() else {}
        except ValueError:
            request = None
        if path == "/__proxy/stats" and self.command == "GET":
            with state.lock:
                out = state.snapshot()
        elif path == "/__proxy/reset" and self.command == "POST":
            with state.lock:
                out = state.snapshot()
                in_flight, held = state.in_flight, state.held
                state.zero()
                state.in_flight = in_flight
                state.held = held
                state._write_stats_locked()
        elif path == "/__proxy/config" and self.command == "POST" and isinstance(request, dict):
            try:
                state.configure(request)
            except (TypeError, ValueError) as error:
                self.answer(400, [("Content-Type", "text/plain")], f"{error}\n".encode())
                return
            with state.lock:
                out = state.config()
        elif path == "/__proxy/release" and self.command == "POST" and isinstance(request, dict):
            state.release_held(bool(request.get("forward", True)))
            with state.lock:
                out = state.snapshot()
        else:
            self.answer(404, [("Content-Type", "text/plain")], b"unknown proxy control path\n")
            return
        data = (json.dumps(out) + "\n").encode()
        self.answer(200, [("Content-Type", "application/json")], data)


for _method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
    setattr(Handler, f"do_{_method}", Handler.handle_any)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:5000")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of faulted requests")
    parser.add_argument(
        "--faults", default=",".join(FAULT_KINDS), help="enabled kinds, comma-separated"
    )
    parser.add_argument(
        "--fault-match", default="*", help="fault only service:Operation matching these globs"
    )
    parser.add_argument("--seed", type=int, help="seed of the fault draws (default: random)")
    parser.add_argument("--hold-after", type=int, help="hold requests after the first N")
    parser.add_argument(
        "--hold-after-mutating", type=int, help="hold requests after the first N mutating ones"
    )
    parser.add_argument(
        "--hold-match", default="*", help="hold only service:Operation matching these globs"
    )
    parser.add_argument("--stats", help="rewrite this JSON file after every request")
    parser.add_argument("--log", help="append one JSON line per request to this file")
    parser.add_argument(
        "--upstream-timeout", type=float, default=300.0, help="seconds (long polls need > 20)"
    )
    args = parser.parse_args(argv)
    try:
        parse_faults(args.faults)
    except ValueError as error:
        parser.error(str(error))
    if not 0 <= args.fault_rate <= 1:
        parser.error("--fault-rate must be between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    state = State(args)
    server = Server((args.host, args.port), state, Upstream(args.upstream, args.upstream_timeout))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    with state.lock:
        state._write_stats_locked()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    while not stop.wait(1.0):
        pass
    state.release_held(False)
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

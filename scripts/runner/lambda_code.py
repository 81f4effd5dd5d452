"""The launcher function's code, as the Lambda side runs it: extracted once per CodeSha256.

What moto 5.2.5 does that this works around: GetFunction's Code.Location names a real AWS host
and moto serves the package nowhere, so the runner falls back to the launcher source lew embeds
(launcher/launcher.py, or --launcher-code) and says so in a `launcher_code` line.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import shutil
import tempfile
import threading
import urllib.parse
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .aws import Aws, error_code
from .output import Output, describe_error


class CodeUnavailable(RuntimeError):
    pass


def _safe_extract(package: bytes, dest: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        for info in archive.infolist():
            parts = Path(info.filename).parts
            if info.filename.startswith("/") or ".." in parts:
                raise CodeUnavailable(f"unsafe path in the code package: {info.filename!r}")
        archive.extractall(dest)


def code_sha256(package: bytes) -> str:
    return base64.b64encode(hashlib.sha256(package).digest()).decode()


class CodeStore:
    """The function's code, extracted once per CodeSha256."""

    def __init__(self, aws: Aws, out: Output, root: Path, fallback: Path | None) -> None:
        self._aws = aws
        self._out = out
        self._root = root
        self._fallback = fallback
        self._lock = threading.Lock()
        self._dirs: dict[tuple[str, str], Path] = {}

    def get(self, function: dict[str, Any]) -> Path:
        configuration = function["Configuration"]
        name = configuration["FunctionName"]
        sha = str(configuration.get("CodeSha256", ""))
        with self._lock:
            cached = self._dirs.get((name, sha))
            if cached is not None:
                return cached
            dest = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self._root))
            location = (function.get("Code") or {}).get("Location", "")
            try:
                package = self._download(location)
            except CodeUnavailable as error:
                self._use_fallback(function, dest, str(error))
            else:
                if code_sha256(package) != sha:
                    raise CodeUnavailable(
                        f"the package at Code.Location has SHA-256 {code_sha256(package)}, "
                        f"the function reports {sha}"
                    )
                _safe_extract(package, dest)
                self._out(
                    "launcher_code",
                    function=name,
                    source="deployed",
                    location=location,
                    code_sha256=sha,
                )
            self._dirs[(name, sha)] = dest
            return dest

    def _download(self, location: str) -> bytes:
        """The package at Code.Location, looked up on the endpoint (never on the internet)."""
        if not location:
            raise CodeUnavailable("GetFunction returned no Code.Location")
        url = urllib.parse.urlsplit(location)
        match = re.match(r"^(?P<bucket>[^.]+)\.s3[.-]", url.hostname or "")
        if match is None:
            raise CodeUnavailable(
                f"Code.Location {location} is not an S3 address the runner can ask the endpoint for"
            )
        bucket, key = match["bucket"], urllib.parse.unquote(url.path.lstrip("/"))
        try:
            response = self._aws.s3.get_object(Bucket=bucket, Key=key)
            return response["Body"].read()
        except (ClientError, BotoCoreError) as error:
            raise CodeUnavailable(
                f"Code.Location is {location} (a real AWS host); the endpoint has no such "
                f"object ({error_code(error) or describe_error(error)} for s3://{bucket}/{key}): "
                "moto keeps the package in memory and serves it nowhere"
            ) from None

    def _use_fallback(self, function: dict[str, Any], dest: Path, reason: str) -> None:
        configuration = function["Configuration"]
        if self._fallback is None:
            raise CodeUnavailable(reason + " (and --require-deployed-code is set)")
        path = self._fallback
        if path.suffix == ".zip":
            _safe_extract(path.read_bytes(), dest)
        elif path.is_dir():
            shutil.copytree(path, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(path, dest / path.name)
        fields: dict[str, Any] = {}
        if path.is_file():
            fields["local_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            deployed = _parse_lambda_time(str(configuration.get("LastModified", "")))
            if deployed is not None and modified > deployed:
                fields["warning"] = (
                    f"{path} changed after the function was last deployed "
                    f"({configuration.get('LastModified')}); run `lew deploy-lambda`"
                )
        self._out(
            "launcher_code",
            function=configuration["FunctionName"],
            source="fallback",
            path=str(path),
            reason=reason,
            deployed_code_sha256=configuration.get("CodeSha256"),
            deployed_code_size=configuration.get("CodeSize"),
            handler=configuration.get("Handler"),
            **fields,
        )


def _parse_lambda_time(value: str) -> datetime | None:
    # "2026-11-27T20:31:54.126214000Z" or "2026-11-27T20:31:54.126+0000"
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?", value)
    if match is None:
        return None
    micro = (match[2] or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(match[1]).replace(microsecond=int(micro), tzinfo=UTC)

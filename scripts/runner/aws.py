"""boto3 clients for the emulator's endpoint, the credentials handed to children, moto's own API.

The runner only ever talks to the endpoint it was given (an emulator): every client gets it,
S3 with path-style addressing.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError ("" for any other error)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


class Aws:
    """boto3 clients for the endpoint (clients are thread-safe; the session is used only here)."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._session = boto3.session.Session(region_name=region)
        self._config = Config(retries={"mode": "standard", "max_attempts": 3})
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self.s3 = self.client("s3")
        self.lambda_ = self.client("lambda")
        self.ecs = self.client("ecs")
        self.sts = self.client("sts")

    def client(self, service: str, region: str | None = None) -> Any:
        region = region or self.region
        with self._lock:
            if (service, region) not in self._clients:
                config = self._config
                if service == "s3":
                    config = config.merge(Config(s3={"addressing_style": "path"}))
                self._clients[(service, region)] = self._session.client(
                    service, region_name=region, endpoint_url=self.endpoint_url, config=config
                )
            return self._clients[(service, region)]

    def credentials_env(self) -> dict[str, str]:
        creds = self._session.get_credentials()
        if creds is None:
            raise RuntimeError("no AWS credentials (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
        frozen = creds.get_frozen_credentials()
        env = {"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key}
        if frozen.token:
            env["AWS_SESSION_TOKEN"] = frozen.token
        return env

    def moto_api(self, path: str, body: dict[str, Any] | None = None) -> bytes:
        url = self.endpoint_url.rstrip("/") + path
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="POST" if data else "GET")  # noqa: S310 (the endpoint)
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.read()

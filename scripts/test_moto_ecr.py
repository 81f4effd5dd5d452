"""The emulator's ECR backed by a real registry (scripts/moto_server.py, its ECR section).

Each test starts Debian's docker-registry on loopback with the login moto's tokens carry
(AWS / <account>-auth-token, bcrypt in an htpasswd file, as scripts/container/env.sh does) and a
moto server of its own told about it with LEW_EMULATOR_ECR_REGISTRY. Images reach the registry
the way `docker push` sends them (the registry's HTTP API: blobs, then the manifest), with the
token from GetAuthorizationToken; what the tests then check is read back through ECR's API.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[1]
ACCOUNT = "123456789012"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"

needs_registry = pytest.mark.skipif(
    shutil.which("docker-registry") is None or shutil.which("htpasswd") is None,
    reason="docker-registry and htpasswd (apache2-utils) are installed by scripts/container/env.sh",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, ready: Any, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text(errors='replace')[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within 60 s")
        time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()  # noqa: S310 (http on loopback)
        return True
    except urllib.error.HTTPError:
        return True  # it answered (401 from the registry)
    except OSError:
        return False


def _start_moto(folder: Path, registry: str | None) -> tuple[subprocess.Popen[bytes], str]:
    """scripts/moto_server.py on a free port, told about `registry` (or about none)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "LEW_EMULATOR_ECR_REGISTRY"}
    if registry:
        env["LEW_EMULATOR_ECR_REGISTRY"] = registry
    log = folder / f"moto-{port}.log"
    script = str(REPO / "scripts" / "moto_server.py")
    moto = subprocess.Popen(
        [sys.executable, script, "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait("moto", lambda: _answers(f"{endpoint}/moto-api/"), moto, log)
    except BaseException:
        moto.terminate()
        moto.wait(timeout=30)
        raise
    return moto, endpoint


def _ecr(endpoint: str) -> Any:
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client("ecr", endpoint_url=endpoint, region_name="eu-west-1", **credentials)


@dataclass
class World:
    registry: str  # localhost:PORT
    ecr: Any  # boto3 ECR client on the emulator
    endpoint: str


@pytest.fixture
def world() -> Iterator[World]:
    with tempfile.TemporaryDirectory(prefix="lew-ecr-") as tmp:
        folder = Path(tmp)
        hashed = subprocess.run(
            ["htpasswd", "-niB", "AWS"],
            input=f"{ACCOUNT}-auth-token",
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        (folder / "htpasswd").write_text(hashed + "\n")
        port = _free_port()
        (folder / "config.yml").write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {folder}/data\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
            f"auth:\n  htpasswd:\n    realm: lew-test\n    path: {folder}/htpasswd\n"
        )
        registry_log = folder / "registry.log"
        registry = subprocess.Popen(
            ["docker-registry", "serve", str(folder / "config.yml")],
            stdout=registry_log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        moto = None
        try:
            _wait(
                "docker-registry",
                lambda: _answers(f"http://127.0.0.1:{port}/v2/"),
                registry,
                registry_log,
            )
            moto, endpoint = _start_moto(folder, f"localhost:{port}")
            ecr = _ecr(endpoint)
            yield World(f"localhost:{port}", ecr, endpoint)
        finally:
            for process in (moto, registry):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=30)


def _login(ecr: Any) -> tuple[str, str]:
    """What `docker login` gets from ECR: the proxy endpoint and the decoded user:password."""
    data = ecr.get_authorization_token()["authorizationData"][0]
    return data["proxyEndpoint"], base64.b64decode(data["authorizationToken"]).decode()


def _call(
    method: str, url: str, login: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, data=body or None, method=method)  # noqa: S310
    request.add_header("Authorization", "Basic " + base64.b64encode(login.encode()).decode())
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _blob(base: str, name: str, login: str, data: bytes) -> dict[str, Any]:
    status, headers, _ = _call("POST", f"{base}/v2/{name}/blobs/uploads/", login)
    assert status == 202, status
    location = headers["Location"]
    if location.startswith("/"):
        location = base + location
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    sep = "&" if "?" in location else "?"
    # (urllib would label the body a form, which the registry then reads as one.)
    binary = {"Content-Type": "application/octet-stream"}
    status, _, body = _call("PUT", f"{location}{sep}digest={digest}", login, data, binary)
    assert status == 201, (status, body)
    return {"digest": digest, "size": len(data)}


def push(world: World, name: str, tag: str, content: bytes) -> str:
    """Pushes a one-layer image as `docker push` does (with the login ECR hands out, to the
    repository URI's registry) and returns the digest the registry reports for the manifest."""
    endpoint, login = _login(world.ecr)
    uri = world.ecr.describe_repositories(repositoryNames=[name])["repositories"][0][
        "repositoryUri"
    ]
    host, path = uri.split("/", 1)
    assert endpoint == f"http://{host}"
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    layer_gz = gzip.compress(layer.getvalue(), mtime=0)
    diff_id = "sha256:" + hashlib.sha256(layer.getvalue()).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            **_blob(endpoint, path, login, config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                **_blob(endpoint, path, login, layer_gz),
            }
        ],
    }
    status, headers, body = _call(
        "PUT",
        f"{endpoint}/v2/{path}/manifests/{tag}",
        login,
        json.dumps(manifest).encode(),
        {"Content-Type": OCI_MANIFEST},
    )
    assert status == 201, (status, body)
    return headers["Docker-Content-Digest"]


def _repo(world: World) -> str:
    name = f"lew-ecr-{os.urandom(4).hex()}"
    world.ecr.create_repository(repositoryName=name)
    return name


@needs_registry
def test_the_repository_uri_and_the_login_lead_to_the_registry(world: World) -> None:
    name = f"lew-ecr-{os.urandom(4).hex()}"
    created = world.ecr.create_repository(repositoryName=name)["repository"]
    assert created["repositoryUri"] == f"{world.registry}/{name}"
    described = world.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert described["repositoryUri"] == f"{world.registry}/{name}"
    # The ARN stays ECR's.
    assert described["repositoryArn"] == f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/{name}"

    data = world.ecr.get_authorization_token()["authorizationData"][0]
    assert data["proxyEndpoint"] == f"http://{world.registry}"
    left = data["expiresAt"] - datetime.now(UTC)
    assert timedelta(hours=11, minutes=59) < left <= timedelta(hours=12), left
    endpoint, login = _login(world.ecr)
    assert login == f"AWS:{ACCOUNT}-auth-token"
    # The token is a login the registry takes (what `docker login` checks), another is not.
    assert _call("GET", f"{endpoint}/v2/", login)[0] == 200
    assert _call("GET", f"{endpoint}/v2/", "AWS:not-the-token")[0] == 401


@needs_registry
def test_an_image_pushed_to_the_registry_is_what_ecr_reports(world: World) -> None:
    name = _repo(world)
    # Nothing pushed yet: ECR knows no image and says so with its typed error.
    assert world.ecr.describe_images(repositoryName=name)["imageDetails"] == []
    with pytest.raises(ClientError) as missing:
        world.ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "v1"}])
    assert missing.value.response["Error"]["Code"] == "ImageNotFoundException"

    digest = push(world, name, "v1", b"one")
    [detail] = world.ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "v1"}])[
        "imageDetails"
    ]
    assert (detail["imageDigest"], detail["imageTags"]) == (digest, ["v1"])
    got = world.ecr.batch_get_image(repositoryName=name, imageIds=[{"imageDigest": digest}])
    [image] = got["images"]
    assert image["imageId"]["imageDigest"] == digest
    assert image["imageManifestMediaType"] == OCI_MANIFEST
    # The manifest ECR hands out is the one stored: its sha256 is the digest.
    assert "sha256:" + hashlib.sha256(image["imageManifest"].encode()).hexdigest() == digest

    # A second tag on the same manifest: one image with both tags.
    assert push(world, name, "latest", b"one") == digest
    [detail] = world.ecr.describe_images(repositoryName=name)["imageDetails"]
    assert sorted(detail["imageTags"]) == ["latest", "v1"]
    # The tag moved to other contents: ECR reports the new digest for it.
    moved = push(world, name, "latest", b"two")
    assert moved != digest
    [detail] = world.ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "latest"}])[
        "imageDetails"
    ]
    assert detail["imageDigest"] == moved
    listed = world.ecr.list_images(repositoryName=name)["imageIds"]
    assert sorted((i["imageTag"], i["imageDigest"]) for i in listed) == sorted(
        [("v1", digest), ("latest", moved)]
    )


@needs_registry
def test_deleting_a_repository_deletes_its_pushed_images(world: World) -> None:
    name = _repo(world)
    digest = push(world, name, "v1", b"contents")
    with pytest.raises(ClientError) as refused:
        world.ecr.delete_repository(repositoryName=name)
    assert refused.value.response["Error"]["Code"] == "RepositoryNotEmptyException"
    world.ecr.delete_repository(repositoryName=name, force=True)
    endpoint, login = _login(world.ecr)
    status, _, _ = _call(
        "GET",
        f"{endpoint}/v2/{name}/manifests/{digest}",
        login,
        headers={"Accept": OCI_MANIFEST},
    )
    assert status == 404
    # The same name again starts empty.
    world.ecr.create_repository(repositoryName=name)
    assert world.ecr.describe_images(repositoryName=name)["imageDetails"] == []


def test_without_a_registry_ecr_answers_as_moto_does() -> None:
    with tempfile.TemporaryDirectory(prefix="lew-ecr-") as tmp:
        moto, endpoint = _start_moto(Path(tmp), None)
        try:
            ecr = _ecr(endpoint)
            uri = ecr.create_repository(repositoryName="lew-plain")["repository"]["repositoryUri"]
            assert uri == f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/lew-plain"
            data = ecr.get_authorization_token()["authorizationData"][0]
            assert data["proxyEndpoint"] == f"https://{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"
        finally:
            moto.terminate()
            moto.wait(timeout=30)

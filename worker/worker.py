#!/usr/bin/env python3
"""The lew worker: takes render jobs off an SQS queue and ray traces them with POV-Ray.

It runs as the container of lew's ECS task (and, in tests, as a local process). It long-polls
the queue, and for each job downloads the scene zip from S3, extracts it safely, runs POV-Ray
headless and confined, and writes the result back to S3:

    scenes/<job>/<name>.zip  ->  renders/<job>/<name>.png           the image
                                 renders/<job>/<name>.log           POV-Ray's output
                                 renders/<job>/<name>.error.txt     on a scene error
                                 renders/<job>/<name>.started.json  when the job is picked up

A job may be part of its scene (lew render splits scenes, the launcher queues one job a part):
frames of an animation, each to renders/<job>/<name>/<name><n>.png (a failed frame to
<name><n>.error.txt beside it), or one band of rows of a still, kept in
renders/<job>/<name>.parts/ until the worker that uploads the last band stitches <name>.png
and deletes the parts. A whole job for an animation (an upload not made by lew) renders every
frame. Markers and logs of parts live in renders/<job>/<name>.parts/.

A scene error (bad zip, no .ini, POV-Ray failure, timeout) is final: the error is uploaded and
the message deleted. An infrastructure error (S3, SQS, disk) leaves the message on the queue,
invisible for a short backoff (LEW_RETRY_DELAY_S, shorter than the long poll), so this worker
takes it again on its next poll and, after the queue's maximum receives, it lands in the
dead-letter queue. A job whose PNG exists is skipped, at its start and again before anything
is uploaded: when a stalled worker's heartbeat lapsed and another worker rendered the job
meanwhile, the late attempt uploads nothing (neither its picture nor an error) over the other's
result. The worker exits 0 after an empty poll once LEW_IDLE_S have passed since its last job
(0: after the first empty poll), and on SIGTERM hands an unfinished job back to the queue (a
finished one is uploaded and deleted first) and exits.

Standard library and boto3 only (Debian bookworm's python3-boto3 1.26): the endpoint override is
passed to every client explicitly because that boto3 does not read AWS_ENDPOINT_URL itself.
Every event is one JSON line on stdout.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pwd
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote_plus

MIB = 1024 * 1024
SYSTEM_INCLUDE_DIR = "/usr/share/povray-3.7/include"
OUTPUT_NAME = "render.png"
WORKER_INI_NAME = "lew-worker.ini"
LOG_TAIL_LINES = 40
MAX_REASON_CHARS = 500
# POV-Ray's output is uploaded as the .log; a scene that #debug-spams is cut to head + tail.
LOG_UPLOAD_HEAD = 1 * MIB
LOG_UPLOAD_TAIL = 4 * MIB
# Name components longer than this cannot be created on Linux file systems.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024
COPY_CHUNK = 256 * 1024
# How often the worker looks at a running POV-Ray, and how long SIGTERM has to work.
POLL_S = 0.25
STOP_GRACE_S = 5.0
# Consecutive failed receives before the worker gives up (the launcher starts a new task).
MAX_RECEIVE_FAILURES = 5
# The most bands a still is split into (lew's parts::MAX_BANDS).
MAX_BANDS = 64
# The work dir between job folder creations, and a job folder once the worker's own files are in
# it: nobody may create, remove or replace anything there, not even the worker's own user (as
# which POV-Ray runs in the image, and whose scenes cannot chmod); the render user may pass
# through to the job folder's scene/ and out/, the only places it can write.
LOCKED_DIR_MODE = 0o511
# The same folders while the worker itself creates or removes something in them.
OPEN_DIR_MODE = 0o711
# Why a job whose PNG appeared while this worker rendered it uploads nothing.
SUPERSEDED = "output exists (written meanwhile by another attempt)"
# Folders outside the job folder that a scene can write to (mode 1777). In the image, under the
# task definition's read-only root filesystem, these are the container's own /dev/shm and
# /dev/mqueue mounts, which no task definition setting removes on Fargate (see
# Worker.leftovers_removed); TEMP_DIRS are writable only when the worker runs outside such a
# container.
SHARED_MEMORY_DIRS = ("/dev/shm", "/dev/mqueue")
TEMP_DIRS = ("/tmp", "/var/tmp")
# How deep the worker looks into folders anyone may write to inside those (/tmp/.X11-unix ...).
MAX_SHARED_DEPTH = 4


# ---------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class Settings:
    """The worker's environment contract (lew's task definition sets these)."""

    queue_url: str
    input_prefix: str = "scenes/"
    output_prefix: str = "renders/"
    render_timeout_s: float = 3600
    wait_time_s: int = 20
    visibility_timeout_s: int = 900
    heartbeat_s: float = 60
    retry_delay_s: int = 10
    idle_s: float = 0
    work_dir: Path = Path("/scratch")
    povray_threads: int = 1
    povray: str = "povray"
    max_zip_bytes: int = 256 * MIB
    max_files: int = 1000
    max_unpacked_bytes: int = 1024 * MIB
    region: str | None = None
    endpoint_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Reads the settings; raises ValueError naming the variable that is missing or bad."""

        def get(name: str, default: str) -> str:
            value = env.get(name, "")
            return value if value != "" else default

        def number(
            name: str,
            default: float,
            kind: type = int,
            minimum: float = 0,
            maximum: float | None = None,
        ) -> Any:
            raw = get(name, str(default))
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a valid number") from None
            if value < minimum or (maximum is not None and value > maximum):
                limits = f"at least {minimum}" if maximum is None else f"{minimum}..{maximum}"
                raise ValueError(f"{name}={raw!r} must be {limits}")
            return value

        queue_url = env.get("LEW_QUEUE_URL", "")
        if not queue_url:
            raise ValueError("LEW_QUEUE_URL is not set")
        return cls(
            queue_url=queue_url,
            input_prefix=env.get("LEW_INPUT_PREFIX", "scenes/"),
            output_prefix=env.get("LEW_OUTPUT_PREFIX", "renders/"),
            render_timeout_s=number("LEW_RENDER_TIMEOUT_S", 3600, float, 0.001),
            # SQS's own limits: long polls up to 20 s, visibility up to 12 hours.
            wait_time_s=number("LEW_WAIT_TIME_S", 20, int, 0, 20),
            visibility_timeout_s=number("LEW_VISIBILITY_TIMEOUT_S", 900, int, 0, 43200),
            heartbeat_s=number("LEW_HEARTBEAT_S", 60, float, 0.1),
            # After an infrastructure error the message comes back this much later: within the
            # worker's next long poll, so the same worker retries it.
            retry_delay_s=number("LEW_RETRY_DELAY_S", 10, int, 0, 43200),
            # How long a worker keeps polling after its last job (a warm worker saves the next
            # render Fargate's start); 0: it exits after the first empty poll.
            idle_s=number("LEW_IDLE_S", 0, float, 0, 3600),
            work_dir=Path(get("LEW_WORK_DIR", "/scratch")).absolute(),
            povray_threads=number("LEW_POVRAY_THREADS", default_threads(), int, 1),
            povray=get("LEW_POVRAY", "povray"),
            max_zip_bytes=number("LEW_MAX_ZIP_BYTES", 256 * MIB, int, 1),
            max_files=number("LEW_MAX_FILES", 1000, int, 1),
            max_unpacked_bytes=number("LEW_MAX_UNPACKED_BYTES", 1024 * MIB, int, 1),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        )


def default_threads() -> int:
    """The CPUs this process may run on (the task's share rather than the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------
# Logging


def log(event: str, **fields: Any) -> None:
    """One JSON line per event on stdout."""
    record = {"event": event, **{k: v for k, v in fields.items() if v is not None}}
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# Errors


class SceneError(Exception):
    """A problem with the scene itself: final, reported in <name>.error.txt."""

    def __init__(self, reason: str, output: str | None = None) -> None:
        super().__init__(reason)
        self.reason = one_line(reason)
        self.output = output  # POV-Ray's output when it ran


class BadMessage(Exception):
    """A message body the worker cannot use (garbage, S3 test event): logged and deleted."""


class Interrupted(Exception):
    """SIGTERM arrived: the job goes back to the queue."""


def one_line(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 3] + "..."
    return text


# ---------------------------------------------------------------------------------------------
# Pure functions: jobs, keys, zip, ini, POV-Ray output


@dataclass(frozen=True)
class Part:
    """What of its scene a job renders, as the launcher split it (see lew's src/parts.rs):
    frames `frames[0]..frames[1]` of an animation, or band `band` (from 1) of the `rows` bands
    of a still (1-based, inclusive row ranges, top to bottom)."""

    frames: tuple[int, int] | None = None
    band: int | None = None
    rows: tuple[tuple[int, int], ...] = ()

    def band_rows(self) -> tuple[int, int]:
        assert self.band is not None
        return self.rows[self.band - 1]


@dataclass(frozen=True)
class Job:
    bucket: str
    key: str
    job_id: str | None = None
    size: int | None = None
    etag: str | None = None
    part: Part | None = None


@dataclass(frozen=True)
class OutputKeys:
    name: str  # the scene's name: the zip's file name without .zip
    job_id: str  # the <job> folder of the key (or the name when there is none)
    png: str
    log: str
    error: str
    started: str
    base: str = ""  # renders/<job>/<name>: the others are this plus a suffix

    # An animation's frames: renders/<job>/<name>/<name><n>.png, numbered as POV-Ray numbers
    # its files. A part's files (bands, markers, logs) live in renders/<job>/<name>.parts/ and
    # a still's bands are deleted once the image is stitched.

    def frame(self, frame: int, digits: int) -> str:
        return f"{self.base}/{self.name}{frame:0{digits}d}.png"

    def frame_error(self, frame: int, digits: int) -> str:
        return f"{self.base}/{self.name}{frame:0{digits}d}.error.txt"

    def frames_prefix(self) -> str:
        return f"{self.base}/{self.name}"

    def parts_prefix(self) -> str:
        return f"{self.base}.parts/"

    def band(self, index: int) -> str:
        return f"{self.base}.parts/band-{index}.png"

    def band_log(self, index: int) -> str:
        return f"{self.base}.parts/band-{index}.log"

    def frames_log(self, first: int, last: int) -> str:
        return f"{self.base}.parts/frames-{first}-{last}.log"

    def started_for(self, part: Part | None) -> str:
        if part is not None and part.band is not None:
            return f"{self.base}.parts/band-{part.band}.started.json"
        if part is not None and part.frames is not None:
            first, last = part.frames
            return f"{self.base}.parts/frames-{first}-{last}.started.json"
        return self.started


def output_keys(key: str, input_prefix: str, output_prefix: str) -> OutputKeys:
    """`scenes/<job>/<name>.zip` -> `renders/<job>/<name>.png` and friends.

    Raises ValueError for a key outside the input prefix or not ending in `.zip`.
    """
    if not key.startswith(input_prefix):
        raise ValueError(f"key {key!r} is not under the input prefix {input_prefix!r}")
    relative = key[len(input_prefix) :]
    if not relative.lower().endswith(".zip"):
        raise ValueError(f"key {key!r} does not end in .zip")
    stem = relative[:-4]
    name = stem.rsplit("/", 1)[-1]
    if not name:
        raise ValueError(f"key {key!r} has no file name before .zip")
    job_id = stem.split("/", 1)[0] if "/" in stem else name
    base = output_prefix + stem
    return OutputKeys(
        name=name,
        job_id=job_id,
        png=base + ".png",
        log=base + ".log",
        error=base + ".error.txt",
        started=base + ".started.json",
        base=base,
    )


def parse_body(body: str) -> list[Job]:
    """The jobs in a message: lew's job body, an S3 event notification (every record), or
    Lambda's on-failure record of a launch (the S3 event it could not queue).

    Raises BadMessage for anything else (including S3's test event).
    """
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        raise BadMessage("message body is not JSON") from None
    if not isinstance(data, dict):
        raise BadMessage("message body is not a JSON object")
    if data.get("Event") == "s3:TestEvent":
        raise BadMessage("S3 test event")
    if "Records" in data:
        return _parse_s3_event(data["Records"])
    # A launch that failed for good reaches the dead-letter queue as Lambda's on-failure record
    # with the S3 event as its request; redriven to the jobs queue, it is that event's jobs.
    payload = data.get("requestPayload")
    if "requestContext" in data and isinstance(payload, dict) and "Records" in payload:
        return _parse_s3_event(payload["Records"])
    if "version" in data or "key" in data:
        return [_parse_lew_job(data)]
    raise BadMessage("message body is neither a lew job nor an S3 event")


def _parse_lew_job(data: dict[str, Any]) -> Job:
    if data.get("version") != 1:
        raise BadMessage(f"unsupported job version {data.get('version')!r}")
    bucket, key = data.get("bucket"), data.get("key")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise BadMessage("lew job without bucket or key")
    size = data.get("size")
    etag = data.get("etag")
    job_id = data.get("job_id")
    return Job(
        bucket=bucket,
        key=key,
        job_id=str(job_id) if job_id else None,
        size=size if isinstance(size, int) else None,
        etag=etag if isinstance(etag, str) else None,
        part=_parse_part(data.get("part")),
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _parse_part(data: Any) -> Part | None:
    """A job's part: `{"frames": [a, b]}` or `{"band": i, "rows": [[s, e], ...]}`."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise BadMessage("lew job part is not an object")
    frames = data.get("frames")
    if frames is not None:
        if not (isinstance(frames, list) and len(frames) == 2 and all(map(_is_int, frames))):
            raise BadMessage(f"lew job part frames {frames!r} is not [first, last]")
        if frames[1] < frames[0] or frames[1] - frames[0] >= MAX_FRAMES:
            raise BadMessage(f"lew job part frames {frames!r} is not a range of frames")
        return Part(frames=(frames[0], frames[1]))
    band, rows = data.get("band"), data.get("rows")
    if not isinstance(rows, list) or not rows or len(rows) > MAX_BANDS:
        raise BadMessage(f"lew job part rows {rows!r} is not a list of bands")
    parsed: list[tuple[int, int]] = []
    for pair in rows:
        if not (isinstance(pair, list) and len(pair) == 2 and all(map(_is_int, pair))):
            raise BadMessage(f"lew job part rows {rows!r} is not a list of [first, last] rows")
        if pair[0] < 1 or pair[1] < pair[0] or (parsed and pair[0] != parsed[-1][1] + 1):
            raise BadMessage(f"lew job part rows {rows!r} are not consecutive bands")
        parsed.append((pair[0], pair[1]))
    if not _is_int(band) or not 1 <= band <= len(parsed):
        raise BadMessage(f"lew job part band {band!r} is not one of the {len(parsed)} bands")
    return Part(band=band, rows=tuple(parsed))


def _parse_s3_event(records: Any) -> list[Job]:
    if not isinstance(records, list):
        raise BadMessage("S3 event Records is not a list")
    jobs = []
    for record in records:
        if not isinstance(record, dict):
            continue
        event_name = record.get("eventName", "ObjectCreated:")
        if not isinstance(event_name, str):
            continue
        if not event_name.removeprefix("s3:").startswith("ObjectCreated:"):
            continue
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        obj = s3.get("object") or {}
        key = obj.get("key")
        if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
            continue
        size = obj.get("size")
        etag = obj.get("eTag")
        jobs.append(
            Job(
                bucket=bucket,
                key=unquote_plus(key),
                size=size if isinstance(size, int) else None,
                etag=etag if isinstance(etag, str) else None,
            )
        )
    if not jobs:
        raise BadMessage("S3 event without ObjectCreated records")
    return jobs


_DRIVE = re.compile(r"^[A-Za-z]:")


def _entry_parts(name: str) -> tuple[str, ...]:
    """The path components of a zip entry name, or SceneError when it is unsafe."""
    if "\x00" in name:
        raise SceneError(f"unsafe path in zip: {name!r} contains a NUL byte")
    if "\\" in name:
        raise SceneError(f"unsafe path in zip: {name!r} contains a backslash")
    if name.startswith("/"):
        raise SceneError(f"unsafe path in zip: {name!r} is absolute")
    if _DRIVE.match(name):
        raise SceneError(f"unsafe path in zip: {name!r} starts with a drive letter")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise SceneError(f"unsafe path in zip: {name!r} contains '..'")
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in parts):
        raise SceneError(f"unsafe path in zip: {name[:80]!r}... has a name that is too long")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise SceneError(f"unsafe path in zip: {name[:80]!r}... is too long")
    return parts


def safe_extract(
    zip_path: Path, dest: Path, max_files: int, max_unpacked_bytes: int
) -> list[PurePosixPath]:
    """Extracts a scene zip into the existing folder `dest`; returns the files written.

    Rejects (SceneError): not a zip, corrupt, empty, encrypted, absolute paths, `..`, drive
    letters, backslashes, symlinks and other non-regular entries, duplicate paths, more than
    `max_files` entries, and more than `max_unpacked_bytes` in total, counted while
    decompressing (declared sizes can lie). Files get mode 0644 and folders 0755, whatever the
    zip says; nothing but regular files and folders is ever created.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise SceneError("the scene is not a zip file (or the zip is corrupt)") from None
    except (OSError, ValueError, EOFError, NotImplementedError) as exc:
        if isinstance(exc, OSError) and exc.filename is not None:
            raise  # our own file: an infrastructure problem
        raise SceneError(f"the zip cannot be read: {exc}") from None
    with archive:
        entries = archive.infolist()
        if not entries:
            raise SceneError("the zip is empty")
        if len(entries) > max_files:
            raise SceneError(
                f"the zip has {len(entries)} entries, more than the limit of {max_files}"
            )
        declared = sum(info.file_size for info in entries)
        if declared > max_unpacked_bytes:
            raise SceneError(
                f"the zip unpacks to {declared} bytes, more than the limit of {max_unpacked_bytes}"
            )
        plan = _plan_extraction(entries)
        written: list[PurePosixPath] = []
        budget = max_unpacked_bytes
        for info, parts, is_dir in plan:
            target = dest.joinpath(*parts)
            if is_dir:
                _make_dirs(dest, parts)
                continue
            _make_dirs(dest, parts[:-1])
            budget -= _extract_file(archive, info, target, budget, max_unpacked_bytes)
            written.append(PurePosixPath(*parts))
    if not written:
        raise SceneError("the zip contains no files")
    return written


def _plan_extraction(
    entries: list[zipfile.ZipInfo],
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...], bool]]:
    plan = []
    files: set[tuple[str, ...]] = set()
    dirs: set[tuple[str, ...]] = set()
    for info in entries:
        name = entry_name(info)
        parts = _entry_parts(name)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise SceneError(f"unsafe entry in zip: {name!r} is a symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise SceneError(f"unsafe entry in zip: {name!r} is not a regular file or folder")
        is_dir = name.endswith("/") or kind == stat.S_IFDIR
        if info.flag_bits & 0x1:
            raise SceneError(
                f"the zip entry {name!r} is encrypted; encrypted zips are not supported"
            )
        if not parts:
            if is_dir:
                continue
            raise SceneError(f"unsafe path in zip: {name!r} has no file name")
        if is_dir:
            dirs.add(parts)
        else:
            if parts in files:
                raise SceneError(f"the zip contains {name!r} twice")
            files.add(parts)
        for depth in range(1, len(parts)):
            dirs.add(parts[:depth])
        plan.append((info, parts, is_dir))
    clash = files & dirs
    if clash:
        name = "/".join(sorted(clash)[0])
        raise SceneError(f"the zip contains {name!r} both as a file and as a folder")
    return plan


# General purpose bit 11: the entry's name is UTF-8 (else CP437, by the zip spec).
_ZIP_UTF8_FLAG = 0x800


def entry_name(info: zipfile.ZipInfo) -> str:
    """An entry's name as lew's own zip reader (the Rust side) reads it.

    Without the UTF-8 flag, Python decodes a name as CP437, which the zip spec says it is; but
    Info-ZIP's `zip` and others write UTF-8 names without setting the flag ("scène.ini" would
    come out as "sc├¿ne.ini"). A name whose bytes are valid UTF-8 is taken as UTF-8; other
    bytes stay CP437.
    """
    name = info.filename
    if info.flag_bits & _ZIP_UTF8_FLAG:
        return name
    try:
        return name.encode("cp437").decode("utf-8")
    except UnicodeError:
        return name


def _make_dirs(dest: Path, parts: tuple[str, ...]) -> None:
    current = dest
    for part in parts:
        current = current / part
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                raise SceneError(
                    f"the zip contains {part!r} both as a file and as a folder"
                ) from None


def _extract_file(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, limit: int
) -> int:
    """Writes one entry, counting real bytes against the budget; returns the bytes written."""
    written = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o644)
    with os.fdopen(fd, "wb") as out:
        try:
            with archive.open(info) as src:
                while True:
                    chunk = src.read(COPY_CHUNK)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > budget:
                        raise SceneError(
                            f"the zip unpacks to more than {limit} bytes (the limit); "
                            f"stopped at {info.filename!r}"
                        )
                    out.write(chunk)
        except zipfile.BadZipFile as exc:
            raise SceneError(f"the zip is corrupt: {exc}") from None
        except (zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
            raise SceneError(f"the zip entry {info.filename!r} cannot be read: {exc}") from None
    return written


def _is_junk(path: PurePosixPath) -> bool:
    """macOS Finder's resource-fork copies, which are not part of the scene."""
    return path.parts[0] == "__MACOSX" or path.name.startswith("._")


def choose_ini(files: list[PurePosixPath], name: str) -> PurePosixPath:
    """The scene's .ini: the one named like the zip (`<name>.ini`, any case, the shallowest
    one), else the only .ini; SceneError otherwise."""
    inis = sorted(
        (f for f in files if f.suffix.lower() == ".ini" and not _is_junk(f)),
        key=lambda f: (len(f.parts), str(f)),
    )
    if not inis:
        raise SceneError("no .ini file in the zip")
    wanted = f"{name}.ini".lower()
    named = [f for f in inis if f.name.lower() == wanted]
    if named:
        shallowest = [f for f in named if len(f.parts) == len(named[0].parts)]
        if len(shallowest) > 1:
            listed = ", ".join(str(f) for f in shallowest)
            raise SceneError(f"{len(shallowest)} files named {name}.ini in the zip: {listed}")
        return named[0]
    if len(inis) == 1:
        return inis[0]
    listed = ", ".join(str(f) for f in inis[:20]) + (", ..." if len(inis) > 20 else "")
    raise SceneError(f"{len(inis)} .ini files in the zip and none is named {name}.ini: {listed}")


POVRAY_ERROR_MARKERS = (
    "Parse Error:",
    "Cannot open include file",
    "Cannot open input file",
    "Problem with option setting",
)
POVRAY_WRAP = 80


def povray_messages(output: str) -> list[str]:
    """POV-Ray's output with its 80-column wrapping undone: one string per message.

    POV-Ray breaks a long message before a space (the next line starts with that space) or,
    when a word does not fit, hard after 80 characters.
    """
    messages: list[str] = []
    previous_full = False
    for line in output.splitlines():
        wrapped_at_space = line.startswith(" ") and not line.startswith("  ")
        if messages and messages[-1].strip() and line and (previous_full or wrapped_at_space):
            messages[-1] += line
        else:
            messages.append(line)
        previous_full = len(line) >= POVRAY_WRAP
    return messages


def povray_error(output: str, returncode: int | None = None) -> str:
    """The one-line reason for a failed POV-Ray run."""
    messages = povray_messages(output)
    for index, message in enumerate(messages):
        if "Possible Parse Error" in message:
            continue
        if any(marker in message for marker in POVRAY_ERROR_MARKERS):
            reason = message.strip()
            if "Cannot open input file" in message and index > 0:
                hint = messages[index - 1]
                if "Possible Parse Error:" in hint:
                    reason += " (" + hint.split("Possible Parse Error:", 1)[1].strip() + ")"
            return one_line(reason)
    for message in messages:
        lowered = message.lower()
        if "error" in lowered and "possible parse error" not in lowered:
            return one_line(message.strip())
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"POV-Ray was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    return f"POV-Ray failed (exit status {returncode})"


_PHASE = re.compile(r"^==== \[")
# Debian's POV-Ray says this on every run; it is never the problem.
_NOISE = "cannot open the user configuration file"


def error_block(output: str, lines: int = LOG_TAIL_LINES) -> str:
    """The lines of POV-Ray's output that belong to its error, not its option banner: what
    follows the last phase header (`==== [Parsing...] ====`), else what follows the first
    fatal message (an option problem comes before any phase), else the last lines."""
    all_lines = [line for line in output.rstrip().splitlines() if _NOISE not in line]
    start = None
    for number, line in enumerate(all_lines):
        if _PHASE.match(line):
            start = number + 1
    if start is None:
        start = next(
            (n for n, line in enumerate(all_lines) if any(m in line for m in POVRAY_ERROR_MARKERS)),
            max(0, len(all_lines) - lines),
        )
    return "\n".join(all_lines[start:][-lines:])


def error_text(error: SceneError) -> str:
    """The body of <name>.error.txt: the reason, a blank line, POV-Ray's lines about it."""
    if error.output is None:
        return error.reason + "\n"
    return f"{error.reason}\n\n{error_block(error.output)}\n"


@dataclass(frozen=True)
class Frames:
    """Frames `first..last` of an animation declared as Initial..Final in the scene's .ini."""

    initial: int
    final: int
    first: int
    last: int


def worker_ini(
    output_file: Path,
    library_paths: list[Path],
    size: tuple[int, int],
    frames: Frames | None = None,
    rows: tuple[int, int] | None = None,
) -> str:
    """The .ini given after the scene's own, overriding what must not be the scene's choice.

    `size` is the image size check_image_size accepted: restated here, it is the size POV-Ray
    renders, whatever an .ini included by the scene's own says. A still is frame 1 of 1; an
    animation's frames are restated as the scene's .ini declared them, and the subset picks the
    job's frames: POV-Ray then gives each frame the clock value it has in the whole animation.
    `rows` renders one band (POV-Ray writes the whole image, black outside the band).
    """
    width, height = size
    lines = [
        "; written by the lew worker; overrides the scene's .ini",
        "Display=off",
        f"Width={width}",
        f"Height={height}",
        "Pause_When_Done=off",
        "Output_To_File=on",
        "Output_File_Type=N",
        f'Output_File_Name="{output_file}"',
    ]
    if frames is None:
        lines += ["Initial_Frame=1", "Final_Frame=1"]
    else:
        lines += [
            f"Initial_Frame={frames.initial}",
            f"Final_Frame={frames.final}",
            f"Subset_Start_Frame={frames.first}",
            f"Subset_End_Frame={frames.last}",
        ]
    if rows is not None:
        lines += [f"Start_Row={rows[0]}", f"End_Row={rows[1]}"]
    lines += [f'Library_Path="{path}"' for path in library_paths]
    for command in (
        "Pre_Scene_Command",
        "Pre_Frame_Command",
        "Post_Frame_Command",
        "Post_Scene_Command",
        "User_Abort_Command",
        "Fatal_Error_Command",
    ):
        lines.append(f"{command}=")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Process state: SIGTERM and the running POV-Ray


@dataclass
class StopState:
    requested: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen[bytes] | None = None

    def handle(self, signum: int, _frame: object) -> None:
        # No logging here: the handler may interrupt a write to stdout.
        self.requested.set()
        if self.process is not None:
            kill_group(self.process, signal.SIGTERM)

    def check(self) -> None:
        if self.requested.is_set():
            raise Interrupted()


def kill_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


# The largest image a scene may ask for: 100 megapixels (e.g. 12000x8000), and 32768 pixels a
# side. A 100000x100000 render would fill the task's memory and disk long before its timeout.
MAX_PIXELS = 100_000_000
MAX_SIDE = 32768
# POV-Ray's size where no .ini sets one (its built-in default, and Debian's povray.ini).
DEFAULT_SIZE = (800, 600)
# POV-Ray 3.7 renders (and anti-aliases) in blocks of this many rows and columns.
DEFAULT_BLOCK = 32
# The most frames one scene may have (lew's ini::MAX_FRAMES).
MAX_FRAMES = 10_000
_SECTION_LABEL = re.compile(r"^\s*\[")
_SETTING = re.compile(r"^\s*([A-Za-z_]+)\s*=\s*(.*)$")
_NUMBER = re.compile(r"^[-+]?[0-9.]*")
# .ini setting names (lower case) and switch names, longest first, of what the worker acts on;
# None for switches that look alike but set something else (+KF is the final clock).
_SETTINGS = {
    "width": "width",
    "height": "height",
    "initial_frame": "initial_frame",
    "final_frame": "final_frame",
    "subset_start_frame": "subset_start",
    "subset_end_frame": "subset_end",
    "frame_step": "frame_step",
    "render_block_size": "block_size",
}
_SWITCHES = (
    ("kfi", "initial_frame"),
    ("kff", "final_frame"),
    ("stp", "frame_step"),
    ("bs", "block_size"),
    ("sf", "subset_start"),
    ("ef", "subset_end"),
    ("ki", None),
    ("kf", None),
    ("sr", None),
    ("er", None),
    ("sc", None),
    ("ec", None),
    ("w", "width"),
    ("h", "height"),
)
_NAMES = {
    "width": "Width",
    "height": "Height",
    "initial_frame": "Initial_Frame",
    "final_frame": "Final_Frame",
    "subset_start": "Subset_Start_Frame",
    "subset_end": "Subset_End_Frame",
    "frame_step": "Frame_Step",
    "block_size": "Render_Block_Size",
}


@dataclass(frozen=True)
class IniSettings:
    """What a scene's .ini asks for that the worker acts on (lew's src/ini.rs reads the same)."""

    width: int = DEFAULT_SIZE[0]
    height: int = DEFAULT_SIZE[1]
    initial_frame: int = 1
    final_frame: int = 1
    subset_start: int | None = None
    subset_end: int | None = None
    block_size: int = DEFAULT_BLOCK

    def is_animation(self) -> bool:
        """More than one frame in Initial..Final (a one-frame subset is still numbered)."""
        return self.final_frame > self.initial_frame

    def frames(self) -> tuple[int, int]:
        """The frames POV-Ray would render: Initial..Final, narrowed by the subset."""
        first = self.initial_frame if self.subset_start is None else self.subset_start
        last = self.final_frame if self.subset_end is None else self.subset_end
        return max(first, self.initial_frame), min(last, self.final_frame)

    def digits(self) -> int:
        """Digits of a frame number in POV-Ray's file names: as many as the final frame needs."""
        return len(str(max(self.final_frame, 0)))


def ini_settings(ini_text: str) -> IniSettings:
    """The settings an .ini asks for (`Key=value` or `+X` switches; the last one wins).

    Only the lines before the first `[section]` label count: POV-Ray reads no further in an .ini
    named without a section, as the worker names the scene's. What an .ini included from this
    one says does not count either: the worker's own .ini restates these (worker_ini).
    SceneError for what lew cannot honour (a fractional subset, a frame step, negative frames).
    """
    values: dict[str, int] = {}
    for raw in ini_text.splitlines():
        if _SECTION_LABEL.match(raw):
            break
        line = raw.split(";", 1)[0]
        setting = _SETTING.match(line)
        if setting and setting.group(1).lower() in _SETTINGS:
            _set(values, _SETTINGS[setting.group(1).lower()], setting.group(2).strip())
        for word in line.split():
            if word[:1] not in "+-" or len(word) < 2:
                continue
            switch = word[1:]
            for prefix, field_name in _SWITCHES:
                if switch.lower().startswith(prefix):
                    value = switch[len(prefix) :]
                    if field_name and value and all(c.isdigit() or c == "." for c in value):
                        _set(values, field_name, value)
                    break
    settings = IniSettings(
        width=max(values.get("width", DEFAULT_SIZE[0]), 0),
        height=max(values.get("height", DEFAULT_SIZE[1]), 0),
        initial_frame=values.get("initial_frame", 1),
        final_frame=values.get("final_frame", 1),
        subset_start=values.get("subset_start"),
        subset_end=values.get("subset_end"),
        block_size=min(max(values.get("block_size", DEFAULT_BLOCK), 4), 1 << 16),
    )
    _check_frames(settings)
    return settings


def _set(values: dict[str, int], field_name: str, value: str) -> None:
    name = _NAMES[field_name]
    number = _NUMBER.match(value)
    text = number.group(0) if number else ""
    if "." in text and field_name in ("subset_start", "subset_end"):
        raise SceneError(
            f"{name}={value}: a fraction of the animation is not supported; give a frame "
            "number, or choose frames with `lew render --frames`"
        )
    try:
        n = int(text.lstrip("+"))
    except ValueError:
        return  # POV-Ray refuses it itself, with its own message
    if field_name == "frame_step":
        if n != 1:
            raise SceneError(
                f"{name}={value}: lew renders every frame of an animation; remove {name}, or "
                "choose frames with `lew render --frames`"
            )
        return
    values[field_name] = n


def _check_frames(s: IniSettings) -> None:
    if s.initial_frame < 0 or s.final_frame < 0:
        raise SceneError(
            f"Initial_Frame={s.initial_frame} / Final_Frame={s.final_frame}: lew renders frames "
            "numbered from 0 up"
        )
    if s.final_frame < s.initial_frame:
        raise SceneError(
            f"Final_Frame={s.final_frame} comes before Initial_Frame={s.initial_frame}"
        )
    if s.is_animation():
        first, last = s.frames()
        if last < first:
            raise SceneError(
                "Subset_Start_Frame/Subset_End_Frame select no frame of "
                f"{s.initial_frame}-{s.final_frame}"
            )
        if last - first + 1 > MAX_FRAMES:
            raise SceneError(
                f"the animation has {last - first + 1} frames; lew renders at most {MAX_FRAMES} "
                "per scene (choose some with `lew render --frames`)"
            )


def declared_size(ini_text: str) -> tuple[int, int]:
    """The image size an .ini asks for, POV-Ray's 800x600 where it says nothing."""
    settings = ini_settings(ini_text)
    return settings.width, settings.height


def check_image_size(ini_text: str) -> tuple[int, int]:
    """The image size the scene asks for (which the worker's own .ini then restates);
    SceneError when it is larger than the worker renders."""
    width, height = declared_size(ini_text)
    check_size((width, height))
    return width, height


def check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise SceneError(
            f"the scene asks for a {width}x{height} image; the limit is {MAX_SIDE} pixels a "
            f"side and {MAX_PIXELS // 1_000_000} megapixels"
        )


# No file the worker or POV-Ray writes may grow past this (a runaway scene gets SIGXFSZ):
# well above the largest zip, unpacked scene or image, well below the task's 20 GiB of disk.
MAX_FILE_BYTES = 4 * 1024 * MIB


def limit_file_size() -> None:
    with contextlib.suppress(OSError, ValueError):
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        soft = MAX_FILE_BYTES if hard == resource.RLIM_INFINITY else min(MAX_FILE_BYTES, hard)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def make_non_dumpable() -> None:
    """So a same-uid POV-Ray cannot read this process's /proc/<pid>/environ or ptrace it."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_dumpable = 4
        libc.prctl(pr_set_dumpable, 0, 0, 0, 0)


@dataclass(frozen=True)
class RenderUser:
    """Who POV-Ray runs as: `nobody` when the worker is root, else the worker's own user."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def detect(cls) -> RenderUser:
        if os.geteuid() != 0:
            return cls()
        entry = pwd.getpwnam("nobody")
        return cls(uid=entry.pw_uid, gid=entry.pw_gid)

    @property
    def runs_as(self) -> int:
        """The uid POV-Ray runs as."""
        return os.geteuid() if self.uid is None else self.uid

    def give(self, path: Path) -> None:
        """Hands a folder tree to the render user (only it, and root, can then write there)."""
        if self.uid is None or self.gid is None:
            return
        os.lchown(path, self.uid, self.gid)
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), self.uid, self.gid)


@dataclass(frozen=True)
class RenderResult:
    image: Path
    output: str
    log_path: Path
    seconds: float


@dataclass(frozen=True)
class PovrayRun:
    """How one POV-Ray process ended."""

    returncode: int | None
    timed_out: bool
    output: str
    log_path: Path
    seconds: float


def _run_povray(
    settings: Settings,
    povray: str,
    ini: Path,
    scene_root: Path,
    private_dir: Path,
    user: RenderUser,
    stop: StopState,
    own_ini_text: str,
    label: str,
    timeout_s: float,
) -> PovrayRun:
    """Runs POV-Ray once with the scene's ini plus the worker's own (`own_ini_text`).

    `private_dir` (the job folder) holds the worker's own .ini and POV-Ray's log, both
    read-only; while POV-Ray runs it is locked (LOCKED_DIR_MODE), so POV-Ray, even as the
    worker's own user, can write only in `scene_root` and its output folder. `label` tells the
    files of several runs of one job apart.
    """
    if '"' in ini.name or any(ord(c) < 32 for c in ini.name):
        raise SceneError(f"the .ini file name {ini.name!r} cannot be passed to POV-Ray")
    # A later run of the same job: the worker writes its files, then locks the folder again.
    os.chmod(private_dir, OPEN_DIR_MODE)
    own_ini = private_dir / WORKER_INI_NAME.replace(".ini", f"{label}.ini")
    with _create_read_only(own_ini) as ini_file:
        ini_file.write(own_ini_text.encode())
    log_path = private_dir / f"povray{label}.log"
    # POV-Ray splits unquoted arguments at spaces; quoted, a name may hold anything but '"'.
    command = [povray, f'"./{ini.name}"', f'"{own_ini}"', f"+WT{settings.povray_threads}"]
    kwargs: dict[str, Any] = {}
    if user.uid is not None:
        kwargs = {"user": user.uid, "group": user.gid, "extra_groups": []}
    started = time.monotonic()
    # Read-only for everyone: POV-Ray writes it only through the descriptor it inherits.
    with _create_read_only(log_path) as log_file:
        os.chmod(private_dir, LOCKED_DIR_MODE)
        stop.check()
        process = subprocess.Popen(
            command,
            cwd=ini.parent,
            env={},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )
        stop.process = process
        try:
            timed_out = _wait_for_povray(process, started + timeout_s, stop)
        finally:
            stop.process = None
            kill_group(process, signal.SIGKILL)  # anything POV-Ray left in its group
    return PovrayRun(
        returncode=process.returncode,
        timed_out=timed_out,
        output=read_output(log_path),
        log_path=log_path,
        seconds=time.monotonic() - started,
    )


def run_povray(
    settings: Settings,
    povray: str,
    ini: Path,
    scene_root: Path,
    private_dir: Path,
    out_dir: Path,
    user: RenderUser,
    stop: StopState,
    size: tuple[int, int],
    rows: tuple[int, int] | None = None,
) -> RenderResult:
    """Renders one image of `size` pixels (or its band `rows`); SceneError when POV-Ray fails,
    Interrupted when SIGTERM stopped it."""
    image = out_dir / OUTPUT_NAME
    library = [scene_root, Path(SYSTEM_INCLUDE_DIR)]
    text = worker_ini(image, library, size, rows=rows)
    timeout = settings.render_timeout_s
    run = _run_povray(settings, povray, ini, scene_root, private_dir, user, stop, text, "", timeout)
    output = run.output
    result = RenderResult(image=image, output=output, log_path=run.log_path, seconds=run.seconds)
    if not run.timed_out and run.returncode == 0 and _is_regular_file(image):
        # Rendered, even if SIGTERM came just after: the image is kept, not rendered again.
        return result
    stop.check()
    if run.timed_out:
        raise SceneError(f"render timed out after {settings.render_timeout_s:g} s", output)
    if run.returncode != 0:
        raise SceneError(povray_error(output, run.returncode), output)
    raise SceneError("POV-Ray finished without writing an image", output)


@dataclass(frozen=True)
class FramesResult:
    """What one POV-Ray run of frames left: the frames it wrote, and the frame it failed on."""

    images: dict[int, Path]
    run: PovrayRun
    failed: int | None = None
    reason: str | None = None


_FRAME_FILE = re.compile(r"^frame(\d+)\.png$")


def run_povray_frames(
    settings: Settings,
    povray: str,
    ini: Path,
    scene_root: Path,
    private_dir: Path,
    out_dir: Path,
    user: RenderUser,
    stop: StopState,
    size: tuple[int, int],
    frames: Frames,
) -> FramesResult:
    """Renders frames `first..last` in one POV-Ray run. POV-Ray stops at the first frame that
    fails; the frames before it are kept and that frame is named with the reason. The timeout
    is the render timeout for each frame of the run."""
    library = [scene_root, Path(SYSTEM_INCLUDE_DIR)]
    text = worker_ini(out_dir / "frame.png", library, size, frames=frames)
    count = frames.last - frames.first + 1
    timeout = settings.render_timeout_s * count
    label = f"-{frames.first}"
    run = _run_povray(
        settings, povray, ini, scene_root, private_dir, user, stop, text, label, timeout
    )
    images: dict[int, Path] = {}
    for path in out_dir.iterdir():
        match = _FRAME_FILE.match(path.name)
        if match and _is_regular_file(path) and frames.first <= int(match.group(1)) <= frames.last:
            images[int(match.group(1))] = path
    missing = [n for n in range(frames.first, frames.last + 1) if n not in images]
    if not missing:
        return FramesResult(images=images, run=run)
    if stop.requested.is_set():
        return FramesResult(images=images, run=run)  # the caller hands the rest back
    if run.timed_out:
        reason = f"render timed out after {settings.render_timeout_s:g} s a frame"
    elif run.returncode != 0:
        reason = povray_error(run.output, run.returncode)
    else:
        reason = "POV-Ray finished without writing this frame"
    return FramesResult(images=images, run=run, failed=missing[0], reason=reason)


def _create_read_only(path: Path) -> BinaryIO:
    """A new file (never an existing one, never through a link) with mode 0444, open for
    writing: the descriptor can write it, no later open can."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(path, flags, 0o444), "wb")


def read_output(log_path: Path, head: int = 64 * 1024, tail: int = MIB) -> str:
    """POV-Ray's output for error matching: all of it, or its start and end when it is huge
    (option problems come first, parse errors last)."""
    size = log_path.stat().st_size
    with open(log_path, "rb") as source:
        if size <= head + tail:
            data = source.read()
        else:
            data = source.read(head) + b"\n[...]\n"
            source.seek(size - tail)
            data += source.read()
    return data.decode("utf-8", errors="replace")


def _wait_for_povray(process: subprocess.Popen[bytes], deadline: float, stop: StopState) -> bool:
    """Waits for POV-Ray to exit; returns whether it timed out.

    At the deadline or on SIGTERM, POV-Ray gets SIGTERM (it stops in about half a second),
    then SIGKILL after STOP_GRACE_S.
    """
    timed_out = False
    kill_at: float | None = None
    while process.poll() is None:
        now = time.monotonic()
        if kill_at is None and (stop.requested.is_set() or now >= deadline):
            timed_out = not stop.requested.is_set()
            kill_group(process, signal.SIGTERM)
            kill_at = now + STOP_GRACE_S
        elif kill_at is not None and now >= kill_at:
            kill_group(process, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=POLL_S)
    return timed_out


def lock_work_dir(work_dir: Path) -> bool:
    """Locks the work dir (LOCKED_DIR_MODE) when this process owns it; returns whether it does.

    In the image the worker and POV-Ray are one user, which owns /scratch: only the mode bits
    (which a scene cannot change) keep POV-Ray from writing there, outside its job folder.
    """
    if os.stat(work_dir).st_uid != os.geteuid():
        return False
    os.chmod(work_dir, LOCKED_DIR_MODE)
    return True


def others_can_traverse(path: Path) -> bool:
    """Whether a user owning nothing can reach `path` (o+x on it and every parent)."""
    return all(os.stat(folder).st_mode & stat.S_IXOTH for folder in (path, *path.parents))


def forbid_message_queues() -> None:
    """No POSIX message queue can be created by this process or POV-Ray (RLIMIT_MSGQUEUE 0, which
    binds root as well): a scene's write into /dev/mqueue fails instead of leaving a queue there.

    (The task definition's systemControls could set fs.mqueue.queues_max to 0, which AWS
    documents as supported on Fargate; this limit does it for POV-Ray with no AWS setting, also
    where the worker runs outside Fargate.)"""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))


def shared_dirs(user: RenderUser) -> tuple[Path, ...]:
    """Where a job could leave files outside its folder, for the worker to clear after it.

    /tmp and /var/tmp only when POV-Ray runs as `nobody` (the worker is root): as the worker's
    own user it runs in the image, where they are read-only, and outside a container that user's
    other programs create files there too, which must not be taken for a job's.
    """
    names = SHARED_MEMORY_DIRS + (TEMP_DIRS if user.uid is not None else ())
    return tuple(Path(name) for name in names)


def scan_shared(folders: tuple[Path, ...]) -> dict[Path, os.stat_result]:
    """Every entry of `folders` (missing ones are empty), and of the folders anyone may write to
    inside them, by path; not following links."""
    found: dict[Path, os.stat_result] = {}
    pending = [(folder, 0) for folder in folders]
    while pending:
        folder, depth = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            found[Path(entry.path)] = info
            world_writable = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_IWOTH
            if world_writable and depth < MAX_SHARED_DEPTH:
                pending.append((Path(entry.path), depth + 1))
    return found


def _left_by(
    uid: int, before: dict[Path, os.stat_result], now: dict[Path, os.stat_result]
) -> list[Path]:
    """The entries of `now` that `uid` owns and whose names were not in `before`.

    A name that was there before is left alone even if the job wrote to it: that is the
    owner's file (in the image the folders start empty and every new name goes after its job,
    so no such file can come from an earlier job)."""
    return sorted(path for path, info in now.items() if info.st_uid == uid and path not in before)


def remove_leftovers(
    folders: tuple[Path, ...], before: dict[Path, os.stat_result], uid: int
) -> tuple[list[str], list[str]]:
    """Removes what the user `uid` created in `folders` since `before` (scan_shared's), leaving
    everything else alone; returns what was removed and what could not be (with the reason)."""
    removed: list[str] = []
    errors: dict[Path, str] = {}
    for path in _left_by(uid, before, scan_shared(folders)):
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed.append(str(path))
        except FileNotFoundError:
            continue  # inside a folder removed just before
        except OSError as error:
            errors[path] = error.strerror or str(error)
    # Whatever is still there, a removal that failed or an entry that appeared meanwhile, counts.
    left = _left_by(uid, before, scan_shared(folders))
    problems = [f"{path}: {errors.get(path, 'still there after its removal')}" for path in left]
    return removed, problems


def _is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# Parts: frames and bands


@dataclass(frozen=True)
class Scene:
    """A scene unpacked in its job folder, with its .ini's settings."""

    folder: Path  # the job folder (private to the worker)
    root: Path  # the unpacked scene
    out_dir: Path  # where POV-Ray writes
    ini: Path
    settings: IniSettings


def part_fields(part: Part | None) -> dict[str, str]:
    """A part as log and marker fields."""
    if part is None:
        return {}
    if part.frames is not None:
        return {"frames": f"{part.frames[0]}-{part.frames[1]}"}
    return {"band": f"{part.band}/{len(part.rows)}"}


def runs(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted numbers as runs of consecutive ones: [1, 2, 3, 7, 8] -> [(1, 3), (7, 8)]."""
    out: list[tuple[int, int]] = []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def stitch_bands(bands: list[tuple[Path, tuple[int, int]]], dest: Path) -> None:
    """Writes the image whose rows `first..last` (1-based) come from each band's PNG, in order.

    POV-Ray writes a band as the whole image, black outside it. The PNGs are decoded and
    encoded with pypng (Debian's python3-png), which keeps what POV-Ray wrote: 8 or 16 bits,
    grey or colour, with or without alpha, and the gamma. Rows stream from one band at a time,
    so a large image is never whole in memory.
    """
    import png

    first_path = bands[0][0]
    width, height, _, info = png.Reader(filename=str(first_path)).read()
    shape = {k: info.get(k) for k in ("bitdepth", "greyscale", "alpha", "planes")}

    def rows() -> Iterator[Any]:
        for path, (start, end) in bands:
            w, h, pixels, band_info = png.Reader(filename=str(path)).read()
            band_shape = {k: band_info.get(k) for k in shape}
            if (w, h) != (width, height) or band_shape != shape:
                raise SceneError(
                    f"band {path.name} is {w}x{h} {band_shape}, not {width}x{height} {shape}"
                )
            for number, row in enumerate(pixels, start=1):
                if number > end:
                    break
                if number >= start:
                    yield row

    writer = png.Writer(
        width,
        height,
        greyscale=bool(shape["greyscale"]),
        alpha=bool(shape["alpha"]),
        bitdepth=shape["bitdepth"],
        gamma=info.get("gamma"),
    )
    with open(dest, "wb") as out:
        writer.write(out, rows())


def band_logs(logs: list[str], rows: tuple[tuple[int, int], ...]) -> str:
    """The stitched image's log: each band's POV-Ray output under a heading."""
    parts = []
    for index, (text, (start, end)) in enumerate(zip(logs, rows, strict=True), start=1):
        parts.append(
            f"==== band {index} of {len(rows)}: rows {start}-{end} ====\n{text.rstrip()}\n"
        )
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# AWS


def aws_clients(settings: Settings) -> tuple[Any, Any]:
    import boto3
    from botocore.config import Config

    retries = {"max_attempts": 5, "mode": "standard"}
    s3_config = Config(retries=retries)
    if settings.endpoint_url:
        s3_config = Config(retries=retries, s3={"addressing_style": "path"})
    common = {"region_name": settings.region, "endpoint_url": settings.endpoint_url}
    s3 = boto3.client("s3", config=s3_config, **common)
    sqs = boto3.client("sqs", config=Config(retries=retries), **common)
    return s3, sqs


def is_missing(error: Exception) -> bool:
    """A HeadObject that says "not there". Without s3:ListBucket, AWS answers 403, not 404."""
    response = getattr(error, "response", None) or {}
    code = str((response.get("Error") or {}).get("Code", ""))
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return code in ("404", "NoSuchKey", "NotFound", "403", "Forbidden") or status in (403, 404)


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if is_missing(error):
            return False
        raise
    return True


def download_zip(s3: Any, job: Job, target: Path, max_bytes: int, stop: StopState) -> int:
    """Streams the scene zip to `target`; SceneError when it is bigger than the cap."""
    response = s3.get_object(Bucket=job.bucket, Key=job.key)
    body = response["Body"]
    try:
        length = response.get("ContentLength")
        if isinstance(length, int) and length > max_bytes:
            raise SceneError(f"the scene zip is {length} bytes, more than the limit of {max_bytes}")
        total = 0
        with open(target, "wb") as out:
            for chunk in body.iter_chunks(COPY_CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise SceneError(f"the scene zip is more than the limit of {max_bytes} bytes")
                out.write(chunk)
                if stop.requested.is_set():
                    raise Interrupted()
        return total
    finally:
        body.close()


def list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Every key under `prefix`."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents") or [])
    return keys


def delete_keys(s3: Any, bucket: str, keys: list[str]) -> None:
    """Deletes `keys` (gone already is fine), 1000 at a time (DeleteObjects' limit)."""
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]
        response = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        )
        errors = response.get("Errors") or []
        if errors:
            raise RuntimeError(f"cannot delete {len(errors)} part(s), e.g. {errors[0]}")


def upload_log(s3: Any, bucket: str, key: str, log_path: Path) -> None:
    size = log_path.stat().st_size
    with open(log_path, "rb") as source:
        if size <= LOG_UPLOAD_HEAD + LOG_UPLOAD_TAIL:
            data = source.read()
        else:
            head = source.read(LOG_UPLOAD_HEAD)
            source.seek(size - LOG_UPLOAD_TAIL)
            tail = source.read()
            omitted = size - LOG_UPLOAD_HEAD - LOG_UPLOAD_TAIL
            data = head + f"\n[... {omitted} bytes omitted by the lew worker ...]\n".encode() + tail
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="text/plain; charset=utf-8")


# SQS keeps a received message hidden for at most 12 hours from the receive ("If you try to
# extend the visibility timeout beyond the maximum, your request is rejected", the
# ChangeMessageVisibility reference). The worker counts from a moment after SQS does: the
# margin covers the time between the two.
SQS_MAX_HIDDEN_S = 43200
HIDDEN_MARGIN_S = 30


def visibility_extension(wanted_s: int, held_s: float) -> int:
    """The visibility timeout a heartbeat may ask for after holding a message `held_s` seconds:
    `wanted_s`, or what is left of SQS's 12 hours (0 when nothing is)."""
    left = int(SQS_MAX_HIDDEN_S - HIDDEN_MARGIN_S - held_s)
    return max(0, min(wanted_s, left))


class Heartbeat:
    """While a job is held, keeps extending its message's visibility, within the 12 hours SQS
    allows from the receive (it starts right after the receive)."""

    def __init__(self, sqs: Any, settings: Settings, receipt: str, key: str | None) -> None:
        self._sqs = sqs
        self._settings = settings
        self._receipt = receipt
        self._key = key
        self._received = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        wanted = self._settings.visibility_timeout_s
        while not self._stop.wait(self._settings.heartbeat_s):
            timeout = visibility_extension(wanted, time.monotonic() - self._received)
            if timeout < wanted:
                # Said once: from here the job becomes visible again when its 12 hours are up.
                log(
                    "heartbeat_limit",
                    key=self._key,
                    visible_again_in_s=timeout,
                    reason="SQS keeps a received message hidden for at most 12 hours",
                )
            if timeout > 0:
                try:
                    self._sqs.change_message_visibility(
                        QueueUrl=self._settings.queue_url,
                        ReceiptHandle=self._receipt,
                        VisibilityTimeout=timeout,
                    )
                except Exception as error:
                    log("heartbeat_error", key=self._key, error=describe(error))
            if timeout < wanted:
                return


def describe(error: BaseException) -> str:
    return one_line(f"{type(error).__name__}: {error}")


# ---------------------------------------------------------------------------------------------
# The worker


class Worker:
    def __init__(self, settings: Settings, s3: Any, sqs: Any, povray: str, stop: StopState) -> None:
        self.settings = settings
        self.s3 = s3
        self.sqs = sqs
        self.povray = povray
        self.stop = stop
        self.user = RenderUser.detect()
        self.owns_work_dir = lock_work_dir(settings.work_dir)
        self.job_started = time.monotonic()
        self.shared_dirs = shared_dirs(self.user)
        # Why this worker takes no more jobs: it could not clear what a job left behind.
        self.refusal: str | None = None

    # -- the loop

    def run(self) -> int:
        failures = 0
        idle_since = time.monotonic()
        waiting = False  # said so since the last job
        while not self.stop.requested.is_set():
            try:
                response = self.sqs.receive_message(
                    QueueUrl=self.settings.queue_url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=self.settings.wait_time_s,
                    VisibilityTimeout=self.settings.visibility_timeout_s,
                    AttributeNames=["ApproximateReceiveCount"],
                )
            except Exception as error:
                failures += 1
                log("infra_error", stage="receive", error=describe(error), failures=failures)
                if failures >= MAX_RECEIVE_FAILURES:
                    log("exit", reason="the queue cannot be read", code=1)
                    return 1
                self.stop.requested.wait(min(2**failures, 30))
                continue
            failures = 0
            messages = response.get("Messages") or []
            if not messages:
                idle = time.monotonic() - idle_since
                if idle >= self.settings.idle_s:
                    log("exit", reason="queue empty", code=0)
                    return 0
                if not waiting:
                    waiting = True
                    log("waiting", for_s=round(self.settings.idle_s - idle, 1))
                continue
            waiting = False
            if not self.handle_message(messages[0]):
                break
            idle_since = time.monotonic()
        if self.refusal is not None:
            log("exit", reason=self.refusal, code=1)
            return 1
        log("exit", reason="stopped", code=0)
        return 0

    def handle_message(self, message: dict[str, Any]) -> bool:
        """Processes one message; False when the worker must stop (SIGTERM)."""
        receipt = message["ReceiptHandle"]
        attempt = int((message.get("Attributes") or {}).get("ApproximateReceiveCount", "1"))
        if self.stop.requested.is_set():
            self.hand_back(receipt, None)
            return False
        body = message.get("Body", "")
        try:
            jobs = parse_body(body)
        except BadMessage as error:
            log(
                "bad_message",
                reason=str(error),
                message_id=message.get("MessageId"),
                body=body[:500],
            )
            self.delete(receipt, None)
            return True
        outcomes = []
        with Heartbeat(self.sqs, self.settings, receipt, jobs[0].key if len(jobs) == 1 else None):
            for job in jobs:
                outcome = self.process_job(job, attempt)
                outcomes.append(outcome)
                if outcome == "interrupted" or self.refusal is not None:
                    break
        key = jobs[0].key if len(jobs) == 1 else None
        if "interrupted" in outcomes or len(outcomes) < len(jobs):
            # Jobs left undone (SIGTERM, or this worker refuses more): for another worker.
            self.hand_back(receipt, key)
            return False
        # Every job is finished (or failed for a reason outside the scene): a SIGTERM that came
        # meanwhile, or a job this worker could not clear up after, stops the worker only after
        # the message is dealt with.
        if "infra_error" in outcomes:
            self.retry_later(receipt, key)
        else:
            self.delete(receipt, key)
        return not self.stop.requested.is_set() and self.refusal is None

    def delete(self, receipt: str, key: str | None) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.settings.queue_url, ReceiptHandle=receipt)
        except Exception as error:
            log("infra_error", stage="delete_message", key=key, error=describe(error))

    def retry_later(self, receipt: str, key: str | None) -> None:
        """After an infrastructure error: the message comes back after a short backoff (not the
        whole visibility timeout), within this worker's next long poll; each receive counts
        towards the queue's maximum, after which it moves to the dead-letter queue."""
        delay = self.settings.retry_delay_s
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.settings.queue_url, ReceiptHandle=receipt, VisibilityTimeout=delay
            )
            log("retry_later", key=key, delay_s=delay)
        except Exception as error:
            log("infra_error", stage="retry_later", key=key, error=describe(error))

    def hand_back(self, receipt: str, key: str | None) -> None:
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.settings.queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
            )
            log("handed_back", key=key)
        except Exception as error:
            log("infra_error", stage="hand_back", key=key, error=describe(error))

    # -- one job

    def process_job(self, job: Job, attempt: int) -> str:
        """Returns rendered, skipped, ignored, scene_error, infra_error or interrupted."""
        settings = self.settings
        try:
            keys = output_keys(job.key, settings.input_prefix, settings.output_prefix)
        except ValueError as error:
            log("ignored", job_id=job.job_id, key=job.key, reason=str(error))
            return "ignored"
        job_id = job.job_id or keys.job_id
        ids: dict[str, Any] = {"job_id": job_id, "key": job.key, **part_fields(job.part)}
        started = time.monotonic()
        part = job.part
        try:
            if part is None or part.frames is None:
                # A still (or its band) is done once its image is there.
                if object_exists(self.s3, job.bucket, keys.png):
                    log("skipped", **ids, output=keys.png, reason="output exists")
                    return "skipped"
                if part is not None and object_exists(self.s3, job.bucket, keys.band(part.band)):
                    # Rendered by an earlier attempt: only the stitch may be missing.
                    self.stitch_if_complete(job, keys, part, ids)
                    return "skipped"
            self.stop.check()
            self.put_marker(job, keys, job_id, attempt)
            log("job_started", **ids, attempt=attempt)
            self.job_started = started
            with self.leftovers_removed(ids), self.job_folder() as folder:
                return self.render_job(job, keys, ids, folder)
        except Interrupted:
            log("interrupted", **ids)
            return "interrupted"
        except Exception as error:
            log("infra_error", **ids, error=describe(error))
            return "infra_error"

    def put_marker(self, job: Job, keys: OutputKeys, job_id: str, attempt: int) -> None:
        marker = {
            "job_id": job_id,
            "key": job.key,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "attempt": attempt,
            **part_fields(job.part),
        }
        self.s3.put_object(
            Bucket=job.bucket,
            Key=keys.started_for(job.part),
            Body=json.dumps(marker).encode(),
            ContentType="application/json",
        )

    def render_job(self, job: Job, keys: OutputKeys, ids: dict[str, Any], folder: Path) -> str:
        """Renders the job's part in `folder` and uploads what it produced."""
        try:
            scene = self.prepare(job, keys, folder)
        except SceneError as error:
            # The scene itself is broken (a bad zip, no .ini): every part of it would fail alike.
            if self.superseded(job, keys, ids, error.reason):
                return "skipped"
            self.report_scene_error(job, keys, error, folder)
            return "scene_error"
        part = job.part
        if scene.settings.is_animation():
            first, last = (
                part.frames if part is not None and part.frames else scene.settings.frames()
            )
            return self.render_frames(job, keys, ids, scene, first, last)
        if part is not None and part.band is not None:
            return self.render_band(job, keys, ids, scene, part)
        return self.render_still(job, keys, ids, scene)

    def render_still(self, job: Job, keys: OutputKeys, ids: dict[str, Any], scene: Scene) -> str:
        try:
            result = self.povray_run(scene)
        except SceneError as error:
            if self.superseded(job, keys, ids, error.reason):
                return "skipped"
            self.report_scene_error(job, keys, error, scene.folder)
            return "scene_error"
        if self.superseded(job, keys, ids, None):
            return "skipped"
        # Rendered: uploaded even when SIGTERM has come (the task has stopTimeout for it).
        upload_log(self.s3, job.bucket, keys.log, result.log_path)
        self.put_file(job.bucket, keys.png, result.image)
        return self.rendered(ids, output=keys.png, render_seconds=result.seconds)

    def render_band(
        self, job: Job, keys: OutputKeys, ids: dict[str, Any], scene: Scene, part: Part
    ) -> str:
        """One band of a still; the worker that uploads the last band stitches the image."""
        assert part.band is not None
        rows = part.band_rows()
        if rows[1] > scene.settings.height:
            raise SceneError(f"band rows {rows[0]}-{rows[1]} are outside the image")
        try:
            result = self.povray_run(scene, rows=rows)
        except SceneError as error:
            if self.superseded(job, keys, ids, error.reason):
                return "skipped"
            error.reason = one_line(
                f"band {part.band} of {len(part.rows)} (rows {rows[0]}-{rows[1]}): {error.reason}"
            )
            self.report_scene_error(job, keys, error, scene.folder)
            return "scene_error"
        if self.superseded(job, keys, ids, None):
            return "skipped"
        upload_log(self.s3, job.bucket, keys.band_log(part.band), result.log_path)
        self.put_file(job.bucket, keys.band(part.band), result.image)
        outcome = self.rendered(ids, output=keys.band(part.band), render_seconds=result.seconds)
        self.stitch_if_complete(job, keys, part, ids, scene.folder)
        return outcome

    def render_frames(
        self, job: Job, keys: OutputKeys, ids: dict[str, Any], scene: Scene, first: int, last: int
    ) -> str:
        """Frames `first..last` of an animation, skipping those already in S3. A frame that
        fails gets its own error report and the frames after it are still rendered."""
        settings = scene.settings
        digits = settings.digits()
        done = self.existing_frames(job, keys)
        todo = [n for n in range(first, last + 1) if n not in done]
        if not todo:
            log("skipped", **ids, reason="every frame exists")
            return "skipped"
        outcome = "rendered"
        uploaded: list[int] = []
        render_seconds = 0.0
        for run_first, run_last in runs(todo):
            start = run_first
            while start <= run_last:
                frames = Frames(settings.initial_frame, settings.final_frame, start, run_last)
                result = self.povray_frames(scene, frames)
                for number, image in sorted(result.images.items()):
                    key = keys.frame(number, digits)
                    if object_exists(self.s3, job.bucket, key):
                        log("skipped", **ids, output=key, reason=SUPERSEDED)
                    else:
                        self.put_file(job.bucket, key, image)
                        uploaded.append(number)
                    image.unlink()
                render_seconds += result.run.seconds
                upload_log(
                    self.s3, job.bucket, keys.frames_log(start, run_last), result.run.log_path
                )
                if result.failed is None:
                    self.stop.check()  # SIGTERM stopped it: the rest goes back to the queue
                    break
                outcome = "scene_error"
                self.report_frame_error(job, keys, ids, result, digits)
                start = result.failed + 1
        if uploaded:
            self.rendered(
                ids,
                output=keys.frame(uploaded[0], digits),
                uploaded_frames=len(uploaded),
                render_seconds=render_seconds,
            )
        return outcome

    def rendered(self, ids: dict[str, Any], render_seconds: float, **fields: Any) -> str:
        log(
            "rendered",
            **ids,
            **fields,
            seconds=round(time.monotonic() - self.job_started, 3),
            render_seconds=round(render_seconds, 3),
        )
        return "rendered"

    def report_frame_error(
        self, job: Job, keys: OutputKeys, ids: dict[str, Any], result: FramesResult, digits: int
    ) -> None:
        assert result.failed is not None
        image_key = keys.frame(result.failed, digits)
        if object_exists(self.s3, job.bucket, image_key):
            log("skipped", **ids, output=image_key, reason=SUPERSEDED, failure=result.reason)
            return
        error = SceneError(f"frame {result.failed}: {result.reason}", result.run.output)
        key = keys.frame_error(result.failed, digits)
        self.s3.put_object(
            Bucket=job.bucket,
            Key=key,
            Body=error_text(error).encode("utf-8"),
            ContentType="text/plain; charset=utf-8",
        )
        log("scene_error", **ids, frame=result.failed, reason=error.reason, output=key)

    def existing_frames(self, job: Job, keys: OutputKeys) -> set[int]:
        """The frame numbers whose images are already in S3 (a job run again renders only the
        others)."""
        prefix = keys.frames_prefix()
        numbers: set[int] = set()
        for key in list_keys(self.s3, job.bucket, prefix):
            rest = key[len(prefix) :]
            if rest.endswith(".png") and rest[:-4].isdigit():
                numbers.add(int(rest[:-4]))
        return numbers

    def stitch_if_complete(
        self,
        job: Job,
        keys: OutputKeys,
        part: Part,
        ids: dict[str, Any],
        folder: Path | None = None,
    ) -> None:
        """Stitches the still once every band is in S3. Two workers that finish together both
        stitch the same bytes from the same bands, and S3 keeps one; a band deleted under one
        of them means the other has finished."""
        count = len(part.rows)
        listed = set(list_keys(self.s3, job.bucket, keys.parts_prefix()))
        missing = [i for i in range(1, count + 1) if keys.band(i) not in listed]
        if missing:
            log("band_done", **ids, waiting_for=missing)
            return
        with contextlib.ExitStack() as stack:
            if folder is None:
                folder = stack.enter_context(self.job_folder())
            else:
                os.chmod(folder, OPEN_DIR_MODE)  # locked while POV-Ray ran; it has finished
            work = Path(tempfile.mkdtemp(prefix="stitch-", dir=folder))
            bands = []
            for index, rows in enumerate(part.rows, start=1):
                target = work / f"band-{index}.png"
                if not self.download_if_there(job.bucket, keys.band(index), target):
                    log("skipped", **ids, output=keys.png, reason="stitched by another worker")
                    return
                bands.append((target, rows))
            stitched = work / "stitched.png"
            stitch_bands(bands, stitched)
            logs = [self.read_if_there(job.bucket, keys.band_log(i)) for i in range(1, count + 1)]
            self.s3.put_object(
                Bucket=job.bucket,
                Key=keys.log,
                Body=band_logs(logs, part.rows).encode("utf-8"),
                ContentType="text/plain; charset=utf-8",
            )
            self.put_file(job.bucket, keys.png, stitched)
        delete_keys(self.s3, job.bucket, sorted(listed))
        log("stitched", **ids, output=keys.png, bands=count)

    def download_if_there(self, bucket: str, key: str, target: Path) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.download_file(bucket, key, str(target))
        except ClientError as error:
            if is_missing(error):
                return False
            raise
        return True

    def read_if_there(self, bucket: str, key: str) -> str:
        from botocore.exceptions import ClientError

        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as error:
            if is_missing(error):
                return ""
            raise
        with contextlib.closing(body):
            return body.read().decode("utf-8", errors="replace")

    def put_file(self, bucket: str, key: str, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as image:
            self.s3.put_object(Bucket=bucket, Key=key, Body=image, ContentType="image/png")

    def superseded(
        self, job: Job, keys: OutputKeys, ids: dict[str, Any], failure: str | None
    ) -> bool:
        """Whether another attempt wrote the PNG while this one rendered (this worker stalled,
        its heartbeat lapsed, the message came back and another worker took it): then this
        attempt's outcome, a picture or a failure, is not uploaded over that result."""
        if not object_exists(self.s3, job.bucket, keys.png):
            return False
        log("skipped", **ids, output=keys.png, reason=SUPERSEDED, failure=failure)
        return True

    @contextlib.contextmanager
    def work_dir_open(self) -> Iterator[None]:
        """The work dir, writable for the worker while it creates or removes a job folder, and
        locked again after (no POV-Ray runs meanwhile)."""
        if not self.owns_work_dir:
            yield
            return
        os.chmod(self.settings.work_dir, OPEN_DIR_MODE)
        try:
            yield
        finally:
            os.chmod(self.settings.work_dir, LOCKED_DIR_MODE)

    @contextlib.contextmanager
    def leftovers_removed(self, ids: dict[str, Any]) -> Iterator[None]:
        """Whatever the job creates in the folders outside the work dir that POV-Ray can write
        (shared_dirs) is removed when it ends, so no later job of this worker, from another
        upload, can read it; a worker that cannot do that takes no more jobs (self.refusal).

        Only entries that were not there when the job started and that the render user owns
        are removed, so a worker outside a container leaves everyone else's files alone.
        Taking /dev/shm away would be better, but Fargate's task definition cannot: AWS's page
        "Amazon ECS task definition differences for the Fargate launch type" says of
        linuxParameters "The devices, sharedMemorySize, and tmpfs parameters are not
        supported", and lists ipcMode among the parameters "not valid in Fargate tasks".
        /dev/mqueue is closed by forbid_message_queues too; this removal is the second line.
        """
        try:
            before = scan_shared(self.shared_dirs)
        except OSError as error:
            self.refusal = f"cannot list the shared folders to clear after jobs: {describe(error)}"
            log("fatal", **ids, reason=self.refusal)
            raise
        try:
            yield
        finally:
            try:
                removed, problems = remove_leftovers(self.shared_dirs, before, self.user.runs_as)
            except OSError as error:
                removed, problems = [], [describe(error)]
            if removed:
                log("leftovers_removed", **ids, paths=removed)
            if problems:
                self.refusal = (
                    "what a job left outside its folder could not be removed, so this worker "
                    "takes no more jobs: " + "; ".join(problems)
                )
                log("fatal", **ids, reason=self.refusal)

    @contextlib.contextmanager
    def job_folder(self) -> Iterator[Path]:
        """A new folder for one job; run_povray locks it once the worker's files are in it."""
        with self.work_dir_open():
            folder = Path(tempfile.mkdtemp(prefix="job-", dir=self.settings.work_dir))
        try:
            # The render user may pass through to its folders, not list this one.
            os.chmod(folder, OPEN_DIR_MODE)
            yield folder
        finally:
            with contextlib.suppress(OSError):
                os.chmod(folder, OPEN_DIR_MODE)  # locked while POV-Ray ran
            with self.work_dir_open():
                shutil.rmtree(folder, ignore_errors=True)

    def prepare(self, job: Job, keys: OutputKeys, folder: Path) -> Scene:
        """Downloads and unpacks the scene into `folder`, picks its .ini and reads its settings."""
        zip_path = folder / "scene.zip"
        download_zip(self.s3, job, zip_path, self.settings.max_zip_bytes, self.stop)
        self.stop.check()
        scene_root = folder / "scene"
        out_dir = folder / "out"
        scene_root.mkdir(mode=0o755)
        out_dir.mkdir(mode=0o755)
        files = safe_extract(
            zip_path, scene_root, self.settings.max_files, self.settings.max_unpacked_bytes
        )
        zip_path.unlink()
        ini = scene_root.joinpath(*choose_ini(files, keys.name).parts)
        settings = ini_settings(ini.read_text(errors="replace"))
        check_size((settings.width, settings.height))
        self.user.give(scene_root)
        self.user.give(out_dir)
        return Scene(folder=folder, root=scene_root, out_dir=out_dir, ini=ini, settings=settings)

    def povray_run(self, scene: Scene, rows: tuple[int, int] | None = None) -> RenderResult:
        size = (scene.settings.width, scene.settings.height)
        return run_povray(
            self.settings,
            self.povray,
            scene.ini,
            scene.root,
            scene.folder,
            scene.out_dir,
            self.user,
            self.stop,
            size,
            rows=rows,
        )

    def povray_frames(self, scene: Scene, frames: Frames) -> FramesResult:
        size = (scene.settings.width, scene.settings.height)
        return run_povray_frames(
            self.settings,
            self.povray,
            scene.ini,
            scene.root,
            scene.folder,
            scene.out_dir,
            self.user,
            self.stop,
            size,
            frames,
        )

    def report_scene_error(
        self, job: Job, keys: OutputKeys, error: SceneError, folder: Path
    ) -> None:
        log_path = folder / "povray.log"
        if error.output is not None and log_path.exists():
            upload_log(self.s3, job.bucket, keys.log, log_path)
        self.s3.put_object(
            Bucket=job.bucket,
            Key=keys.error,
            Body=error_text(error).encode("utf-8"),
            ContentType="text/plain; charset=utf-8",
        )
        log(
            "scene_error",
            job_id=job.job_id or keys.job_id,
            key=job.key,
            reason=error.reason,
            output=keys.error,
        )


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        settings = Settings.from_env(env)
    except ValueError as error:
        log("fatal", reason=str(error))
        return 2
    make_non_dumpable()
    limit_file_size()
    forbid_message_queues()
    povray = shutil.which(settings.povray)
    if povray is None:
        log("fatal", reason=f"POV-Ray not found: {settings.povray!r}")
        return 2
    try:
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        user = RenderUser.detect()
        owns_work_dir = lock_work_dir(settings.work_dir)
    except (OSError, KeyError) as error:
        log("fatal", reason=describe(error))
        return 2
    if user.uid is None and not owns_work_dir and os.access(settings.work_dir, os.W_OK):
        # Not fatal: the folder is still private to the task (in the image, a volume no other
        # task sees), but a scene could leave files there. Fargate gives the image's /scratch
        # to its user, so this shows a volume mounted some other way.
        log(
            "warning",
            reason=f"LEW_WORK_DIR {settings.work_dir} is writable by the render user (this "
            "worker's own user) but not owned by it, so the worker cannot make it read-only: "
            "POV-Ray can write there, outside its job folder; give the worker's user the folder",
        )
    writable_temp = [name for name in TEMP_DIRS if user.uid is None and os.access(name, os.W_OK)]
    if writable_temp:
        # Not fatal either: the image under the task definition's read-only root filesystem has
        # them read-only; this shows a container run with writable ones (podman's --read-only
        # mounts them as tmpfs unless --read-only-tmpfs=false), or a worker outside a container.
        log(
            "warning",
            reason=f"{' and '.join(writable_temp)} writable by the render user (this worker's "
            "own user): a scene can leave files there for later jobs, which the worker does not "
            "clear (it cannot tell them from that user's other files); run the image with a "
            "read-only root filesystem and no tmpfs there, as the task definition does",
        )
    if user.uid is not None and not others_can_traverse(settings.work_dir):
        log(
            "fatal",
            reason=f"LEW_WORK_DIR {settings.work_dir} is not reachable by the render user "
            "(nobody): every folder on the way needs o+x",
        )
        return 2
    if settings.heartbeat_s >= settings.visibility_timeout_s:
        log(
            "warning",
            reason=f"LEW_HEARTBEAT_S ({settings.heartbeat_s:g}) is not shorter than "
            f"LEW_VISIBILITY_TIMEOUT_S ({settings.visibility_timeout_s}): a long render's "
            "message can reappear on the queue",
        )
    if settings.retry_delay_s >= settings.wait_time_s > 0:
        log(
            "warning",
            reason=f"LEW_RETRY_DELAY_S ({settings.retry_delay_s}) is not shorter than "
            f"LEW_WAIT_TIME_S ({settings.wait_time_s}): a job that failed for an infrastructure "
            "reason can come back after this worker has exited",
        )
    stop = StopState()
    signal.signal(signal.SIGTERM, stop.handle)
    signal.signal(signal.SIGINT, stop.handle)
    s3, sqs = aws_clients(settings)
    log(
        "worker_started",
        queue_url=settings.queue_url,
        threads=settings.povray_threads,
        render_timeout_s=settings.render_timeout_s,
        render_user="nobody" if os.geteuid() == 0 else f"uid {os.geteuid()} (the worker's own)",
    )
    return Worker(settings, s3, sqs, povray, stop).run()


if __name__ == "__main__":
    sys.exit(main())

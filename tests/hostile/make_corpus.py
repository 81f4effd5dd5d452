#!/usr/bin/env python3
"""Writes lew's hostile corpus (tests/hostile/manifest.json says what each case must do).

    python3 tests/hostile/make_corpus.py OUT_DIR

Every case is made here from code rather than committed as a binary: `OUT_DIR/<id>/<file>`
for each case of the manifest (scenes are zips, configs are lew.toml files, messages are SQS
bodies). The zips are small except the two zip bombs (about 5 MiB each, written in a few
seconds: they unpack to 1.1 GiB of zeros, past lew's and the worker's 1 GiB limit).

Standard library only; deterministic (fixed timestamps), so two runs write the same bytes.
"""

from __future__ import annotations

import functools
import io
import json
import os
import stat
import struct
import sys
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote_plus

MIB = 1024 * 1024
DATE = (2024, 1, 1, 0, 0, 0)
# Past the 1 GiB that lew (scene::MAX_UNPACKED_BYTES) and the worker (LEW_MAX_UNPACKED_BYTES)
# allow.
BOMB_BYTES = 1024 * MIB + 64 * MIB

GOOD_POV = (
    "#version 3.7;\n"
    "global_settings { assumed_gamma 1 }\n"
    "camera { location <0, 1, -3> look_at 0 }\n"
    "light_source { <2, 4, -3> color rgb 1 }\n"
    "sphere { 0, 1 pigment { color rgb <1, 0.5, 0.2> } }\n"
)


def ini(pov: str = "scene.pov", width: int = 32, height: int = 24) -> str:
    return f"Input_File_Name={pov}\nWidth={width}\nHeight={height}\nAntialias=off\n"


def info(name: str, mode: int = stat.S_IFREG | 0o644) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, DATE)
    entry.create_system = 3  # unix: the mode is in the high half of external_attr
    entry.external_attr = mode << 16
    entry.compress_type = zipfile.ZIP_DEFLATED
    return entry


def make_zip(entries: list[tuple[str | zipfile.ZipInfo, bytes | str]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore")  # a duplicate name is one of the cases
        for name, data in entries:
            archive.writestr(name if isinstance(name, zipfile.ZipInfo) else info(name), data)
    return buffer.getvalue()


def scene(name: str, pov: str = GOOD_POV, *extra: tuple[str | zipfile.ZipInfo, bytes | str]):
    """A scene whose .ini is named like the zip, plus extra entries."""
    return make_zip([(f"{name}.ini", ini()), ("scene.pov", pov), *extra])


def patch_sizes(data: bytearray, uncompressed: int) -> None:
    """Rewrites the uncompressed size in the (only) local and central headers."""
    local = data.index(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, uncompressed)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, uncompressed)


@functools.cache
def deflated_zeros(size: int) -> tuple[bytes, int]:
    """`size` zero bytes deflated (raw), and their CRC-32, without holding them in memory."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    crc = 0
    chunk = bytes(MIB)
    parts = []
    left = size
    while left:
        piece = chunk if left >= MIB else bytes(left)
        crc = zlib.crc32(piece, crc)
        parts.append(compressor.compress(piece))
        left -= len(piece)
    parts.append(compressor.flush())
    return b"".join(parts), crc


def deflated_zeros_zip(name: str, size: int, claim: int | None = None) -> bytes:
    """A zip with one deflated entry of `size` zero bytes; `claim` makes the headers lie about
    the size."""
    body, crc = deflated_zeros(size)
    declared = size if claim is None else claim
    raw_name = name.encode()
    dos_time, dos_date = 0, (2024 - 1980) << 9 | 1 << 5 | 1
    local = struct.pack(
        "<IHHHHHIIIHH",
        0x04034B50,
        20,
        0,
        8,
        dos_time,
        dos_date,
        crc,
        len(body),
        declared,
        len(raw_name),
        0,
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        3 << 8 | 20,
        20,
        0,
        8,
        dos_time,
        dos_date,
        crc,
        len(body),
        declared,
        len(raw_name),
        0,
        0,
        0,
        0,
        (stat.S_IFREG | 0o644) << 16,
        0,
    )
    offset = len(local) + len(raw_name) + len(body)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central) + len(raw_name), offset, 0)
    return local + raw_name + body + central + raw_name + end


def non_utf8_name_zip(name: str) -> bytes:
    """A scene plus one data file whose name is bytes that are not UTF-8 (no UTF-8 flag: by the
    zip spec the name is CP437)."""
    placeholder = "QQQQQ.txt"
    data = bytearray(scene(name, GOOD_POV, (placeholder, "data")))
    raw = b"\xff\xfe\xe9\x80\x81.txt"
    assert len(raw) == len(placeholder)
    start = 0
    while (at := data.find(placeholder.encode(), start)) >= 0:
        data[at : at + len(raw)] = raw
        start = at + len(raw)
    return bytes(data)


def encrypted_zip(name: str) -> bytes:
    data = bytearray(scene(name))
    # Set the "encrypted" flag (bit 0) on every entry: readers must refuse, not guess.
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (at := data.find(signature, start)) >= 0:
            flags = struct.unpack_from("<H", data, at + flag_at)[0]
            struct.pack_into("<H", data, at + flag_at, flags | 1)
            start = at + 4
    return bytes(data)


def tar_with_hard_link() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        link = tarfile.TarInfo("shadow")
        link.type = tarfile.LNKTYPE
        link.linkname = "/etc/shadow"
        link.mtime = 0
        tar.addfile(link)
    return buffer.getvalue()


def many_entries(name: str, count: int) -> bytes:
    entries: list[tuple[str | zipfile.ZipInfo, bytes | str]] = [
        (f"{name}.ini", ini()),
        ("scene.pov", GOOD_POV),
    ]
    entries += [(f"f/{i}.txt", "") for i in range(count - len(entries))]
    return make_zip(entries)


ESCAPE_POV = (
    '#fopen Out "../../lew-hostile-escape.txt" write\n'
    '#write (Out, "written outside the job folder\\n")\n'
    "#fclose Out\n" + GOOD_POV
)
FOREVER_POV = "#while (true)\n#end\n" + GOOD_POV

# Where a scene leaves something for a later job, outside its own folder: the folders every
# process of a container can write to (/dev/shm, /dev/mqueue; /tmp and /var/tmp unless the
# root filesystem is read-only). A later job of the same worker, from another upload, must not
# find it there. The test removes these paths from this machine before and after its run.
PLANTED = {
    "dev-shm": "/dev/shm/lew-hostile-planted.inc",
    "dev-mqueue": "/dev/mqueue/lew-hostile-planted",
    "tmp": "/tmp/lew-hostile-planted.inc",
    "var-tmp": "/var/tmp/lew-hostile-planted.inc",
}
CREATED_INI = "/dev/shm/lew-hostile-created.ini"
PLANTED_PATHS = (*PLANTED.values(), CREATED_INI)


def plant_pov(path: str) -> str:
    """Writes an include file at `path` (#fopen for writing reaches any path: POV-Ray 3.7 does
    not enforce its own I/O restrictions)."""
    return (
        f'#fopen Out "{path}" write\n'
        '#write (Out, "#declare Planted = 1;\\n")\n'
        "#fclose Out\n" + GOOD_POV
    )


def include_pov(path: str) -> str:
    return f'#include "{path}"\n' + GOOD_POV


def open_pov(path: str) -> str:
    """Opens `path` for reading (a message queue or an .ini cannot be #included as a scene)."""
    return f'#fopen In "{path}" read\n#fclose In\n' + GOOD_POV


def leftover_scenes() -> dict[str, Callable[[], tuple[str, bytes]]]:
    """Per place: a scene that plants a file there, and one that reads it back."""
    cases: dict[str, Callable[[], tuple[str, bytes]]] = {}
    for place, path in PLANTED.items():
        read = open_pov if place == "dev-mqueue" else include_pov
        plant = f"plant-{place}"
        cases[f"plants-in-{place}"] = lambda n=plant, p=path: (f"{n}.zip", scene(n, plant_pov(p)))
        reader = f"read-{place}"
        cases[f"reads-from-{place}"] = lambda n=reader, p=path, r=read: (
            f"{n}.zip",
            scene(n, r(p)),
        )
    created_ini = ini() + f"Create_Ini={CREATED_INI}\n"
    cases["plants-with-create-ini"] = lambda: (
        "createini.zip",
        make_zip([("createini.ini", created_ini), ("scene.pov", GOOD_POV)]),
    )
    cases["reads-created-ini"] = lambda: ("readini.zip", scene("readini", open_pov(CREATED_INI)))
    return cases


LONG = "n" * 300

# Every case of the manifest: file name -> bytes.
SCENES: dict[str, Callable[[], tuple[str, bytes]]] = {
    "zip-slip": lambda: ("slip.zip", make_zip([("../slip.ini", ini()), ("scene.pov", GOOD_POV)])),
    "zip-slip-deep": lambda: (
        "deep.zip",
        make_zip([("deep.ini", ini()), ("sub/../../scene.pov", GOOD_POV)]),
    ),
    "absolute-path": lambda: (
        "abs.zip",
        make_zip([("abs.ini", ini()), ("/tmp/lew-hostile-abs.pov", GOOD_POV)]),
    ),
    "drive-letter": lambda: ("drive.zip", make_zip([("drive.ini", ini()), ("C:/x.pov", "")])),
    "backslash": lambda: ("back.zip", make_zip([("back.ini", ini()), ("..\\x.pov", "")])),
    "symlink": lambda: (
        "link.zip",
        scene("link", GOOD_POV, (info("passwd.inc", stat.S_IFLNK | 0o777), "/etc/passwd")),
    ),
    "hard-link-duplicate-name": lambda: (
        "dup.zip",
        make_zip([("dup.ini", ini()), ("scene.pov", GOOD_POV), ("scene.pov", '#error "2nd"')]),
    ),
    "hard-link-tar-in-zip": lambda: (
        "tarred.zip",
        scene("tarred", GOOD_POV, ("payload.tar", tar_with_hard_link())),
    ),
    "device-char": lambda: (
        "chardev.zip",
        scene("chardev", GOOD_POV, (info("null", stat.S_IFCHR | 0o666), "")),
    ),
    "device-fifo": lambda: (
        "fifo.zip",
        scene("fifo", GOOD_POV, (info("pipe", stat.S_IFIFO | 0o666), "")),
    ),
    "bomb-ratio": lambda: ("bomb.zip", deflated_zeros_zip("zeros.bin", BOMB_BYTES)),
    "bomb-lying-header": lambda: (
        "liar.zip",
        deflated_zeros_zip("zeros.bin", BOMB_BYTES, claim=1024),
    ),
    "bomb-count": lambda: ("many.zip", many_entries("many", 1001)),
    "nested-zip": lambda: ("nested.zip", make_zip([("inner.zip", scene("inner"))])),
    "not-a-zip": lambda: ("text.zip", b"This is not a zip file.\n"),
    "zero-bytes": lambda: ("empty.zip", b""),
    "empty-zip": lambda: ("nothing.zip", make_zip([])),
    "no-ini": lambda: ("noini.zip", make_zip([("scene.pov", GOOD_POV)])),
    "several-inis": lambda: (
        "several.zip",
        make_zip([("a.ini", ini()), ("b.ini", ini()), ("scene.pov", GOOD_POV)]),
    ),
    "two-inis-named-like-the-zip": lambda: (
        "twin.zip",
        make_zip([("a/twin.ini", ini()), ("b/twin.ini", ini()), ("a/scene.pov", GOOD_POV)]),
    ),
    "file-and-folder": lambda: (
        "clash.zip",
        scene("clash", GOOD_POV, ("inc", "x"), ("inc/more.inc", "")),
    ),
    "encrypted": lambda: ("locked.zip", encrypted_zip("locked")),
    "syntax-error": lambda: ("syntax.zip", scene("syntax", GOOD_POV + "sphere { <0, 0, 0> 1 \n")),
    "missing-include": lambda: (
        "include.zip",
        scene("include", '#include "nowhere.inc"\n' + GOOD_POV),
    ),
    "writes-outside-its-folder": lambda: ("escape.zip", scene("escape", ESCAPE_POV)),
    "never-ends": lambda: ("forever.zip", scene("forever", FOREVER_POV)),
    "huge-image-size": lambda: (
        "huge.zip",
        make_zip([("huge.ini", ini(width=100000, height=100000)), ("scene.pov", GOOD_POV)]),
    ),
    "frame-step": lambda: (
        "stepped.zip",
        make_zip(
            [("stepped.ini", ini() + "Final_Frame=9\nFrame_Step=3\n"), ("scene.pov", GOOD_POV)]
        ),
    ),
    "fractional-subset": lambda: (
        "fraction.zip",
        make_zip(
            [
                ("fraction.ini", ini() + "+KFF20 +SF0.5\n"),
                ("scene.pov", GOOD_POV),
            ]
        ),
    ),
    "million-frames": lambda: (
        "endless.zip",
        make_zip([("endless.ini", ini() + "Final_Frame=1000000\n"), ("scene.pov", GOOD_POV)]),
    ),
    "backwards-frames": lambda: (
        "backwards.zip",
        make_zip(
            [("backwards.ini", ini() + "Initial_Frame=9\nFinal_Frame=2\n"), ("scene.pov", GOOD_POV)]
        ),
    ),
    "non-utf8-entry-name": lambda: ("bytes.zip", non_utf8_name_zip("bytes")),
    "long-entry-name": lambda: ("longentry.zip", scene("longentry", GOOD_POV, (LONG, ""))),
    "long-entry-path": lambda: (
        "longpath.zip",
        scene("longpath", GOOD_POV, ("/".join(["d" * 200] * 6) + "/x.txt", "")),
    ),
    "key-space-plus-percent": lambda: ("my scene+1%20.zip", scene("my scene+1%20")),
    "key-s3-event-encoded": lambda: ("a+b c%2Fd.zip", scene("a+b c%2Fd")),
    "long-scene-name": lambda: ("l" * 250 + ".zip", scene("l" * 250)),
    "dot-scene-name": lambda: (".hidden.zip", scene(".hidden")),
    **leftover_scenes(),
}

# A scene file name that is not UTF-8 cannot be written portably from a str key: made apart.
NON_UTF8_SCENE = b"sc\xe8ne.zip"

WRONG_TYPES = {
    "app": "app = 5",
    "region": "region = true",
    "profile": "profile = []",
    "bucket.name": "[bucket]\nname = 1",
    "bucket.input_prefix": "[bucket]\ninput_prefix = []",
    "bucket.output_prefix": "[bucket]\noutput_prefix = false",
    "queue.visibility_timeout_s": '[queue]\nvisibility_timeout_s = "900"',
    "queue.max_receives": "[queue]\nmax_receives = 1.5",
    "launcher.memory_mb": '[launcher]\nmemory_mb = "128"',
    "launcher.timeout_s": "[launcher]\ntimeout_s = [30]",
    "worker.cpu": '[worker]\ncpu = "1024"',
    "worker.memory_mb": "[worker]\nmemory_mb = 2048.5",
    "worker.max_tasks": "[worker]\nmax_tasks = true",
    "worker.render_timeout_s": "[worker]\nrender_timeout_s = {}",
    "worker.spot": '[worker]\nspot = "no"',
    "worker.container_cli": "[worker]\ncontainer_cli = 3",
    "network.subnets": '[network]\nsubnets = "subnet-1"',
    "network.security_groups": "[network]\nsecurity_groups = [1, 2]",
    "network.assign_public_ip": '[network]\nassign_public_ip = "yes"',
    "logs.retention_days": '[logs]\nretention_days = "14"',
    "bucket (a table)": 'bucket = "my-bucket"',
    "queue (a table)": "queue = 3",
    "launcher (a table)": "launcher = [128]",
    "worker (a table)": "worker = true",
    "network (a table)": 'network = "default"',
    "logs (a table)": "logs = 14",
}

CONFIGS: dict[str, str] = {
    "config-bad-values": (
        'app = "ok"\n[bucket]\ninput_prefix = "a/"\noutput_prefix = "a/b/"\n'
        "[queue]\nvisibility_timeout_s = 10\nmax_receives = 0\n"
        "[worker]\ncpu = 256\nmemory_mb = 8192\nmax_tasks = 0\n"
        "[logs]\nretention_days = 13\n"
    ),
    "config-bad-app-name": 'app = "Bad_Name!"\n',
    "config-unknown-key": "[queue]\nvisibility_timeout = 900\n",
    "config-not-toml": "this is = = not toml\n",
}


def messages(bucket: str) -> dict[str, str]:
    """SQS bodies that are not jobs (the worker drops them) and one S3-event-encoded key."""
    key = "scenes/key-s3-event-encoded/a+b c%2Fd.zip"
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key)}},
            }
        ]
    }
    return {
        # (SQS refuses bodies with control characters such as NUL; moto takes them and then
        # serves XML that the worker's boto3 cannot parse: not a case AWS can produce.)
        "message-not-json": "this is not JSON { \u00ff",
        "message-s3-test-event": json.dumps({"Event": "s3:TestEvent", "Bucket": bucket}),
        "key-s3-event-encoded": json.dumps(event),
    }


def write(out: Path) -> dict[str, Path]:
    """Writes every scene and config case; returns id -> path."""
    paths: dict[str, Path] = {}
    for case, make in SCENES.items():
        name, data = make()
        folder = out / case
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(data)
        paths[case] = path
    folder = out / "non-utf8-scene-name"
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(os.fsdecode(bytes(folder) + b"/" + NON_UTF8_SCENE))
    path.write_bytes(scene("scene"))
    paths["non-utf8-scene-name"] = path
    for key, line in WRONG_TYPES.items():
        case = "config-wrong-type-" + key.split(" ")[0].replace(".", "-")
        folder = out / case
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "lew.toml").write_text(line + "\n")
        paths[case] = folder / "lew.toml"
    for case, text in CONFIGS.items():
        folder = out / case
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "lew.toml").write_text(text)
        paths[case] = folder / "lew.toml"
    return paths


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    for case, path in sorted(write(out).items()):
        print(f"{case}: {os.fsencode(path)!r} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

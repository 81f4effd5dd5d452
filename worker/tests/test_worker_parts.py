"""The worker's parts of a scene (lew render splits them, the launcher queues them): runs of an
animation's frames and bands of a still, against moto and Debian's real POV-Ray.

Each frame the worker renders must be exactly what POV-Ray renders for that frame alone, and a
still stitched from bands exactly what POV-Ray renders whole (compared on decoded pixels with
pypng: POV-Ray writes the render time into every PNG). The scenes use anti-aliasing, where a
band cut off POV-Ray's 32-row block grid would differ; lew's bands start on the grid.
"""

from __future__ import annotations

import io
import json
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import png
import pytest
from test_worker import (
    Stack,
    make_stack,
    make_zip,
    worker,
)


@pytest.fixture
def stack(moto_endpoint: str, unique: str) -> Iterator[Stack]:
    created, cleanup = make_stack(unique)
    yield created
    cleanup()


# A scene whose sphere moves with the clock, anti-aliased, with a frame that can be broken.
ANIMATED_POV = """#version 3.7;
global_settings { assumed_gamma 1 }
camera { location <0, 0, -4> look_at 0 }
light_source { <2, 4, -3> color rgb 1 }
sphere { <clock * 2 - 1, 0, 0>, 0.8
  pigment { checker color rgb 1 color rgb <0.2, 0.4, 1> scale 0.3 } }
plane { y, -1 pigment { color rgb 0.8 } }
#if (frame_number = BROKEN)
  #error "frame three is broken"
#end
"""


def animation_zip(name: str, broken: int = -1, final: int = 5) -> bytes:
    ini = (
        "Input_File_Name=scene.pov\nWidth=40\nHeight=30\nAntialias=on\nAntialias_Threshold=0.1\n"
        f"Initial_Frame=1\nFinal_Frame={final}\nInitial_Clock=0\nFinal_Clock=1\n"
        f"Declare=BROKEN={broken}\n"
    )
    return make_zip([(f"{name}.ini", ini), ("scene.pov", ANIMATED_POV)])


# A still with fine detail across block edges: anti-aliasing decides many of its pixels.
STILL_POV = """#version 3.7;
global_settings { assumed_gamma 1 }
camera { location <0, 1, -5> look_at 0 }
light_source { <3, 5, -4> color rgb 1 }
sphere { 0, 1.3 pigment { checker color rgb 1 color rgb <1, 0.3, 0.1> scale 0.15 } }
plane { y, -1.3 pigment { checker color rgb 0.1 color rgb 0.9 scale 0.4 } }
"""


def still_zip(name: str, bits: int = 8, alpha: bool = False) -> bytes:
    # 100 rows: a multiple of neither 32 nor 3.
    ini = f"Input_File_Name=scene.pov\nWidth=60\nHeight=100\nAntialias=on\nBits_Per_Color={bits}\n"
    if alpha:
        ini += "Output_Alpha=on\n"
    return make_zip([(f"{name}.ini", ini), ("scene.pov", STILL_POV)])


def pixels(data: bytes) -> tuple[Any, list[list[int]]]:
    width, height, rows, info = png.Reader(bytes=data).read()
    shape = (width, height, info["bitdepth"], info["planes"], info["alpha"])
    return shape, [list(row) for row in rows]


def povray_alone(zip_bytes: bytes, name: str, *options: str) -> bytes:
    """What POV-Ray itself renders for the scene with these options (no worker involved)."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        zipfile.ZipFile(io.BytesIO(zip_bytes)).extractall(work)
        out = work / "alone.png"
        run = subprocess.run(
            ["povray", f"{name}.ini", "-D", "+WT1", "+FN", f"+O{out}", *options],
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        produced = sorted(work.glob("alone*.png"))
        assert len(produced) == 1, produced
        return produced[0].read_bytes()


def send_part(stack: Stack, key: str, part: dict[str, Any] | None) -> None:
    body: dict[str, Any] = {"version": 1, "job_id": "j", "bucket": stack.bucket, "key": key}
    if part is not None:
        body["part"] = part
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(body))


# ---------------------------------------------------------------------------------------------
# Animations


def test_an_animation_uploaded_whole_renders_every_frame_as_povray_does(stack: Stack) -> None:
    data = animation_zip("anim")
    stack.put("scenes/j/anim.zip", data)
    send_part(stack, "scenes/j/anim.zip", None)  # an upload not made by lew: no plan

    run = stack.run()

    assert run.returncode == 0, run.stderr
    frames = stack.keys("renders/j/anim/")
    assert frames == [f"renders/j/anim/anim{n}.png" for n in range(1, 6)]
    for n in range(1, 6):
        got = stack.get(f"renders/j/anim/anim{n}.png")
        assert got is not None
        want = povray_alone(data, "anim", f"+SF{n}", f"+EF{n}")
        assert pixels(got) == pixels(want), f"frame {n}"
    # The clock moved: the frames are not all the same picture.
    first, last = stack.get("renders/j/anim/anim1.png"), stack.get("renders/j/anim/anim5.png")
    assert first is not None and last is not None
    assert pixels(first) != pixels(last)
    assert stack.get("renders/j/anim.png") is None


def test_a_run_of_frames_renders_only_those_frames_and_skips_those_in_s3(stack: Stack) -> None:
    stack.put("scenes/j/anim.zip", animation_zip("anim", final=12))
    # Frame 3 is already there (an earlier attempt): it is neither rendered nor overwritten.
    stack.put("renders/j/anim/anim03.png", b"earlier")
    send_part(stack, "scenes/j/anim.zip", {"frames": [2, 4]})

    run = stack.run()

    assert run.returncode == 0, run.stderr
    assert stack.keys("renders/j/anim/") == [
        "renders/j/anim/anim02.png",
        "renders/j/anim/anim03.png",
        "renders/j/anim/anim04.png",
    ]
    assert stack.get("renders/j/anim/anim03.png") == b"earlier"
    assert "renders/j/anim.parts/frames-2-4.started.json" in stack.keys("renders/j/anim.parts/")
    (rendered,) = run.named("rendered")
    assert rendered["uploaded_frames"] == 2
    assert rendered["frames"] == "2-4"


def test_a_broken_frame_fails_alone_and_the_frames_after_it_render(stack: Stack) -> None:
    stack.put("scenes/j/anim.zip", animation_zip("anim", broken=3))
    send_part(stack, "scenes/j/anim.zip", {"frames": [1, 5]})

    run = stack.run()

    assert run.returncode == 0, run.stderr
    keys = stack.keys("renders/j/anim/")
    assert keys == [
        "renders/j/anim/anim1.png",
        "renders/j/anim/anim2.png",
        "renders/j/anim/anim3.error.txt",
        "renders/j/anim/anim4.png",
        "renders/j/anim/anim5.png",
    ]
    error = stack.get("renders/j/anim/anim3.error.txt")
    assert error is not None
    first = error.decode().splitlines()[0]
    assert first.startswith("frame 3: ") and "frame three is broken" in first, first
    (scene_error,) = run.named("scene_error")
    assert scene_error["frame"] == 3
    assert stack.depth() == (0, 0)  # a scene error is final: the message is gone


# ---------------------------------------------------------------------------------------------
# Bands

BANDS = [[1, 32], [33, 64], [65, 100]]


@pytest.mark.parametrize(("bits", "alpha"), [(8, False), (16, False), (16, True)])
def test_bands_stitch_into_the_image_povray_renders_whole(
    stack: Stack, bits: int, alpha: bool
) -> None:
    data = still_zip("still", bits=bits, alpha=alpha)
    stack.put("scenes/j/still.zip", data)
    for band in (1, 2, 3):
        send_part(stack, "scenes/j/still.zip", {"band": band, "rows": BANDS})

    run = stack.run()

    assert run.returncode == 0, run.stderr
    stitched = stack.get("renders/j/still.png")
    assert stitched is not None
    shape, rows = pixels(stitched)
    assert shape[2] == bits and shape[4] == alpha
    assert (shape, rows) == pixels(povray_alone(data, "still"))
    # The parts are gone, the image's log has every band's.
    assert stack.keys("renders/j/still.parts/") == []
    log = stack.get("renders/j/still.log")
    assert log is not None and log.decode().count("==== band ") == 3
    assert [e["bands"] for e in run.named("stitched")] == [3]


def test_a_band_cut_off_the_block_grid_would_differ(stack: Stack) -> None:
    """Why bands start on POV-Ray's block grid: the same stitch with a cut at row 50 is not
    the whole image (so the identity above is not vacuous)."""
    data = still_zip("still")
    off_grid = [[1, 50], [51, 100]]
    stack.put("scenes/j/still.zip", data)
    for band in (1, 2):
        send_part(stack, "scenes/j/still.zip", {"band": band, "rows": off_grid})
    assert stack.run().returncode == 0
    stitched = stack.get("renders/j/still.png")
    assert stitched is not None
    assert pixels(stitched) != pixels(povray_alone(data, "still"))


def test_a_band_of_an_image_already_stitched_is_skipped(stack: Stack) -> None:
    stack.put("scenes/j/still.zip", still_zip("still"))
    stack.put("renders/j/still.png", b"stitched before")
    send_part(stack, "scenes/j/still.zip", {"band": 2, "rows": BANDS})

    run = stack.run()

    assert [e["reason"] for e in run.named("skipped")] == ["output exists"]
    assert run.named("job_started") == []
    assert stack.get("renders/j/still.png") == b"stitched before"


def test_a_failed_band_names_its_rows(stack: Stack) -> None:
    broken = make_zip(
        [("still.ini", "Input_File_Name=scene.pov\nHeight=100\n"), ("scene.pov", "sphere {")]
    )
    stack.put("scenes/j/still.zip", broken)
    send_part(stack, "scenes/j/still.zip", {"band": 2, "rows": BANDS})

    stack.run()

    error = stack.get("renders/j/still.error.txt")
    assert error is not None
    assert error.decode().startswith("band 2 of 3 (rows 33-64): "), error.decode()


def test_stitching_twice_writes_the_same_bytes(tmp_path: Path) -> None:
    """Two workers that finish together both stitch: S3 then holds one of two equal files."""
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    band = tmp_path / "band.png"
    png.Writer(4, 6, greyscale=True, bitdepth=16).write(
        band.open("wb"), [[row * 1000 + col for col in range(4)] for row in range(6)]
    )
    rows = [(band, (1, 2)), (band, (3, 6))]
    worker.stitch_bands(rows, first)
    worker.stitch_bands(rows, second)
    assert first.read_bytes() == second.read_bytes()
    assert pixels(first.read_bytes()) == pixels(band.read_bytes())


def test_parts_in_messages_are_read_strictly() -> None:
    job = worker._parse_lew_job(
        {"version": 1, "bucket": "b", "key": "k", "part": {"frames": [3, 9]}}
    )
    assert job.part == worker.Part(frames=(3, 9))
    band = worker._parse_lew_job(
        {"version": 1, "bucket": "b", "key": "k", "part": {"band": 2, "rows": BANDS}}
    )
    assert band.part is not None and band.part.band_rows() == (33, 64)
    for part in (
        {"frames": [9, 3]},
        {"frames": [1]},
        {"band": 4, "rows": BANDS},
        {"band": 1, "rows": [[1, 32], [40, 64]]},
        {"band": 1, "rows": []},
        "frames",
    ):
        with pytest.raises(worker.BadMessage):
            worker._parse_lew_job({"version": 1, "bucket": "b", "key": "k", "part": part})


# ---------------------------------------------------------------------------------------------
# Warm workers


def test_a_warm_worker_takes_a_job_that_arrives_while_it_waits(stack: Stack) -> None:
    stack.put("scenes/j/anim.zip", animation_zip("anim", final=2))
    process = stack.start(LEW_IDLE_S="60", LEW_WAIT_TIME_S="1")
    try:
        # The job arrives only once the worker has found the queue empty and said it waits.
        assert process.stdout is not None
        for line in process.stdout:
            event = json.loads(line)
            assert event["event"] != "exit", f"the worker exited instead of waiting: {event}"
            if event["event"] == "waiting":
                assert 50 < event["for_s"] <= 60
                break
        send_part(stack, "scenes/j/anim.zip", None)
        deadline = time.monotonic() + 60
        while stack.get("renders/j/anim/anim2.png") is None:
            assert time.monotonic() < deadline, "the waiting worker did not take the job"
            assert process.poll() is None, "the worker exited instead of waiting"
            time.sleep(0.2)
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_without_idle_time_a_worker_leaves_at_the_first_empty_poll(stack: Stack) -> None:
    run = stack.run(LEW_IDLE_S="0")
    assert run.named("waiting") == []
    assert [e["reason"] for e in run.named("exit")] == ["queue empty"]

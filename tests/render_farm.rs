//! The render farm end to end on the emulator: animations rendered frame by frame and stills in
//! bands across the workers the local runner plays, each result compared on decoded pixels with
//! what POV-Ray renders on its own (POV-Ray's own sample animations from Debian's
//! `povray-examples`, which `scripts/test` installs), and the same with `--local`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::render::Runner;
use crate::render_local::write_zip;
use crate::support::App;

/// Where Debian's `povray-examples` keeps POV-Ray's sample animations.
const SAMPLES: &str = "/usr/share/doc/povray/examples/animations";

/// A copy of one of POV-Ray's sample animations, in a folder named like its `.ini` (so lew
/// picks that `.ini`, as for any scene).
fn sample(dir: &str, ini: &str, into: &Path) -> PathBuf {
    let from = Path::new(SAMPLES).join(dir);
    assert!(
        from.is_dir(),
        "{} is missing: install Debian's povray-examples (scripts/test does)",
        from.display()
    );
    let to = into.join(ini);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

/// What POV-Ray alone renders for the scene in `folder` with `ini` and `options`: the one PNG
/// it writes (a frame is numbered by POV-Ray itself).
pub fn povray_alone(folder: &Path, ini: &str, options: &[&str]) -> PathBuf {
    let out = tempfile::tempdir().unwrap().keep();
    let status = Command::new("povray")
        .arg(ini)
        .args(["-D", "+WT1", "+FN"])
        .arg(format!("+O{}", out.join("alone.png").display()))
        .args(options)
        .current_dir(folder)
        .output()
        .expect("povray runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let mut written: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    written.remove(0)
}

/// Whether two images show the same pixels (same size, depth, colour type and samples).
pub fn same_pixels(a: &Path, b: &Path) -> bool {
    lew::stitch::pixels(a).unwrap() == lew::stitch::pixels(b).unwrap()
}

/// A small anti-aliased animation whose sphere moves with the clock; `broken` fails a frame.
pub fn animation(into: &Path, name: &str, frames: u32, broken: i32) -> PathBuf {
    let dir = into.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.ini")),
        format!(
            "Input_File_Name=scene.pov\nWidth=48\nHeight=36\nAntialias=on\n\
             Initial_Frame=1\nFinal_Frame={frames}\nInitial_Clock=0\nFinal_Clock=1\n\
             Declare=BROKEN={broken}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("scene.pov"),
        "#version 3.7;\nglobal_settings { assumed_gamma 1 }\n\
         camera { location <0, 0, -4> look_at 0 }\nlight_source { <2, 4, -3> color rgb 1 }\n\
         sphere { <clock * 2 - 1, 0, 0>, 0.8 pigment { checker color rgb 1 color rgb <0.2, 0.4, 1> \
         scale 0.3 } }\nplane { y, -1 pigment { color rgb 0.8 } }\n\
         #if (frame_number = BROKEN)\n  #error \"this frame is broken\"\n#end\n",
    )
    .unwrap();
    dir
}

/// A still of 60×100 pixels (100 rows: a multiple of neither 32 nor 3) with detail that
/// anti-aliasing decides, at `bits` per colour, with or without alpha.
pub fn still(into: &Path, name: &str, bits: u32, alpha: bool) -> PathBuf {
    let dir = into.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let alpha = if alpha { "Output_Alpha=on\n" } else { "" };
    std::fs::write(
        dir.join(format!("{name}.ini")),
        format!(
            "Input_File_Name=scene.pov\nWidth=60\nHeight=100\nAntialias=on\n\
             Bits_Per_Color={bits}\n{alpha}"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("scene.pov"),
        "#version 3.7;\nglobal_settings { assumed_gamma 1 }\n\
         camera { location <0, 1, -5> look_at 0 }\nlight_source { <3, 5, -4> color rgb 1 }\n\
         sphere { 0, 1.3 pigment { checker color rgb 1 color rgb <1, 0.3, 0.1> scale 0.15 } }\n\
         plane { y, -1.3 pigment { checker color rgb 0.1 color rgb 0.9 scale 0.4 } }\n",
    )
    .unwrap();
    dir
}

/// Every key under `prefix` in the app's bucket.
async fn keys(app: &App, prefix: &str) -> Vec<String> {
    let aws = app.aws().await;
    let out = aws
        .s3
        .list_objects_v2()
        .bucket(app.bucket())
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .map(|o| o.key().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_povray_sample_animation_renders_every_frame_as_povray_renders_it_alone() {
    let app = App::new("[worker]\nmax_tasks = 2\n");
    app.lew().arg("setup").ok();
    let _runner = Runner::start(&app);
    // POV-Ray's "quilted" sample: plotqlt.ini, frames 1-10, anti-aliased, 800×600.
    let scene = sample("quilted", "plotqlt", app.path());
    let out = app.path().join("out");
    let run = app
        .lew()
        .args(["--output", "json", "render", "--timeout", "10m", "--out"])
        .arg(&out)
        .arg(&scene)
        .ok();
    let report = run.json();
    let result = &report["scenes"][0];
    assert_eq!(result["state"], "done", "{report}");
    assert_eq!(result["parts"]["kind"], "frames");
    assert_eq!(result["parts"]["total"], 10);
    assert_eq!(result["parts"]["done"], 10);
    // Two workers, about four jobs each: runs of two frames.
    assert_eq!(result["parts"]["jobs"], 5);
    // Progress shows the frames as they land (a line a change without a terminal).
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("frames ") && l.contains("/10")),
        "{}",
        run.stderr
    );
    for n in 1..=10 {
        let frame = out.join(format!("plotqlt/plotqlt{n:02}.png"));
        let alone = povray_alone(
            &scene,
            "plotqlt.ini",
            &[&format!("+SF{n}"), &format!("+EF{n}")],
        );
        assert!(same_pixels(&frame, &alone), "frame {n} differs");
    }
    assert!(
        !same_pixels(
            &out.join("plotqlt/plotqlt01.png"),
            &out.join("plotqlt/plotqlt10.png")
        ),
        "the frames are all the same picture"
    );
    // What it cost: seconds of work from S3's dates, priced as Fargate prices them.
    let cost = &report["cost"];
    assert!(cost["task_seconds"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(cost["made"], "10 frames");
    assert!(cost["usd"].as_f64().unwrap() > 0.0);
    // The frames stay in S3, numbered as POV-Ray numbers them.
    let job = report["job_id"].as_str().unwrap();
    let frames = keys(&app, &format!("renders/{job}/plotqlt/")).await;
    assert_eq!(frames.len(), 10, "{frames:?}");
    assert!(frames.contains(&format!("renders/{job}/plotqlt/plotqlt07.png")));
}

#[tokio::test]
async fn frames_renders_only_the_frames_asked_for() {
    let app = App::new("[worker]\nmax_tasks = 2\n");
    app.lew().arg("setup").ok();
    let _runner = Runner::start(&app);
    // POV-Ray's "float1" sample: frames 1-51 (two digits in its file names).
    let scene = sample("float1", "float1", app.path());
    let out = app.path().join("out");
    let report = app
        .lew()
        .args(["--output", "json", "render", "--frames", "10-12", "--out"])
        .arg(&out)
        .arg(&scene)
        .ok()
        .json();
    assert_eq!(report["scenes"][0]["state"], "done", "{report}");
    let mut got: Vec<String> = std::fs::read_dir(out.join("float1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, ["float110.png", "float111.png", "float112.png"]);
    let alone = povray_alone(&scene, "float1.ini", &["+SF11", "+EF11"]);
    assert!(same_pixels(&out.join("float1/float111.png"), &alone));
}

#[tokio::test]
async fn a_broken_frame_fails_the_scene_naming_that_frame_and_the_others_land() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let _runner = Runner::start(&app);
    let scene = animation(app.path(), "wobbly", 5, 3);
    let out = app.path().join("out");
    let run = app
        .lew()
        .args(["--output", "json", "render", "--out"])
        .arg(&out)
        .arg(&scene)
        .code(1);
    let report = run.json();
    let result = &report["scenes"][0];
    assert_eq!(result["state"], "failed", "{report}");
    let error = result["error"].as_str().unwrap();
    assert!(
        error.starts_with("1 of 5 frames failed; frame 3: ")
            && error.contains("this frame is broken"),
        "{error}"
    );
    assert_eq!(result["parts"]["failed"][0]["frame"], 3);
    // POV-Ray's lines about the error follow, without repeating the reason.
    let details = result["log_tail"].as_str().unwrap();
    assert!(details.contains("Fatal error in parser"), "{details}");
    assert!(!details.contains("broken"), "{details}");
    for n in [1, 2, 4, 5] {
        assert!(
            out.join(format!("wobbly/wobbly{n}.png")).is_file(),
            "frame {n}"
        );
    }
    assert!(!out.join("wobbly/wobbly3.png").exists());
}

#[tokio::test]
async fn a_split_still_is_one_image_in_s3_identical_to_a_whole_render() {
    let app = App::new("[worker]\nmax_tasks = 3\n");
    app.lew().arg("setup").ok();
    let _runner = Runner::start(&app);
    let eight = still(app.path(), "eight", 8, false);
    let sixteen = still(app.path(), "sixteen", 16, true);
    let out = app.path().join("out");
    let report = app
        .lew()
        .args(["--output", "json", "render", "--split", "3", "--out"])
        .arg(&out)
        .args([&eight, &sixteen])
        .ok()
        .json();
    let job = report["job_id"].as_str().unwrap();
    for (i, (name, dir)) in [("eight", &eight), ("sixteen", &sixteen)]
        .iter()
        .enumerate()
    {
        let result = &report["scenes"][i];
        assert_eq!(result["state"], "done", "{report}");
        assert_eq!(result["parts"]["kind"], "bands");
        assert_eq!(result["parts"]["total"], 3);
        let alone = povray_alone(dir, &format!("{name}.ini"), &[]);
        let got = out.join(format!("{name}.png"));
        assert!(
            same_pixels(&got, &alone),
            "{name} differs from a whole render"
        );
        // In S3: the one stitched image (what --no-wait users and CI read), no parts left.
        let keys = keys(&app, &format!("renders/{job}/{name}")).await;
        assert!(
            keys.contains(&format!("renders/{job}/{name}.png")),
            "{keys:?}"
        );
        assert!(keys.iter().all(|k| !k.contains(".parts/")), "{keys:?}");
    }
    let (shape, _) = lew::stitch::pixels(&out.join("sixteen.png")).unwrap();
    assert_eq!(shape.depth, png::BitDepth::Sixteen);
    assert_eq!(shape.color, png::ColorType::Rgba);
}

/// The local ffmpeg; CI must have it (scripts/test installs it), elsewhere its absence skips.
fn ffmpeg() -> Option<()> {
    let found = Command::new("ffmpeg").arg("-version").output().is_ok();
    if !found && std::env::var_os("CI").is_some() {
        panic!("CI runs the --video tests: install ffmpeg (scripts/test does)");
    }
    found.then_some(())
}

#[tokio::test]
async fn video_assembles_the_frames_with_ffmpeg_and_says_when_it_cannot() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let _runner = Runner::start(&app);
    let scene = animation(app.path(), "clip", 6, -1);

    // Without ffmpeg: the frames are there, the video is named as missing, exit 1.
    let out = app.path().join("no-ffmpeg");
    let run = app
        .lew()
        .env("LEW_FFMPEG", "/nonexistent/ffmpeg")
        .args(["render", "--video"])
        .arg(app.path().join("clip.mp4"))
        .arg("--out")
        .arg(&out)
        .arg(&scene)
        .code(1);
    assert!(
        run.stderr.contains("ffmpeg is not installed"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("NO VIDEO"), "{}", run.stdout);
    assert!(out.join("clip/clip6.png").is_file());
    assert!(!app.path().join("clip.mp4").exists());

    if ffmpeg().is_none() {
        eprintln!("ffmpeg is not installed: skipping the video itself");
        return;
    }
    for (file, frames) in [("clip.mp4", "6"), ("clip.gif", "6")] {
        let video = app.path().join(file);
        let out = app.path().join(format!("out-{file}"));
        let report = app
            .lew()
            .args(["--output", "json", "render", "--fps", "12", "--video"])
            .arg(&video)
            .arg("--out")
            .arg(&out)
            .arg(&scene)
            .ok()
            .json();
        assert_eq!(report["scenes"][0]["video"], video.to_str().unwrap());
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(&video)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&probe.stdout).trim(),
            frames,
            "{file}: {}",
            String::from_utf8_lossy(&probe.stderr)
        );
    }
}

#[test]
fn mistakes_in_what_to_render_are_named_before_anything_is_uploaded() {
    // No setup and a port nobody answers: only a check before any AWS call can answer.
    let app = App::on("http://127.0.0.1:9", "");
    let anim = animation(app.path(), "anim", 5, -1);
    let still = still(app.path(), "photo", 8, false);
    let zip = app.path().join("other.zip");
    write_zip(
        &zip,
        &[
            ("other.ini", "Input_File_Name=o.pov\nFinal_Frame=3\n"),
            ("o.pov", "sphere{0,1}"),
        ],
    );
    for (args, says) in [
        (
            vec!["--split", "2", anim.to_str().unwrap()],
            "--split 2 cuts a still into bands",
        ),
        (
            vec!["--frames", "4-9", anim.to_str().unwrap()],
            "--frames 4-9 is outside the animation's frames 1-5",
        ),
        (
            vec!["--frames", "1-2", still.to_str().unwrap()],
            "--frames chooses frames of an animation",
        ),
        (
            vec![
                "--video",
                "a.mp4",
                anim.to_str().unwrap(),
                zip.to_str().unwrap(),
            ],
            "--video assembles the frames of one animation, and 2",
        ),
        (
            vec!["--video", "a.mov", anim.to_str().unwrap()],
            "lew makes .mp4, .webm or .gif videos",
        ),
    ] {
        let run = app.lew().arg("render").args(&args).code(2);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
}

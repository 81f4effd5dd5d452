//! `lew render --local`: real zips, the real povray, no AWS.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::support::Lew;

pub fn demo_scene() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/lew-demo")
}

/// A PNG's width and height, from its IHDR chunk.
pub fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

/// Writes a zip with the given entries.
pub fn write_zip(path: &Path, entries: &[(&str, &str)]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    for (name, text) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
}

/// A tiny scene that renders in well under a second.
pub const TINY_POV: &str = "camera { location <0, 1, -3> look_at <0, 0, 0> }\n\
    light_source { <2, 4, -3> color rgb 1 }\n\
    sphere { <0, 0, 0>, 1 pigment { color rgb <1, 0.5, 0.2> } }\n";

pub fn tiny_ini(name: &str) -> String {
    format!("Input_File_Name={name}.pov\nWidth=64\nHeight=48\nAntialias=off\n")
}

#[test]
fn the_demo_scene_renders_locally_without_aws() {
    let out = tempfile::tempdir().unwrap();
    // No credentials, no region, an endpoint nobody answers: --local must not need them.
    let run = Lew::new()
        .args(["render", "--local", "--out"])
        .arg(out.path())
        .arg(demo_scene())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_REGION")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .dir(out.path())
        .ok();
    let png = out.path().join("lew-demo.png");
    assert_eq!(png_size(&png), (640, 360), "{}", run.stderr);
    assert!(run.stdout.contains("lew-demo.png"), "{}", run.stdout);

    // It does not overwrite without --force, and says so before rendering.
    let run = Lew::new()
        .args(["render", "--local", "--out"])
        .arg(out.path())
        .arg(demo_scene())
        .code(2);
    assert!(run.stderr.contains("already exists") && run.stderr.contains("--force"));
}

#[test]
fn zips_and_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("ball.zip");
    write_zip(
        &zip,
        &[("ball.pov", TINY_POV), ("ball.ini", &tiny_ini("ball"))],
    );
    let run = Lew::new()
        .dir(dir.path())
        .args(["--output", "json", "render", "--local"])
        .arg(&zip)
        .ok();
    let doc = run.json();
    assert_eq!(doc["local"], true);
    assert_eq!(doc["scenes"][0]["state"], "done");
    assert_eq!(png_size(&dir.path().join("ball.png")), (64, 48));
}

#[test]
fn a_scene_error_is_reported_with_povray_s_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.zip");
    write_zip(
        &bad,
        &[
            (
                "bad.pov",
                "sphere { <0,0,0>, 1 pigment { color Nonesuch } }\n",
            ),
            ("bad.ini", &tiny_ini("bad")),
        ],
    );
    let good = dir.path().join("good.zip");
    write_zip(
        &good,
        &[("good.pov", TINY_POV), ("good.ini", &tiny_ini("good"))],
    );
    let run = Lew::new()
        .dir(dir.path())
        .args(["render", "--local"])
        .arg(&bad)
        .arg(&good)
        .code(1);
    assert!(run.stdout.contains("FAILED"), "{}", run.stdout);
    assert!(run.stdout.contains("Parse Error"), "{}", run.stdout);
    assert!(
        dir.path().join("good.png").exists(),
        "the good scene still renders"
    );
    assert!(!dir.path().join("bad.png").exists());
}

#[test]
fn invalid_scenes_are_rejected_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let slip = dir.path().join("slip.zip");
    write_zip(&slip, &[("../slip.ini", ""), ("slip.pov", TINY_POV)]);
    let noini = dir.path().join("noini.zip");
    write_zip(&noini, &[("x.pov", TINY_POV)]);
    let notzip = dir.path().join("notzip.zip");
    std::fs::write(&notzip, "hello").unwrap();
    let good = dir.path().join("good.zip");
    write_zip(
        &good,
        &[("good.pov", TINY_POV), ("good.ini", &tiny_ini("good"))],
    );
    let run = Lew::new()
        .dir(dir.path())
        .args(["render", "--local"])
        .args([&slip, &noini, &notzip, &good])
        .code(2);
    for expect in [
        "contains '..'",
        "no .ini file",
        "not a zip file",
        "--keep-going",
    ] {
        assert!(run.stderr.contains(expect), "{expect}: {}", run.stderr);
    }
    assert!(
        !dir.path().join("good.png").exists(),
        "nothing renders when a scene is invalid"
    );

    // --keep-going renders the valid one and still fails overall.
    let run = Lew::new()
        .dir(dir.path())
        .args(["render", "--local", "--keep-going"])
        .args([&noini, &good])
        .code(1);
    assert!(run.stdout.contains("INVALID"), "{}", run.stdout);
    assert!(dir.path().join("good.png").exists());
}

#[test]
fn a_missing_povray_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    // No povray on PATH: how to install it.
    let run = Lew::new()
        .dir(dir.path())
        .env("PATH", "/nonexistent")
        .env_remove("LEW_POVRAY")
        .args(["render", "--local"])
        .arg(demo_scene())
        .code(1);
    assert!(
        run.stderr.contains("apt-get install povray"),
        "{}",
        run.stderr
    );
    // LEW_POVRAY naming nothing: the variable is the mistake, not the installation.
    let run = Lew::new()
        .dir(dir.path())
        .env("LEW_POVRAY", "/nope")
        .args(["render", "--local"])
        .arg(demo_scene())
        .code(2);
    assert!(
        run.stderr.contains("LEW_POVRAY=/nope: no such program"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_ini_included_by_the_scene_s_ini_cannot_change_the_checked_size() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("nested.zip");
    // The outer .ini is what lew checks (64x48); the inner one asks for more.
    let outer = format!("{}inner.ini\n", tiny_ini("nested"));
    write_zip(
        &zip,
        &[
            ("nested.pov", TINY_POV),
            ("nested.ini", &outer),
            ("inner.ini", "Width=96\nHeight=72\n"),
        ],
    );
    let out = dir.path().join("out");
    Lew::new()
        .args(["render", "--local", "--out"])
        .arg(&out)
        .arg(&zip)
        .ok();
    assert_eq!(png_size(&out.join("nested.png")), (64, 48));
}

#[test]
fn an_ini_that_is_not_utf8_is_accepted_as_povray_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("latin.zip");
    let file = std::fs::File::create(&zip).unwrap();
    let mut w = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    w.start_file("latin.pov", options).unwrap();
    w.write_all(TINY_POV.as_bytes()).unwrap();
    w.start_file("latin.ini", options).unwrap();
    // "; scène" in Latin-1: not UTF-8.
    w.write_all(b"; sc\xe8ne\n").unwrap();
    w.write_all(tiny_ini("latin").as_bytes()).unwrap();
    w.finish().unwrap();
    let out = dir.path().join("out");
    Lew::new()
        .args(["render", "--local", "--out"])
        .arg(&out)
        .arg(&zip)
        .ok();
    assert_eq!(png_size(&out.join("latin.png")), (64, 48));
}

#[test]
fn a_reader_that_goes_away_is_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("piped.zip");
    write_zip(
        &zip,
        &[("piped.pov", TINY_POV), ("piped.ini", &tiny_ini("piped"))],
    );
    // `true` exits at once, so the report is written into a pipe nobody reads.
    let run = std::process::Command::new("bash")
        .args([
            "-c",
            r#""$0" --output json render --local --out "$1" "$2" | true; echo "${PIPESTATUS[0]}""#,
        ])
        .arg(env!("CARGO_BIN_EXE_lew"))
        .arg(dir.path().join("out"))
        .arg(&zip)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "0", "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn local_split_and_animation_render_in_parallel_as_povray_alone_does() {
    use crate::render_farm::{animation, povray_alone, same_pixels, still};
    let dir = tempfile::tempdir().unwrap();
    let photo = still(dir.path(), "photo", 16, false);
    let anim = animation(dir.path(), "spin", 4, 3);
    let out = dir.path().join("out");
    // worker.split applies to stills; the animation is rendered frame by frame.
    std::fs::write(dir.path().join("lew.toml"), "[worker]\nsplit = 3\n").unwrap();
    let run = Lew::new()
        .args(["--output", "json", "render", "--local", "--jobs", "2"])
        .arg("--out")
        .arg(&out)
        .arg(&photo)
        .arg(&anim)
        .dir(dir.path())
        .code(1);
    let report = run.json();
    // The still: three bands, stitched identical to POV-Ray's whole render.
    let still_result = &report["scenes"][0];
    assert_eq!(still_result["state"], "done", "{report}");
    assert_eq!(still_result["parts"]["total"], 3);
    let whole = povray_alone(&photo, "photo.ini", &[]);
    assert!(same_pixels(&out.join("photo.png"), &whole));
    // The animation: frame 3 is broken, the others are POV-Ray's own.
    let anim_result = &report["scenes"][1];
    assert_eq!(anim_result["state"], "failed");
    assert!(
        anim_result["error"]
            .as_str()
            .unwrap()
            .starts_with("1 of 4 frames failed; frame 3: "),
        "{report}"
    );
    for n in [1, 2, 4] {
        let alone = povray_alone(&anim, "spin.ini", &[&format!("+SF{n}"), &format!("+EF{n}")]);
        assert!(
            same_pixels(&out.join(format!("spin/spin{n}.png")), &alone),
            "frame {n}"
        );
    }
    assert!(!out.join("spin/spin3.png").exists());
}

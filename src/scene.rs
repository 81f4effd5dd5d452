//! Scenes: a `.zip` or a folder (zipped in memory), checked before anything is uploaded with the
//! same rules the worker applies (`worker/worker.py`: `safe_extract`, `choose_ini`), so a scene
//! the worker would reject never costs an upload and a Fargate task.

use std::collections::BTreeSet;
use std::io::{Cursor, Read as _, Write as _};
use std::path::{Component, Path, PathBuf};

use zip::write::SimpleFileOptions;

use crate::ini;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// The worker's limits (its LEW_MAX_* defaults).
pub const MAX_ZIP_BYTES: u64 = 256 * 1024 * 1024;
pub const MAX_FILES: usize = 1000;
pub const MAX_UNPACKED_BYTES: u64 = 1024 * 1024 * 1024;
const MAX_NAME_BYTES: usize = 255;
const MAX_PATH_BYTES: usize = 1024;

/// Why a scene was rejected, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SceneError(pub String);

fn bad(msg: impl Into<String>) -> SceneError {
    SceneError(msg.into())
}

/// A checked scene, ready to upload or render.
#[derive(Debug, Clone)]
pub struct Scene {
    /// Where it came from, as the user named it.
    pub source: PathBuf,
    /// The zip's name without `.zip`: the render is `<name>.png`.
    pub name: String,
    /// The zip itself (built in memory for a folder).
    pub zip: Vec<u8>,
    /// The `.ini` the worker will use, as a path inside the zip.
    pub ini: String,
    pub files: usize,
    pub unpacked_bytes: u64,
    /// What the `.ini` asks for: size, frames, render-block size.
    pub settings: ini::Settings,
    /// Whether a scene file mentions radiosity: such renders differ between runs (POV-Ray's
    /// multithreaded pretrace), so they are split into bands only when asked.
    pub radiosity: bool,
}

/// Reads and checks a scene from a `.zip` file or a folder.
pub fn load(path: &Path) -> Result<Scene, SceneError> {
    let meta =
        std::fs::metadata(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    let (name, zip) = if meta.is_dir() {
        let name = file_name(path)?;
        (name, zip_folder(path)?)
    } else {
        let file = file_name(path)?;
        let Some(stem) = file
            .strip_suffix(".zip")
            .or_else(|| file.strip_suffix(".ZIP"))
        else {
            return Err(bad(format!(
                "{} is neither a .zip file nor a folder",
                path.display()
            )));
        };
        if meta.len() > MAX_ZIP_BYTES {
            return Err(bad(format!(
                "{} is {} bytes, more than the worker's limit of {MAX_ZIP_BYTES}",
                path.display(),
                meta.len()
            )));
        }
        let bytes =
            std::fs::read(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        (stem.to_string(), bytes)
    };
    check_name(&name)?;
    let Checked {
        ini,
        files,
        unpacked_bytes,
        settings,
        radiosity,
    } = check(&zip, &name)?;
    Ok(Scene {
        source: path.to_path_buf(),
        name,
        zip,
        ini,
        files,
        unpacked_bytes,
        settings,
        radiosity,
    })
}

fn file_name(path: &Path) -> Result<String, SceneError> {
    // `.` and `..` have no file name of their own: use the folder they point to.
    let resolved;
    let path = if path.file_name().is_none() {
        resolved = path
            .canonicalize()
            .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        resolved.as_path()
    } else {
        path
    };
    let name = path
        .file_name()
        .ok_or_else(|| bad(format!("{} has no file name", path.display())))?;
    name.to_str()
        .map(str::to_string)
        .ok_or_else(|| bad(format!("{} is not a UTF-8 name", path.display())))
}

/// The name becomes part of S3 keys and of the output file name.
fn check_name(name: &str) -> Result<(), SceneError> {
    if name.is_empty() || name.starts_with('.') {
        return Err(bad(format!("{name:?} is not a usable scene name")));
    }
    if name.len() > 200 {
        return Err(bad(format!(
            "the scene name {:?}... is longer than 200 bytes",
            &name[..name.floor_char_boundary(40)]
        )));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(bad(format!(
            "the scene name {name:?} contains control characters or slashes"
        )));
    }
    Ok(())
}

/// Zips a folder in memory: regular files and folders only, in a stable order, with fixed
/// timestamps.
pub fn zip_folder(dir: &Path) -> Result<Vec<u8>, SceneError> {
    let mut files = Vec::new();
    collect(dir, Path::new(""), &mut files)?;
    files.sort();
    if files.len() > MAX_FILES {
        return Err(bad(format!(
            "{} holds {} files, more than the worker's limit of {MAX_FILES}",
            dir.display(),
            files.len()
        )));
    }
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::DEFAULT)
        .unix_permissions(0o644);
    let mut total = 0u64;
    for rel in files {
        let name = rel
            .to_str()
            .ok_or_else(|| bad(format!("{} is not a UTF-8 name", rel.display())))?
            .replace(std::path::MAIN_SEPARATOR, "/");
        let data = std::fs::read(dir.join(&rel))
            .map_err(|e| bad(format!("cannot read {}: {e}", dir.join(&rel).display())))?;
        total += data.len() as u64;
        if total > MAX_UNPACKED_BYTES {
            return Err(bad(format!(
                "{} holds more than the worker's limit of {MAX_UNPACKED_BYTES} bytes",
                dir.display()
            )));
        }
        zip.start_file(name, options)
            .and_then(|()| zip.write_all(&data).map_err(Into::into))
            .map_err(|e| bad(format!("cannot zip {}: {e}", dir.display())))?;
    }
    let bytes = zip
        .finish()
        .map_err(|e| bad(format!("cannot zip {}: {e}", dir.display())))?
        .into_inner();
    Ok(bytes)
}

fn collect(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), SceneError> {
    let dir = root.join(rel);
    let entries =
        std::fs::read_dir(&dir).map_err(|e| bad(format!("cannot read {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| bad(format!("cannot read {}: {e}", dir.display())))?;
        let kind = entry
            .file_type()
            .map_err(|e| bad(format!("cannot read {}: {e}", entry.path().display())))?;
        let rel = rel.join(entry.file_name());
        if kind.is_symlink() {
            return Err(bad(format!(
                "{} is a symbolic link; the worker refuses links, so copy the file instead",
                entry.path().display()
            )));
        } else if kind.is_dir() {
            collect(root, &rel, out)?;
        } else if kind.is_file() {
            out.push(rel);
        } else {
            return Err(bad(format!(
                "{} is not a regular file",
                entry.path().display()
            )));
        }
    }
    Ok(())
}

/// The path components of an entry name, or why it is unsafe (the worker's `_entry_parts`).
fn entry_parts(name: &str) -> Result<Vec<String>, SceneError> {
    if name.contains('\0') {
        return Err(bad(format!(
            "unsafe path in zip: {name:?} contains a NUL byte"
        )));
    }
    if name.contains('\\') {
        return Err(bad(format!(
            "unsafe path in zip: {name:?} contains a backslash"
        )));
    }
    if name.starts_with('/') {
        return Err(bad(format!("unsafe path in zip: {name:?} is absolute")));
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err(bad(format!(
            "unsafe path in zip: {name:?} starts with a drive letter"
        )));
    }
    let parts: Vec<String> = name
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_string)
        .collect();
    if parts.iter().any(|p| p == "..") {
        return Err(bad(format!("unsafe path in zip: {name:?} contains '..'")));
    }
    if parts.iter().any(|p| p.len() > MAX_NAME_BYTES) || name.len() > MAX_PATH_BYTES {
        return Err(bad(format!(
            "unsafe path in zip: {:?}... is too long",
            &name[..name.floor_char_boundary(80)]
        )));
    }
    Ok(parts)
}

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// What checking a scene zip found.
#[derive(Debug)]
pub struct Checked {
    /// The chosen `.ini`, as a path inside the zip.
    pub ini: String,
    pub files: usize,
    pub unpacked_bytes: u64,
    pub settings: ini::Settings,
    pub radiosity: bool,
}

/// Checks a scene zip: safe to unpack, within the worker's limits, one `.ini` to use, a size
/// and frames the worker renders.
pub fn check(zip: &[u8], name: &str) -> Result<Checked, SceneError> {
    let mut archive = ZipArchive::new(Cursor::new(zip))
        .map_err(|_| bad("the scene is not a zip file (or the zip is corrupt)"))?;
    if archive.is_empty() {
        return Err(bad("the zip is empty"));
    }
    // The zip crate keeps one entry per name, so a name given twice (a trick to smuggle a
    // second file past a check of the first) is seen by counting the central directory.
    if let Some(records) = central_directory_records(zip)
        && records != archive.len() as u64
    {
        return Err(bad(format!(
            "the zip has {records} entries but only {} distinct names: a name appears twice",
            archive.len()
        )));
    }
    if archive.len() > MAX_FILES {
        return Err(bad(format!(
            "the zip has {} entries, more than the limit of {MAX_FILES}",
            archive.len()
        )));
    }
    let mut files: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut dirs: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut declared = 0u64;
    let mut budget = MAX_UNPACKED_BYTES;
    let mut unpacked = 0u64;
    let mut radiosity = false;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| bad(format!("the zip is corrupt: {e}")))?;
        let entry_name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let parts = entry_parts(&entry_name)?;
        let mode = entry.unix_mode().unwrap_or(0);
        let kind = mode & S_IFMT;
        if kind == S_IFLNK {
            return Err(bad(format!(
                "unsafe entry in zip: {entry_name:?} is a symbolic link"
            )));
        }
        if kind != 0 && kind != S_IFREG && kind != S_IFDIR {
            return Err(bad(format!(
                "unsafe entry in zip: {entry_name:?} is not a regular file or folder"
            )));
        }
        if entry.encrypted() {
            return Err(bad(format!(
                "the zip entry {entry_name:?} is encrypted; encrypted zips are not supported"
            )));
        }
        let is_dir = entry_name.ends_with('/') || kind == S_IFDIR;
        declared += entry.size();
        if declared > MAX_UNPACKED_BYTES {
            return Err(bad(format!(
                "the zip unpacks to more than {MAX_UNPACKED_BYTES} bytes (the limit)"
            )));
        }
        if parts.is_empty() {
            if is_dir {
                continue;
            }
            return Err(bad(format!(
                "unsafe path in zip: {entry_name:?} has no file name"
            )));
        }
        for depth in 1..parts.len() {
            dirs.insert(parts[..depth].to_vec());
        }
        if is_dir {
            dirs.insert(parts);
            continue;
        }
        // Count what really comes out: a header can lie about the size.
        let scene_text = is_scene_text(&parts);
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| bad(format!("the zip is corrupt: {e}")))?;
            if n == 0 {
                break;
            }
            if scene_text && !radiosity {
                radiosity = mentions_radiosity(&buf[..n]);
            }
            unpacked += n as u64;
            budget = budget.checked_sub(n as u64).ok_or_else(|| {
                bad(format!(
                    "the zip unpacks to more than {MAX_UNPACKED_BYTES} bytes (the limit); \
                     stopped at {entry_name:?}"
                ))
            })?;
        }
        if !files.insert(parts) {
            return Err(bad(format!("the zip contains {entry_name:?} twice")));
        }
    }
    if let Some(clash) = files.intersection(&dirs).next() {
        return Err(bad(format!(
            "the zip contains {:?} both as a file and as a folder",
            clash.join("/")
        )));
    }
    if files.is_empty() {
        return Err(bad("the zip contains no files"));
    }
    let ini = choose_ini(&files, name)?;
    // POV-Ray reads an .ini as bytes (a Latin-1 comment is fine), so lew does too.
    let mut bytes = Vec::new();
    archive
        .by_name(&ini)
        .map_err(|e| bad(format!("the zip is corrupt: {e}")))?
        .take(1024 * 1024)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("the zip is corrupt: {e}")))?;
    let settings =
        ini::parse(&String::from_utf8_lossy(&bytes)).map_err(|why| bad(format!("{ini}: {why}")))?;
    check_image_size(&settings)?;
    Ok(Checked {
        ini,
        files: files.len(),
        unpacked_bytes: unpacked,
        settings,
        radiosity,
    })
}

/// Whether a file is POV-Ray scene language (a `.pov` or an `.inc`).
fn is_scene_text(parts: &[String]) -> bool {
    parts.last().is_some_and(|n| {
        let n = n.to_ascii_lowercase();
        n.ends_with(".pov") || n.ends_with(".inc")
    })
}

/// Whether scene text uses the `radiosity` keyword outside a `//` comment. A heuristic (a
/// block comment or a string counts too): it only decides whether a default `worker.split`
/// applies, and a keyword cut in two by a read buffer's edge merely goes unseen.
fn mentions_radiosity(text: &[u8]) -> bool {
    String::from_utf8_lossy(text).lines().any(|line| {
        line.split("//")
            .next()
            .unwrap_or_default()
            .contains("radiosity")
    })
}

/// The number of entries the zip's end-of-central-directory record declares (zip64 aware), or
/// `None` when it cannot be found.
fn central_directory_records(zip: &[u8]) -> Option<u64> {
    const EOCD: &[u8] = b"PK\x05\x06";
    const ZIP64_LOCATOR: &[u8] = b"PK\x06\x07";
    const ZIP64_EOCD: &[u8] = b"PK\x06\x06";
    let u16_at = |at: usize| Some(u16::from_le_bytes(zip.get(at..at + 2)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(zip.get(at..at + 8)?.try_into().ok()?));
    // The record is 22 bytes plus a comment of at most 65535, at the very end.
    let earliest = zip.len().saturating_sub(22 + 65_535);
    let eocd = (earliest..=zip.len().saturating_sub(22))
        .rev()
        .find(|&at| zip[at..].starts_with(EOCD))?;
    let records = u16_at(eocd + 10)?;
    if records != u16::MAX {
        return Some(u64::from(records));
    }
    let locator = eocd.checked_sub(20)?;
    if !zip[locator..].starts_with(ZIP64_LOCATOR) {
        return None;
    }
    let record = usize::try_from(u64_at(locator + 8)?).ok()?;
    if !zip.get(record..)?.starts_with(ZIP64_EOCD) {
        return None;
    }
    u64_at(record + 32)
}

/// The largest image a scene may ask for (as the worker's `MAX_PIXELS` and `MAX_SIDE`): a
/// 100000x100000 render would fill a task's memory and disk long before its timeout.
pub const MAX_PIXELS: u64 = 100_000_000;
pub const MAX_SIDE: u64 = 32_768;

fn check_image_size(settings: &ini::Settings) -> Result<(), SceneError> {
    let (w, h) = (settings.width, settings.height);
    if w > MAX_SIDE || h > MAX_SIDE || w.saturating_mul(h) > MAX_PIXELS {
        return Err(bad(format!(
            "the scene asks for a {w}x{h} image; the limit is {MAX_SIDE} pixels a side and {} \
             megapixels",
            MAX_PIXELS / 1_000_000
        )));
    }
    Ok(())
}

fn is_junk(parts: &[String]) -> bool {
    parts[0] == "__MACOSX" || parts.last().is_some_and(|n| n.starts_with("._"))
}

/// The `.ini` named like the zip (any case, the shallowest), else the only `.ini`.
fn choose_ini(files: &BTreeSet<Vec<String>>, name: &str) -> Result<String, SceneError> {
    let mut inis: Vec<&Vec<String>> = files
        .iter()
        .filter(|f| {
            !is_junk(f)
                && f.last()
                    .is_some_and(|n| n.to_ascii_lowercase().ends_with(".ini"))
        })
        .collect();
    inis.sort_by_key(|f| (f.len(), f.join("/")));
    if inis.is_empty() {
        return Err(bad("no .ini file in the zip"));
    }
    let wanted = format!("{name}.ini").to_lowercase();
    let named: Vec<&&Vec<String>> = inis
        .iter()
        .filter(|f| f.last().is_some_and(|n| n.to_lowercase() == wanted))
        .collect();
    if let Some(first) = named.first() {
        let shallowest: Vec<String> = named
            .iter()
            .filter(|f| f.len() == first.len())
            .map(|f| f.join("/"))
            .collect();
        if shallowest.len() > 1 {
            return Err(bad(format!(
                "{} files named {name}.ini in the zip: {}",
                shallowest.len(),
                shallowest.join(", ")
            )));
        }
        return Ok(first.join("/"));
    }
    if inis.len() == 1 {
        return Ok(inis[0].join("/"));
    }
    let mut listed: Vec<String> = inis.iter().take(20).map(|f| f.join("/")).collect();
    if inis.len() > 20 {
        listed.push("...".into());
    }
    Err(bad(format!(
        "{} .ini files in the zip and none is named {name}.ini: {}",
        inis.len(),
        listed.join(", ")
    )))
}

/// Unpacks a checked scene into `dest` (which must exist); returns the chosen ini's path.
pub fn extract(scene: &Scene, dest: &Path) -> Result<PathBuf, SceneError> {
    let mut archive = ZipArchive::new(Cursor::new(&scene.zip))
        .map_err(|e| bad(format!("the zip is corrupt: {e}")))?;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| bad(format!("the zip is corrupt: {e}")))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let parts = entry_parts(&name)?;
        if parts.is_empty() {
            continue;
        }
        let mut target = dest.to_path_buf();
        for p in &parts {
            target.push(p);
        }
        // entry_parts rejected every way out of `dest`; check anyway before writing.
        if target
            .components()
            .any(|c| matches!(c, Component::ParentDir))
            || !target.starts_with(dest)
        {
            return Err(bad(format!("unsafe path in zip: {name:?}")));
        }
        let is_dir = name.ends_with('/') || entry.unix_mode().unwrap_or(0) & S_IFMT == S_IFDIR;
        if is_dir {
            std::fs::create_dir_all(&target)
                .map_err(|e| bad(format!("cannot create {}: {e}", target.display())))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| bad(format!("cannot create {}: {e}", parent.display())))?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| bad(format!("cannot write {}: {e}", target.display())))?;
        std::io::copy(&mut entry, &mut out)
            .map_err(|e| bad(format!("cannot unpack {name:?}: {e}")))?;
    }
    Ok(scene
        .ini
        .split('/')
        .fold(dest.to_path_buf(), |p, c| p.join(c)))
}

/// The markers of POV-Ray's fatal messages (as the worker matches them).
const POVRAY_ERRORS: &[&str] = &[
    "Parse Error:",
    "Cannot open include file",
    "Cannot open input file",
    "Problem with option setting",
];

/// The one-line reason for a failed POV-Ray run: its 80-column wrapping undone, the first
/// fatal message found.
pub fn povray_error(output: &str) -> Option<String> {
    let mut messages: Vec<String> = Vec::new();
    let mut previous_full = false;
    for line in output.lines() {
        let wrapped = line.starts_with(' ') && !line.starts_with("  ");
        match messages.last_mut() {
            Some(last)
                if !last.trim().is_empty() && !line.is_empty() && (previous_full || wrapped) =>
            {
                last.push_str(line)
            }
            _ => messages.push(line.to_string()),
        }
        previous_full = line.chars().count() >= 80;
    }
    messages
        .iter()
        .filter(|m| !m.contains("Possible Parse Error"))
        .find(|m| POVRAY_ERRORS.iter().any(|e| m.contains(e)))
        .map(|m| m.trim().to_string())
}

/// Debian's POV-Ray says this on every run; it is never the problem.
const NOISE: &str = "cannot open the user configuration file";

/// The lines of POV-Ray's output that belong to its error, not its option banner (as the
/// worker's `error_block`): what follows the last phase header (`==== [Parsing...] ====`),
/// else what follows the first fatal message, else the last `lines` lines.
pub fn error_block(output: &str, lines: usize) -> String {
    let all: Vec<&str> = output
        .trim_end()
        .lines()
        .filter(|l| !l.contains(NOISE))
        .collect();
    let start = all
        .iter()
        .rposition(|l| l.starts_with("==== ["))
        .map(|n| n + 1)
        .or_else(|| {
            all.iter()
                .position(|l| POVRAY_ERRORS.iter().any(|e| l.contains(e)))
        })
        .unwrap_or(all.len().saturating_sub(lines));
    let block = &all[start..];
    block[block.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn the_ini_named_like_the_zip_wins() {
        let z = zip_of(&[("a.ini", b""), ("demo.ini", b""), ("demo.pov", b"")]);
        assert_eq!(check(&z, "demo").unwrap().ini, "demo.ini");
        let z = zip_of(&[("sub/only.ini", b""), ("x.pov", b"")]);
        assert_eq!(check(&z, "demo").unwrap().ini, "sub/only.ini");
        let z = zip_of(&[("a.ini", b""), ("b.ini", b"")]);
        let err = check(&z, "demo").unwrap_err().0;
        assert!(
            err.contains("2 .ini files") && err.contains("a.ini, b.ini"),
            "{err}"
        );
        let z = zip_of(&[("x.pov", b"")]);
        assert_eq!(check(&z, "demo").unwrap_err().0, "no .ini file in the zip");
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for (name, why) in [
            ("../evil.ini", "'..'"),
            ("/etc/evil.ini", "absolute"),
            ("C:/x.ini", "drive letter"),
            ("a\\b.ini", "backslash"),
        ] {
            let err = check(&zip_of(&[(name, b"")]), "x").unwrap_err().0;
            assert!(err.contains(why), "{name}: {err}");
        }
    }

    #[test]
    fn image_sizes_and_frames_are_checked() {
        let huge = zip_of(&[
            ("big.ini", b"Width=100000\nHeight=100000\n"),
            ("big.pov", b""),
        ]);
        let err = check(&huge, "big").unwrap_err().0;
        assert!(err.contains("100000x100000"), "{err}");
        let stepped = zip_of(&[("a.ini", b"Final_Frame=9\nFrame_Step=3\n"), ("a.pov", b"")]);
        let err = check(&stepped, "a").unwrap_err().0;
        assert!(err.starts_with("a.ini: Frame_Step=3"), "{err}");
        let anim = zip_of(&[("a.ini", b"Final_Frame=9\n"), ("a.pov", b"")]);
        assert_eq!(check(&anim, "a").unwrap().settings.frames(), 1..=9);
    }

    #[test]
    fn radiosity_is_noticed_outside_comments() {
        let lit = zip_of(&[
            ("a.ini", b""),
            ("a.pov", b"global_settings { radiosity { } }\n"),
        ]);
        assert!(check(&lit, "a").unwrap().radiosity);
        let commented = zip_of(&[
            ("a.ini", b""),
            ("a.pov", b"// no radiosity here\nsphere{0,1}"),
        ]);
        assert!(!check(&commented, "a").unwrap().radiosity);
        let elsewhere = zip_of(&[("a.ini", b""), ("notes.txt", b"radiosity")]);
        assert!(!check(&elsewhere, "a").unwrap().radiosity);
    }

    #[test]
    fn a_name_given_twice_is_refused() {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file("a.ini", SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"Input_File_Name=a.pov").unwrap();
        zip.start_file("a.pov", SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"sphere { 0, 1 }").unwrap();
        let mut bytes = zip.finish().unwrap().into_inner();
        // Rename the second entry to the first one's name, in its local and central headers.
        let mut renamed = 0;
        for i in 0..bytes.len() - 5 {
            if &bytes[i..i + 5] == b"a.pov" {
                bytes[i..i + 5].copy_from_slice(b"a.ini");
                renamed += 1;
            }
        }
        assert_eq!(renamed, 2);
        let err = check(&bytes, "a").unwrap_err().0;
        assert!(err.contains("a name appears twice"), "{err}");
        assert_eq!(central_directory_records(&zip_of(&[("x", b"")])), Some(1));
    }

    #[test]
    fn not_a_zip_and_empty() {
        assert!(check(b"hello", "x").unwrap_err().0.contains("not a zip"));
        assert_eq!(check(&zip_of(&[]), "x").unwrap_err().0, "the zip is empty");
    }

    #[test]
    fn the_error_block_leaves_the_banner_out() {
        let out = "POV-Ray 3.7\nParser Options\n  Input file: a.pov\n  Dithering....Off\n\
                   ==== [Parsing...] ====\nFile 'a.pov' line 4: Parse Error: No matching }\n\
                   Fatal error in parser: Cannot parse input.\nRender failed\n";
        assert_eq!(
            error_block(out, 20),
            "File 'a.pov' line 4: Parse Error: No matching }\n\
             Fatal error in parser: Cannot parse input.\nRender failed"
        );
        let option = "povray: cannot open the user configuration file x\n  Width...\n\
                      Problem with option setting\npovray b.ini\nFailed to parse\n";
        assert_eq!(
            error_block(option, 20),
            "Problem with option setting\npovray b.ini\nFailed to parse"
        );
    }

    #[test]
    fn povray_errors_are_unwrapped() {
        let out = "File 'a.pov' line 3: Parse Error: Expected 'object or directive', undeclared\n identifier 'Foo' found instead\nFatal error in parser: Cannot parse input.\n";
        assert_eq!(
            povray_error(out).unwrap(),
            "File 'a.pov' line 3: Parse Error: Expected 'object or directive', undeclared identifier 'Foo' found instead"
        );
    }
}

//! What a scene's POV-Ray `.ini` asks for, as far as lew needs to know before rendering: the
//! image size, the animation's frames and the render-block size. The worker
//! (`worker/worker.py`: `ini_settings`) reads the same settings the same way, and its own `.ini`
//! restates them, so an `.ini` included by the scene's own cannot change what was checked.
//!
//! Only the lines before the first `[section]` label count: POV-Ray reads no further in an
//! `.ini` named without a section, as the worker names the scene's. Both `Key=value` settings
//! and `+X` switches count; the last one wins, as in POV-Ray.

use std::ops::RangeInclusive;

/// POV-Ray's size where no `.ini` sets one (its built-in default, and Debian's povray.ini).
pub const DEFAULT_SIZE: (u64, u64) = (800, 600);
/// POV-Ray 3.7's render-block size: it renders (and anti-aliases) in blocks of 32×32 pixels.
pub const DEFAULT_BLOCK: u64 = 32;
/// The most frames one scene may have: each frame is a job, and an `.ini` asking for a million
/// frames is more likely a typo than a plan.
pub const MAX_FRAMES: i64 = 10_000;

/// The settings of an `.ini` that lew acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub width: u64,
    pub height: u64,
    /// `Initial_Frame` / `+KFI` (default 1).
    pub initial_frame: i64,
    /// `Final_Frame` / `+KFF` (default 1).
    pub final_frame: i64,
    /// `Subset_Start_Frame` / `+SF` and `Subset_End_Frame` / `+EF`, when set.
    pub subset_start: Option<i64>,
    pub subset_end: Option<i64>,
    /// `Render_Block_Size` / `+BS` (default 32).
    pub block_size: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            width: DEFAULT_SIZE.0,
            height: DEFAULT_SIZE.1,
            initial_frame: 1,
            final_frame: 1,
            subset_start: None,
            subset_end: None,
            block_size: DEFAULT_BLOCK,
        }
    }
}

/// One setting, whichever way it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Width,
    Height,
    InitialFrame,
    FinalFrame,
    SubsetStart,
    SubsetEnd,
    FrameStep,
    BlockSize,
}

impl Key {
    fn from_setting(name: &str) -> Option<Key> {
        Some(match name.to_ascii_lowercase().as_str() {
            "width" => Key::Width,
            "height" => Key::Height,
            "initial_frame" => Key::InitialFrame,
            "final_frame" => Key::FinalFrame,
            "subset_start_frame" => Key::SubsetStart,
            "subset_end_frame" => Key::SubsetEnd,
            "frame_step" => Key::FrameStep,
            "render_block_size" => Key::BlockSize,
            _ => return None,
        })
    }

    /// A switch such as `+KFF120` as (key, value). The longest name wins: `+KFF` is the final
    /// frame, `+KF` (the final clock) is not a frame setting at all.
    fn from_switch(switch: &str) -> Option<(Key, &str)> {
        const SWITCHES: &[(&str, Option<Key>)] = &[
            ("kfi", Some(Key::InitialFrame)),
            ("kff", Some(Key::FinalFrame)),
            ("stp", Some(Key::FrameStep)),
            ("bs", Some(Key::BlockSize)),
            ("sf", Some(Key::SubsetStart)),
            ("ef", Some(Key::SubsetEnd)),
            ("ki", None),
            ("kf", None),
            ("sr", None),
            ("er", None),
            ("sc", None),
            ("ec", None),
            ("w", Some(Key::Width)),
            ("h", Some(Key::Height)),
        ];
        let lower = switch.to_ascii_lowercase();
        let (name, key) = SWITCHES.iter().find(|(n, _)| lower.starts_with(n))?;
        Some(((*key)?, &switch[name.len()..]))
    }

    fn name(self) -> &'static str {
        match self {
            Key::Width => "Width",
            Key::Height => "Height",
            Key::InitialFrame => "Initial_Frame",
            Key::FinalFrame => "Final_Frame",
            Key::SubsetStart => "Subset_Start_Frame",
            Key::SubsetEnd => "Subset_End_Frame",
            Key::FrameStep => "Frame_Step",
            Key::BlockSize => "Render_Block_Size",
        }
    }
}

/// Reads the settings of an `.ini`'s text. An error names a setting lew cannot honour (a
/// fractional subset, a frame step, a negative frame) and what to do instead.
pub fn parse(text: &str) -> Result<Settings, String> {
    let mut s = Settings::default();
    for raw in text.lines() {
        if raw.trim_start().starts_with('[') {
            break;
        }
        let line = raw.split(';').next().unwrap_or_default();
        if let Some((name, value)) = line.split_once('=')
            && let Some(key) = Key::from_setting(name.trim())
        {
            set(&mut s, key, value.trim())?;
        }
        for word in line.split_whitespace() {
            if let Some(switch) = word.strip_prefix(['+', '-'])
                && let Some((key, value)) = Key::from_switch(switch)
            {
                // e.g. +WT2 (threads) is no width: only digits follow a size switch.
                if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit() || c == '.') {
                    set(&mut s, key, value)?;
                }
            }
        }
    }
    check(&s)?;
    Ok(s)
}

fn set(s: &mut Settings, key: Key, value: &str) -> Result<(), String> {
    let name = key.name();
    // POV-Ray reads the leading number and ignores what follows (a comment, a unit).
    let number: String = value
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.'))
        .collect();
    if number.contains('.') && matches!(key, Key::SubsetStart | Key::SubsetEnd) {
        return Err(format!(
            "{name}={value}: a fraction of the animation is not supported; give a frame \
             number, or choose frames with `lew render --frames`"
        ));
    }
    let Ok(n) = number.trim_start_matches('+').parse::<i64>() else {
        return Ok(()); // POV-Ray would refuse it itself, with its own message
    };
    match key {
        Key::Width => s.width = n.max(0) as u64,
        Key::Height => s.height = n.max(0) as u64,
        Key::InitialFrame => s.initial_frame = n,
        Key::FinalFrame => s.final_frame = n,
        Key::SubsetStart => s.subset_start = Some(n),
        Key::SubsetEnd => s.subset_end = Some(n),
        Key::FrameStep if n != 1 => {
            return Err(format!(
                "{name}={value}: lew renders every frame of an animation; remove {name}, or \
                 choose frames with `lew render --frames`"
            ));
        }
        Key::FrameStep => {}
        Key::BlockSize => s.block_size = n.clamp(4, 1 << 16) as u64,
    }
    Ok(())
}

fn check(s: &Settings) -> Result<(), String> {
    if s.initial_frame < 0 || s.final_frame < 0 {
        return Err(format!(
            "Initial_Frame={} / Final_Frame={}: lew renders frames numbered from 0 up",
            s.initial_frame, s.final_frame
        ));
    }
    if s.final_frame < s.initial_frame {
        return Err(format!(
            "Final_Frame={} comes before Initial_Frame={}",
            s.final_frame, s.initial_frame
        ));
    }
    if s.is_animation() {
        let frames = s.frames();
        if frames.is_empty() {
            return Err(format!(
                "Subset_Start_Frame/Subset_End_Frame select no frame of {}-{}",
                s.initial_frame, s.final_frame
            ));
        }
        let count = frames.end() - frames.start() + 1;
        if count > MAX_FRAMES {
            return Err(format!(
                "the animation has {count} frames; lew renders at most {MAX_FRAMES} per scene \
                 (choose some with `lew render --frames`)"
            ));
        }
    }
    Ok(())
}

impl Settings {
    /// Whether the `.ini` declares an animation: more than one frame in Initial..Final (a
    /// subset of one frame of it is still an animation's frame, numbered as such).
    pub fn is_animation(&self) -> bool {
        self.final_frame > self.initial_frame
    }

    /// The frames POV-Ray would render: Initial..Final, narrowed by the subset.
    pub fn frames(&self) -> RangeInclusive<i64> {
        let first = self
            .subset_start
            .map_or(self.initial_frame, |s| s.max(self.initial_frame));
        let last = self
            .subset_end
            .map_or(self.final_frame, |e| e.min(self.final_frame));
        first..=last
    }

    /// The digits of a frame number in POV-Ray's file names: as many as the final frame needs
    /// (`name07.png` when the final frame is 51).
    pub fn digits(&self) -> usize {
        self.final_frame.max(0).to_string().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_from_settings_and_switches() {
        let s = parse("Width=640\nHeight = 360\n").unwrap();
        assert_eq!((s.width, s.height), (640, 360));
        let s = parse("+W1920 +H1080 +WT2 ; +W5").unwrap();
        assert_eq!((s.width, s.height), (1920, 1080));
        let s = parse("Antialias=on\n").unwrap();
        assert_eq!((s.width, s.height), DEFAULT_SIZE);
        let s = parse("Width=64\nHeight=48\n[big]\nWidth=4000\n").unwrap();
        assert_eq!((s.width, s.height), (64, 48));
    }

    /// POV-Ray's own sample: `animations/float1/float1.ini`.
    #[test]
    fn frames_of_povrays_float1_sample() {
        let text = "Antialias=On\nInput_File_Name=float1.pov\nInitial_Frame=1\nFinal_Frame=51\n\
                    Initial_Clock=0\nFinal_Clock=1\nCyclic_Animation=off\n";
        let s = parse(text).unwrap();
        assert!(s.is_animation());
        assert_eq!(s.frames(), 1..=51);
        assert_eq!(s.digits(), 2);
    }

    #[test]
    fn switches_and_subsets() {
        let s = parse("+kf0.1666 +kff20 +kc").unwrap();
        assert_eq!((s.initial_frame, s.final_frame), (1, 20));
        let s = parse("+KFI0 +KFF9 +SF3 +EF5 +BS16").unwrap();
        assert_eq!(s.frames(), 3..=5);
        assert_eq!(s.digits(), 1);
        assert_eq!(s.block_size, 16);
        let s = parse("Final_Frame=100\nSubset_Start_Frame=90\nSubset_End_Frame=200\n").unwrap();
        assert_eq!(s.frames(), 90..=100);
        assert_eq!(s.digits(), 3);
        assert!(!parse("Width=10\n").unwrap().is_animation());
        let one = parse("Initial_Frame=5\nFinal_Frame=5\n").unwrap();
        assert!(!one.is_animation());
    }

    #[test]
    fn settings_lew_cannot_honour_are_named() {
        let err = parse("Final_Frame=10\nSubset_Start_Frame=0.5\n").unwrap_err();
        assert!(err.contains("Subset_Start_Frame=0.5"), "{err}");
        let err = parse("Final_Frame=10\nFrame_Step=2\n").unwrap_err();
        assert!(err.contains("Frame_Step=2"), "{err}");
        assert!(parse("Final_Frame=10\nFrame_Step=1\n").is_ok());
        let err = parse("Initial_Frame=10\nFinal_Frame=2\n").unwrap_err();
        assert!(err.contains("comes before"), "{err}");
        let err = parse("Final_Frame=10\nSubset_Start_Frame=20\n").unwrap_err();
        assert!(err.contains("select no frame"), "{err}");
        let err = parse("Final_Frame=2000000\n").unwrap_err();
        assert!(err.contains("at most 10000"), "{err}");
        let err = parse("Initial_Frame=-3\nFinal_Frame=2\n").unwrap_err();
        assert!(err.contains("from 0 up"), "{err}");
    }
}

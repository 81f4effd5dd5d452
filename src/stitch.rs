//! Stitching a still rendered in bands (`lew render --local --split N`; in the cloud the worker
//! stitches with pypng the same way), and reading an image's pixels to compare two renders.
//!
//! POV-Ray writes each band as the whole image, black outside the band's rows. The stitched
//! image takes rows `first..=last` (1-based) from each band, decoded and encoded with the `png`
//! crate, keeping what POV-Ray wrote: 8 or 16 bits, grey or colour, with or without alpha, and
//! the gamma. Rows stream one at a time, so a large image is never whole in memory.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

/// An image's header: what must match between bands, and between two renders compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub width: u32,
    pub height: u32,
    pub color: png::ColorType,
    pub depth: png::BitDepth,
}

fn open(path: &Path) -> Result<png::Reader<BufReader<File>>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = png::Decoder::new(BufReader::new(file))
        .read_info()
        .with_context(|| format!("{} is not a PNG image", path.display()))?;
    if reader.info().interlaced {
        bail!(
            "{} is interlaced; POV-Ray writes no such PNG",
            path.display()
        );
    }
    Ok(reader)
}

fn shape(reader: &png::Reader<BufReader<File>>) -> Shape {
    let info = reader.info();
    Shape {
        width: info.width,
        height: info.height,
        color: info.color_type,
        depth: info.bit_depth,
    }
}

/// Writes to `target` the image whose rows `first..=last` come from each band, in order.
pub fn bands(bands: &[(PathBuf, (u64, u64))], target: &Path) -> Result<()> {
    let (first_path, _) = bands.first().context("no band to stitch")?;
    let first = open(first_path)?;
    let want = shape(&first);
    let gamma = first.info().source_gamma;
    drop(first);
    let file =
        File::create(target).with_context(|| format!("cannot write {}", target.display()))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), want.width, want.height);
    encoder.set_color(want.color);
    encoder.set_depth(want.depth);
    if let Some(gamma) = gamma {
        encoder.set_source_gamma(gamma);
    }
    let mut writer = encoder.write_header()?;
    let mut stream = writer.stream_writer()?;
    for (path, (start, end)) in bands {
        let mut reader = open(path)?;
        let have = shape(&reader);
        if have != want {
            bail!(
                "the band {} is {have:?}, not {want:?} like the first band",
                path.display()
            );
        }
        let mut number = 0u64;
        while let Some(row) = reader
            .next_row()
            .with_context(|| format!("cannot decode {}", path.display()))?
        {
            number += 1;
            if number > *end {
                break;
            }
            if number >= *start {
                stream.write_all(row.data())?;
            }
        }
    }
    stream.finish()?;
    writer.finish()?;
    Ok(())
}

/// An image's header and raw pixel bytes (16-bit samples big-endian, as stored), to compare
/// two renders by what they show rather than by their bytes (POV-Ray writes the render time
/// into every PNG).
pub fn pixels(path: &Path) -> Result<(Shape, Vec<u8>)> {
    let mut reader = open(path)?;
    let shape = shape(&reader);
    let mut data = Vec::new();
    while let Some(row) = reader.next_row()? {
        data.extend_from_slice(row.data());
    }
    Ok((shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, width: u32, rows: &[Vec<u16>], depth: png::BitDepth) {
        let file = File::create(path).unwrap();
        let mut encoder = png::Encoder::new(BufWriter::new(file), width, rows.len() as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(depth);
        let mut writer = encoder.write_header().unwrap();
        let data: Vec<u8> = rows
            .iter()
            .flatten()
            .flat_map(|&v| match depth {
                png::BitDepth::Sixteen => v.to_be_bytes().to_vec(),
                _ => vec![v as u8],
            })
            .collect();
        writer.write_image_data(&data).unwrap();
    }

    #[test]
    fn rows_come_from_their_band_and_the_depth_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let whole: Vec<Vec<u16>> = (0..5u16).map(|r| vec![r * 1000 + 7; 3]).collect();
        // Two bands: rows 1-2 from the first, 3-5 from the second; black elsewhere.
        let band = |rows: std::ops::Range<usize>| -> Vec<Vec<u16>> {
            (0..5)
                .map(|r| {
                    if rows.contains(&r) {
                        whole[r].clone()
                    } else {
                        vec![0; 3]
                    }
                })
                .collect()
        };
        let (a, b, out, reference) = (
            dir.path().join("a.png"),
            dir.path().join("b.png"),
            dir.path().join("out.png"),
            dir.path().join("whole.png"),
        );
        write(&a, 3, &band(0..2), png::BitDepth::Sixteen);
        write(&b, 3, &band(2..5), png::BitDepth::Sixteen);
        write(&reference, 3, &whole, png::BitDepth::Sixteen);

        bands(&[(a.clone(), (1, 2)), (b, (3, 5))], &out).unwrap();

        let (shape, data) = pixels(&out).unwrap();
        assert_eq!(shape.depth, png::BitDepth::Sixteen);
        assert_eq!((shape, data), pixels(&reference).unwrap());

        // A band of another shape is refused, not stitched into garbage.
        let eight = dir.path().join("eight.png");
        write(&eight, 3, &band(2..5), png::BitDepth::Eight);
        let err = bands(&[(a, (1, 2)), (eight, (3, 5))], &out).unwrap_err();
        assert!(err.to_string().contains("like the first band"), "{err}");
    }
}

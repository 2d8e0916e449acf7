//! STL-10 binary: 96x96x3 records, each channel a column-major plane; labels 1..=10 in `*_y.bin`.

use std::path::Path;

use super::common::{read_names, resolve_dir};
use crate::dataset::{Dataset, Split};
use crate::error::{DataError, Result};
use crate::image::ImageU8;

pub const SIDE: usize = 96;
const RECORD: usize = SIDE * SIDE * 3;

pub(crate) fn decode_record(buf: &[u8]) -> ImageU8 {
    let mut data = vec![0u8; RECORD];
    for c in 0..3 {
        for x in 0..SIDE {
            for y in 0..SIDE {
                data[(y * SIDE + x) * 3 + c] = buf[c * SIDE * SIDE + x * SIDE + y];
            }
        }
    }
    ImageU8::new(SIDE, SIDE, 3, data)
}

/// Encodes images in STL-10's layout (fixtures and tests).
pub fn encode_record(img: &ImageU8) -> Vec<u8> {
    let mut out = vec![0u8; RECORD];
    for c in 0..3 {
        for x in 0..SIDE {
            for y in 0..SIDE {
                out[c * SIDE * SIDE + x * SIDE + y] = img.data[(y * SIDE + x) * 3 + c];
            }
        }
    }
    out
}

fn count(path: &Path) -> Result<usize> {
    let len = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len() as usize;
    if len == 0 || !len.is_multiple_of(RECORD) {
        return Err(DataError::format(
            path,
            format!(
                "size {len} is not a multiple of the {RECORD}-byte STL-10 image (truncated or wrong format)"
            ),
        ));
    }
    Ok(len / RECORD)
}

fn labels(path: &Path, n: usize) -> Result<Vec<Option<u32>>> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if bytes.len() != n {
        return Err(DataError::format(
            path,
            format!("{} labels for {n} images", bytes.len()),
        ));
    }
    bytes
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (1..=10).contains(&b) {
                Ok(Some(b as u32 - 1))
            } else {
                Err(DataError::format(
                    path,
                    format!("label {b} at {i} outside 1..=10"),
                ))
            }
        })
        .collect()
}

pub fn open(path: &Path, split: Split) -> Result<Dataset> {
    let dir = resolve_dir(path, "stl10_binary", "test_X.bin");
    let dir = if dir.join("train_X.bin").exists() || dir.join("unlabeled_X.bin").exists() {
        dir
    } else {
        resolve_dir(path, "stl10_binary", "train_X.bin")
    };
    let classes = read_names(&dir.join("class_names.txt"));
    let labelled = |stem: &str| -> Result<(std::path::PathBuf, usize, Vec<Option<u32>>)> {
        let x = dir.join(format!("{stem}_X.bin"));
        let n = count(&x)?;
        let y = labels(&dir.join(format!("{stem}_y.bin")), n)?;
        Ok((x, n, y))
    };
    let (parts, labels, name) = match split {
        Split::Train => {
            let (x, n, y) = labelled("train")?;
            (vec![(x, n)], y, "stl10-train")
        }
        Split::Test => {
            let (x, n, y) = labelled("test")?;
            (vec![(x, n)], y, "stl10-test")
        }
        Split::Unlabeled => {
            let x = dir.join("unlabeled_X.bin");
            let n = count(&x)?;
            (vec![(x, n)], vec![None; n], "stl10-unlabeled")
        }
        Split::TrainUnlabeled => {
            let (x, n, mut y) = labelled("train")?;
            let u = dir.join("unlabeled_X.bin");
            let m = count(&u)?;
            y.extend(std::iter::repeat_n(None, m));
            (vec![(x, n), (u, m)], y, "stl10-train+unlabeled")
        }
    };
    Dataset::records(
        name.to_string(),
        3,
        parts,
        SIDE * SIDE * 3,
        decode_record,
        labels,
        classes,
    )
}

//! IDX (MNIST, Fashion-MNIST): big-endian header, magic `0x0000 08 NDIM`, then dims, then u8 data.

use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, Split};
use crate::error::{DataError, Result, maybe_gunzip, read_maybe_gz};

const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Parses an IDX file of unsigned bytes; returns (dims, data).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, Vec<u8>)> {
    if bytes.len() < 4 {
        return Err(DataError::format(
            path,
            "truncated IDX header (under 4 bytes)",
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(DataError::format(
            path,
            format!(
                "not an IDX file (magic {:02x}{:02x}{:02x}{:02x})",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(DataError::format(
            path,
            format!(
                "IDX element type 0x{:02x} unsupported (only unsigned bytes, 0x08)",
                bytes[2]
            ),
        ));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 || ndim > 4 {
        return Err(DataError::format(
            path,
            format!("IDX with {ndim} dimensions unsupported"),
        ));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(DataError::format(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|d| {
            // Within the header length checked above.
            let b = &bytes[4 + 4 * d..8 + 4 * d];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let expected = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let Some(expected) = expected.filter(|&e| e as u64 <= (1u64 << 34)) else {
        return Err(DataError::format(
            path,
            format!("absurd IDX dimensions {dims:?}"),
        ));
    };
    let have = bytes.len() - header;
    if have < expected {
        return Err(DataError::format(
            path,
            format!(
                "truncated: dimensions {dims:?} need {expected} bytes of data, file has {have}"
            ),
        ));
    }
    Ok((dims, bytes[header..header + expected].to_vec()))
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for cand in [stem.to_string(), format!("{stem}.gz")] {
        let p = dir.join(&cand);
        if p.exists() {
            return Ok(p);
        }
    }
    // Some mirrors use dots instead of dashes (train-images.idx3-ubyte).
    let dotted = stem.replacen("-idx", ".idx", 1);
    for cand in [dotted.clone(), format!("{dotted}.gz")] {
        let p = dir.join(&cand);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(DataError::Missing {
        path: dir.join(stem),
        message: "missing IDX file (looked for it raw and .gz)".into(),
    })
}

pub fn open(dir: &Path, split: Split) -> Result<Dataset> {
    let prefix = match split {
        Split::Train | Split::TrainUnlabeled => "train",
        Split::Test => "t10k",
        Split::Unlabeled => {
            return Err(DataError::format(
                dir,
                "IDX datasets have no unlabeled split",
            ));
        }
    };
    let img_path = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lbl_path = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let is_fashion = dir
        .to_string_lossy()
        .to_ascii_lowercase()
        .contains("fashion");
    from_files(
        (&img_path, read_maybe_gz(&img_path)?),
        (&lbl_path, read_maybe_gz(&lbl_path)?),
        is_fashion,
    )
}

/// A dataset from the bytes of an images file and a labels file (raw or gzipped; the paths only
/// name them in errors): how the browser build opens the gallery it ships.
pub fn from_files(
    images: (&Path, Vec<u8>),
    labels: (&Path, Vec<u8>),
    is_fashion: bool,
) -> Result<Dataset> {
    let (img_path, lbl_path) = (images.0, labels.0);
    let (dims, pixels) = parse(img_path, &maybe_gunzip(img_path, images.1)?)?;
    if dims.len() != 3 {
        return Err(DataError::format(
            img_path,
            format!("expected 3 dimensions (count, rows, cols), found {dims:?}"),
        ));
    }
    if dims[1] == 0 || dims[2] == 0 {
        return Err(DataError::format(
            img_path,
            format!("images of {}x{} pixels", dims[2], dims[1]),
        ));
    }
    let (ldims, labels) = parse(lbl_path, &maybe_gunzip(lbl_path, labels.1)?)?;
    if ldims.len() != 1 || ldims[0] != dims[0] {
        return Err(DataError::format(
            lbl_path,
            format!(
                "{} labels for {} images",
                ldims.first().copied().unwrap_or(0),
                dims[0]
            ),
        ));
    }
    let classes = if is_fashion {
        FASHION_CLASSES.iter().map(|s| s.to_string()).collect()
    } else {
        (0..10).map(|i| i.to_string()).collect()
    };
    let name = img_path
        .file_name()
        .map(|s| s.to_string_lossy().trim_end_matches(".gz").to_string())
        .unwrap_or_default();
    Ok(Dataset::in_memory(
        name,
        dims[2],
        dims[1],
        1,
        pixels,
        labels.into_iter().map(|l| Some(l as u32)).collect(),
        classes,
    ))
}

/// Writes an IDX file of unsigned bytes (used for the bundled subset and test fixtures).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

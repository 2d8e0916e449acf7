//! CIFAR-10/100 binary version: records of label byte(s) then 3072 bytes of planar 32x32 RGB.

use std::path::Path;

use super::common::{read_names, resolve_dir};
use crate::dataset::{Dataset, Split};
use crate::error::{DataError, Result};
use crate::image::ImageU8;

const PIXELS: usize = 32 * 32 * 3;

pub fn open(path: &Path, split: Split, hundred: bool) -> Result<Dataset> {
    let (dir, files, meta) = if hundred {
        let dir = resolve_dir(path, "cifar-100-binary", "test.bin");
        let files = match split {
            Split::Train | Split::TrainUnlabeled => vec!["train.bin".to_string()],
            Split::Test => vec!["test.bin".to_string()],
            Split::Unlabeled => {
                return Err(DataError::format(path, "CIFAR has no unlabeled split"));
            }
        };
        (dir, files, "fine_label_names.txt")
    } else {
        let dir = resolve_dir(path, "cifar-10-batches-bin", "test_batch.bin");
        let files = match split {
            Split::Train | Split::TrainUnlabeled => {
                (1..=5).map(|i| format!("data_batch_{i}.bin")).collect()
            }
            Split::Test => vec!["test_batch.bin".to_string()],
            Split::Unlabeled => {
                return Err(DataError::format(path, "CIFAR has no unlabeled split"));
            }
        };
        (dir, files, "batches.meta.txt")
    };
    let label_bytes = if hundred { 2 } else { 1 };
    let record = label_bytes + PIXELS;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for f in &files {
        let p = dir.join(f);
        let bytes = std::fs::read(&p).map_err(|e| DataError::io(&p, e))?;
        if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
            return Err(DataError::format(
                &p,
                format!(
                    "size {} is not a multiple of the {record}-byte CIFAR-{} record (truncated or wrong format)",
                    bytes.len(),
                    if hundred { 100 } else { 10 }
                ),
            ));
        }
        let max_label = if hundred { 99 } else { 9 };
        for (r, rec) in bytes.chunks_exact(record).enumerate() {
            // CIFAR-100 stores (coarse, fine); the fine label is the usual target.
            let label = rec[label_bytes - 1];
            if label > max_label {
                return Err(DataError::format(
                    &p,
                    format!(
                        "record {r}: label {label} out of range 0..={max_label} (wrong format?)"
                    ),
                ));
            }
            labels.push(Some(label as u32));
            pixels.extend_from_slice(&ImageU8::from_chw(32, 32, 3, &rec[label_bytes..]).data);
        }
    }
    let classes = read_names(&dir.join(meta));
    let name = format!(
        "cifar{}-{}",
        if hundred { 100 } else { 10 },
        if split == Split::Test {
            "test"
        } else {
            "train"
        }
    );
    Ok(Dataset::in_memory(name, 32, 32, 3, pixels, labels, classes))
}

/// Encodes images as one CIFAR binary file (for fixtures and tests).
pub fn encode(images: &[(u8, ImageU8)], hundred: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (label, img) in images {
        if hundred {
            out.push(label / 5);
        }
        out.push(*label);
        for c in 0..3 {
            for i in 0..32 * 32 {
                out.push(img.data[i * 3 + c]);
            }
        }
    }
    out
}

//! The dataset formats: their readers, and the one place that detects a directory's format and
//! dispatches to its reader ([`Dataset::open`]).

pub mod cifar;
mod common;
pub mod folder;
pub mod idx;
pub mod npy;
pub mod stl10;

use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, Split};
use crate::error::{DataError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetFormat {
    /// MNIST / Fashion-MNIST IDX files, raw or gzipped.
    Idx,
    Cifar10,
    Cifar100,
    Stl10,
    /// A directory of images: one sub-folder per class, or flat (unlabelled).
    Folder,
}

impl std::str::FromStr for DatasetFormat {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "idx" | "mnist" | "fashion-mnist" => Self::Idx,
            "cifar10" | "cifar-10" => Self::Cifar10,
            "cifar100" | "cifar-100" => Self::Cifar100,
            "stl10" | "stl-10" => Self::Stl10,
            "folder" | "images" => Self::Folder,
            other => {
                return Err(DataError::Config(format!(
                    "unknown dataset format '{other}' (idx, cifar10, cifar100, stl10, folder)"
                )));
            }
        })
    }
}

/// What to open: a path, a format (detected when `None`), a split and an optional size limit.
#[derive(Clone, Debug)]
pub struct DatasetSpec {
    pub path: PathBuf,
    pub format: Option<DatasetFormat>,
    pub split: Split,
    /// Keep only the first `limit` items: a fixed subset for quick runs.
    pub limit: Option<usize>,
}

impl DatasetSpec {
    pub fn new(path: impl Into<PathBuf>, split: Split) -> Self {
        Self {
            path: path.into(),
            format: None,
            split,
            limit: None,
        }
    }
}

impl Dataset {
    /// Opens a dataset in any supported format (detected from the files unless the spec names it).
    pub fn open(spec: &DatasetSpec) -> Result<Self> {
        let format = match spec.format {
            Some(f) => f,
            None => detect_format(&spec.path)?,
        };
        let mut ds = match format {
            DatasetFormat::Idx => idx::open(&spec.path, spec.split)?,
            DatasetFormat::Cifar10 => cifar::open(&spec.path, spec.split, false)?,
            DatasetFormat::Cifar100 => cifar::open(&spec.path, spec.split, true)?,
            DatasetFormat::Stl10 => stl10::open(&spec.path, spec.split)?,
            DatasetFormat::Folder => folder::open(&spec.path)?,
        };
        if let Some(limit) = spec.limit {
            ds.truncate(limit);
        }
        if ds.is_empty() {
            return Err(DataError::format(&spec.path, "dataset holds no images"));
        }
        Ok(ds)
    }
}

/// Guesses the format from the files in a directory.
pub fn detect_format(path: &Path) -> Result<DatasetFormat> {
    if !path.exists() {
        return Err(DataError::format(path, "no such file or directory"));
    }
    if !path.is_dir() {
        return Err(DataError::format(
            path,
            "expected a dataset directory (IDX, CIFAR, STL-10 or an image folder)",
        ));
    }
    let has = |name: &str| path.join(name).exists() || path.join(format!("{name}.gz")).exists();
    let sub = |dir: &str, name: &str| path.join(dir).join(name).exists();
    if has("train-images-idx3-ubyte") || has("t10k-images-idx3-ubyte") {
        return Ok(DatasetFormat::Idx);
    }
    if has("data_batch_1.bin")
        || has("test_batch.bin")
        || sub("cifar-10-batches-bin", "test_batch.bin")
    {
        return Ok(DatasetFormat::Cifar10);
    }
    if (has("train.bin") && has("test.bin")) || sub("cifar-100-binary", "test.bin") {
        return Ok(DatasetFormat::Cifar100);
    }
    if has("train_X.bin") || has("unlabeled_X.bin") || sub("stl10_binary", "train_X.bin") {
        return Ok(DatasetFormat::Stl10);
    }
    Ok(DatasetFormat::Folder)
}

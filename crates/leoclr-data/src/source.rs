//! One dataset type over every supported format, so the loader, the CLI and the app never branch on
//! where images come from. Small formats are held in memory; STL-10 and image folders are read per
//! item (STL-10's unlabeled split is 2.7 GB).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{DataError, Result};
use crate::image::ImageU8;

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
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "idx" | "mnist" | "fashion-mnist" => Self::Idx,
            "cifar10" | "cifar-10" => Self::Cifar10,
            "cifar100" | "cifar-100" => Self::Cifar100,
            "stl10" | "stl-10" => Self::Stl10,
            "folder" | "images" => Self::Folder,
            other => {
                return Err(format!(
                    "unknown dataset format '{other}' (idx, cifar10, cifar100, stl10, folder)"
                ));
            }
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Test,
    /// STL-10's 100k unlabeled images.
    Unlabeled,
    /// STL-10 train + unlabeled, the usual self-supervised pre-training set.
    #[serde(rename = "train+unlabeled")]
    TrainUnlabeled,
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "train" => Self::Train,
            "test" => Self::Test,
            "unlabeled" | "unlabelled" => Self::Unlabeled,
            "train+unlabeled" => Self::TrainUnlabeled,
            other => return Err(format!("unknown split '{other}'")),
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

enum Items {
    /// `count` images of one size, HWC bytes back to back.
    Memory {
        width: usize,
        height: usize,
        pixels: Vec<u8>,
    },
    /// Fixed-size records in a file (STL-10: CHW, column-major planes).
    Records {
        path: PathBuf,
        file: Mutex<File>,
        side: usize,
        first: usize,
    },
    /// Several record sources back to back (STL-10 train+unlabeled).
    Concat(Vec<(usize, Items)>),
    Files(Vec<PathBuf>),
}

/// A dataset: images (decoded on demand where they live on disk) with optional labels.
pub struct Dataset {
    pub name: String,
    pub channels: usize,
    /// Class names; empty when unknown.
    pub classes: Vec<String>,
    labels: Vec<Option<u32>>,
    /// Maps dataset index to the underlying item (identity unless subsetted).
    index: Vec<usize>,
    items: Items,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("name", &self.name)
            .field("len", &self.len())
            .field("channels", &self.channels)
            .finish()
    }
}

impl Dataset {
    pub fn open(spec: &DatasetSpec) -> Result<Self> {
        let format = match spec.format {
            Some(f) => f,
            None => detect_format(&spec.path)?,
        };
        let mut ds = match format {
            DatasetFormat::Idx => crate::idx::open(&spec.path, spec.split)?,
            DatasetFormat::Cifar10 => crate::cifar::open(&spec.path, spec.split, false)?,
            DatasetFormat::Cifar100 => crate::cifar::open(&spec.path, spec.split, true)?,
            DatasetFormat::Stl10 => crate::stl10::open(&spec.path, spec.split)?,
            DatasetFormat::Folder => crate::folder::open(&spec.path)?,
        };
        if let Some(limit) = spec.limit {
            ds.index.truncate(limit);
        }
        if ds.is_empty() {
            return Err(DataError::format(&spec.path, "dataset holds no images"));
        }
        Ok(ds)
    }

    /// An in-memory copy with every image converted to `channels` (gray replicated to RGB, RGB to
    /// luma): e.g. an RGB benchmark input from a grayscale dataset. Needs images of one size.
    pub fn with_channels(&self, channels: usize) -> Result<Self> {
        let mut pixels = Vec::new();
        let mut size = None;
        for i in 0..self.len() {
            let img = self.get(i)?.to_channels(channels);
            if *size.get_or_insert((img.width, img.height)) != (img.width, img.height) {
                return Err(DataError::format(
                    Path::new(&self.describe(i)),
                    "converting channels needs images of one size",
                ));
            }
            pixels.extend_from_slice(&img.data);
        }
        let (w, h) = size.unwrap_or((0, 0));
        Ok(Self::in_memory(
            format!("{} ({channels} channels)", self.name),
            w,
            h,
            channels,
            pixels,
            (0..self.len()).map(|i| self.label(i)).collect(),
            self.classes.clone(),
        ))
    }

    pub(crate) fn in_memory(
        name: String,
        width: usize,
        height: usize,
        channels: usize,
        pixels: Vec<u8>,
        labels: Vec<Option<u32>>,
        classes: Vec<String>,
    ) -> Self {
        debug_assert_eq!(pixels.len(), labels.len() * width * height * channels);
        Self {
            name,
            channels,
            classes,
            index: (0..labels.len()).collect(),
            labels,
            items: Items::Memory {
                width,
                height,
                pixels,
            },
        }
    }

    pub(crate) fn stl_records(
        name: String,
        parts: Vec<(PathBuf, usize)>,
        labels: Vec<Option<u32>>,
        classes: Vec<String>,
    ) -> Result<Self> {
        let mut items = Vec::new();
        for (path, count) in parts {
            let file = File::open(&path).map_err(|e| DataError::io(&path, e))?;
            items.push((
                count,
                Items::Records {
                    path,
                    file: Mutex::new(file),
                    side: crate::stl10::SIDE,
                    first: 0,
                },
            ));
        }
        let items = if items.len() == 1 {
            items.pop().unwrap().1
        } else {
            Items::Concat(items)
        };
        Ok(Self {
            name,
            channels: 3,
            classes,
            index: (0..labels.len()).collect(),
            labels,
            items,
        })
    }

    pub(crate) fn files(
        name: String,
        paths: Vec<PathBuf>,
        labels: Vec<Option<u32>>,
        classes: Vec<String>,
    ) -> Self {
        Self {
            name,
            channels: 3,
            classes,
            index: (0..paths.len()).collect(),
            labels,
            items: Items::Files(paths),
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn label(&self, i: usize) -> Option<u32> {
        self.labels[self.index[i]]
    }

    pub fn has_labels(&self) -> bool {
        !self.is_empty() && self.index.iter().all(|&j| self.labels[j].is_some())
    }

    pub fn num_classes(&self) -> usize {
        let seen = self
            .index
            .iter()
            .filter_map(|&j| self.labels[j])
            .max()
            .map_or(0, |m| m as usize + 1);
        seen.max(self.classes.len())
    }

    /// A fixed subset: the items at `indices` of this dataset, in that order.
    pub fn subset(mut self, indices: &[usize]) -> Self {
        self.index = indices.iter().map(|&i| self.index[i]).collect();
        self
    }

    /// Where item `i` lives, for error messages and the app ("file.png", "train-images#123").
    pub fn describe(&self, i: usize) -> String {
        let j = self.index[i];
        match &self.items {
            Items::Files(paths) => paths[j].display().to_string(),
            _ => format!("{}#{j}", self.name),
        }
    }

    /// Decodes item `i`.
    pub fn get(&self, i: usize) -> Result<ImageU8> {
        let j = self.index[i];
        get_item(&self.items, j, self.channels)
    }
}

fn get_item(items: &Items, j: usize, channels: usize) -> Result<ImageU8> {
    match items {
        Items::Memory {
            width,
            height,
            pixels,
        } => {
            let n = width * height * channels;
            Ok(ImageU8::new(
                *width,
                *height,
                channels,
                pixels[j * n..(j + 1) * n].to_vec(),
            ))
        }
        Items::Records {
            path,
            file,
            side,
            first,
        } => {
            let n = side * side * 3;
            let mut buf = vec![0u8; n];
            {
                let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                f.seek(SeekFrom::Start(((first + j) * n) as u64))
                    .and_then(|_| f.read_exact(&mut buf))
                    .map_err(|e| DataError::io(path, e))?;
            }
            Ok(crate::stl10::decode_record(&buf))
        }
        Items::Concat(parts) => {
            let mut j = j;
            for (count, part) in parts {
                if j < *count {
                    return get_item(part, j, channels);
                }
                j -= count;
            }
            unreachable!("index checked against labels length")
        }
        Items::Files(paths) => crate::folder::decode_file(&paths[j]),
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

/// Resolves an optional well-known sub-directory (e.g. `cifar-10-batches-bin`).
pub(crate) fn resolve_dir(path: &Path, sub: &str, probe: &str) -> PathBuf {
    if path.join(probe).exists() {
        path.to_path_buf()
    } else if path.join(sub).join(probe).exists() {
        path.join(sub)
    } else {
        path.to_path_buf()
    }
}

/// Reads one line per class name from an optional metadata file.
pub(crate) fn read_names(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

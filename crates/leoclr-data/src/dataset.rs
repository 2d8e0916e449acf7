//! One dataset type over every supported format, so the loader, the CLI and the app never branch on
//! where images come from. Storage knows no format: images are held in memory, or read per item
//! from fixed-size records or files through the decoder the format's reader hands over (STL-10's
//! unlabeled split is 2.7 GB). The readers live in the `formats` module.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{DataError, Result};
use crate::image::ImageU8;

/// Turns one fixed-size record into an image.
pub type RecordDecoder = fn(&[u8]) -> ImageU8;
/// Reads and decodes one image file.
pub type FileDecoder = fn(&Path) -> Result<ImageU8>;

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
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "train" => Self::Train,
            "test" => Self::Test,
            "unlabeled" | "unlabelled" => Self::Unlabeled,
            "train+unlabeled" => Self::TrainUnlabeled,
            other => {
                return Err(DataError::Config(format!(
                    "unknown split '{other}' (train, test, unlabeled, train+unlabeled)"
                )));
            }
        })
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Train => "train",
            Self::Test => "test",
            Self::Unlabeled => "unlabeled",
            Self::TrainUnlabeled => "train+unlabeled",
        })
    }
}

enum Items {
    /// `count` images of one size, HWC bytes back to back.
    Memory {
        width: usize,
        height: usize,
        pixels: Vec<u8>,
    },
    /// Fixed-size records in a file (STL-10).
    Records {
        path: PathBuf,
        file: Mutex<File>,
        record_len: usize,
        decode: RecordDecoder,
    },
    /// Several record sources back to back (STL-10 train+unlabeled).
    Concat(Vec<(usize, Items)>),
    /// One file per image.
    Files {
        paths: Vec<PathBuf>,
        decode: FileDecoder,
    },
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

    /// Images read per item from files of fixed-size records: `parts` are (file, record count),
    /// back to back; each record is `record_len` bytes that `decode` turns into a `channels`-channel
    /// image.
    pub(crate) fn records(
        name: String,
        channels: usize,
        parts: Vec<(PathBuf, usize)>,
        record_len: usize,
        decode: RecordDecoder,
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
                    record_len,
                    decode,
                },
            ));
        }
        let items = match items.len() {
            1 => items.swap_remove(0).1,
            _ => Items::Concat(items),
        };
        Ok(Self {
            name,
            channels,
            classes,
            index: (0..labels.len()).collect(),
            labels,
            items,
        })
    }

    /// Images read per item from files that `decode` turns into `channels`-channel images.
    pub(crate) fn files(
        name: String,
        channels: usize,
        paths: Vec<PathBuf>,
        decode: FileDecoder,
        labels: Vec<Option<u32>>,
        classes: Vec<String>,
    ) -> Self {
        Self {
            name,
            channels,
            classes,
            index: (0..paths.len()).collect(),
            labels,
            items: Items::Files { paths, decode },
        }
    }

    /// Keeps the first `limit` items.
    pub(crate) fn truncate(&mut self, limit: usize) {
        self.index.truncate(limit);
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The label of item `i` (`None`: unlabelled, or no such item).
    pub fn label(&self, i: usize) -> Option<u32> {
        let j = *self.index.get(i)?;
        self.labels.get(j).copied().flatten()
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
        let j = self.index.get(i).copied().unwrap_or(i);
        match &self.items {
            Items::Files { paths, .. } if j < paths.len() => paths[j].display().to_string(),
            _ => format!("{}#{j}", self.name),
        }
    }

    /// Decodes item `i`; an index past the end is an error, not a panic.
    pub fn get(&self, i: usize) -> Result<ImageU8> {
        let Some(&j) = self.index.get(i) else {
            return Err(DataError::Config(format!(
                "{}: no image {i} (it has {})",
                self.name,
                self.len()
            )));
        };
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
            record_len,
            decode,
        } => {
            let mut buf = vec![0u8; *record_len];
            {
                let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                f.seek(SeekFrom::Start((j as u64) * (*record_len as u64)))
                    .and_then(|_| f.read_exact(&mut buf))
                    .map_err(|e| DataError::io(path, e))?;
            }
            Ok(decode(&buf))
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
        Items::Files { paths, decode } => decode(&paths[j]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_past_the_end_is_an_error_not_a_panic() {
        let ds = Dataset::in_memory(
            "toy".into(),
            2,
            2,
            1,
            vec![1, 2, 3, 4, 5, 6, 7, 8],
            vec![Some(0), None],
            Vec::new(),
        );
        assert_eq!(ds.get(1).unwrap().data, [5, 6, 7, 8]);
        assert_eq!(
            (ds.label(0), ds.label(1), ds.label(2)),
            (Some(0), None, None)
        );
        let e = ds.get(2).unwrap_err().to_string();
        assert!(e.contains("toy: no image 2 (it has 2)"), "{e}");
        assert_eq!(ds.describe(9), "toy#9");
    }
}

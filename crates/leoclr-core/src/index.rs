//! An embedding index on disk, as `leoclr embed` writes it and `leoclr retrieve` (and anyone with
//! NumPy) reads it:
//!
//! - `features.npy`: backbone features, float32 `[N, D]` (as the encoder gives them, not
//!   normalised); `projections.npy` with `--projections`;
//! - `metadata.tsv`: a header, then one row per image: index in the dataset, name (file path or
//!   `dataset#index`), label (class name, or empty) — also the Embedding Projector's metadata;
//! - `index.json`: [`IndexInfo`], what produced it (checkpoint, encoder, view size and
//!   augmentation: how a query image must be prepared to land in the same space).

use std::path::{Path, PathBuf};

use leoclr_data::AugmentConfig;
use leoclr_data::formats::npy;
use serde::{Deserialize, Serialize};

#[cfg(target_arch = "wasm32")]
use crate::infer::nearest;
use crate::infer::normalize_rows;
use crate::{Error, Result};

pub const FEATURES_FILE: &str = "features.npy";
pub const PROJECTIONS_FILE: &str = "projections.npy";
pub const METADATA_FILE: &str = "metadata.tsv";
pub const INFO_FILE: &str = "index.json";

/// What made an index, and how to embed a query into the same space.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IndexInfo {
    /// The checkpoint the features came from (absolute).
    pub checkpoint: PathBuf,
    /// "query" or "key".
    pub encoder: String,
    pub images: usize,
    pub dim: usize,
    pub channels: usize,
    /// The view every image was resized to, and its normalisation.
    pub augment: AugmentConfig,
    pub data: PathBuf,
    pub split: String,
    /// Files left out with `--skip-bad`, with the reason.
    #[serde(default)]
    pub skipped: Vec<String>,
    #[serde(default)]
    pub projections: bool,
    /// Which state of the checkpoint made the features (absent in indexes written before it was
    /// recorded): `retrieve` and the app compare it with the checkpoint they load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<crate::checkpoint::Identity>,
    /// The HNSW graph saved beside the features (`embed --ann`), if any.
    #[cfg(not(target_arch = "wasm32"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ann: Option<crate::ann::AnnInfo>,
}

/// Largest feature width an index may declare (ResNet-50's is 2048).
pub const MAX_DIM: usize = 1 << 16;

impl IndexInfo {
    /// What `index.json` claims, checked before any of it is used (a crafted file used to
    /// allocate 40 GB for a 100,000-pixel view, index past a 1-channel mean, or divide by a zero
    /// std): channels, width, the view and its normalisation.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !matches!(self.channels, 1 | 3) {
            return Err(format!(
                "channels {}: an index holds 1- or 3-channel images",
                self.channels
            ));
        }
        if self.dim == 0 || self.dim > MAX_DIM {
            return Err(format!("dim {} outside 1..={MAX_DIM}", self.dim));
        }
        if !matches!(self.encoder.as_str(), "query" | "key") {
            return Err(format!(
                "encoder '{}' is neither query nor key",
                self.encoder
            ));
        }
        self.augment
            .validate(self.channels)
            .map_err(|e| format!("augment: {e}"))?;
        if self
            .augment
            .mean
            .iter()
            .chain(&self.augment.std)
            .any(|v| !v.is_finite())
        {
            return Err("augment: a mean or std that is not a number".into());
        }
        Ok(())
    }
}

/// Whether the checkpoint a search loads is the state that made an index's features.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelMatch {
    Same,
    /// An index written before identities were recorded: nothing to compare.
    Unrecorded,
}

impl IndexInfo {
    /// Compares the checkpoint at `ckpt` (a file or run directory) with the state recorded when
    /// the index was written. A run that trained on since has overwritten that file: searching old
    /// features with the new model ranks nonsense, so that is an error naming both states.
    pub fn check_model(&self, index_dir: &Path, ckpt: &Path) -> Result<ModelMatch> {
        let now = crate::checkpoint::identity(ckpt)?;
        match &self.model {
            Some(then) if *then != now => Err(Error::index(
                index_dir,
                format!(
                    "its features came from {} ({then}), but that checkpoint now holds {now}; \
                     embed again with `leoclr embed`, or use the checkpoint that made them",
                    ckpt.display()
                ),
            )),
            Some(_) => Ok(ModelMatch::Same),
            None => Ok(ModelMatch::Unrecorded),
        }
    }
}

/// The rows of `metadata.tsv` (after its header): index, name, label.
pub fn parse_metadata(text: &str) -> std::result::Result<Vec<IndexRow>, String> {
    text.lines()
        .skip(1)
        .enumerate()
        .map(|(i, l)| {
            let mut f = l.split('\t');
            let index = f.next().and_then(|v| v.parse().ok());
            let name = f.next().unwrap_or_default().to_string();
            let label = f.next().unwrap_or_default().to_string();
            index
                .map(|index| IndexRow { index, name, label })
                .ok_or_else(|| format!("row {}: no numeric index", i + 2))
        })
        .collect()
}

/// One row of `metadata.tsv`.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexRow {
    pub index: usize,
    pub name: String,
    pub label: String,
}

/// Tabs and newlines would break the TSV: replaced by spaces.
pub fn tsv_field(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

/// An index opened for search: unit-length feature rows, names, labels.
pub struct EmbedIndex {
    pub dir: PathBuf,
    pub info: IndexInfo,
    /// Unit-length rows `[images, dim]`.
    pub features: Vec<f32>,
    pub rows: Vec<IndexRow>,
    /// The exact scan, or the index's HNSW graph when it has one.
    #[cfg(not(target_arch = "wasm32"))]
    pub searcher: crate::ann::Searcher,
}

impl EmbedIndex {
    /// Opens an index, with its HNSW graph when it has one (see [`EmbedIndex::open_with`]).
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, true)
    }

    /// Opens an index; `graph`: search through its saved HNSW graph if it has one (false: scan
    /// every row, exact).
    pub fn open_with(dir: &Path, graph: bool) -> Result<Self> {
        let info_path = dir.join(INFO_FILE);
        let text = std::fs::read_to_string(&info_path).map_err(|e| Error::Io {
            path: info_path.clone(),
            source: e,
        })?;
        let info: IndexInfo = serde_json::from_str(&text).map_err(|e| {
            Error::index(
                &info_path,
                format!("not an index written by `leoclr embed` ({e})"),
            )
        })?;
        info.check().map_err(|m| Error::index(&info_path, m))?;
        let fpath = dir.join(FEATURES_FILE);
        let (n, dim, mut features) = npy::read_f32_matrix(&fpath)?;
        if (n, dim) != (info.images, info.dim) {
            return Err(Error::index(
                &fpath,
                format!(
                    "[{n}, {dim}], but {INFO_FILE} says [{}, {}]",
                    info.images, info.dim
                ),
            ));
        }
        normalize_rows(&mut features, dim);
        let mpath = dir.join(METADATA_FILE);
        let meta = std::fs::read_to_string(&mpath).map_err(|e| Error::Io {
            path: mpath.clone(),
            source: e,
        })?;
        let rows = parse_metadata(&meta).map_err(|m| Error::index(&mpath, m))?;
        if rows.len() != n {
            return Err(Error::index(
                &mpath,
                format!("{} rows for {n} feature rows", rows.len()),
            ));
        }
        #[cfg(not(target_arch = "wasm32"))]
        let searcher = match (&info.ann, graph) {
            (Some(a), true) => crate::ann::Searcher::Approximate(Box::new(
                crate::ann::AnnIndex::load(dir, a, n, dim)?,
            )),
            _ => crate::ann::Searcher::Exact,
        };
        #[cfg(target_arch = "wasm32")]
        let _ = graph;
        Ok(Self {
            dir: dir.to_path_buf(),
            info,
            features,
            rows,
            #[cfg(not(target_arch = "wasm32"))]
            searcher,
        })
    }

    /// The `k` rows most similar (cosine) to a feature vector, best first: (row, score).
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<(usize, f32)>> {
        if query.len() != self.info.dim {
            return Err(Error::Config(format!(
                "a {}-dim query for a {}-dim index",
                query.len(),
                self.info.dim
            )));
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let mut q = query.to_vec();
            normalize_rows(&mut q, self.info.dim);
            Ok(self
                .searcher
                .search(&self.features, self.info.dim, &q, k, None))
        }
        #[cfg(target_arch = "wasm32")]
        Ok(nearest(&self.features, self.info.dim, query, k, None))
    }
}

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
    /// The HNSW graph saved beside the features (`embed --ann`), if any.
    #[cfg(not(target_arch = "wasm32"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ann: Option<crate::ann::AnnInfo>,
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
            Error::Config(format!(
                "{}: not an index written by `leoclr embed` ({e})",
                info_path.display()
            ))
        })?;
        let fpath = dir.join(FEATURES_FILE);
        let (n, dim, mut features) = npy::read_f32_matrix(&fpath)?;
        let bad = |m: String| Error::Config(format!("{}: {m}", dir.display()));
        if (n, dim) != (info.images, info.dim) {
            return Err(bad(format!(
                "{FEATURES_FILE} is [{n}, {dim}], {INFO_FILE} says [{}, {}]",
                info.images, info.dim
            )));
        }
        normalize_rows(&mut features, dim);
        let mpath = dir.join(METADATA_FILE);
        let meta = std::fs::read_to_string(&mpath).map_err(|e| Error::Io {
            path: mpath.clone(),
            source: e,
        })?;
        let rows: Vec<IndexRow> = meta
            .lines()
            .skip(1)
            .map(|l| {
                let mut f = l.split('\t');
                let index = f.next().and_then(|v| v.parse().ok());
                let name = f.next().unwrap_or_default().to_string();
                let label = f.next().unwrap_or_default().to_string();
                index.map(|index| IndexRow { index, name, label })
            })
            .collect::<Option<_>>()
            .ok_or_else(|| bad(format!("{METADATA_FILE}: a row without a numeric index")))?;
        if rows.len() != n {
            return Err(bad(format!(
                "{METADATA_FILE} has {} rows for {n} feature rows",
                rows.len()
            )));
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

//! Embeddings of a whole dataset for retrieval and the map: unit-length backbone features (the
//! features kNN evaluates), labels, and a lazily computed 2-D PCA projection.

use std::sync::Arc;

use burn::tensor::Device;
use leoclr_core::encoder::Encoder;
use leoclr_core::eval::{Output, embed};
use leoclr_core::infer::{Pca2, normalize_rows};
use leoclr_data::{AugmentConfig, Dataset};

use crate::error::{AppError, Result};

pub struct Gallery {
    pub model_id: u64,
    pub dataset: Arc<Dataset>,
    pub dim: usize,
    /// `[len, dim]`, rows of unit length.
    pub features: Vec<f32>,
    pub labels: Vec<Option<u32>>,
    map: Option<(Option<Pca2>, Vec<[f32; 2]>)>,
    /// The exact scan, or an HNSW graph for a large gallery (native: built with the embeddings
    /// from `EXACT_BELOW` images, or the one an opened index saved).
    #[cfg(not(target_arch = "wasm32"))]
    searcher: leoclr_core::ann::Searcher,
}

impl Gallery {
    /// Embeds every image of `dataset`; `progress` gets (done, total). Runs on a worker thread.
    pub fn build(
        model_id: u64,
        encoder: &Encoder,
        dataset: Arc<Dataset>,
        aug: &AugmentConfig,
        device: &Device,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let f = embed(
            encoder,
            dataset.clone(),
            aug,
            256,
            Output::Backbone,
            device,
            progress,
        )?;
        let mut features = f.data;
        normalize_rows(&mut features, f.dim);
        #[cfg(not(target_arch = "wasm32"))]
        let searcher = {
            use leoclr_core::ann::{AnnIndex, AnnParams, EXACT_BELOW, Searcher};
            match f.labels.len() >= EXACT_BELOW {
                true => Searcher::Approximate(Box::new(AnnIndex::build(
                    &features,
                    f.dim,
                    AnnParams::for_rows(f.labels.len()),
                )?)),
                false => Searcher::Exact,
            }
        };
        Ok(Self {
            model_id,
            dataset,
            dim: f.dim,
            features,
            labels: f.labels,
            map: None,
            #[cfg(not(target_arch = "wasm32"))]
            searcher,
        })
    }

    /// Precomputed embeddings (the browser ships them): rows are normalised here.
    pub fn from_parts(
        model_id: u64,
        dataset: Arc<Dataset>,
        dim: usize,
        mut features: Vec<f32>,
    ) -> Result<Self> {
        if dim == 0 || Some(features.len()) != dataset.len().checked_mul(dim) {
            return Err(AppError::Embeddings {
                values: features.len(),
                images: dataset.len(),
                dim,
            });
        }
        normalize_rows(&mut features, dim);
        let labels = (0..dataset.len()).map(|i| dataset.label(i)).collect();
        Ok(Self {
            model_id,
            dataset,
            dim,
            features,
            labels,
            map: None,
            #[cfg(not(target_arch = "wasm32"))]
            searcher: leoclr_core::ann::Searcher::Exact,
        })
    }

    /// Searches through `searcher` (an opened index's HNSW graph) instead of the exact scan.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_searcher(mut self, searcher: leoclr_core::ann::Searcher) -> Self {
        self.searcher = searcher;
        self
    }

    /// The `k` rows nearest to a feature (any length; normalised here), best first, as (row,
    /// cosine); `exclude` leaves one row out.
    pub fn search(&self, feature: &[f32], k: usize, exclude: Option<usize>) -> Vec<(usize, f32)> {
        let mut q = feature.to_vec();
        normalize_rows(&mut q, self.dim);
        #[cfg(not(target_arch = "wasm32"))]
        return self
            .searcher
            .search(&self.features, self.dim, &q, k, exclude);
        #[cfg(target_arch = "wasm32")]
        leoclr_core::infer::nearest(&self.features, self.dim, &q, k, exclude)
    }

    /// "exact" or "approximate (HNSW, ef 64)", for the panel.
    pub fn search_kind(&self) -> String {
        #[cfg(not(target_arch = "wasm32"))]
        return self.searcher.describe();
        #[cfg(target_arch = "wasm32")]
        "exact".into()
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }

    pub fn is_for(&self, model_id: u64, ds: &Arc<Dataset>) -> bool {
        self.model_id == model_id && Arc::ptr_eq(&self.dataset, ds)
    }

    /// 2-D PCA coordinates, computed on first use.
    pub fn map(&mut self) -> &[[f32; 2]] {
        &self.pca().1
    }

    fn pca(&mut self) -> &(Option<Pca2>, Vec<[f32; 2]>) {
        let (features, dim) = (&self.features, self.dim);
        self.map.get_or_insert_with(|| {
            let pca = Pca2::fit(features, dim);
            let pts = match &pca {
                Some(p) => features.chunks_exact(dim).map(|r| p.project(r)).collect(),
                None => Vec::new(),
            };
            (pca, pts)
        })
    }

    /// Turns this gallery's map to match `previous` (the same rows on an earlier map: a model
    /// snapshot taken while training), so points move rather than flip; returns how far they
    /// moved on average, over the map's spread (root mean square distance from its centre).
    pub fn align_map_to(&mut self, previous: &[[f32; 2]]) -> Option<f32> {
        self.pca();
        let (Some(p), pts) = self.map.as_mut()? else {
            return None;
        };
        p.align_to(pts, previous);
        if pts.len() != previous.len() || pts.is_empty() {
            return None;
        }
        let n = pts.len() as f32;
        let moved = pts
            .iter()
            .zip(previous)
            .map(|(a, b)| (a[0] - b[0]).hypot(a[1] - b[1]))
            .sum::<f32>()
            / n;
        let spread = (pts.iter().map(|a| a[0] * a[0] + a[1] * a[1]).sum::<f32>() / n).sqrt();
        Some(moved / spread.max(1e-12))
    }

    /// Where a feature from outside the gallery (an uploaded photo) lands on the map: normalised
    /// like the gallery's rows, projected on the same axes.
    pub fn place(&mut self, feature: &[f32]) -> Option<[f32; 2]> {
        if feature.len() != self.dim {
            return None;
        }
        let mut f = feature.to_vec();
        normalize_rows(&mut f, self.dim);
        self.pca().0.as_ref().map(|p| p.project(&f))
    }
}

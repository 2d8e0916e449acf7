//! The model the Views, Retrieval and Map panels use: an encoder loaded from a checkpoint or run
//! directory, with the augmentation it was trained with.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use burn::tensor::Device;
use leoclr_core::checkpoint::{self, Meta};
use leoclr_core::encoder::Encoder;
use leoclr_data::AugmentConfig;

use crate::error::Result;

pub struct LoadedModel {
    /// Changes with every load, so cached embeddings know they are stale.
    pub id: u64,
    pub path: PathBuf,
    pub encoder: Encoder,
    pub meta: Meta,
    pub aug: AugmentConfig,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl LoadedModel {
    /// Reads a checkpoint; the error names the file and the problem. Reads only.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let loaded = checkpoint::load_encoder(path, device)?;
        Self::from_parts(path, loaded)
    }

    /// A model from bytes in memory (the browser's bundled model); `name` names it in errors.
    pub fn from_bytes(name: &Path, bytes: &[u8], device: &Device) -> Result<Self> {
        let loaded = checkpoint::load_encoder_from_bytes(name, bytes, device)?;
        Self::from_parts(name, loaded)
    }

    /// A model snapshot taken while training (`meta` from `checkpoint::meta_of`), named `name`.
    pub fn snapshot(name: &Path, encoder: Encoder, meta: Meta) -> Result<Self> {
        Self::from_parts(name, (encoder, meta))
    }

    fn from_parts(path: &Path, (encoder, meta): (Encoder, Meta)) -> Result<Self> {
        // 32 px when a file records no view size at all.
        let aug = meta
            .run
            .eval_augment(meta.config.model.in_channels, None, 32)?;
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            path: path.to_path_buf(),
            encoder,
            meta,
            aug,
        })
    }

    pub fn channels(&self) -> usize {
        self.meta.config.model.in_channels
    }

    pub fn describe(&self) -> String {
        format!(
            "{} · {:?} · epoch {}/{}",
            self.meta.config.method.label(),
            self.meta.config.model.backbone,
            self.meta.epoch,
            self.meta.config.epochs
        )
    }
}

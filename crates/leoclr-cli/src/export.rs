//! `leoclr export`: the files the browser demo ships in `assets/web`: the trained encoder alone,
//! a gallery of labelled images, and the gallery's embeddings computed here (so the page answers a
//! click at once and only embeds what the user uploads).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Args;
use leoclr_core::checkpoint;
use leoclr_core::eval::{Output, embed};
use leoclr_core::infer::normalize_rows;
use leoclr_core::run::{BUNDLED_DATA, RunMeta, view_size};
use leoclr_data::{Dataset, DatasetFormat, DatasetSpec, Split};

use crate::subset::write_idx_gz;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A checkpoint file or run directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Gallery source: a grayscale IDX dataset (Fashion-MNIST).
    #[arg(long, default_value = BUNDLED_DATA)]
    pub data: PathBuf,
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Gallery size: the first N images of the split.
    #[arg(long, default_value_t = 1000)]
    pub gallery: usize,
    #[arg(long, default_value = "assets/web")]
    pub out: PathBuf,
}

pub const MODEL_FILE: &str = "model.leoclr";
pub const IMAGES_FILE: &str = "gallery-images-idx3-ubyte.gz";
pub const LABELS_FILE: &str = "gallery-labels-idx1-ubyte.gz";
pub const FEATURES_FILE: &str = "gallery-features.f32";

pub fn run(a: ExportArgs) -> Result<()> {
    let device = Device::flex();
    let (encoder, meta) = checkpoint::load_encoder(&a.checkpoint, &device)?;
    let ds = Dataset::open(&DatasetSpec {
        path: a.data.clone(),
        format: Some(DatasetFormat::Idx),
        split: a.split,
        limit: Some(a.gallery),
    })
    .with_context(|| "the gallery must be an IDX dataset (grayscale, like Fashion-MNIST)")?;
    if ds.channels != meta.config.model.in_channels {
        bail!(
            "{}: the model takes {} channels, the gallery has {}",
            a.data.display(),
            meta.config.model.in_channels,
            ds.channels
        );
    }
    let aug = meta
        .run
        .eval_augment(ds.channels, None, view_size(&ds, None)?)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;

    let model_path = a.out.join(MODEL_FILE);
    let mut small = meta.clone();
    small.run = RunMeta {
        augment: Some(aug.clone()),
        view_size: Some(aug.size),
        dataset: meta.run.dataset.clone(),
        exported_from: Some(a.checkpoint.clone()),
        ..RunMeta::default()
    };
    checkpoint::save_encoder(&model_path, &encoder, &small)?;

    write_idx_gz(&ds, &a.out.join(IMAGES_FILE), &a.out.join(LABELS_FILE))?;

    let n = ds.len();
    let f = embed(
        &encoder,
        Arc::new(ds),
        &aug,
        256,
        Output::Backbone,
        &device,
        &mut |_, _| {},
    )?;
    let mut feats = f.data;
    normalize_rows(&mut feats, f.dim);
    let bytes: Vec<u8> = feats.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(a.out.join(FEATURES_FILE), bytes)?;
    let info = serde_json::json!({
        "images": n,
        "dim": f.dim,
        "features": "unit-length backbone features, f32 little-endian, row-major [images, dim]",
        "method": meta.config.method.label(),
        "epoch": meta.epoch,
        "source": a.data,
        "split": a.split,
        "command": std::iter::once("leoclr".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>(),
    });
    std::fs::write(
        a.out.join("gallery.json"),
        serde_json::to_string_pretty(&info)?,
    )?;
    let size = |f: &str| std::fs::metadata(a.out.join(f)).map_or(0, |m| m.len());
    println!(
        "wrote {}: {MODEL_FILE} ({} bytes), {n} gallery images ({} bytes), {}-dim embeddings ({} bytes)",
        a.out.display(),
        size(MODEL_FILE),
        size(IMAGES_FILE) + size(LABELS_FILE),
        f.dim,
        size(FEATURES_FILE)
    );
    Ok(())
}

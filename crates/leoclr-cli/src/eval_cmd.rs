//! `leoclr eval`: weighted kNN and a linear probe of a checkpoint's frozen backbone.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use leoclr_core::BackendKind;
use leoclr_core::checkpoint;
use leoclr_core::eval::EvalOptions;
use leoclr_core::run::{DataSpec, open_sets, view_size};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A checkpoint file or run directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[command(flatten)]
    pub data: DataSpec,
    #[arg(long, default_value_t = 200)]
    pub knn_k: usize,
    #[arg(long, default_value_t = 0.1)]
    pub knn_t: f32,
    /// Linear probe epochs over the cached features.
    #[arg(long, default_value_t = 30)]
    pub probe_epochs: usize,
    #[arg(long, default_value = "cpu")]
    pub backend: BackendKind,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: EvalArgs) -> Result<()> {
    let opts = EvalOptions {
        knn_k: a.knn_k,
        knn_t: a.knn_t,
        probe_epochs: Some(a.probe_epochs),
    };
    opts.validate()?;
    let device = a.backend.device();
    let (encoder, meta) = checkpoint::load_encoder(&a.checkpoint, &device)?;
    let sets = open_sets(&a.data)?;
    let bank = sets
        .bank
        .context("evaluation needs labelled bank data (--bank-data or a labelled --data)")?;
    let test = sets.test.context(
        "evaluation needs labelled test data (--test-data, or --data with a test split)",
    )?;
    if bank.channels != meta.config.model.in_channels {
        bail!(
            "{}: the model takes {} channels, the data has {}",
            a.data.data.display(),
            meta.config.model.in_channels,
            bank.channels
        );
    }
    let aug = meta
        .run
        .eval_augment(bank.channels, a.data.size, view_size(&bank, None)?)?;
    let s = crate::progress::evaluate(&encoder, &bank, &test, &aug, &device, opts, a.json)?;
    let linear = s.linear_top1.unwrap_or(f32::NAN);
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "checkpoint": a.checkpoint,
                "method": meta.config.method.label(),
                "epoch": meta.epoch,
                "knn_top1": s.knn_top1,
                "linear_top1": linear,
                "knn_k": a.knn_k,
                "knn_t": (a.knn_t as f64 * 1e6).round() / 1e6,
                "bank_size": bank.len(),
                "test_size": test.len(),
            })
        );
    } else {
        println!(
            "{} (epoch {}, {}): kNN top-1 {:.2}% (k={}, T={}), linear probe top-1 {:.2}% on {} test images",
            a.checkpoint.display(),
            meta.epoch,
            meta.config.method.label(),
            100.0 * s.knn_top1,
            a.knn_k,
            a.knn_t,
            100.0 * linear,
            test.len()
        );
    }
    Ok(())
}

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use leoclr_core::checkpoint;
use leoclr_core::encoder::Encoder;
use leoclr_core::eval::Scores;
use leoclr_data::{AugmentConfig, Dataset};

use crate::args::{DataArgs, EvalArgs};

pub use leoclr_core::eval::EvalOptions;
pub use leoclr_core::run::{Sets, augment, view_size};

pub fn open_sets(d: &DataArgs) -> Result<Sets> {
    Ok(leoclr_core::run::open_sets(&d.into())?)
}

/// Embeds bank and test with progress bars (hidden when `quiet`) and scores them.
pub fn evaluate(
    encoder: &Encoder,
    bank: &Arc<Dataset>,
    test: &Arc<Dataset>,
    aug: &AugmentConfig,
    device: &Device,
    opts: EvalOptions,
    quiet: bool,
) -> Result<Scores> {
    let style = "{prefix:>10} [{bar:30}] {pos}/{len} {per_sec}";
    let bars = [
        crate::progress::bar(bank.len(), "embed bank", style, quiet),
        crate::progress::bar(test.len(), "embed test", style, quiet),
    ];
    let s = leoclr_core::eval::evaluate(encoder, bank, test, aug, device, opts, &mut |w, d, _| {
        let pb = &bars[usize::from(w == "test")];
        pb.set_position(d as u64);
    })?;
    bars.iter().for_each(|b| b.finish_and_clear());
    Ok(s)
}

pub fn run(a: EvalArgs) -> Result<()> {
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
    let size = match a.data.size {
        Some(s) => s,
        None => meta
            .extra
            .get("view_size")
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .unwrap_or(view_size(&bank, None)?),
    };
    let aug = augment(bank.channels, size, None)?;
    let aug = match meta
        .extra
        .get("augment")
        .and_then(|v| serde_json::from_value::<AugmentConfig>(v.clone()).ok())
    {
        Some(saved) if saved.size == size => saved,
        _ => aug,
    };
    let s = evaluate(
        &encoder,
        &bank,
        &test,
        &aug,
        &device,
        EvalOptions {
            knn_k: a.knn_k,
            knn_t: a.knn_t,
            probe_epochs: Some(a.probe_epochs),
        },
        a.json,
    )?;
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

//! `leoclr bench`: training-step throughput (synthetic inputs, after warm-up), the first step's time
//! (shader compilation, autotuning), and a short end-to-end run with the real loader and
//! augmentation, per backend. Figures are printed as ratios to the first row too: on a noisy machine
//! only comparisons within one command mean much.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use leoclr_core::fit::fit_epoch;
use leoclr_core::{Method, ModelConfig, TrainConfig, Trainer};
use leoclr_data::{Batch, Dataset, DatasetSpec, Loader, LoaderConfig, Split};
use serde::Serialize;

use crate::args::BenchArgs;
use crate::eval_cmd::augment;

#[derive(Serialize, Debug, Clone)]
pub struct Row {
    pub backend: String,
    pub method: String,
    pub backbone: String,
    pub res: usize,
    pub batch: usize,
    /// Training step only, synthetic inputs; one image = two crops plus the original.
    pub images_per_s: f64,
    pub step_ms: f64,
    pub first_step_s: f64,
    /// Loader (decode + augmentation on worker threads) alone.
    pub pipeline_images_per_s: f64,
    /// Loader feeding training steps.
    pub end_to_end_images_per_s: f64,
    /// Peak resident memory of this process so far (host side; GPU memory is not measured).
    pub peak_rss_mb: f64,
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

pub fn run(a: BenchArgs) -> Result<()> {
    let method =
        Method::parse(&a.model.method, a.model.original_branch).map_err(anyhow::Error::msg)?;
    let spec = DatasetSpec {
        path: a.data.clone(),
        format: None,
        split: Split::Train,
        limit: None,
    };
    let ds = Arc::new(Dataset::open(&spec)?);
    let channels = ds.channels;
    let aug = Arc::new(augment(channels, a.res, None)?);
    let mut rows: Vec<Row> = Vec::new();
    for &backend in &a.backends {
        let device = backend.device();
        let mut model = ModelConfig::new(
            a.model.backbone,
            channels,
            a.model.small_stem.unwrap_or(a.res <= 64),
        );
        model.head_out = 128;
        let cfg = TrainConfig {
            method,
            batch_size: a.batch,
            queue_size: a.queue,
            epochs: 1,
            ..TrainConfig::small(model)
        };
        let mut trainer = Trainer::new(cfg.clone(), &device, 1_000_000)?;
        let batch = Batch::synthetic(a.batch, channels, a.res, 0);
        let t0 = Instant::now();
        trainer.step(&batch)?.into_scalar::<f32>();
        let first_step_s = t0.elapsed().as_secs_f64();
        for _ in 0..a.warmup {
            trainer.step(&batch)?;
        }
        trainer.step(&batch)?.into_scalar::<f32>();
        let t = Instant::now();
        let mut last = None;
        for _ in 0..a.steps {
            last = Some(trainer.step(&batch)?);
        }
        if let Some(l) = last {
            l.into_scalar::<f32>();
        }
        let secs = t.elapsed().as_secs_f64();
        let images_per_s = (a.steps * a.batch) as f64 / secs;

        // The loader alone, then feeding steps, over the same number of batches.
        let n = (a.e2e_batches * a.batch).min(ds.len());
        let sub = Arc::new(Dataset::open(&DatasetSpec {
            limit: Some(n),
            ..spec.clone()
        })?);
        let mut lc = LoaderConfig::train(a.batch, 0);
        if let Some(w) = a.workers {
            lc.workers = w.max(1);
        }
        let t = Instant::now();
        let mut seen = 0;
        for b in Loader::epoch(sub.clone(), aug.clone(), lc.clone(), 0) {
            seen += b?.len();
        }
        let pipeline_images_per_s = seen as f64 / t.elapsed().as_secs_f64();
        let steps = Loader::num_batches(sub.len(), &lc);
        let mut e2e = Trainer::new(cfg, &device, steps)?;
        let s = fit_epoch(&mut e2e, &sub, &aug, &lc, None, 0, &mut |_| true)?;
        let end_to_end_images_per_s = s.images_per_s();

        let row = Row {
            backend: backend.to_string(),
            method: method.label().into(),
            backbone: format!("{:?}", a.model.backbone).to_lowercase(),
            res: a.res,
            batch: a.batch,
            images_per_s,
            step_ms: 1000.0 * secs / a.steps as f64,
            first_step_s,
            pipeline_images_per_s,
            end_to_end_images_per_s,
            peak_rss_mb: peak_rss_mb(),
        };
        if a.json {
            println!("{}", serde_json::to_string(&row)?);
        }
        rows.push(row);
    }
    if let Some(path) = &a.out {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
    }
    if !a.json {
        let reference = rows[0].images_per_s;
        println!(
            "| backend | method | backbone | res | batch | images/s (step) | vs first row | step ms | first step s | pipeline images/s | end-to-end images/s | peak RSS MB |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
        for r in &rows {
            println!(
                "| {} | {} | {} | {} | {} | {:.1} | {:.2}x | {:.1} | {:.2} | {:.1} | {:.1} | {:.0} |",
                r.backend,
                r.method,
                r.backbone,
                r.res,
                r.batch,
                r.images_per_s,
                r.images_per_s / reference,
                r.step_ms,
                r.first_step_s,
                r.pipeline_images_per_s,
                r.end_to_end_images_per_s,
                r.peak_rss_mb
            );
        }
    }
    Ok(())
}

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use leoclr_core::checkpoint;
use leoclr_core::encoder::Encoder;
use leoclr_core::eval::{Features, Output, embed, knn_top1, linear_probe};
use leoclr_data::{AugmentConfig, Dataset, DatasetFormat, DatasetSpec, Split};

use crate::args::{DataArgs, EvalArgs};

/// The datasets of a run: what it trains on, the labelled kNN bank, and the labelled test set.
pub struct Sets {
    pub train: Arc<Dataset>,
    pub bank: Option<Arc<Dataset>>,
    pub test: Option<Arc<Dataset>>,
}

fn open(spec: DatasetSpec) -> Result<Arc<Dataset>> {
    Ok(Arc::new(Dataset::open(&spec)?))
}

pub fn open_sets(d: &DataArgs) -> Result<Sets> {
    let train = open(DatasetSpec {
        path: d.data.clone(),
        format: d.format,
        split: d.split,
        limit: d.limit,
    })?;
    let bank = match &d.bank_data {
        Some(p) => Some(open(DatasetSpec {
            path: p.clone(),
            format: None,
            split: Split::Train,
            limit: d.limit,
        })?),
        None if train.has_labels() => Some(train.clone()),
        None => None,
    };
    let test = match &d.test_data {
        Some(p) => {
            let fmt = leoclr_data::source::detect_format(p)?;
            let split = if fmt == DatasetFormat::Folder {
                Split::Train
            } else {
                Split::Test
            };
            Some(open(DatasetSpec {
                path: p.clone(),
                format: Some(fmt),
                split,
                limit: d.test_limit,
            })?)
        }
        None => {
            let fmt = match d.format {
                Some(f) => f,
                None => leoclr_data::source::detect_format(&d.data)?,
            };
            if fmt == DatasetFormat::Folder {
                None
            } else {
                Some(open(DatasetSpec {
                    path: d.data.clone(),
                    format: Some(fmt),
                    split: Split::Test,
                    limit: d.test_limit,
                })?)
            }
        }
    };
    let test = test.filter(|t| t.has_labels());
    Ok(Sets { train, bank, test })
}

/// Default view side: the dataset's own image side (96 for image folders).
pub fn view_size(ds: &Dataset, size: Option<usize>) -> Result<usize> {
    if let Some(s) = size {
        return Ok(s);
    }
    let img = ds
        .get(0)
        .with_context(|| format!("reading {}", ds.describe(0)))?;
    Ok(if ds.name.is_empty() || img.width != img.height {
        96
    } else {
        img.width.min(224)
    })
}

pub fn augment(channels: usize, size: usize, preset: Option<&str>) -> Result<AugmentConfig> {
    let aug = match preset {
        Some("aug+") => AugmentConfig::aug_plus(size, channels),
        Some("small") => AugmentConfig::small(size, channels),
        None if size <= 64 => AugmentConfig::small(size, channels),
        None => AugmentConfig::aug_plus(size, channels),
        Some(other) => bail!("unknown augmentation preset '{other}' (small, aug+)"),
    };
    aug.validate(channels).map_err(anyhow::Error::msg)?;
    Ok(aug)
}

pub struct Scores {
    pub knn_top1: f32,
    pub linear_top1: Option<f32>,
    pub test_features: Features,
}

/// How to score: kNN (k, T), an optional linear probe, and whether to show progress bars.
#[derive(Clone, Copy, Debug)]
pub struct EvalOptions {
    pub knn_k: usize,
    pub knn_t: f32,
    pub probe_epochs: Option<usize>,
    pub quiet: bool,
}

impl EvalOptions {
    /// The protocol of the paper and of MoCo: weighted kNN, k=200, T=0.1.
    pub fn knn_only() -> Self {
        Self {
            knn_k: 200,
            knn_t: 0.1,
            probe_epochs: None,
            quiet: false,
        }
    }
}

/// Embeds bank and test with the backbone and scores them.
pub fn evaluate(
    encoder: &Encoder,
    bank: &Arc<Dataset>,
    test: &Arc<Dataset>,
    aug: &AugmentConfig,
    device: &Device,
    opts: EvalOptions,
) -> Result<Scores> {
    let EvalOptions {
        knn_k,
        knn_t,
        probe_epochs,
        quiet,
    } = opts;
    let embed_with_bar = |what: &str, ds: &Arc<Dataset>| -> Result<Features> {
        let pb = crate::progress::bar(
            ds.len(),
            what,
            "{prefix:>10} [{bar:30}] {pos}/{len} {per_sec}",
            quiet,
        );
        let f = embed(
            encoder,
            ds.clone(),
            aug,
            512,
            Output::Backbone,
            device,
            &mut |d, _| pb.set_position(d as u64),
        )?;
        pb.finish_and_clear();
        Ok(f)
    };
    let fb = embed_with_bar("embed bank", bank)?;
    let ft = embed_with_bar("embed test", test)?;
    let knn_top1 = knn_top1(&fb, &ft, knn_k, knn_t, device)?;
    let linear_top1 = match probe_epochs {
        Some(e) => Some(linear_probe(&fb, &ft, e, 0, device)?),
        None => None,
    };
    Ok(Scores {
        knn_top1,
        linear_top1,
        test_features: ft,
    })
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
            quiet: a.json,
        },
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

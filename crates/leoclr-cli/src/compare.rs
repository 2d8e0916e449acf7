//! `leoclr compare`: every method trained with identical data, backbone, augmentation, epochs, batch
//! and seed, then evaluated the same way — the "LeOCLR vs MoCo-v2 at the same budget" table.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, bail};
use leoclr_core::encoder::Encoder;
use leoclr_core::eval::{Output, embed, embedding_std};
use leoclr_core::fit::{Feed, fit_epoch};
use leoclr_core::{
    Backbone, BackendKind, Method, ModelConfig, OriginalBranch, TrainConfig, Trainer,
};
use leoclr_data::{Loader, LoaderConfig};
use serde::Serialize;

use crate::args::{CompareArgs, DataArgs};
use crate::eval_cmd::{EvalOptions, augment, evaluate, open_sets, view_size};

const FULL_FASHION: &str = "/usr/share/datasets/fashion-mnist";

#[derive(Serialize, Clone, Debug)]
pub struct Row {
    pub method: String,
    pub knn_top1: f32,
    pub linear_top1: f32,
    pub train_s: f64,
    /// One image = its two crops plus its original.
    pub images_per_s: f64,
    pub final_loss: f32,
    pub embedding_std: f32,
}

struct Preset {
    data: PathBuf,
    limit: Option<usize>,
    backbone: Backbone,
    small_stem: bool,
    epochs: usize,
    batch: usize,
    queue: usize,
    backend: BackendKind,
}

fn preset(name: &str) -> Result<Preset> {
    Ok(match name {
        // Tiny backbone with the standard stem (8x cheaper than the small stem at 28 px on a CPU),
        // a fixed 10,000-image subset of Fashion-MNIST train, the full test split.
        "cpu" => Preset {
            data: if std::path::Path::new(FULL_FASHION).exists() {
                PathBuf::from(FULL_FASHION)
            } else {
                PathBuf::from("assets/fashion-mnist-subset")
            },
            limit: Some(10_000),
            backbone: Backbone::Tiny,
            small_stem: false,
            epochs: 8,
            batch: 256,
            queue: 4096,
            backend: BackendKind::Cpu,
        },
        "gpu" => Preset {
            data: PathBuf::from(FULL_FASHION),
            limit: None,
            backbone: Backbone::ResNet18,
            small_stem: true,
            epochs: 20,
            batch: 512,
            queue: 4096,
            backend: BackendKind::Wgpu,
        },
        other => bail!("unknown preset '{other}' (cpu, gpu)"),
    })
}

fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| method | kNN top-1 | linear top-1 | train s | images/s | final loss | embedding std |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {:.2}% | {:.2}% | {:.0} | {:.1} | {:.4} | {:.4} |\n",
            r.method,
            100.0 * r.knn_top1,
            100.0 * r.linear_top1,
            r.train_s,
            r.images_per_s,
            r.final_loss,
            r.embedding_std
        ));
    }
    s
}

pub fn run(a: CompareArgs) -> Result<()> {
    let p = preset(&a.preset)?;
    let data = DataArgs {
        data: a.data.clone().unwrap_or(p.data),
        format: None,
        split: leoclr_data::Split::Train,
        limit: a.limit.or(p.limit),
        test_data: None,
        test_limit: a.test_limit,
        bank_data: None,
        size: a.size,
        workers: a.workers,
    };
    let sets = open_sets(&data)?;
    let (Some(bank), Some(test)) = (sets.bank.clone(), sets.test.clone()) else {
        bail!(
            "{}: compare needs labelled train and test splits",
            data.data.display()
        );
    };
    let train = sets.train.clone();
    let size = view_size(&train, data.size)?;
    let aug = Arc::new(augment(train.channels, size, None)?);
    let backend = a.backend.unwrap_or(p.backend);
    let device = backend.device();
    let mut model = ModelConfig::new(
        a.backbone.unwrap_or(p.backbone),
        train.channels,
        a.small_stem.unwrap_or(p.small_stem),
    );
    model.head_out = 128;
    let base = TrainConfig {
        model,
        epochs: a.epochs.unwrap_or(p.epochs),
        batch_size: a.batch.unwrap_or(p.batch),
        lr: a.lr.unwrap_or(0.06),
        queue_size: a.queue.unwrap_or(p.queue),
        temperature: a.temperature.unwrap_or(0.1),
        ema_momentum: a.momentum.unwrap_or(0.99),
        seed: a.seed,
        ..TrainConfig::small(ModelConfig::new(Backbone::Tiny, 1, true))
    };
    let mut loader = LoaderConfig::train(base.batch_size, base.seed);
    if let Some(w) = a.workers {
        loader.workers = w.max(1);
    }
    let steps = Loader::num_batches(train.len(), &loader);
    std::fs::create_dir_all(&a.out)?;
    println!(
        "compare on {} ({} train, {} test images, {}px), {:?} (small stem {}), {} epochs, batch {}, queue {}, T {}, m {}, lr {}, seed {}, backend {}",
        data.data.display(),
        train.len(),
        test.len(),
        size,
        base.model.backbone,
        base.model.small_stem,
        base.epochs,
        base.batch_size,
        base.queue_size,
        base.temperature,
        base.ema_momentum,
        base.lr,
        base.seed,
        backend
    );
    let methods = [
        Method::Mocov2 { symmetric: true },
        Method::Mocov2 { symmetric: false },
        Method::Leoclr {
            original_branch: OriginalBranch::Key,
        },
        Method::Leoclr {
            original_branch: OriginalBranch::Query,
        },
    ];
    let wanted = |label: &str| a.methods.is_empty() || a.methods.iter().any(|m| m == label);
    let score = |enc: &Encoder| -> Result<(f32, f32, f32)> {
        let s = evaluate(
            enc,
            &bank,
            &test,
            &aug,
            &device,
            EvalOptions {
                probe_epochs: Some(a.probe_epochs),
                ..EvalOptions::knn_only()
            },
            true,
        )?;
        let z = embed(
            enc,
            test.clone(),
            &aug,
            512,
            Output::Projection,
            &device,
            &mut |_, _| {},
        )?;
        Ok((
            s.knn_top1,
            s.linear_top1.unwrap_or(f32::NAN),
            embedding_std(&z),
        ))
    };
    let mut rows = Vec::new();
    let push = |row: Row, rows: &mut Vec<Row>| -> Result<()> {
        println!(
            "{:<13} kNN {:6.2}%  linear {:6.2}%  {:6.0} s  {:7.1} img/s  loss {:.4}  std {:.4}",
            row.method,
            100.0 * row.knn_top1,
            100.0 * row.linear_top1,
            row.train_s,
            row.images_per_s,
            row.final_loss,
            row.embedding_std
        );
        rows.push(row);
        std::fs::write(
            a.out.join("results.json"),
            serde_json::to_string_pretty(&rows)?,
        )?;
        std::fs::write(a.out.join("results.md"), markdown(rows))?;
        Ok(())
    };
    if wanted("random_init") {
        let enc = Encoder::init_seeded(&base.model, base.seed, &device);
        let (knn, lin, std) = score(&enc)?;
        let row = Row {
            method: "random_init".into(),
            knn_top1: knn,
            linear_top1: lin,
            train_s: 0.0,
            images_per_s: 0.0,
            final_loss: f32::NAN,
            embedding_std: std,
        };
        push(row, &mut rows)?;
    }
    for method in methods {
        if !wanted(method.label()) {
            continue;
        }
        let cfg = TrainConfig {
            method,
            ..base.clone()
        };
        let mut trainer = Trainer::new(cfg, &device, steps)?;
        let (mut secs, mut images, mut loss) = (0.0, 0usize, f32::NAN);
        let pb = crate::progress::bar(
            steps * base.epochs,
            method.label(),
            "{prefix:>13} [{bar:30}] {pos}/{len} {elapsed_precise} {msg}",
            false,
        );
        while trainer.epoch < base.epochs {
            let s = fit_epoch(
                &mut trainer,
                &train,
                &aug,
                &loader,
                &Feed::Host,
                None,
                10,
                &mut |e| {
                    pb.set_position(e.step as u64);
                    if let Some(l) = e.loss {
                        pb.set_message(format!("loss {l:.3}"));
                    }
                    true
                },
            )?;
            secs += s.seconds;
            images += s.images;
            loss = s.loss;
        }
        pb.finish_and_clear();
        let (knn, lin, std) = score(&trainer.online)?;
        let row = Row {
            method: method.label().into(),
            knn_top1: knn,
            linear_top1: lin,
            train_s: secs,
            images_per_s: images as f64 / secs.max(1e-9),
            final_loss: loss,
            embedding_std: std,
        };
        push(row, &mut rows)?;
    }
    println!("\n{}", markdown(&rows));
    println!(
        "written {} and {}",
        a.out.join("results.json").display(),
        a.out.join("results.md").display()
    );
    Ok(())
}

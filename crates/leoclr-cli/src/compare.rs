//! `leoclr compare`: every method trained with identical data, backbone, augmentation, epochs, batch
//! and seed, then evaluated the same way — the "LeOCLR vs MoCo-v2 at the same budget" table. One
//! plan per method, all from the preset's spec.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::Args;
use leoclr_core::encoder::Encoder;
use leoclr_core::eval::{EvalOptions, Output, embed, embedding_std};
use leoclr_core::run::{Plan, Preset, RunSpec};
use leoclr_core::session::fit_epoch;
use leoclr_core::{Backbone, BackendKind, Error, Method, OriginalBranch};
use serde::Serialize;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// cpu: tiny backbone, 10,000 Fashion-MNIST train images, 8 epochs, about 20 minutes on 2 cores;
    /// gpu: ResNet-18 small stem, full Fashion-MNIST, batch 512, 20 epochs, wgpu.
    #[arg(long, default_value_t = Preset::Cpu)]
    pub preset: Preset,
    /// Rows to run (random_init, mocov2_sym, mocov2_asym, leoclr_key, leoclr_query; train's names
    /// mocov2, mocov2-asym and leoclr are accepted too); default all.
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<RowName>,
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long)]
    pub test_limit: Option<usize>,
    #[arg(long)]
    pub size: Option<usize>,
    #[arg(long)]
    pub workers: Option<usize>,
    #[arg(long)]
    pub backbone: Option<Backbone>,
    #[arg(long)]
    pub small_stem: Option<bool>,
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub batch: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub queue: Option<usize>,
    #[arg(long)]
    pub temperature: Option<f64>,
    #[arg(long)]
    pub momentum: Option<f64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub backend: Option<BackendKind>,
    #[arg(long, default_value_t = 30)]
    pub probe_epochs: usize,
    #[arg(long, default_value = "runs/compare")]
    pub out: PathBuf,
}

/// A row of the comparison: a method, or the untrained backbone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowName {
    RandomInit,
    Trained(Method),
}

impl RowName {
    /// Every row, in table order.
    pub const ALL: [RowName; 5] = [
        RowName::RandomInit,
        RowName::Trained(Method::Mocov2 { symmetric: true }),
        RowName::Trained(Method::Mocov2 { symmetric: false }),
        RowName::Trained(Method::Leoclr {
            original_branch: OriginalBranch::Key,
        }),
        RowName::Trained(Method::Leoclr {
            original_branch: OriginalBranch::Query,
        }),
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::RandomInit => "random_init",
            Self::Trained(m) => m.label(),
        }
    }
}

impl std::str::FromStr for RowName {
    type Err = Error;
    /// Table names, and the names `train --method` takes (leoclr: the default key branch).
    fn from_str(s: &str) -> leoclr_core::Result<Self> {
        let alias = match s {
            "leoclr" => "leoclr_key",
            "mocov2" | "mocov2-sym" => "mocov2_sym",
            "mocov2-asym" => "mocov2_asym",
            other => other,
        };
        Self::ALL
            .into_iter()
            .find(|r| r.label() == alias)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown row '{s}' (random_init, mocov2_sym, mocov2_asym, leoclr_key, leoclr_query)"
                ))
            })
    }
}

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

/// The preset's settings with the command line's overrides.
fn spec(a: &CompareArgs) -> RunSpec {
    let mut s = a.preset.spec();
    if let Some(d) = &a.data {
        s.data.data = d.clone();
    }
    s.data.limit = a.limit.or(s.data.limit);
    s.data.test_limit = a.test_limit;
    s.data.size = a.size;
    s.data.workers = a.workers;
    s.model.backbone = a.backbone.unwrap_or(s.model.backbone);
    s.model.small_stem = a.small_stem.or(s.model.small_stem);
    s.epochs = a.epochs.unwrap_or(s.epochs);
    s.batch = a.batch.unwrap_or(s.batch);
    s.lr = a.lr.unwrap_or(s.lr);
    s.queue = a.queue.unwrap_or(s.queue);
    s.temperature = a.temperature.unwrap_or(s.temperature);
    s.momentum = a.momentum.unwrap_or(s.momentum);
    s.seed = a.seed;
    s.backend = a.backend.unwrap_or(s.backend);
    s
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

/// kNN and linear probe on backbone features, embedding spread of the projections.
fn score(
    plan: &Plan,
    enc: &Encoder,
    device: &Device,
    probe_epochs: usize,
) -> Result<(f32, f32, f32)> {
    let (Some(bank), Some(test)) = (&plan.sets.bank, &plan.sets.test) else {
        bail!("compare needs labelled train and test splits");
    };
    let opts = EvalOptions {
        probe_epochs: Some(probe_epochs),
        ..EvalOptions::knn_only()
    };
    let s = crate::progress::evaluate(enc, bank, test, &plan.aug, device, opts, true)?;
    let z = embed(
        enc,
        test.clone(),
        &plan.aug,
        512,
        Output::Projection,
        device,
        &mut |_, _| {},
    )?;
    Ok((
        s.knn_top1,
        s.linear_top1.unwrap_or(f32::NAN),
        embedding_std(&z),
    ))
}

/// Trains one method's plan to the end with a progress bar, then scores it.
fn train_row(plan: &Plan, device: &Device, probe_epochs: usize) -> Result<Row> {
    let label = plan.config.method.label();
    let epochs = plan.config.epochs;
    let mut session = plan.session(device)?;
    let (mut secs, mut images, mut loss) = (0.0, 0usize, f32::NAN);
    let pb = crate::progress::bar(
        plan.steps_per_epoch * epochs,
        label,
        "{prefix:>13} [{bar:30}] {pos}/{len} {elapsed_precise} {msg}",
        false,
    );
    while session.trainer.epoch < epochs {
        let s = fit_epoch(&mut session, None, &mut |e| {
            pb.set_position(e.step as u64);
            if let Some(l) = e.loss {
                pb.set_message(format!("loss {l:.3}"));
            }
            true
        })?;
        secs += s.seconds;
        images += s.images;
        loss = s.loss;
    }
    pb.finish_and_clear();
    let (knn, lin, std) = score(plan, &session.trainer.online, device, probe_epochs)?;
    Ok(Row {
        method: label.into(),
        knn_top1: knn,
        linear_top1: lin,
        train_s: secs,
        images_per_s: images as f64 / secs.max(1e-9),
        final_loss: loss,
        embedding_std: std,
    })
}

fn random_row(plan: &Plan, device: &Device, probe_epochs: usize) -> Result<Row> {
    let enc = Encoder::init_seeded(&plan.config.model, plan.config.seed, device);
    let (knn, lin, std) = score(plan, &enc, device, probe_epochs)?;
    Ok(Row {
        method: "random_init".into(),
        knn_top1: knn,
        linear_top1: lin,
        train_s: 0.0,
        images_per_s: 0.0,
        final_loss: f32::NAN,
        embedding_std: std,
    })
}

fn print_header(plan: &Plan) {
    let (c, d) = (&plan.config, &plan.spec.data);
    let (train, test) = (&plan.sets.train, plan.sets.test.as_ref());
    println!(
        "compare on {} ({} train, {} test images, {}px), {:?} (small stem {}), {} epochs, batch {}, queue {}, T {}, m {}, lr {}, seed {}, backend {}",
        d.data.display(),
        train.len(),
        test.map_or(0, |t| t.len()),
        plan.view_size,
        c.model.backbone,
        c.model.small_stem,
        c.epochs,
        c.batch_size,
        c.queue_size,
        c.temperature,
        c.ema_momentum,
        c.lr,
        c.seed,
        plan.spec.backend
    );
}

fn write_results(out: &Path, rows: &[Row]) -> Result<()> {
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(rows)?,
    )?;
    std::fs::write(out.join("results.md"), markdown(rows))?;
    Ok(())
}

pub fn run(a: CompareArgs) -> Result<()> {
    let plan = Plan::new(spec(&a))?;
    if plan.sets.bank.is_none() || plan.sets.test.is_none() {
        bail!(
            "{}: compare needs labelled train and test splits",
            plan.spec.data.data.display()
        );
    }
    let device = plan.device();
    std::fs::create_dir_all(&a.out)?;
    print_header(&plan);
    let wanted = |r: &RowName| a.methods.is_empty() || a.methods.contains(r);
    let mut rows = Vec::new();
    for name in RowName::ALL.into_iter().filter(wanted) {
        let row = match name {
            RowName::RandomInit => random_row(&plan, &device, a.probe_epochs)?,
            RowName::Trained(m) => train_row(&plan.with_method(m), &device, a.probe_epochs)?,
        };
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
        write_results(&a.out, &rows)?;
    }
    println!("\n{}", markdown(&rows));
    println!(
        "written {} and {}",
        a.out.join("results.json").display(),
        a.out.join("results.md").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_names_take_table_and_train_spellings() {
        for r in RowName::ALL {
            assert_eq!(r.label().parse::<RowName>().unwrap(), r);
        }
        assert_eq!("leoclr".parse::<RowName>().unwrap(), RowName::ALL[3]);
        assert_eq!("mocov2".parse::<RowName>().unwrap(), RowName::ALL[1]);
        assert_eq!("mocov2-asym".parse::<RowName>().unwrap(), RowName::ALL[2]);
        let e = "simclr".parse::<RowName>().unwrap_err().to_string();
        assert!(e.contains("unknown row 'simclr'"), "{e}");
    }
}

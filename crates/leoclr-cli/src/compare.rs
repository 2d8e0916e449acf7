//! `leoclr compare`: every method trained with identical data, backbone, augmentation, epochs, batch
//! and seed, then evaluated the same way — the "LeOCLR vs MoCo-v2 at the same budget" table. One
//! plan per method, all from the preset's spec.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::Args;
use leoclr_core::encoder::Encoder;
use leoclr_core::eval::{EvalOptions, Output, embed, embedding_std};
use leoclr_core::loss::forward_passes;
use leoclr_core::run::{MethodName, ModelSpec, Plan, Preset, RunSpec};
use leoclr_core::session::fit_epoch;
use leoclr_core::{Backbone, BackendKind, Error, Method, OriginalBranch};
use leoclr_data::OriginalAug;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// cpu: tiny backbone, 10,000 Fashion-MNIST train images, 8 epochs, about 25 minutes a seed on
    /// 2 cores; gpu: ResNet-18 small stem, full Fashion-MNIST, batch 512, 20 epochs, wgpu.
    #[arg(long, default_value_t = Preset::Cpu)]
    pub preset: Preset,
    /// Rows to run (random_init, mocov2_sym, mocov2_asym, leoclr_key, leoclr_query, leoclr_paper,
    /// leoclr_key_aug; train's names mocov2, mocov2-asym, leoclr and leoclr-paper are accepted
    /// too); default all.
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
    /// Epochs of the equal-epochs budget (and of every 3-pass method under `passes`).
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
    /// Shuffle-BN sub-batches of the key encoder, for every row (1: off).
    #[arg(long)]
    pub bn_splits: Option<usize>,
    /// Seeds: every row is trained once per seed; the tables print mean ± standard deviation.
    #[arg(long, alias = "seed", value_delimiter = ',', default_value = "0")]
    pub seeds: Vec<u64>,
    /// Budgets, one table each: `epochs` (every method the same epochs) and/or `passes` (the
    /// same encoder forward passes: epochs scaled by 3 / the method's passes per image).
    #[arg(long, value_delimiter = ',', default_value = "epochs")]
    pub budget: Vec<Budget>,
    #[arg(long)]
    pub backend: Option<BackendKind>,
    #[arg(long, default_value_t = 30)]
    pub probe_epochs: usize,
    #[arg(long, default_value = "runs/compare")]
    pub out: PathBuf,
}

/// A row of the comparison: the untrained backbone, or a method with its LeOCLR settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowName {
    RandomInit,
    Mocov2Sym,
    Mocov2Asym,
    /// Ours: the original through the key encoder, resized and flipped.
    LeoclrKey,
    /// The original through the query encoder, resized and flipped.
    LeoclrQuery,
    /// The paper's Algorithm 1: the original through the query encoder, augmented.
    LeoclrPaper,
    /// The original through the key encoder, augmented.
    LeoclrKeyAug,
}

impl RowName {
    /// Every row, in table order.
    pub const ALL: [RowName; 7] = [
        Self::RandomInit,
        Self::Mocov2Sym,
        Self::Mocov2Asym,
        Self::LeoclrKey,
        Self::LeoclrQuery,
        Self::LeoclrPaper,
        Self::LeoclrKeyAug,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::RandomInit => "random_init",
            Self::Mocov2Sym => "mocov2_sym",
            Self::Mocov2Asym => "mocov2_asym",
            Self::LeoclrKey => "leoclr_key",
            Self::LeoclrQuery => "leoclr_query",
            Self::LeoclrPaper => "leoclr_paper",
            Self::LeoclrKeyAug => "leoclr_key_aug",
        }
    }

    /// The row's model settings over the preset's (`None`: the untrained backbone).
    pub fn model(self, base: &ModelSpec) -> Option<ModelSpec> {
        use OriginalAug::{Aug, Flip};
        use OriginalBranch::{Key, Query};
        let (method, original_branch, original_aug) = match self {
            Self::RandomInit => return None,
            Self::Mocov2Sym => (MethodName::Mocov2, None, None),
            Self::Mocov2Asym => (MethodName::Mocov2Asym, None, None),
            Self::LeoclrKey => (MethodName::Leoclr, Some(Key), Some(Flip)),
            Self::LeoclrQuery => (MethodName::Leoclr, Some(Query), Some(Flip)),
            Self::LeoclrPaper => (MethodName::LeoclrPaper, None, None),
            Self::LeoclrKeyAug => (MethodName::Leoclr, Some(Key), Some(Aug)),
        };
        Some(ModelSpec {
            method,
            original_branch,
            original_aug,
            ..base.clone()
        })
    }
}

impl RowName {
    /// The row's epochs under `budget` (0 for the untrained backbone).
    pub fn epochs(self, budget: Budget, base_epochs: usize, base: &ModelSpec) -> usize {
        self.model(base)
            .map_or(0, |m| budget.epochs(base_epochs, m.method()))
    }
}

impl std::str::FromStr for RowName {
    type Err = Error;
    /// Table names, and the names `train --method` takes (leoclr: the default key branch).
    fn from_str(s: &str) -> leoclr_core::Result<Self> {
        let alias = match s {
            "leoclr" => "leoclr_key",
            "leoclr-paper" => "leoclr_paper",
            "mocov2" | "mocov2-sym" => "mocov2_sym",
            "mocov2-asym" => "mocov2_asym",
            other => other,
        };
        Self::ALL
            .into_iter()
            .find(|r| r.label() == alias)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|r| r.label()).collect();
                Error::Config(format!("unknown row '{s}' ({})", names.join(", ")))
            })
    }
}

/// What every method of a table gets the same amount of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Budget {
    /// The same epochs (asymmetric MoCo-v2 then does half the encoder passes of LeOCLR).
    Epochs,
    /// The same encoder forward passes per run: epochs scaled by 3 / the method's passes per
    /// image (symmetric MoCo-v2 4, LeOCLR 3, asymmetric MoCo-v2 2), rounded.
    Passes,
}

impl Budget {
    /// A method's epochs under this budget, from the 3-pass (LeOCLR) epochs.
    pub fn epochs(self, epochs: usize, method: Method) -> usize {
        match self {
            Self::Epochs => epochs,
            Self::Passes => {
                let scaled = (epochs * 3) as f64 / forward_passes(method) as f64;
                (scaled.round() as usize).max(1)
            }
        }
    }
}

impl std::str::FromStr for Budget {
    type Err = Error;
    fn from_str(s: &str) -> leoclr_core::Result<Self> {
        match s {
            "epochs" => Ok(Self::Epochs),
            "passes" => Ok(Self::Passes),
            _ => Err(Error::Config(format!(
                "unknown budget '{s}' (epochs, passes)"
            ))),
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Epochs => "epochs",
            Self::Passes => "passes",
        })
    }
}

/// One trained (or untrained) model of the comparison, scored.
#[derive(Serialize, Clone, Debug)]
pub struct Row {
    pub method: String,
    pub seed: u64,
    pub epochs: usize,
    pub knn_top1: f32,
    pub linear_top1: f32,
    pub train_s: f64,
    /// One image = its two crops plus its original.
    pub images_per_s: f64,
    pub final_loss: f32,
    pub embedding_std: f32,
}

/// Mean and sample standard deviation (0 for one value).
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = match v.len() {
        0 | 1 => 0.0,
        k => v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1) as f64,
    };
    (mean, var.sqrt())
}

/// A row of a table: one method under one budget over the seeds.
#[derive(Serialize, Clone, Debug)]
pub struct Summary {
    pub method: String,
    pub budget: Budget,
    pub epochs: usize,
    pub seeds: Vec<u64>,
    pub knn_top1_mean: f64,
    pub knn_top1_std: f64,
    pub linear_top1_mean: f64,
    pub linear_top1_std: f64,
    pub train_s_mean: f64,
    pub images_per_s_mean: f64,
    pub final_loss_mean: f64,
    pub embedding_std_mean: f64,
    /// The per-seed runs, in seed order.
    pub runs: Vec<Row>,
}

impl Summary {
    fn of(budget: Budget, runs: Vec<Row>) -> Self {
        let col = |f: fn(&Row) -> f64| runs.iter().map(f).collect::<Vec<_>>();
        let (knn, knn_sd) = mean_std(&col(|r| r.knn_top1 as f64));
        let (lin, lin_sd) = mean_std(&col(|r| r.linear_top1 as f64));
        Self {
            method: runs.first().map_or_else(String::new, |r| r.method.clone()),
            budget,
            epochs: runs.first().map_or(0, |r| r.epochs),
            seeds: runs.iter().map(|r| r.seed).collect(),
            knn_top1_mean: knn,
            knn_top1_std: knn_sd,
            linear_top1_mean: lin,
            linear_top1_std: lin_sd,
            train_s_mean: mean_std(&col(|r| r.train_s)).0,
            images_per_s_mean: mean_std(&col(|r| r.images_per_s)).0,
            final_loss_mean: mean_std(&col(|r| r.final_loss as f64)).0,
            embedding_std_mean: mean_std(&col(|r| r.embedding_std as f64)).0,
            runs,
        }
    }
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
    s.bn_splits = a.bn_splits.unwrap_or(s.bn_splits);
    s.seed = a.seeds.first().copied().unwrap_or(0);
    s.backend = a.backend.unwrap_or(s.backend);
    s
}

/// `75.01%`, or `75.01 ± 0.52%` over several seeds.
fn pct(mean: f64, std: f64, n: usize) -> String {
    match n {
        0 | 1 => format!("{:.2}%", 100.0 * mean),
        _ => format!("{:.2} ± {:.2}%", 100.0 * mean, 100.0 * std),
    }
}

fn markdown(tables: &[Summary]) -> String {
    let mut s = String::new();
    let mut budget = None;
    for t in tables {
        if budget != Some(t.budget) {
            budget = Some(t.budget);
            s.push_str(match t.budget {
                Budget::Epochs => "\nEqual epochs:\n\n",
                Budget::Passes => "\nEqual encoder forward passes:\n\n",
            });
            s.push_str(
                "| method | epochs | seeds | kNN top-1 | linear top-1 | kNN per seed | train s | images/s | final loss | embedding std |\n|---|---|---|---|---|---|---|---|---|---|\n",
            );
        }
        let n = t.runs.len();
        let per_seed: Vec<String> = t
            .runs
            .iter()
            .map(|r| format!("{:.2}", 100.0 * r.knn_top1))
            .collect();
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.4} | {:.4} |\n",
            t.method,
            t.epochs,
            n,
            pct(t.knn_top1_mean, t.knn_top1_std, n),
            pct(t.linear_top1_mean, t.linear_top1_std, n),
            per_seed.join(" / "),
            t.train_s_mean,
            t.images_per_s_mean,
            t.final_loss_mean,
            t.embedding_std_mean
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

/// Trains one row's plan to the end with a progress bar, then scores it.
fn train_row(plan: &Plan, label: &str, device: &Device, probe_epochs: usize) -> Result<Row> {
    let epochs = plan.config.epochs;
    let mut session = plan.session(device)?;
    let (mut secs, mut images, mut loss) = (0.0, 0usize, f32::NAN);
    let pb = crate::progress::bar(
        plan.steps_per_epoch * epochs,
        format!("{label} s{}", plan.config.seed),
        "{prefix:>18} [{bar:30}] {pos}/{len} {elapsed_precise} {msg}",
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
        seed: plan.config.seed,
        epochs,
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
        method: RowName::RandomInit.label().into(),
        seed: plan.config.seed,
        epochs: 0,
        knn_top1: knn,
        linear_top1: lin,
        train_s: 0.0,
        images_per_s: 0.0,
        final_loss: f32::NAN,
        embedding_std: std,
    })
}

fn print_header(plan: &Plan, a: &CompareArgs) {
    let (c, d) = (&plan.config, &plan.spec.data);
    let (train, test) = (&plan.sets.train, plan.sets.test.as_ref());
    let seeds: Vec<String> = a.seeds.iter().map(u64::to_string).collect();
    let budgets: Vec<String> = a.budget.iter().map(Budget::to_string).collect();
    println!(
        "compare on {} ({} train, {} test images, {}px), {:?} (small stem {}), {} epochs, batch {}, queue {}, T {}, m {}, lr {}, bn splits {}, seeds {}, budgets {}, backend {}",
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
        c.bn_splits,
        seeds.join(","),
        budgets.join(","),
        plan.spec.backend
    );
}

/// A finished run of the comparison (a row's epochs and seed identify it: equal-epochs and
/// equal-passes tables share the runs whose epochs agree, such as every LeOCLR row).
struct Done {
    row: RowName,
    row_out: Row,
}

/// The run of `row` for `epochs` and `seed`, when done.
fn find(done: &[Done], row: RowName, epochs: usize, seed: u64) -> Option<&Row> {
    done.iter()
        .map(|d| (d.row, &d.row_out))
        .find(|(r, o)| *r == row && o.epochs == epochs && o.seed == seed)
        .map(|(_, o)| o)
}

/// The tables from the runs done so far: per budget, per row, the runs of the wanted seeds.
fn tables(
    a: &CompareArgs,
    rows: &[RowName],
    base_epochs: usize,
    done: &[Done],
    base: &ModelSpec,
) -> Vec<Summary> {
    let mut out = Vec::new();
    for &budget in &a.budget {
        for &row in rows {
            let epochs = row.epochs(budget, base_epochs, base);
            let runs: Vec<Row> = a
                .seeds
                .iter()
                .filter_map(|&seed| find(done, row, epochs, seed).cloned())
                .collect();
            if !runs.is_empty() {
                out.push(Summary::of(budget, runs));
            }
        }
    }
    out
}

fn write_results(out: &Path, tables: &[Summary]) -> Result<()> {
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(tables)?,
    )?;
    std::fs::write(out.join("results.md"), markdown(tables))?;
    Ok(())
}

pub fn run(a: CompareArgs) -> Result<()> {
    let base = Plan::new(spec(&a))?;
    if base.sets.bank.is_none() || base.sets.test.is_none() {
        bail!(
            "{}: compare needs labelled train and test splits",
            base.spec.data.data.display()
        );
    }
    let device = base.device();
    std::fs::create_dir_all(&a.out)?;
    print_header(&base, &a);
    let rows: Vec<RowName> = RowName::ALL
        .into_iter()
        .filter(|r| a.methods.is_empty() || a.methods.contains(r))
        .collect();
    let base_epochs = base.spec.epochs;
    let mut done: Vec<Done> = Vec::new();
    // Seeds outermost: an interrupted comparison has whole tables for its first seeds.
    for &seed in &a.seeds {
        for &budget in &a.budget {
            for &row in &rows {
                let model = row.model(&base.spec.model);
                let epochs = row.epochs(budget, base_epochs, &base.spec.model);
                if find(&done, row, epochs, seed).is_some() {
                    continue;
                }
                let mut spec = base.spec.clone();
                spec.seed = seed;
                let out = match model {
                    None => random_row(&base.with_spec(spec)?, &device, a.probe_epochs)?,
                    Some(m) => {
                        spec.model = m;
                        spec.epochs = epochs;
                        let plan = base.with_spec(spec)?;
                        train_row(&plan, row.label(), &device, a.probe_epochs)?
                    }
                };
                println!(
                    "{:<15} seed {seed:<3} {:>3} epochs  kNN {:6.2}%  linear {:6.2}%  {:6.0} s  {:7.1} img/s  loss {:.4}  std {:.4}",
                    out.method,
                    out.epochs,
                    100.0 * out.knn_top1,
                    100.0 * out.linear_top1,
                    out.train_s,
                    out.images_per_s,
                    out.final_loss,
                    out.embedding_std
                );
                done.push(Done { row, row_out: out });
                write_results(
                    &a.out,
                    &tables(&a, &rows, base_epochs, &done, &base.spec.model),
                )?;
            }
        }
    }
    let t = tables(&a, &rows, base_epochs, &done, &base.spec.model);
    println!("{}", markdown(&t));
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
    fn row_names_take_table_and_train_spellings_and_match_the_run_labels() {
        let base = ModelSpec::default();
        for r in RowName::ALL {
            assert_eq!(r.label().parse::<RowName>().unwrap(), r);
            if let Some(m) = r.model(&base) {
                assert_eq!(m.label(), r.label(), "{r:?}");
            }
        }
        assert_eq!("leoclr".parse::<RowName>().unwrap(), RowName::LeoclrKey);
        assert_eq!(
            "leoclr-paper".parse::<RowName>().unwrap(),
            RowName::LeoclrPaper
        );
        assert_eq!("mocov2".parse::<RowName>().unwrap(), RowName::Mocov2Sym);
        assert_eq!(
            "mocov2-asym".parse::<RowName>().unwrap(),
            RowName::Mocov2Asym
        );
        let e = "simclr".parse::<RowName>().unwrap_err().to_string();
        assert!(e.contains("unknown row 'simclr'"), "{e}");
    }

    #[test]
    fn equal_passes_scale_epochs_by_encoder_passes() {
        let m = |r: RowName| r.model(&ModelSpec::default()).unwrap().method();
        let e = |r| Budget::Passes.epochs(8, m(r));
        assert_eq!(e(RowName::Mocov2Sym), 6);
        assert_eq!(e(RowName::Mocov2Asym), 12);
        for r in [
            RowName::LeoclrKey,
            RowName::LeoclrQuery,
            RowName::LeoclrPaper,
            RowName::LeoclrKeyAug,
        ] {
            assert_eq!(e(r), 8);
        }
        assert_eq!(Budget::Epochs.epochs(8, m(RowName::Mocov2Asym)), 8);
        assert_eq!(Budget::Passes.epochs(1, m(RowName::Mocov2Sym)), 1);
    }

    #[test]
    fn seeds_summarise_as_mean_and_sample_std() {
        let row = |seed, knn| Row {
            method: "leoclr_key".into(),
            seed,
            epochs: 8,
            knn_top1: knn,
            linear_top1: 0.5,
            train_s: 1.0,
            images_per_s: 1.0,
            final_loss: 1.0,
            embedding_std: 0.1,
        };
        let s = Summary::of(
            Budget::Epochs,
            vec![row(0, 0.70), row(1, 0.72), row(2, 0.74)],
        );
        assert!((s.knn_top1_mean - 0.72).abs() < 1e-6);
        assert!((s.knn_top1_std - 0.02).abs() < 1e-6);
        assert_eq!(s.seeds, [0, 1, 2]);
        let md = markdown(&[s]);
        assert!(
            md.contains(
                "| leoclr_key | 8 | 3 | 72.00 ± 2.00% | 50.00 ± 0.00% | 70.00 / 72.00 / 74.00 |"
            ),
            "{md}"
        );
    }
}

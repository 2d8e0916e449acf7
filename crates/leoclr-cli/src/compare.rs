//! `leoclr compare`: every method trained with identical data, backbone, augmentation, epochs, batch
//! and seed, then evaluated the same way — the "LeOCLR vs MoCo-v2 at the same budget" table. One
//! plan per method, all from the preset's spec.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::Args;
use leoclr_core::destination::{self, Input, OutputKind};
use leoclr_core::encoder::Encoder;
use leoclr_core::eval::{EvalOptions, Output, embed, embedding_std};
use leoclr_core::method::{RECIPES, Recipe, recipe};
use leoclr_core::run::{Control, ModelSpec, Plan, Preset, Run, RunSpec, read_metrics};
use leoclr_core::{Backbone, BackendKind, Error, Method};
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
    /// Epochs of LeOCLR (ours), the reference every budget scales the other methods' epochs from.
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
    /// With --bn-splits N: split the query encoder's BatchNorm too (MoCo's SplitBatchNorm).
    #[arg(long)]
    pub bn_split_queries: Option<bool>,
    /// Leave queued keys of a batch's own images (stale, from the previous epoch) out of its
    /// negatives, for every row.
    #[arg(long)]
    pub mask_same_image: Option<bool>,
    /// Seeds: every row is trained once per seed; the tables print mean ± standard deviation.
    #[arg(long, alias = "seed", value_delimiter = ',', default_value = "0")]
    pub seeds: Vec<u64>,
    /// Budgets, one table each: epochs (the same epochs), cost (the same compute: forward and
    /// backward counted), time (the same measured training seconds), forward-passes (backward
    /// not counted; alias passes).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "epochs")]
    pub budget: Vec<Budget>,
    #[arg(long)]
    pub backend: Option<BackendKind>,
    #[arg(long, default_value_t = 30)]
    pub probe_epochs: usize,
    #[arg(long, default_value = "runs/compare")]
    pub out: PathBuf,
}

/// A row of the comparison: the untrained backbone, or a recipe of the registry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RowName {
    RandomInit,
    Recipe(&'static Recipe),
}

impl RowName {
    /// Every row, in table order: the untrained backbone, then every recipe.
    pub fn all() -> Vec<RowName> {
        std::iter::once(Self::RandomInit)
            .chain(RECIPES.iter().map(Self::Recipe))
            .collect()
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::RandomInit => "random_init",
            Self::Recipe(r) => r.label,
        }
    }

    /// The row's model settings over the preset's (`None`: the untrained backbone).
    pub fn model(self, base: &ModelSpec) -> Option<ModelSpec> {
        let Self::Recipe(r) = self else { return None };
        let mut m = base.clone();
        m.set_recipe(r);
        Some(m)
    }

    /// The row's epochs under `budget` (0 for the untrained backbone).
    pub fn epochs(
        self,
        budget: Budget,
        base_epochs: usize,
        base: &ModelSpec,
        seconds: &dyn Fn(Method) -> f64,
    ) -> usize {
        self.model(base)
            .map_or(0, |m| budget.epochs(base_epochs, m.method(), seconds))
    }
}

impl std::str::FromStr for RowName {
    type Err = Error;
    /// `random_init`, or any name, alias or table label of a recipe.
    fn from_str(s: &str) -> leoclr_core::Result<Self> {
        if s == "random_init" || s == "random-init" {
            return Ok(Self::RandomInit);
        }
        recipe(s).map(Self::Recipe).ok_or_else(|| {
            let names: Vec<&str> = Self::all().iter().map(|r| r.label()).collect();
            Error::Config(format!("unknown row '{s}' ({})", names.join(", ")))
        })
    }
}

/// What every method of a table gets the same amount of. Epochs are scaled against the
/// project's LeOCLR (the original through the key encoder), whose epochs `--epochs` sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Budget {
    /// The same epochs (asymmetric MoCo-v2 then computes 4/7 of LeOCLR's).
    Epochs,
    /// The same compute as counted by the cost model: per image, a query view costs a forward
    /// and a backward (1 + 2), a key view a forward (1): LeOCLR 7, symmetric MoCo-v2 8,
    /// asymmetric 4, LeOCLR with the original as query 5. Epochs scaled by 7 / cost.
    Cost,
    /// The same measured training time: epochs scaled by LeOCLR's seconds per step over the
    /// method's, timed on this machine before the table is trained (kept in calibration.json).
    Time,
    /// Forward passes alone, ignoring backward (LeOCLR 3, symmetric MoCo-v2 4, asymmetric 2):
    /// kept for the tables made with it; `cost` counts what is computed.
    #[value(alias = "passes")]
    ForwardPasses,
}

impl Budget {
    /// A method's epochs under this budget, from the reference's `epochs`; `seconds` gives a
    /// method's measured seconds per step (the `time` budget).
    pub fn epochs(self, epochs: usize, method: Method, seconds: &dyn Fn(Method) -> f64) -> usize {
        let reference = leoclr_core::method::default_recipe().method;
        let ratio = match self {
            Self::Epochs => return epochs,
            Self::Cost => reference.objective().reads().cost() / method.objective().reads().cost(),
            Self::ForwardPasses => {
                reference.objective().reads().forward_passes() as f64
                    / method.objective().reads().forward_passes() as f64
            }
            Self::Time => seconds(reference) / seconds(method).max(1e-9),
        };
        ((epochs as f64 * ratio).round() as usize).max(1)
    }

    fn title(self) -> &'static str {
        match self {
            Self::Epochs => "Equal epochs",
            Self::Cost => "Equal compute (forward + 2 x backward per query view)",
            Self::Time => "Equal measured training time",
            Self::ForwardPasses => "Equal encoder forward passes (backward not counted)",
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Epochs => "epochs",
            Self::Cost => "cost",
            Self::Time => "time",
            Self::ForwardPasses => "forward-passes",
        })
    }
}

/// One trained (or untrained) model of the comparison, scored.
#[derive(Serialize, serde::Deserialize, Clone, Debug)]
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
    s.bn_split_queries = a.bn_split_queries.unwrap_or(s.bn_split_queries);
    s.mask_same_image = a.mask_same_image.unwrap_or(s.mask_same_image);
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
            s.push_str(&format!("\n{}:\n\n", t.budget.title()));
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

/// Where a row's run lives: `OUT/runs/<label>-e<epochs>-s<seed>`, a run directory like
/// `leoclr train`'s (checkpoint, metrics.jsonl), so a stopped comparison resumes each row where
/// its last epoch ended and a finished row is not trained again.
fn row_dir(out: &Path, label: &str, epochs: usize, seed: u64) -> PathBuf {
    out.join("runs").join(format!("{label}-e{epochs}-s{seed}"))
}

/// A row's scores, kept in its run directory once computed.
const SCORE_FILE: &str = "score.json";

/// Trains one row's plan to the end in its run directory (resuming it if a stop left one), with
/// the same progress as `leoclr train`, then scores it.
fn train_row(
    plan: &Plan,
    label: &str,
    out: &Path,
    device: &Device,
    probe_epochs: usize,
) -> Result<Row> {
    let epochs = plan.config.epochs;
    let dir = row_dir(out, label, epochs, plan.config.seed);
    if let Some(row) = std::fs::read_to_string(dir.join(SCORE_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<Row>(&t).ok())
        .filter(|r| r.epochs == epochs && r.method == label)
    {
        return Ok(row);
    }
    let mut run = match dir.join(leoclr_core::checkpoint::FILE_NAME).exists() {
        true => Run::resume(&dir)?,
        false => Run::from_plan(plan.clone(), &dir, None)?,
    };
    let mut bars = crate::progress::RunBars::new(format!("{label} s{}", plan.config.seed));
    bars.epoch_lines = false;
    run.train(&Control::default(), None, &mut |ev| bars.on_event(&ev))?;
    let log = read_metrics(&dir)?;
    let secs: f64 = log.iter().map(|r| r.epoch_s).sum();
    let images: f64 = log.iter().map(|r| r.images_per_s * r.epoch_s).sum();
    let (knn, lin, std) = score(plan, run.trainer().online(), device, probe_epochs)?;
    let row = Row {
        method: label.into(),
        seed: plan.config.seed,
        epochs,
        knn_top1: knn,
        linear_top1: lin,
        train_s: secs,
        images_per_s: images / secs.max(1e-9),
        final_loss: log.last().map_or(f32::NAN, |r| r.loss),
        embedding_std: std,
    };
    std::fs::write(dir.join(SCORE_FILE), serde_json::to_string_pretty(&row)?)?;
    Ok(row)
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

/// What a comparison's rows were trained with, kept beside them.
const SETTINGS_FILE: &str = "settings.json";

/// A comparison continues only with the settings its rows were trained with: rows are found by
/// method, epochs and seed, so a second command with another setting (masking on, another
/// limit) would otherwise mix its rows with the first one's. Seeds and epochs may change (rows
/// are named by them), worker threads too (they change no result).
fn check_settings(out: &Path, spec: &RunSpec) -> Result<()> {
    let key = |spec: &RunSpec| -> Result<serde_json::Value> {
        let mut s = spec.clone();
        s.seed = 0;
        s.epochs = 1;
        s.data.workers = None;
        Ok(serde_json::to_value(s)?)
    };
    let now = key(spec)?;
    let path = out.join(SETTINGS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let then: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: not a settings file: {e}", path.display()))?;
            if let Some(field) = first_difference(&then, &now) {
                bail!(
                    "{}: its rows were trained with other settings ({field} differs); use another --out",
                    out.display()
                );
            }
            Ok(())
        }
        Err(_) => {
            std::fs::write(&path, serde_json::to_string_pretty(&now)?)?;
            Ok(())
        }
    }
}

/// The path of the first field where two JSON values differ (`data.limit`), if any.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value) -> Option<String> {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => x
            .keys()
            .chain(y.keys())
            .find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q).map(|d| match d.is_empty() {
                    true => k.clone(),
                    false => format!("{k}.{d}"),
                }),
                _ => Some(k.clone()),
            }),
        _ => (a != b).then(String::new),
    }
}

fn print_header(plan: &Plan, a: &CompareArgs) {
    let (c, d) = (&plan.config, &plan.spec.data);
    let (train, test) = (&plan.sets.train, plan.sets.test.as_ref());
    let seeds: Vec<String> = a.seeds.iter().map(u64::to_string).collect();
    let budgets: Vec<String> = a.budget.iter().map(Budget::to_string).collect();
    println!(
        "compare on {} ({} train, {} test images, {}px), {:?} (small stem {}), {} epochs, batch {}, queue {}, T {}, m {}, lr {}, bn splits {} (queries too: {}), same-image negatives masked: {}, seeds {}, budgets {}, backend {}",
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
        plan.spec.bn_split_queries,
        plan.spec.mask_same_image,
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

/// Seconds per training step of every method of `rows` on this machine (synthetic batches of the
/// plan's size after two warm-up steps): what the `time` budget equalises. Measured once per
/// comparison and kept in `calibration.json`, so a resumed comparison gives every row the
/// epochs it started with.
fn calibrate(
    base: &Plan,
    rows: &[RowName],
    device: &Device,
    out: &Path,
) -> Result<std::collections::BTreeMap<String, f64>> {
    let path = out.join("calibration.json");
    let mut known: std::collections::BTreeMap<String, f64> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let mut methods: Vec<Method> = rows
        .iter()
        .filter_map(|r| r.model(&base.spec.model))
        .map(|m| m.method())
        .collect();
    methods.push(leoclr_core::method::default_recipe().method);
    for m in methods {
        if known.contains_key(m.label()) {
            continue;
        }
        let mut config = base.config.clone();
        config.method = m;
        let mut t = leoclr_core::Trainer::new(config, device, 1_000)?;
        let batch = leoclr_data::Batch::synthetic(
            base.config.batch_size,
            base.sets.train.channels,
            base.view_size,
            0,
        );
        for _ in 0..2 {
            t.step(&batch)?.into_scalar::<f32>();
        }
        let steps = 5;
        let start = std::time::Instant::now();
        for _ in 0..steps {
            t.step(&batch)?.into_scalar::<f32>();
        }
        let secs = start.elapsed().as_secs_f64() / steps as f64;
        println!("calibration: {} {:.3} s a step", m.label(), secs);
        known.insert(m.label().to_string(), secs);
    }
    std::fs::write(&path, serde_json::to_string_pretty(&known)?)?;
    Ok(known)
}

/// The tables from the runs done so far: per budget, per row, the runs of the wanted seeds.
fn tables(
    a: &CompareArgs,
    rows: &[RowName],
    base_epochs: usize,
    done: &[Done],
    base: &ModelSpec,
    seconds: &dyn Fn(Method) -> f64,
) -> Vec<Summary> {
    let mut out = Vec::new();
    for &budget in &a.budget {
        for &row in rows {
            let epochs = row.epochs(budget, base_epochs, base, seconds);
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

/// Seeds each once (`--seeds 1,1` used to train once and report two seeds with a spread of
/// 0.00), at most [`MAX_SEEDS`].
fn check_seeds(seeds: &[u64]) -> Result<()> {
    if seeds.is_empty() || seeds.len() > MAX_SEEDS {
        bail!(
            "--seeds: between 1 and {MAX_SEEDS} seeds, not {}",
            seeds.len()
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = seeds.iter().find(|s| !seen.insert(**s)) {
        bail!("--seeds: seed {dup} is given twice; a spread needs distinct seeds");
    }
    Ok(())
}

/// Seeds a comparison may take (each trains every row once).
const MAX_SEEDS: usize = 32;

pub fn run(a: CompareArgs) -> Result<()> {
    check_seeds(&a.seeds)?;
    let base = Plan::new(spec(&a))?;
    if base.sets.bank.is_none() || base.sets.test.is_none() {
        bail!(
            "{}: compare needs labelled train and test splits",
            base.spec.data.data.display()
        );
    }
    // A comparison continues in its own directory (each row resumes); it never writes into a
    // directory that holds anything else (a training run, the data).
    destination::check(
        &a.out,
        OutputKind::Comparison,
        true,
        &[Input::data(&base.spec.data.data)],
    )?;
    let device = base.device();
    std::fs::create_dir_all(&a.out)?;
    check_settings(&a.out, &base.spec)?;
    print_header(&base, &a);
    let rows: Vec<RowName> = RowName::all()
        .into_iter()
        .filter(|r| a.methods.is_empty() || a.methods.contains(r))
        .collect();
    let base_epochs = base.spec.epochs;
    let calibration = match a.budget.contains(&Budget::Time) {
        true => calibrate(&base, &rows, &device, &a.out)?,
        false => Default::default(),
    };
    let seconds = |m: Method| calibration.get(m.label()).copied().unwrap_or(1.0);
    let mut done: Vec<Done> = Vec::new();
    // Seeds outermost: an interrupted comparison has whole tables for its first seeds.
    for &seed in &a.seeds {
        for &budget in &a.budget {
            for &row in &rows {
                let model = row.model(&base.spec.model);
                let epochs = row.epochs(budget, base_epochs, &base.spec.model, &seconds);
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
                        train_row(&plan, row.label(), &a.out, &device, a.probe_epochs)?
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
                    &tables(&a, &rows, base_epochs, &done, &base.spec.model, &seconds),
                )?;
            }
        }
    }
    let t = tables(&a, &rows, base_epochs, &done, &base.spec.model, &seconds);
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

    fn row(name: &str) -> RowName {
        name.parse().unwrap()
    }

    #[test]
    fn row_names_take_table_and_train_spellings_and_match_the_run_labels() {
        let base = ModelSpec::default();
        for r in RowName::all() {
            assert_eq!(row(r.label()), r);
            if let Some(m) = r.model(&base) {
                assert_eq!(m.label(), r.label(), "{r:?}");
            }
        }
        assert_eq!(row("leoclr").label(), "leoclr_key");
        assert_eq!(row("leoclr-paper").label(), "leoclr_paper");
        assert_eq!(row("mocov2").label(), "mocov2_sym");
        assert_eq!(row("mocov2-asym").label(), "mocov2_asym");
        let e = "simclr".parse::<RowName>().unwrap_err().to_string();
        assert!(e.contains("unknown row 'simclr'"), "{e}");
    }

    #[test]
    fn budgets_scale_epochs_by_passes_cost_and_time() {
        let m = |r: &str| row(r).model(&ModelSpec::default()).unwrap().method();
        let flat = |_: Method| 1.0;
        let passes = |r| Budget::ForwardPasses.epochs(8, m(r), &flat);
        assert_eq!(passes("mocov2_sym"), 6);
        assert_eq!(passes("mocov2_asym"), 12);
        for r in [
            "leoclr_key",
            "leoclr_query",
            "leoclr_paper",
            "leoclr_key_aug",
        ] {
            assert_eq!(passes(r), 8);
        }
        // Forward 1, backward 2: LeOCLR 7, asymmetric MoCo-v2 4, symmetric 8, query-side 5.
        let cost = |r| Budget::Cost.epochs(8, m(r), &flat);
        assert_eq!(cost("mocov2_asym"), 14);
        assert_eq!(cost("mocov2_sym"), 7);
        assert_eq!(cost("leoclr_key"), 8);
        assert_eq!(cost("leoclr_paper"), 11);
        // Time: a method twice as slow a step gets half the epochs.
        let slow = |x: Method| if x == m("mocov2_sym") { 2.0 } else { 1.0 };
        assert_eq!(Budget::Time.epochs(8, m("mocov2_sym"), &slow), 4);
        assert_eq!(Budget::Epochs.epochs(8, m("mocov2_asym"), &flat), 8);
        assert_eq!(Budget::ForwardPasses.epochs(1, m("mocov2_sym"), &flat), 1);
        // The old name still parses.
        use clap::ValueEnum;
        assert_eq!(
            Budget::from_str("passes", false).unwrap(),
            Budget::ForwardPasses
        );
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

//! `leoclr bench`: training-step throughput (synthetic inputs, after warm-up), the first step's time
//! (shader compilation, autotuning), the EMA update and enqueue on their own, view making alone,
//! and a short end-to-end run with real data and augmentation on the CPU loader or on the device,
//! per backend. Figures are printed as ratios to the first row too: on a noisy machine
//! only comparisons within one command mean much.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor};
use clap::Args;
use leoclr_core::augment_device::{AugmentOn, DeviceEpoch, DeviceImages};
use leoclr_core::destination::{self, Input, OutputKind};
use leoclr_core::ema::parameters;
use leoclr_core::run::{BUNDLED_DATA, DataSpec, ModelSpec, Plan, RunSpec, Sets};
use leoclr_core::session::{Feed, ReadLoss, Session, fit_epoch};
use leoclr_core::{BackendKind, Precision, Trainer};
use leoclr_data::{Batch, Dataset, DatasetSpec, Loader, Split};
use leoclr_kernels::ConvImpl;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Backends to measure, in order; ratios are against the first.
    #[arg(long, value_delimiter = ',', default_value = "cpu")]
    pub backends: Vec<BackendKind>,
    #[command(flatten)]
    pub model: ModelSpec,
    /// Input side in pixels.
    #[arg(long, default_value_t = 28)]
    pub res: usize,
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    #[arg(long, default_value_t = 4096)]
    pub queue: usize,
    /// Untimed steps after the first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Batches of real data for the loader and end-to-end measurements.
    #[arg(long, default_value_t = 10)]
    pub e2e_batches: usize,
    /// Input channels (default: the data's). With 3 on grayscale data the images are replicated
    /// to RGB, to measure the RGB models users train.
    #[arg(long)]
    pub channels: Option<usize>,
    /// Data for the end-to-end run (its channels set the model's input channels).
    #[arg(long, default_value = BUNDLED_DATA)]
    pub data: PathBuf,
    #[arg(long)]
    pub workers: Option<usize>,
    /// Float type of every backend in this run: f32, f16 or bf16 (whole model, not autocast; one
    /// precision per command since burn fixes a device's float type at its first tensor).
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    /// Where the end-to-end run makes its views, in order: cpu (loader threads), device.
    #[arg(long, value_delimiter = ',', default_value = "cpu,device")]
    pub augment_on: Vec<AugmentOn>,
    /// Only the training step (no EMA/enqueue split, no data pipeline): what
    /// scripts/bench-vs-torch.sh compares with PyTorch.
    #[arg(long)]
    pub step_only: bool,
    /// Run the timed steps inside a one-thread rayon pool, so that every CPU kernel runs on the
    /// thread that called it and a profiler sees it under its operation (docs/performance.md, scripts/profile_step.py);
    /// slower than the default pool: for profiles, not for figures.
    #[arg(long)]
    pub profile_inline: bool,
    /// Device counts to measure data-parallel steps on (e.g. 1,2): the step on a host batch of
    /// `--batch` images split over that many devices of each backend (views uploaded each step,
    /// for every count alike), instead of the step and pipeline figures. The CPU backend's
    /// replicas share its one device.
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<usize>,
    /// The CPU backend's convolution, in order: ours (the project's kernels, shaders/) and/or
    /// burn (flex's own), a row each, so the two compare in one command. Other backends run
    /// burn's.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ours")]
    pub conv: Vec<ConvArg>,
    /// One JSON object per configuration instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write all rows as a JSON array here (a new file, or rows an earlier bench wrote with
    /// --overwrite; never another file).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the rows an earlier `bench --out` wrote there.
    #[arg(long)]
    pub overwrite: bool,
}

/// Which convolution the CPU backend runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvArg {
    /// The project's kernels (shaders/): one GEMM per tile of images, our own gradients.
    Ours,
    /// burn-flex's own convolution and burn's generic gradients.
    Burn,
}

impl ConvArg {
    fn set(self) {
        leoclr_kernels::set_conv_impl(match self {
            Self::Ours => ConvImpl::Ours,
            Self::Burn => ConvImpl::Burn,
        });
    }

    fn name(self, backend: BackendKind) -> &'static str {
        match (backend, self) {
            (BackendKind::Cpu, Self::Ours) => "ours",
            _ => "burn",
        }
    }
}

#[derive(Serialize, Debug, Clone)]
pub struct Row {
    pub backend: String,
    /// The convolution the step ran: ours or burn's.
    pub conv: String,
    /// Devices the step ran on (data-parallel above 1).
    pub devices: usize,
    /// Where the end-to-end run made its views: cpu (loader threads) or device.
    pub augment_on: String,
    /// Float type the model computes in.
    pub precision: String,
    pub method: String,
    pub backbone: String,
    pub res: usize,
    pub batch: usize,
    /// Training step only, synthetic inputs already on the device; one image = two crops plus the
    /// original.
    pub images_per_s: f64,
    pub step_ms: f64,
    pub first_step_s: f64,
    /// The key encoder's EMA update alone, per step.
    pub ema_ms: f64,
    /// Enqueueing one batch of keys, per step.
    pub enqueue_ms: f64,
    /// Making the views alone: the CPU loader (decode + augmentation on worker threads) or the
    /// device pipeline (gather + augmentation kernels).
    pub augment_images_per_s: f64,
    /// Real data through the chosen pipeline into training steps.
    pub end_to_end_images_per_s: f64,
    /// End-to-end over step-only: 1.0 means the data pipeline costs nothing.
    pub end_to_end_vs_step: f64,
    /// Peak device memory held by burn's allocator over the step measurement (GPU backends;
    /// null on the CPU backend, whose memory is in `peak_rss_mb`).
    pub device_peak_mb: Option<f64>,
    /// Peak resident memory of this process so far (host side; GPU memory is not measured).
    pub peak_rss_mb: f64,
}

impl Row {
    /// A row of step figures; the pipeline figures start as NaN (measured separately).
    fn of(
        a: &BenchArgs,
        plan: &Plan,
        backend: BackendKind,
        devices: usize,
        augment_on: String,
        step: &StepTiming,
    ) -> Self {
        Self {
            backend: backend.to_string(),
            conv: match leoclr_kernels::conv_impl() {
                ConvImpl::Ours if backend == BackendKind::Cpu => "ours".into(),
                _ => "burn".into(),
            },
            devices,
            augment_on,
            precision: a.precision.to_string(),
            method: plan.config.method.label().into(),
            backbone: a.model.backbone.to_string(),
            res: a.res,
            batch: a.batch,
            images_per_s: step.images_per_s,
            step_ms: step.step_ms,
            first_step_s: step.first_step_s,
            ema_ms: step.ema_ms,
            enqueue_ms: step.enqueue_ms,
            augment_images_per_s: f64::NAN,
            end_to_end_images_per_s: f64::NAN,
            end_to_end_vs_step: f64::NAN,
            device_peak_mb: step.device_peak_mb,
            peak_rss_mb: peak_rss_mb(),
        }
    }
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

/// Milliseconds per call of `work` on `state` (n calls, then one `sync`), less the time of `sync`
/// alone. `sync` reads something back, which waits for the device.
fn per_call_ms<S>(n: usize, state: &mut S, work: impl Fn(&mut S), sync: impl Fn(&S)) -> f64 {
    sync(state);
    let t = Instant::now();
    sync(state);
    let sync_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..n {
        work(state);
    }
    sync(state);
    1000.0 * (t.elapsed().as_secs_f64() - sync_s).max(0.0) / n as f64
}

/// The bench's settings as a run spec (the defaults of `train` for everything it does not set).
fn spec(a: &BenchArgs) -> RunSpec {
    RunSpec {
        data: DataSpec {
            data: a.data.clone(),
            size: Some(a.res),
            workers: a.workers,
            ..DataSpec::default()
        },
        model: a.model.clone(),
        batch: a.batch,
        queue: a.queue,
        epochs: 1,
        ..RunSpec::default()
    }
}

/// `e2e_batches` batches of real data, in the channels asked for.
fn open_data(a: &BenchArgs) -> Result<Arc<Dataset>> {
    let mut ds = Dataset::open(&DatasetSpec {
        path: a.data.clone(),
        format: None,
        split: Split::Train,
        limit: Some(a.e2e_batches.saturating_mul(a.batch)),
    })?;
    if let Some(c) = a.channels.filter(|&c| c != ds.channels) {
        if c != 1 && c != 3 {
            anyhow::bail!("--channels {c}: 1 or 3");
        }
        ds = ds.with_channels(c)?;
    }
    Ok(Arc::new(ds))
}

/// Step-only figures on synthetic inputs already on the device.
struct StepTiming {
    images_per_s: f64,
    step_ms: f64,
    first_step_s: f64,
    ema_ms: f64,
    enqueue_ms: f64,
    device_peak_mb: Option<f64>,
}

impl StepTiming {
    /// Steps alone (no separate EMA and enqueue timings): `a.steps` steps of `a.batch` images in
    /// `secs`.
    fn steps_only(
        a: &BenchArgs,
        secs: f64,
        first_step_s: f64,
        device_peak_mb: Option<f64>,
    ) -> Self {
        Self {
            images_per_s: (a.steps * a.batch) as f64 / secs,
            step_ms: 1000.0 * secs / a.steps as f64,
            first_step_s,
            ema_ms: f64::NAN,
            enqueue_ms: f64::NAN,
            device_peak_mb,
        }
    }
}

/// The most device memory burn's allocator held (reserved bytes, pages kept for reuse included)
/// at any of the points it was sampled: after each step, where the pools have grown to the step's
/// needs. `None` on backends whose allocator does not report (the CPU backend).
#[derive(Default)]
struct DevicePeak(Option<u64>);

impl DevicePeak {
    fn sample(&mut self, device: &Device) {
        if let Some(u) = device.memory_pool_usage() {
            self.0 = Some(self.0.unwrap_or(0).max(u.bytes_reserved));
        }
    }

    fn mb(&self) -> Option<f64> {
        self.0.map(|b| b as f64 / (1024.0 * 1024.0))
    }
}

fn time_steps(plan: &Plan, device: &Device, a: &BenchArgs) -> Result<StepTiming> {
    let mut trainer = Trainer::new(plan.config.clone(), device, 1_000_000)?;
    let batch = Batch::synthetic(a.batch, plan.sets.train.channels, a.res, 0);
    let views = trainer.upload_views(&batch);
    let mut peak = DevicePeak::default();
    let t0 = Instant::now();
    trainer
        .step_views(views.clone(), &batch.ids)?
        .into_scalar::<f32>();
    let first_step_s = t0.elapsed().as_secs_f64();
    peak.sample(device);
    for _ in 0..a.warmup {
        trainer.step_views(views.clone(), &batch.ids)?;
    }
    trainer
        .step_views(views.clone(), &batch.ids)?
        .into_scalar::<f32>();
    peak.sample(device);
    let t = Instant::now();
    let mut last = None;
    for _ in 0..a.steps {
        last = Some(trainer.step_views(views.clone(), &batch.ids)?);
    }
    if let Some(l) = last {
        l.into_scalar::<f32>();
    }
    let secs = t.elapsed().as_secs_f64();
    peak.sample(device);

    if a.step_only {
        return Ok(StepTiming::steps_only(a, secs, first_step_s, peak.mb()));
    }
    // The step's bookkeeping on its own.
    let reps = a.steps.max(3);
    let ema_ms = per_call_ms(
        reps,
        &mut trainer,
        |t| t.update_key_encoder(0.99),
        |t| {
            std::hint::black_box(parameters(t.key()));
        },
    );
    let keys = Tensor::<2>::ones([a.batch, 128], trainer.device()).detach();
    let enqueue_ms = per_call_ms(
        reps,
        &mut trainer.queue().clone(),
        |q| q.enqueue(keys.clone(), &[]),
        |q| {
            q.keys.clone().sum().into_scalar::<f32>();
        },
    );
    Ok(StepTiming {
        images_per_s: (a.steps * a.batch) as f64 / secs,
        step_ms: 1000.0 * secs / a.steps as f64,
        first_step_s,
        ema_ms,
        enqueue_ms,
        device_peak_mb: peak.mb(),
    })
}

/// Data-parallel steps on `devices` devices of `backend`: a host batch each step (its shards
/// uploaded by each replica), timed after warm-up.
fn time_devices(
    plan: &Plan,
    backend: BackendKind,
    devices: usize,
    a: &BenchArgs,
) -> Result<StepTiming> {
    let mut spec = plan.spec.clone();
    spec.backend = backend;
    spec.devices = devices;
    spec.bn_splits = 1;
    let plan = plan.with_spec(spec)?;
    let mut session = plan.session(&plan.device())?;
    let batch = Batch::synthetic(a.batch, plan.sets.train.channels, a.res, 0);
    let step = |session: &mut Session| -> Result<Tensor<1>> { Ok(session.step_batch(&batch)?) };
    let t0 = Instant::now();
    step(&mut session)?.into_scalar::<f32>();
    let first_step_s = t0.elapsed().as_secs_f64();
    for _ in 0..a.warmup {
        step(&mut session)?;
    }
    step(&mut session)?.into_scalar::<f32>();
    let t = Instant::now();
    let mut last = None;
    for _ in 0..a.steps {
        last = Some(step(&mut session)?);
    }
    if let Some(l) = last {
        l.into_scalar::<f32>();
    }
    let secs = t.elapsed().as_secs_f64();
    let mut peak = DevicePeak::default();
    for d in plan.devices() {
        peak.sample(&d);
    }
    Ok(StepTiming::steps_only(a, secs, first_step_s, peak.mb()))
}

/// Views alone through the pipeline `on`, then real data through it into training steps:
/// (augment images/s, end-to-end images/s).
fn time_end_to_end(plan: &Plan, device: &Device, on: AugmentOn) -> Result<(f64, f64)> {
    let (ds, aug, lc) = (&plan.sets.train, &plan.aug, &plan.loader);
    let trainer = Trainer::new(plan.config.clone(), device, plan.steps_per_epoch)?;
    let (feed, augment_images_per_s) = match on {
        AugmentOn::Cpu => {
            let t = Instant::now();
            let mut seen = 0;
            for b in Loader::epoch(ds.clone(), aug.clone(), lc.clone(), 0) {
                seen += b?.len();
            }
            (Feed::Host, seen as f64 / t.elapsed().as_secs_f64())
        }
        AugmentOn::Device => {
            let images = Arc::new(DeviceImages::upload(ds, trainer.device())?);
            let needed = trainer.views_needed();
            let pass = |images: &Arc<DeviceImages>| {
                let mut seen = 0;
                let mut last = None;
                for b in DeviceEpoch::new(images.clone(), aug.clone(), lc.clone(), 0, needed) {
                    seen += b.len();
                    last = b.views.into_iter().filter_map(|(_, v)| v).last();
                }
                if let Some(v) = last {
                    v.sum().into_scalar::<f32>();
                }
                seen
            };
            // The first pass compiles the kernels: time the second.
            pass(&images);
            let t = Instant::now();
            let seen = pass(&images);
            (
                Feed::Device(images),
                seen as f64 / t.elapsed().as_secs_f64(),
            )
        }
    };
    let mut session = Session::new(trainer, ds.clone(), aug.clone(), lc.clone(), feed);
    session.read_loss = ReadLoss::Every(0);
    // One untimed step compiles whatever the real batch shapes need, then one timed epoch.
    fit_epoch(&mut session, Some(1), &mut |_| true)?;
    let s = fit_epoch(&mut session, None, &mut |_| true)?;
    Ok((augment_images_per_s, s.images_per_s()))
}

fn print_table(rows: &[Row]) {
    let Some(reference) = rows.first().map(|r| r.images_per_s) else {
        return;
    };
    println!(
        "| backend | conv | devices | augment on | precision | method | backbone | res | batch | images/s (step) | vs first row | step ms | first step s | EMA ms | enqueue ms | augment images/s | end-to-end images/s | end-to-end / step | peak RSS MB | peak device MB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.2}x | {:.1} | {:.2} | {:.2} | {:.3} | {:.1} | {:.1} | {:.2} | {:.0} | {} |",
            r.backend,
            r.conv,
            r.devices,
            r.augment_on,
            r.precision,
            r.method,
            r.backbone,
            r.res,
            r.batch,
            r.images_per_s,
            r.images_per_s / reference,
            r.step_ms,
            r.first_step_s,
            r.ema_ms,
            r.enqueue_ms,
            r.augment_images_per_s,
            r.end_to_end_images_per_s,
            r.end_to_end_vs_step,
            r.peak_rss_mb,
            r.device_peak_mb
                .map_or_else(|| "-".to_string(), |m| format!("{m:.0}")),
        );
    }
}

pub fn run(a: BenchArgs) -> Result<()> {
    if a.steps == 0 {
        bail!("--steps 0: a rate needs at least one timed step");
    }
    if !(2..=65536).contains(&a.batch) {
        bail!(
            "--batch {}: between 2 and 65536 (BatchNorm needs 2)",
            a.batch
        );
    }
    if !(1..=100_000).contains(&a.e2e_batches) {
        bail!("--e2e-batches {}: between 1 and 100000", a.e2e_batches);
    }
    if let Some(out) = &a.out {
        destination::check(
            out,
            OutputKind::BenchRows,
            a.overwrite,
            &[Input::data(&a.data)],
        )?;
    }
    let plan = Plan::with_sets(spec(&a), Sets::train_only(open_data(&a)?))?;
    if !a.devices.is_empty() {
        return finish(&a, &device_rows(&plan, &a)?);
    }
    let mut rows: Vec<Row> = Vec::new();
    for &backend in &a.backends {
        backend.available()?;
        let device = backend.device_with(a.precision)?;
        // Other backends have one convolution: one row however many are asked for.
        let mut convs: Vec<ConvArg> = a.conv.clone();
        convs.dedup_by_key(|c| c.name(backend));
        for conv in convs {
            conv.set();
            rows.extend(backend_rows(&a, &plan, backend, &device)?);
        }
    }
    finish(&a, &rows)
}

/// The rows of one backend (and convolution): the step, then each view pipeline end to end.
fn backend_rows(
    a: &BenchArgs,
    plan: &Plan,
    backend: BackendKind,
    device: &Device,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let step = match a.profile_inline {
        false => time_steps(plan, device, a)?,
        true => rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()?
            .install(|| time_steps(plan, device, a))?,
    };
    let pipelines = match a.step_only {
        true => &[][..],
        false => &a.augment_on[..],
    };
    for on in pipelines
        .iter()
        .map(Some)
        .chain(a.step_only.then_some(None))
    {
        let (augment_images_per_s, end_to_end_images_per_s) = match on {
            Some(&on) => time_end_to_end(plan, device, on)?,
            None => (f64::NAN, f64::NAN),
        };
        let augment_on = on.map_or("none".into(), ToString::to_string);
        let mut row = Row::of(a, plan, backend, 1, augment_on, &step);
        row.augment_images_per_s = augment_images_per_s;
        row.end_to_end_images_per_s = end_to_end_images_per_s;
        row.end_to_end_vs_step = end_to_end_images_per_s / step.images_per_s;
        if a.json {
            println!("{}", serde_json::to_string(&row)?);
        }
        rows.push(row);
    }
    Ok(rows)
}

/// A row per backend and device count: data-parallel steps on host batches.
fn device_rows(plan: &Plan, a: &BenchArgs) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &backend in &a.backends {
        backend.available()?;
        for &d in &a.devices {
            let step = time_devices(plan, backend, d, a)?;
            let row = Row::of(a, plan, backend, d, "host batch".into(), &step);
            if a.json {
                println!("{}", serde_json::to_string(&row)?);
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

fn finish(a: &BenchArgs, rows: &[Row]) -> Result<()> {
    if let Some(path) = &a.out {
        // Beside it first, then renamed: a failed write leaves the old rows whole.
        let tmp = destination::scratch_beside(path, "bench");
        std::fs::write(&tmp, serde_json::to_string_pretty(rows)?)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                leoclr_core::Error::io(path, e)
            })?;
    }
    if !a.json {
        print_table(rows);
    }
    Ok(())
}

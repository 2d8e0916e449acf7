//! `leoclr train`: opens or resumes a run, trains it with a progress bar, and reports kNN of the
//! trained backbone beside the same backbone at random initialisation.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use leoclr_core::encoder::Encoder;
use leoclr_core::run::{Control, Existing, Outcome, ResumeChanges, Run, RunSpec};

/// `leoclr train`: every setting of a run (see `RunSpec`, where the defaults live), plus how to
/// drive it.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub spec: RunSpec,
    /// Continue the run in this directory (or checkpoint file) from its last checkpoint, with its
    /// recorded settings; --epochs (more, to extend it), --data, --test-data, --bank-data,
    /// --workers, --eval-every, --backend and --devices may change.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Replace a run already in --out (by default a new run refuses such a directory).
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Skip the random-initialisation baseline evaluation at the end.
    #[arg(long)]
    pub no_baseline: bool,
    /// Stop after this many steps (for smoke tests and benchmarks); the schedule is unchanged.
    #[arg(long, hide = true)]
    pub max_steps: Option<usize>,
}

/// The command line as text, for the checkpoint's provenance (lossy where it is not UTF-8).
pub fn argv() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// The settings a resumed run may change (the ids of `ResumeChanges`' fields), and the flags
/// that only say how to drive the command.
const RESUME_MAY_CHANGE: [&str; 8] = [
    "epochs",
    "data",
    "test_data",
    "bank_data",
    "workers",
    "eval_every",
    "backend",
    "devices",
];
const DRIVING: [&str; 3] = ["resume", "no_baseline", "max_steps"];

/// The changes a resume takes from the flags given; any other setting is refused by name.
fn resume_changes(a: &TrainArgs, given: &[String]) -> Result<ResumeChanges> {
    if let Some(id) = given
        .iter()
        .find(|id| !RESUME_MAY_CHANGE.contains(&id.as_str()) && !DRIVING.contains(&id.as_str()))
    {
        bail!(
            "--{} cannot change when resuming: the run keeps its recorded method, model, batch, \
             learning rate, queue, temperature, momentum, augmentation, seed and directory (a \
             resume may change --epochs, --data, --test-data, --bank-data, --workers, \
             --eval-every, --backend and --devices)",
            id.replace('_', "-")
        );
    }
    let has = |id: &str| given.iter().any(|g| g == id);
    let s = &a.spec;
    Ok(ResumeChanges {
        epochs: has("epochs").then_some(s.epochs),
        data: has("data").then(|| s.data.data.clone()),
        test_data: s.data.test_data.clone(),
        bank_data: s.data.bank_data.clone(),
        workers: s.data.workers,
        eval_every: has("eval_every").then_some(s.eval_every),
        backend: has("backend").then_some(s.backend),
        devices: has("devices").then_some(s.devices),
    })
}

fn open(a: &TrainArgs, given: &[String]) -> Result<Run> {
    let Some(dir) = &a.resume else {
        let mut run = Run::create(a.spec.clone(), Some(argv()))?;
        if a.overwrite {
            run.existing = Existing::Replace;
        }
        return Ok(run);
    };
    let run = Run::resume_with(dir, &resume_changes(a, given)?)?;
    let t = run.trainer();
    println!(
        "resuming {} at epoch {}/{} (step {}), with its recorded settings",
        dir.display(),
        t.epoch(),
        t.config().epochs,
        t.step_count()
    );
    Ok(run)
}

fn print_summary(run: &Run) {
    let (train, t) = (&run.plan.sets.train, run.trainer());
    println!(
        "{} on {} ({} images, {}x{}x{}), {:?} backbone, {} params, backend {}{}, {} epochs of {} steps",
        run.spec().model.label(),
        train.name,
        train.len(),
        train.channels,
        run.plan.view_size,
        run.plan.view_size,
        t.config().model.backbone,
        burn::module::Module::num_params(t.online()),
        run.spec().backend,
        match run.session.devices() {
            1 => String::new(),
            n => format!(" on {n} devices"),
        },
        t.config().epochs,
        t.steps_per_epoch()
    );
}

/// Trains with a progress bar per epoch and a line per finished epoch; the last epoch's kNN.
fn train(run: &mut Run, max_steps: Option<usize>) -> Result<(Outcome, Option<f32>)> {
    let mut bars = crate::progress::RunBars::new("");
    let outcome = run.train(&Control::default(), max_steps, &mut |ev| bars.on_event(&ev));
    Ok((outcome?, bars.last_knn))
}

/// kNN of the trained backbone (and of the random-init one unless `no_baseline`) into
/// `final.json`.
fn final_report(run: &Run, last_knn: Option<f32>, no_baseline: bool) -> Result<()> {
    let (Some(bank), Some(test)) = (&run.plan.sets.bank, &run.plan.sets.test) else {
        println!("no labelled test data: skipped kNN (give --test-data and --bank-data)");
        return Ok(());
    };
    let knn = |enc: &Encoder| -> Result<f32> {
        Ok(run
            .knn(enc, &mut |_, _, _| {})?
            .map_or(f32::NAN, |s| s.knn_top1))
    };
    // The last epoch was just scored; a resumed run that had already finished scores now.
    let trained = match last_knn {
        Some(k) => k,
        None => knn(run.trainer().online())?,
    };
    let report = if no_baseline {
        serde_json::json!({"knn_top1": trained})
    } else {
        let cfg = run.trainer().config();
        let random = Encoder::init_seeded(&cfg.model, cfg.seed, &run.device);
        let base = knn(&random)?;
        println!();
        println!(
            "kNN top-1 (k=200, T=0.1) on {} test images, bank of {}:",
            test.len(),
            bank.len()
        );
        println!("  random init : {:6.2}%", 100.0 * base);
        println!(
            "  trained     : {:6.2}%  ({} epochs of {})",
            100.0 * trained,
            cfg.epochs,
            cfg.method.label()
        );
        serde_json::json!({"knn_top1": trained, "random_init_knn_top1": base})
    };
    std::fs::write(
        run.dir().join("final.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    Ok(())
}

/// `given`: the ids of the flags given on the command line (a resume refuses most of them).
pub fn run(a: TrainArgs, given: &[String]) -> Result<()> {
    let mut run = open(&a, given)?;
    print_summary(&run);
    let run_start = Instant::now();
    let (outcome, last_knn) = train(&mut run, a.max_steps)?;
    if let Outcome::Stopped { steps } = outcome {
        println!(
            "{} (--max-steps)",
            leoclr_core::run::stopped_note(steps, run.dir())
        );
        return Ok(());
    }
    println!(
        "trained in {:.1} s; run directory {}",
        run_start.elapsed().as_secs_f64(),
        run.dir().display()
    );
    final_report(&run, last_knn, a.no_baseline)
}

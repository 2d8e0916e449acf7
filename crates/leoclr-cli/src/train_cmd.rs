use std::time::Instant;

use anyhow::Result;
use leoclr_core::encoder::Encoder;
use leoclr_core::run::{Control, Outcome, Run, RunEvent, RunSpec};

use crate::args::TrainArgs;

impl From<&TrainArgs> for RunSpec {
    fn from(a: &TrainArgs) -> Self {
        Self {
            data: (&a.data).into(),
            method: a.model.method.clone(),
            original_branch: a.model.original_branch,
            backbone: a.model.backbone,
            small_stem: a.model.small_stem,
            epochs: a.epochs,
            batch: a.batch,
            lr: a.lr,
            warmup_epochs: a.warmup_epochs,
            weight_decay: a.weight_decay,
            queue: a.queue,
            temperature: a.temperature,
            momentum: a.momentum,
            momentum_cosine: a.momentum_cosine,
            head_dim: a.head_dim,
            aug: a.aug.clone(),
            seed: a.seed,
            backend: a.backend,
            out: a.out.clone(),
            eval_every: a.eval_every,
            augment_on: a.augment_on,
        }
    }
}

pub fn run(a: TrainArgs) -> Result<()> {
    let mut run = match &a.resume {
        Some(dir) => {
            let run = Run::resume(dir)?;
            println!(
                "resuming {} at epoch {}/{} (step {})",
                dir.display(),
                run.trainer.epoch,
                run.trainer.config.epochs,
                run.trainer.step
            );
            run
        }
        None => Run::create((&a).into(), Some(std::env::args().collect()))?,
    };
    let (train, t) = (&run.sets.train, &run.trainer);
    println!(
        "{} on {} ({} images, {}x{}x{}), {:?} backbone, {} params, backend {}, {} epochs of {} steps",
        t.config.method.label(),
        train.name,
        train.len(),
        train.channels,
        run.view_size,
        run.view_size,
        t.config.model.backbone,
        burn::module::Module::num_params(&t.online),
        run.spec.backend,
        t.config.epochs,
        t.steps_per_epoch
    );

    let run_start = Instant::now();
    let epochs = run.trainer.config.epochs;
    let steps_per_epoch = run.trainer.steps_per_epoch;
    let new_bar = |epoch: usize| {
        crate::progress::bar(
            steps_per_epoch,
            format!("{}/{epochs}", epoch + 1),
            "epoch {prefix} [{bar:30}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}",
            false,
        )
    };
    let mut pb = new_bar(run.trainer.epoch);
    let mut last_knn = None;
    let outcome = run.train(&Control::default(), a.max_steps, &mut |ev| match ev {
        RunEvent::Step(e) => {
            pb.set_position(e.step_in_epoch as u64);
            if let Some(l) = e.loss {
                pb.set_message(format!(
                    "loss {l:.4} lr {:.4} {:.0} img/s",
                    e.lr, e.images_per_s
                ));
            }
        }
        RunEvent::Evaluating(what, done, total) => {
            pb.set_message(format!("kNN: embedding {what} {done}/{total}"));
        }
        RunEvent::Epoch(r) => {
            pb.finish_and_clear();
            println!(
                "epoch {}/{epochs}: loss {:.4}, lr {:.4}, {:.1} images/s{}",
                r.epoch,
                r.loss,
                r.lr,
                r.images_per_s,
                r.knn_top1
                    .map(|k| format!(", kNN top-1 {:.2}%", 100.0 * k))
                    .unwrap_or_default()
            );
            last_knn = r.knn_top1;
            pb = new_bar(r.epoch);
        }
    });
    pb.finish_and_clear();
    if let Outcome::Stopped { steps } = outcome? {
        println!(
            "stopped after {steps} steps (--max-steps); the last epoch's checkpoint in {} is kept",
            run.dir().display()
        );
        return Ok(());
    }
    println!(
        "trained in {:.1} s; run directory {}",
        run_start.elapsed().as_secs_f64(),
        run.dir().display()
    );

    let (Some(bank), Some(test)) = (&run.sets.bank, &run.sets.test) else {
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
        None => knn(&run.trainer.online)?,
    };
    let report = if a.no_baseline {
        serde_json::json!({"knn_top1": trained})
    } else {
        let cfg = &run.trainer.config;
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

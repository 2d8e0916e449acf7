use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use leoclr_core::checkpoint;
use leoclr_core::encoder::Encoder;
use leoclr_core::eval::embedding_std;
use leoclr_core::fit::fit_epoch;
use leoclr_core::{Method, ModelConfig, TrainConfig, Trainer};
use leoclr_data::{Dataset, Loader, LoaderConfig};
use std::sync::Arc;

use crate::args::{Cli, Command, TrainArgs};
use crate::eval_cmd::{EvalOptions, augment, evaluate, open_sets, view_size};

/// Re-parses the command line a run was started with (stored in its checkpoint), for --resume.
fn resumed_args(dir: &std::path::Path) -> Result<(TrainArgs, checkpoint::Meta)> {
    let (_, meta) = checkpoint::load_encoder(dir, &burn::tensor::Device::flex())
        .with_context(|| format!("cannot resume from {}", dir.display()))?;
    let argv: Vec<String> =
        serde_json::from_value(meta.extra["argv"].clone()).with_context(|| {
            format!(
                "{}: checkpoint does not record its command line",
                dir.display()
            )
        })?;
    match Cli::try_parse_from(&argv)?.command {
        Command::Train(mut a) => {
            a.resume = Some(dir.to_path_buf());
            a.out = dir.to_path_buf();
            Ok((a, meta))
        }
        _ => bail!(
            "{}: checkpoint was not written by `leoclr train`",
            dir.display()
        ),
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let (a, resume_meta) = match &args.resume {
        Some(dir) => {
            let (mut a, meta) = resumed_args(dir)?;
            a.max_steps = args.max_steps;
            (a, Some(meta))
        }
        None => (args, None),
    };
    let sets = open_sets(&a.data)?;
    let train = sets.train.clone();
    let size = view_size(&train, a.data.size)?;
    let aug = augment(train.channels, size, a.aug.as_deref())?;
    let method =
        Method::parse(&a.model.method, a.model.original_branch).map_err(anyhow::Error::msg)?;
    let mut model = ModelConfig::new(
        a.model.backbone,
        train.channels,
        a.model.small_stem.unwrap_or(size <= 64),
    );
    model.head_out = a.head_dim;
    let config = TrainConfig {
        model,
        method,
        epochs: a.epochs,
        batch_size: a.batch,
        lr: a.lr,
        warmup_epochs: a.warmup_epochs,
        weight_decay: a.weight_decay,
        sgd_momentum: 0.9,
        temperature: a.temperature,
        queue_size: a.queue,
        ema_momentum: a.momentum,
        ema_cosine: a.momentum_cosine,
        seed: a.seed,
    };
    config.validate()?;
    let mut loader = LoaderConfig::train(a.batch, a.seed);
    if let Some(w) = a.data.workers {
        loader.workers = w.max(1);
    }
    let steps_per_epoch = Loader::num_batches(train.len(), &loader);
    if steps_per_epoch == 0 {
        bail!(
            "{}: {} images are fewer than one batch",
            a.data.data.display(),
            train.len()
        );
    }
    let device = a.backend.device();
    let mut trainer = match &resume_meta {
        Some(_) => {
            let (t, meta) = checkpoint::load_trainer(a.out.as_path(), &device)?;
            println!(
                "resuming {} at epoch {}/{} (step {})",
                a.out.display(),
                meta.epoch,
                t.config.epochs,
                t.step
            );
            t
        }
        None => Trainer::new(config.clone(), &device, steps_per_epoch)?,
    };
    if trainer.steps_per_epoch != steps_per_epoch {
        bail!(
            "the dataset changed since the checkpoint ({} steps an epoch, now {steps_per_epoch})",
            trainer.steps_per_epoch
        );
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let argv: Vec<String> = std::env::args().collect();
    let argv = match &resume_meta {
        Some(m) => m.extra["argv"].clone(),
        None => serde_json::json!(argv),
    };
    let extra = serde_json::json!({
        "argv": argv,
        "augment": aug,
        "view_size": size,
        "backend": a.backend,
        "dataset": train.name,
    });
    if resume_meta.is_none() {
        let cfg_json = serde_json::to_string_pretty(
            &serde_json::json!({"train": trainer.config, "augment": aug, "backend": a.backend}),
        )?;
        std::fs::write(a.out.join("config.json"), cfg_json)?;
        // A new run starts a new metrics log.
        let _ = std::fs::remove_file(a.out.join("metrics.jsonl"));
    }
    println!(
        "{} on {} ({} images, {}x{}x{}), {:?} backbone, {} params, backend {}, {} epochs of {} steps",
        trainer.config.method.label(),
        train.name,
        train.len(),
        train.channels,
        size,
        size,
        trainer.config.model.backbone,
        burn::module::Module::num_params(&trainer.online),
        a.backend,
        trainer.config.epochs,
        steps_per_epoch
    );

    let aug = std::sync::Arc::new(aug);
    let run_start = Instant::now();
    let mut steps_this_run = 0usize;
    let mut last_scores = None;
    let knn = |enc: &Encoder, bank: &Arc<Dataset>, test: &Arc<Dataset>| {
        evaluate(enc, bank, test, &aug, &device, EvalOptions::knn_only())
    };
    while trainer.epoch < trainer.config.epochs {
        let epoch = trainer.epoch;
        let pb = crate::progress::bar(
            steps_per_epoch,
            format!("{}/{}", epoch + 1, trainer.config.epochs),
            "epoch {prefix} [{bar:30}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}",
            false,
        );
        let budget = a.max_steps.map(|m| m.saturating_sub(steps_this_run));
        if budget == Some(0) {
            println!("stopped after {steps_this_run} steps (--max-steps)");
            return Ok(());
        }
        let before = trainer.step;
        let stats = fit_epoch(&mut trainer, &train, &aug, &loader, budget, 10, &mut |e| {
            pb.set_position(e.step_in_epoch as u64);
            if let Some(l) = e.loss {
                pb.set_message(format!(
                    "loss {l:.4} lr {:.4} {:.0} img/s",
                    e.lr, e.images_per_s
                ));
            }
        })
        .map_err(|e| anyhow::anyhow!("{e}; the last checkpoint in {} is kept", a.out.display()))?;
        pb.finish_and_clear();
        steps_this_run += trainer.step - before;
        let (loss, lr, secs, images) = (stats.loss, stats.lr, stats.seconds, stats.images);
        if !stats.complete {
            println!("stopped after {steps_this_run} steps (--max-steps); loss {loss:.4}");
            return Ok(());
        }
        let mut line = serde_json::json!({
            "epoch": trainer.epoch,
            "loss": loss,
            "lr": lr,
            "ema_momentum": trainer.ema_momentum(),
            "images_per_s": images as f64 / secs,
            "epoch_s": secs,
            "step": trainer.step,
        });
        let last = trainer.epoch == trainer.config.epochs;
        let want_eval = last || (a.eval_every > 0 && trainer.epoch % a.eval_every == 0);
        if let (true, Some(bank), Some(test)) = (want_eval, &sets.bank, &sets.test) {
            let s = knn(&trainer.online, bank, test)?;
            line["knn_top1"] = s.knn_top1.into();
            line["embedding_std"] = embedding_std(&s.test_features).into();
            last_scores = Some(s);
        }
        checkpoint::save(&a.out, &trainer, extra.clone())?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(a.out.join("metrics.jsonl"))?;
        writeln!(f, "{line}")?;
        println!(
            "epoch {}/{}: loss {:.4}, lr {:.4}, {:.1} images/s{}",
            trainer.epoch,
            trainer.config.epochs,
            loss,
            lr,
            images as f64 / secs,
            line.get("knn_top1")
                .map(|k| format!(", kNN top-1 {:.2}%", 100.0 * k.as_f64().unwrap_or(0.0)))
                .unwrap_or_default()
        );
    }
    println!(
        "trained in {:.1} s; run directory {}",
        run_start.elapsed().as_secs_f64(),
        a.out.display()
    );

    if let (Some(bank), Some(test)) = (&sets.bank, &sets.test) {
        // The last epoch was just scored; a resumed run that had already finished scores now.
        let trained = match last_scores {
            Some(s) => s,
            None => knn(&trainer.online, bank, test)?,
        };
        let report = if a.no_baseline {
            serde_json::json!({"knn_top1": trained.knn_top1})
        } else {
            let random = Encoder::init_seeded(&trainer.config.model, trainer.config.seed, &device);
            let base = knn(&random, bank, test)?;
            println!();
            println!(
                "kNN top-1 (k=200, T=0.1) on {} test images, bank of {}:",
                test.len(),
                bank.len()
            );
            println!("  random init : {:6.2}%", 100.0 * base.knn_top1);
            println!(
                "  trained     : {:6.2}%  ({} epochs of {})",
                100.0 * trained.knn_top1,
                trainer.config.epochs,
                trainer.config.method.label()
            );
            serde_json::json!({"knn_top1": trained.knn_top1, "random_init_knn_top1": base.knn_top1})
        };
        std::fs::write(
            a.out.join("final.json"),
            serde_json::to_string_pretty(&report)?,
        )?;
    } else {
        println!("no labelled test data: skipped kNN (give --test-data and --bank-data)");
    }
    Ok(())
}

//! The epoch loop shared by the CLI, the comparison runner and the app: loads batches on
//! worker threads, steps the trainer, and reports progress through a callback instead of printing.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Tensor;
use leoclr_data::{AugmentConfig, Dataset, Loader, LoaderConfig};

use crate::trainer::Trainer;
use crate::{Error, Result};

/// What a step reports. `loss` is read from the device only every `log_every` steps.
#[derive(Clone, Debug)]
pub struct StepEvent {
    pub step: usize,
    pub step_in_epoch: usize,
    pub steps_per_epoch: usize,
    pub lr: f64,
    pub loss: Option<f32>,
    pub images_per_s: f64,
}

#[derive(Clone, Debug)]
pub struct EpochStats {
    /// 1-based number of the epoch just finished.
    pub epoch: usize,
    /// Mean loss over the epoch's steps.
    pub loss: f32,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    pub images: usize,
    pub seconds: f64,
    /// False when stopped early by `max_steps`.
    pub complete: bool,
}

impl EpochStats {
    pub fn images_per_s(&self) -> f64 {
        self.images as f64 / self.seconds.max(1e-9)
    }
}

/// Trains one epoch (the trainer's next one). Stops early after `max_steps` steps or when `on_step`
/// returns false, returning an incomplete epoch (the trainer's epoch counter then stays put).
pub fn fit_epoch(
    trainer: &mut Trainer,
    train: &Arc<Dataset>,
    aug: &Arc<AugmentConfig>,
    loader: &LoaderConfig,
    max_steps: Option<usize>,
    log_every: usize,
    on_step: &mut dyn FnMut(&StepEvent) -> bool,
) -> Result<EpochStats> {
    let epoch = trainer.epoch;
    let start = Instant::now();
    let mut images = 0usize;
    let mut steps = 0usize;
    let mut loss_sum: Option<Tensor<1>> = None;
    let mut lr = trainer.lr();
    for batch in Loader::epoch(train.clone(), aug.clone(), loader.clone(), epoch) {
        let batch = batch?;
        lr = trainer.lr();
        let loss = trainer.step(&batch)?;
        images += batch.len();
        steps += 1;
        loss_sum = Some(match loss_sum {
            Some(s) => s + loss.clone(),
            None => loss.clone(),
        });
        // Reading the loss synchronises with the device: only every few steps.
        let read = (log_every > 0 && trainer.step.is_multiple_of(log_every)) || steps == 1;
        let loss = read.then(|| loss.into_scalar::<f32>());
        if let Some(l) = loss.filter(|l| !l.is_finite()) {
            return Err(Error::Config(format!(
                "loss became {l} at step {} (learning rate {lr:.4} too high?)",
                trainer.step
            )));
        }
        let go_on = on_step(&StepEvent {
            step: trainer.step,
            step_in_epoch: steps,
            steps_per_epoch: trainer.steps_per_epoch,
            lr,
            loss,
            images_per_s: images as f64 / start.elapsed().as_secs_f64().max(1e-9),
        });
        if !go_on || max_steps.is_some_and(|m| steps >= m) {
            break;
        }
    }
    let loss = loss_sum
        .map(|s| s.into_scalar::<f32>() / steps.max(1) as f32)
        .unwrap_or(f32::NAN);
    let complete = steps == trainer.steps_per_epoch;
    if complete {
        trainer.epoch += 1;
    }
    Ok(EpochStats {
        epoch: epoch + 1,
        loss,
        lr,
        images,
        seconds: start.elapsed().as_secs_f64(),
        complete,
    })
}

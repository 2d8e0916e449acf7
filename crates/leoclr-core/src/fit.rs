//! The epoch loop shared by the CLI, the comparison runner and the app: loads batches on
//! worker threads, steps the trainer, and reports progress through a callback instead of printing.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Tensor;
use leoclr_data::{AugmentConfig, Dataset, Loader, LoaderConfig};

use crate::augment_device::{DeviceBatch, DeviceEpoch, DeviceImages};
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

/// Where a step's views are made.
#[derive(Clone, Default)]
pub enum Feed {
    /// The CPU loader on worker threads (any dataset); views are uploaded each step.
    #[default]
    Host,
    /// On the training device from a resident copy of the dataset ([`DeviceImages`]): no pixels
    /// cross to the device during training.
    Device(Arc<DeviceImages>),
}

enum Fed {
    Host(leoclr_data::Batch),
    Device(Box<DeviceBatch>),
}

/// Trains one epoch (the trainer's next one). Stops early after `max_steps` steps or when `on_step`
/// returns false, returning an incomplete epoch (the trainer's epoch counter then stays put).
// The data side (dataset, augmentation, loader, feed) and the stopping side are each one concern;
// bundling them into structs would only move the argument list.
#[allow(clippy::too_many_arguments)]
pub fn fit_epoch(
    trainer: &mut Trainer,
    train: &Arc<Dataset>,
    aug: &Arc<AugmentConfig>,
    loader: &LoaderConfig,
    feed: &Feed,
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
    let batches: Box<dyn Iterator<Item = Result<Fed>>> = match feed {
        Feed::Host => Box::new(
            Loader::epoch(train.clone(), aug.clone(), loader.clone(), epoch)
                .map(|b| b.map(Fed::Host).map_err(Error::from)),
        ),
        Feed::Device(images) => Box::new(
            DeviceEpoch::new(
                images.clone(),
                aug.clone(),
                loader.clone(),
                epoch,
                trainer.views_needed(),
            )
            .map(|b| Ok(Fed::Device(Box::new(b)))),
        ),
    };
    for fed in batches {
        lr = trainer.lr();
        let (n, loss) = match fed? {
            Fed::Host(b) => (b.len(), trainer.step(&b)?),
            Fed::Device(b) => (b.len(), trainer.step_views(b.views)?),
        };
        images += n;
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

//! A trainer with its data, stepped one batch at a time: the epoch bookkeeping (which batches,
//! the mean loss, throughput, when an epoch is complete) that every driver shares. `leoclr train`
//! and the app drive it through [`fit_epoch`]; the browser steps it once per frame.

use std::sync::Arc;

use burn::tensor::Tensor;
use leoclr_data::{AugmentConfig, Dataset, Loader, LoaderConfig};
use web_time::Instant;

use crate::augment_device::{DeviceBatch, DeviceEpoch, DeviceImages};
use crate::parallel::Replicas;
use crate::trainer::Trainer;
use crate::{Error, Result};

/// What a step reports. `loss` is read from the device only as [`ReadLoss`] says.
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
    /// Mean loss over the epoch's steps (NaN when the session never reads losses).
    pub loss: f32,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    pub images: usize,
    pub seconds: f64,
    /// False when stopped before its last batch.
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

/// When the session reads the loss back from the device (a synchronisation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadLoss {
    /// On an epoch's first step and on every step number divisible by `n` (0: the first only).
    /// A non-finite value stops training with [`Error::Diverged`].
    Every(usize),
    /// Never: the caller reads [`Session::take_loss`] itself (asynchronously, in a browser).
    Never,
}

enum Fed {
    Host(leoclr_data::Batch),
    Device(Box<DeviceBatch>),
}

/// The epoch under way.
struct EpochProgress {
    batches: Box<dyn Iterator<Item = Result<Fed>>>,
    start: Instant,
    images: usize,
    steps: usize,
    loss_sum: Option<Tensor<1>>,
    lr: f64,
}

pub struct Session {
    pub trainer: Trainer,
    train: Arc<Dataset>,
    aug: Arc<AugmentConfig>,
    loader: LoaderConfig,
    feed: Feed,
    pub read_loss: ReadLoss,
    epoch: Option<EpochProgress>,
    last_loss: Option<Tensor<1>>,
    /// Data-parallel training: the replicas beside `trainer` (replica 0), or none.
    replicas: Option<Replicas>,
}

impl Session {
    pub fn new(
        trainer: Trainer,
        train: Arc<Dataset>,
        aug: Arc<AugmentConfig>,
        loader: LoaderConfig,
        feed: Feed,
    ) -> Self {
        Self {
            trainer,
            train,
            aug,
            loader,
            feed,
            read_loss: ReadLoss::Every(10),
            epoch: None,
            last_loss: None,
            replicas: None,
        }
    }

    /// Trains data-parallel with these replicas beside the session's trainer (views from the
    /// CPU loader only: a device feed holds the dataset on one device).
    pub fn with_replicas(mut self, replicas: Replicas) -> Result<Self> {
        if matches!(self.feed, Feed::Device(_)) {
            return Err(Error::Config(
                "training on several devices makes its views on the CPU (--augment-on cpu)".into(),
            ));
        }
        self.replicas = Some(replicas);
        Ok(self)
    }

    /// How many devices train (1 without replicas).
    pub fn devices(&self) -> usize {
        self.replicas.as_ref().map_or(1, Replicas::count)
    }

    pub fn dataset(&self) -> &Arc<Dataset> {
        &self.train
    }

    pub fn augment(&self) -> &Arc<AugmentConfig> {
        &self.aug
    }

    /// Fills the queue with keys of `batches` real batches before the first step (see
    /// [`Trainer::warm_queue`]); draws them from a data stream no epoch uses.
    pub fn warm_queue(&mut self, batches: usize) -> Result<()> {
        let per_epoch = self.trainer.steps_per_epoch();
        for i in 0..batches.min(per_epoch) {
            let b = Loader::batch(&self.train, &self.aug, &self.loader, usize::MAX, i)?;
            self.trainer.warm_queue(&b);
        }
        if let Some(r) = &mut self.replicas {
            r.copy_queue(&self.trainer);
        }
        Ok(())
    }

    fn begin_epoch(&self) -> EpochProgress {
        let epoch = self.trainer.epoch();
        let batches: Box<dyn Iterator<Item = Result<Fed>>> = match &self.feed {
            Feed::Host => Box::new(
                Loader::epoch(
                    self.train.clone(),
                    self.aug.clone(),
                    self.loader.clone(),
                    epoch,
                )
                .map(|b| b.map(Fed::Host).map_err(Error::from)),
            ),
            Feed::Device(images) => Box::new(
                DeviceEpoch::new(
                    images.clone(),
                    self.aug.clone(),
                    self.loader.clone(),
                    epoch,
                    self.trainer.views_needed(),
                )
                .map(|b| Ok(Fed::Device(Box::new(b)))),
            ),
        };
        EpochProgress {
            batches,
            start: Instant::now(),
            images: 0,
            steps: 0,
            loss_sum: None,
            lr: self.trainer.lr(),
        }
    }

    /// Trains on the next batch of the current epoch (starting the trainer's next epoch if none
    /// is under way). `None` when the epoch has no batch left: call [`Session::end_epoch`].
    pub fn step(&mut self) -> Result<Option<StepEvent>> {
        if self.epoch.is_none() {
            self.epoch = Some(self.begin_epoch());
        }
        let (Some(ep), t) = (self.epoch.as_mut(), &mut self.trainer) else {
            return Ok(None);
        };
        let Some(fed) = ep.batches.next() else {
            return Ok(None);
        };
        let lr = t.lr();
        ep.lr = lr;
        let (n, loss) = match (fed?, self.replicas.as_mut()) {
            (Fed::Host(b), Some(r)) => (b.len(), r.step(t, &b)?),
            (Fed::Host(b), None) => (b.len(), t.step(&b)?),
            (Fed::Device(b), _) => {
                let n = b.len();
                (n, t.step_views(b.views, &b.ids)?)
            }
        };
        ep.images += n;
        ep.steps += 1;
        let read = match self.read_loss {
            ReadLoss::Every(every) => {
                (every > 0 && t.step_count().is_multiple_of(every)) || ep.steps == 1
            }
            ReadLoss::Never => false,
        };
        if self.read_loss != ReadLoss::Never {
            ep.loss_sum = Some(match ep.loss_sum.take() {
                Some(s) => s + loss.clone(),
                None => loss.clone(),
            });
        }
        // Reading the loss synchronises with the device: only every few steps.
        let value = read.then(|| loss.clone().into_scalar::<f32>());
        if let Some(l) = value.filter(|l| !l.is_finite()) {
            return Err(Error::Diverged {
                step: t.step_count(),
                loss: l,
                lr,
            });
        }
        self.last_loss = Some(loss);
        Ok(Some(StepEvent {
            step: t.step_count(),
            step_in_epoch: ep.steps,
            steps_per_epoch: t.steps_per_epoch(),
            lr,
            loss: value,
            images_per_s: ep.images as f64 / ep.start.elapsed().as_secs_f64().max(1e-9),
        }))
    }

    /// One optimisation step on a given host batch, outside any epoch (benchmarks): on every
    /// replica when the session has them.
    pub fn step_batch(&mut self, batch: &leoclr_data::Batch) -> Result<Tensor<1>> {
        match self.replicas.as_mut() {
            Some(r) => r.step(&mut self.trainer, batch),
            None => self.trainer.step(batch),
        }
    }

    /// The last step's loss as a device tensor, for a caller that reads it itself.
    pub fn take_loss(&mut self) -> Option<Tensor<1>> {
        self.last_loss.take()
    }

    /// Closes the epoch under way (stopping its loader threads): its summary, and the trainer's
    /// epoch counter moves on if every batch was trained. The next step restarts an incomplete
    /// epoch from its first batch (data randomness is seeded per epoch).
    pub fn end_epoch(&mut self) -> EpochStats {
        let epoch = self.trainer.epoch();
        let Some(ep) = self.epoch.take() else {
            return EpochStats {
                epoch: epoch + 1,
                loss: f32::NAN,
                lr: self.trainer.lr(),
                images: 0,
                seconds: 0.0,
                complete: false,
            };
        };
        let steps = ep.steps;
        let loss = ep
            .loss_sum
            .map(|s| s.into_scalar::<f32>() / steps.max(1) as f32)
            .unwrap_or(f32::NAN);
        let complete = steps == self.trainer.steps_per_epoch();
        if complete {
            self.trainer.end_epoch();
            if let Some(r) = &mut self.replicas {
                r.end_epoch();
            }
        }
        EpochStats {
            epoch: epoch + 1,
            loss,
            lr: ep.lr,
            images: ep.images,
            seconds: ep.start.elapsed().as_secs_f64(),
            complete,
        }
    }
}

/// Trains the session's next epoch. Stops early after `max_steps` steps or when `on_step`
/// returns false, returning an incomplete epoch (the trainer's epoch counter then stays put).
pub fn fit_epoch(
    session: &mut Session,
    max_steps: Option<usize>,
    on_step: &mut dyn FnMut(&StepEvent) -> bool,
) -> Result<EpochStats> {
    let mut steps = 0usize;
    while let Some(e) = session.step()? {
        steps += 1;
        if !on_step(&e) || max_steps.is_some_and(|m| steps >= m) {
            break;
        }
    }
    Ok(session.end_epoch())
}

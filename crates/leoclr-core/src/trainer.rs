//! One training step of LeOCLR or MoCo-v2: EMA update, keys, queries, loss, SGD, enqueue.

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor, TensorData};
use leoclr_data::Batch;

use crate::config::TrainConfig;
use crate::ema::ema_update;
use crate::encoder::Encoder;
use crate::loss::{objective, views_needed};
use crate::queue::KeyQueue;
use crate::schedule::{cosine_lr, ema_momentum};
use crate::{Error, Result};

pub struct Trainer {
    pub config: TrainConfig,
    /// The autodiff device everything trains on.
    pub device: Device,
    pub online: Encoder,
    pub key: Encoder,
    pub(crate) optim: ModuleOptimizer,
    pub queue: KeyQueue,
    /// Optimiser steps taken so far.
    pub step: usize,
    /// Epochs completed.
    pub epoch: usize,
    pub steps_per_epoch: usize,
}

/// PyTorch's SGD (dampening 0; burn's default is 0.1) with coupled weight decay, as in MoCo.
pub fn sgd(cfg: &TrainConfig) -> ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(MomentumConfig {
            momentum: cfg.sgd_momentum,
            dampening: 0.0,
            nesterov: false,
        }))
        .with_weight_decay(
            (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32)),
        )
        .init()
}

impl Trainer {
    /// A fresh run: seeded online encoder, key encoder as its copy (not a `clone()`, which would
    /// share BatchNorm state), random unit queue.
    pub fn new(config: TrainConfig, device: &Device, steps_per_epoch: usize) -> Result<Self> {
        config.validate()?;
        if steps_per_epoch == 0 {
            return Err(Error::Config(
                "an epoch of zero steps (dataset smaller than 2 images?)".into(),
            ));
        }
        let device = device.clone().autodiff();
        let online = Encoder::init_seeded(&config.model, config.seed, &device);
        let key = Self::key_copy(&online, &config, &device);
        let queue = KeyQueue::random(
            config.queue_size,
            config.model.head_out,
            config.seed,
            &device,
        );
        Ok(Self {
            optim: sgd(&config),
            config,
            device,
            online,
            key,
            queue,
            step: 0,
            epoch: 0,
            steps_per_epoch,
        })
    }

    pub(crate) fn key_copy(online: &Encoder, config: &TrainConfig, device: &Device) -> Encoder {
        crate::ema::copy_values(Encoder::new(&config.model, device), online).no_grad()
    }

    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch * self.config.epochs
    }

    /// Learning rate of the next step.
    pub fn lr(&self) -> f64 {
        let warmup = (self.config.warmup_epochs * self.steps_per_epoch as f64).round() as usize;
        cosine_lr(self.config.lr, self.step, self.total_steps(), warmup)
    }

    /// EMA momentum of the next step.
    pub fn ema_momentum(&self) -> f64 {
        ema_momentum(
            self.config.ema_momentum,
            self.step,
            self.total_steps(),
            self.config.ema_cosine,
        )
    }

    fn view(&self, batch: &Batch, i: usize) -> Tensor<4> {
        let data = match i {
            0 => &batch.crops[0],
            1 => &batch.crops[1],
            _ => &batch.original,
        };
        Tensor::from_data(TensorData::new(data.clone(), batch.shape()), &self.device)
    }

    /// Fills the queue with keys of real images (the key encoder on the originals) instead of the
    /// random unit vectors it starts with. With random negatives the loss starts low and climbs
    /// while real keys replace them; after this it is comparable from the first step (what a live
    /// curve of a short run needs). Changes no weights.
    pub fn warm_queue(&mut self, batch: &Batch) {
        let keys = self.key.forward(self.view(batch, 2)).detach();
        self.queue.enqueue(keys);
    }

    /// One optimisation step on a host batch (views made by the CPU loader). Returns the loss as a
    /// device tensor: reading it is a host round-trip, so callers read it only when they log.
    pub fn step(&mut self, batch: &Batch) -> Result<Tensor<1>> {
        if batch.len() < 2 {
            return Err(Error::Config(
                "a training batch needs at least 2 images".into(),
            ));
        }
        if batch.crops[0].is_empty() {
            return Err(Error::Config(
                "training needs a batch built in train mode".into(),
            ));
        }
        let views = self.upload_views(batch);
        self.step_views(views)
    }

    /// The views of a host batch that the method reads, uploaded to the training device.
    pub fn upload_views(&self, batch: &Batch) -> [Option<Tensor<4>>; 3] {
        let needed = self.views_needed();
        [0, 1, 2].map(|i| needed[i].then(|| self.view(batch, i)))
    }

    /// Which of (crop 1, crop 2, original) the method reads.
    pub fn views_needed(&self) -> [bool; 3] {
        let (q, k) = views_needed(self.config.method);
        [0, 1, 2].map(|i| q.contains(&i) || k.contains(&i))
    }

    /// One optimisation step on views already on the device (crop 1, crop 2, original as
    /// normalised NCHW; only those in [`Self::views_needed`] are read).
    pub fn step_views(&mut self, views: [Option<Tensor<4>>; 3]) -> Result<Tensor<1>> {
        let needed = self.views_needed();
        let mut n = None;
        for i in 0..3 {
            match (&views[i], needed[i]) {
                (Some(v), _) => {
                    let b = v.dims()[0];
                    if n.is_some_and(|n| n != b) {
                        return Err(Error::Config("views of different batch sizes".into()));
                    }
                    n = Some(b);
                }
                (None, true) => {
                    return Err(Error::Config(format!(
                        "{} needs view {i} (crop 1, crop 2, original)",
                        self.config.method.label()
                    )));
                }
                (None, false) => {}
            }
        }
        if n.unwrap_or(0) < 2 {
            return Err(Error::Config(
                "a training batch needs at least 2 images".into(),
            ));
        }
        let m = self.ema_momentum();
        let lr = self.lr();
        self.key = ema_update(self.key.clone(), &self.online, m);

        let (q_views, k_views) = views_needed(self.config.method);
        let view = |i: usize| views[i].clone().expect("checked above");
        let mut k: [Option<Tensor<2>>; 3] = [None, None, None];
        for &i in k_views {
            k[i] = Some(self.key.forward(view(i)).detach());
        }
        let mut q: [Option<Tensor<2>>; 3] = [None, None, None];
        for &i in q_views {
            q[i] = Some(self.online.forward(view(i)));
        }
        let (loss, keys) = objective(
            self.config.method,
            &q,
            &k,
            &self.queue.keys,
            self.config.temperature,
        );
        let grads = GradientsParams::from_grads(loss.backward(), &self.online);
        self.online = self.optim.step(lr, self.online.clone(), grads);
        self.queue.enqueue(keys);
        self.step += 1;
        Ok(loss.detach())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Method, OriginalBranch};
    use crate::ema::parameters;
    use leoclr_data::{AugmentConfig, Dataset, DatasetSpec, Loader, LoaderConfig};

    fn toy_batch(n: usize, size: usize, seed: u64) -> Batch {
        Batch::synthetic(n, 1, size, seed)
    }

    fn tiny_config(method: Method) -> TrainConfig {
        TrainConfig {
            queue_size: 10,
            ..TrainConfig::tiny_test(1, method)
        }
    }

    /// LeOCLR (original through the key encoder), tiny, on the CPU, 4 steps an epoch.
    fn leoclr_trainer() -> Trainer {
        let method = Method::Leoclr {
            original_branch: OriginalBranch::Key,
        };
        Trainer::new(tiny_config(method), &Device::flex(), 4).unwrap()
    }

    #[test]
    fn key_encoder_gets_no_gradient_and_moves_by_the_ema_formula() {
        let mut t = leoclr_trainer();
        let batch = toy_batch(4, 12, 1);
        t.step(&batch).unwrap();
        // After one step the online encoder moved, the key still equals the initial weights (the EMA
        // ran before the step, when online == key).
        let k0 = parameters(&t.key);
        let q1 = parameters(&t.online);
        assert!(
            k0.iter().zip(&q1).any(|(a, b)| a != b),
            "online encoder did not move"
        );
        let m = t.ema_momentum();
        t.step(&batch).unwrap();
        let k1 = parameters(&t.key);
        for ((k0, q1), k1) in k0.iter().zip(&q1).zip(&k1) {
            for ((a, b), c) in k0.iter().zip(q1).zip(k1) {
                let want = m as f32 * a + (1.0 - m as f32) * b;
                assert!((want - c).abs() < 1e-5, "{want} vs {c}");
            }
        }
        // No key parameter requires grad: a backward through the key encoder yields no entry.
        let x = Tensor::<4>::ones([2, 1, 12, 12], &t.device);
        let out = t.key.forward(x.clone()).sum() + t.online.forward(x).sum();
        let grads = GradientsParams::from_grads(out.backward(), &t.key);
        assert_eq!(grads.len(), 0, "key encoder received gradients");
    }

    #[test]
    fn every_method_trains_and_short_batches_work() {
        let dev = Device::flex();
        for method in [
            Method::Leoclr {
                original_branch: OriginalBranch::Key,
            },
            Method::Leoclr {
                original_branch: OriginalBranch::Query,
            },
            Method::Mocov2 { symmetric: true },
            Method::Mocov2 { symmetric: false },
        ] {
            let mut t = Trainer::new(tiny_config(method), &dev, 3).unwrap();
            // 3 does not divide the queue of 10, and the last batch is short.
            for (i, n) in [3, 3, 2].into_iter().enumerate() {
                let loss = t
                    .step(&toy_batch(n, 12, i as u64))
                    .unwrap()
                    .into_scalar::<f32>();
                assert!(loss.is_finite() && loss > 0.0, "{method:?}: {loss}");
            }
            assert_eq!(t.step, 3);
        }
    }

    #[test]
    fn warm_queue_fills_keys_and_changes_no_weight() {
        let mut t = leoclr_trainer();
        let before = (
            crate::ema::parameters(&t.online),
            crate::ema::parameters(&t.key),
        );
        let random = t.queue.to_vec();
        t.warm_queue(&toy_batch(4, 12, 3));
        assert_eq!(t.queue.ptr, 4);
        let q = t.queue.to_vec();
        let dim = q.len() / t.queue.len();
        assert_ne!(q[..4 * dim], random[..4 * dim]);
        assert_eq!(q[4 * dim..], random[4 * dim..]);
        for row in q[..4 * dim].chunks_exact(dim) {
            let n: f32 = row.iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-4, "keys are unit length");
        }
        assert_eq!(before.0, crate::ema::parameters(&t.online));
        assert_eq!(before.1, crate::ema::parameters(&t.key));
        assert_eq!(t.step, 0);
    }

    #[test]
    fn same_seed_same_first_losses() {
        let dev = Device::flex();
        let run = || {
            let mut t =
                Trainer::new(tiny_config(Method::Mocov2 { symmetric: true }), &dev, 2).unwrap();
            (0..2)
                .map(|i| t.step(&toy_batch(4, 12, i)).unwrap().into_scalar::<f32>())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn loader_batches_feed_the_trainer() {
        let dir = tempfile::tempdir().unwrap();
        let imgs: Vec<u8> = (0..6 * 10 * 10).map(|i| (i * 13 % 255) as u8).collect();
        std::fs::write(
            dir.path().join("train-images-idx3-ubyte"),
            leoclr_data::idx::encode(&[6, 10, 10], &imgs),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            leoclr_data::idx::encode(&[6], &[0, 1, 2, 0, 1, 2]),
        )
        .unwrap();
        let ds = std::sync::Arc::new(
            Dataset::open(&DatasetSpec::new(dir.path(), leoclr_data::Split::Train)).unwrap(),
        );
        let aug = std::sync::Arc::new(AugmentConfig::small(8, 1));
        let mut t = Trainer::new(
            tiny_config(Method::Leoclr {
                original_branch: OriginalBranch::Key,
            }),
            &Device::flex(),
            2,
        )
        .unwrap();
        for b in Loader::epoch(ds, aug, LoaderConfig::train(3, 0), 0) {
            t.step(&b.unwrap()).unwrap();
        }
        assert_eq!(t.step, 2);
    }
}

//! The training state and its one step: EMA update, keys, queries, loss, SGD, enqueue. The
//! trainer owns every piece of the state (encoders, optimiser, queue, counters); other modules
//! read it through accessors and change it through its methods. Data-parallel training runs the
//! same step's phases on every replica (the `parallel` module).

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use leoclr_data::{Batch, Rng};

use crate::config::TrainConfig;
use crate::ema::ema_update;
use crate::encoder::Encoder;
use crate::method::{Encoded, Negatives, Objective, SameImage, ViewKind, Views, enqueued_ids};
use crate::queue::KeyQueue;
use crate::schedule::{cosine_lr, ema_momentum};
use crate::{Error, Result};

pub struct Trainer {
    config: TrainConfig,
    /// The autodiff device everything trains on.
    device: Device,
    online: Encoder,
    key: Encoder,
    optim: ModuleOptimizer,
    queue: KeyQueue,
    /// Optimiser steps taken so far.
    step: usize,
    /// Epochs completed.
    epoch: usize,
    steps_per_epoch: usize,
    /// The query encoder's BatchNorm over this many contiguous sub-batches (1: the whole batch):
    /// the single-device stand-in for the per-device query statistics of data-parallel training.
    query_splits: usize,
}

/// What a restored trainer is made of (a checkpoint's contents, on their device).
pub(crate) struct Parts {
    pub config: TrainConfig,
    pub device: Device,
    pub online: Encoder,
    pub key: Encoder,
    pub optim: ModuleOptimizer,
    pub queue: KeyQueue,
    pub step: usize,
    pub epoch: usize,
    pub steps_per_epoch: usize,
}

/// The schedule's values for the step about to be taken.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepPlan {
    pub lr: f64,
}
/// Contiguous shards `[n r / parts, n (r + 1) / parts)` of a batch of `n`, at most `n / 2` of them
/// so that each holds two images for its BatchNorm statistics: the query sub-batches of
/// data-parallel training (shard `r` on device `r`).
pub fn shards(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, (n / 2).max(1));
    (0..parts)
        .map(|r| n * r / parts..n * (r + 1) / parts)
        .collect()
}

/// Shuffle-BN's sub-batches for one key view: a seeded permutation of `0..n` cut into `splits`
/// contiguous groups whose sizes differ by at most one (MoCo's emulation needs `n` divisible by
/// the splits; a short last batch here is split as evenly as it goes, at most `n / 2` groups so
/// that every group has two images for its statistics).
pub fn bn_split_groups(
    n: usize,
    splits: usize,
    seed: u64,
    step: usize,
    view: ViewKind,
) -> Vec<Vec<usize>> {
    let splits = splits.clamp(1, (n / 2).max(1));
    let mut perm: Vec<usize> = (0..n).collect();
    Rng::derive(seed, &[0x5348_5546_424e, step as u64, view.seed()]).shuffle(&mut perm);
    (0..splits)
        .map(|g| perm[n * g / splits..n * (g + 1) / splits].to_vec())
        .collect()
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
        let query_splits = Self::query_splits_of(&config);
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
            query_splits,
        })
    }

    /// The query sub-batches a configuration asks for: `bn_splits` when it splits queries too.
    fn query_splits_of(config: &TrainConfig) -> usize {
        match config.bn_split_queries {
            true => config.bn_splits.max(1),
            false => 1,
        }
    }

    /// A trainer from restored parts (a checkpoint read back).
    pub(crate) fn restore(p: Parts) -> Self {
        let query_splits = Self::query_splits_of(&p.config);
        Self {
            config: p.config,
            device: p.device,
            online: p.online,
            key: p.key,
            optim: p.optim,
            queue: p.queue,
            step: p.step,
            epoch: p.epoch,
            steps_per_epoch: p.steps_per_epoch,
            query_splits,
        }
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The autodiff device the trainer runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The query (online) encoder: what is trained, evaluated and exported.
    pub fn online(&self) -> &Encoder {
        &self.online
    }

    /// The momentum (key) encoder.
    pub fn key(&self) -> &Encoder {
        &self.key
    }

    pub fn queue(&self) -> &KeyQueue {
        &self.queue
    }

    pub(crate) fn optimizer(&self) -> &ModuleOptimizer {
        &self.optim
    }

    /// Optimiser steps taken so far.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// Epochs completed.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.steps_per_epoch
    }

    pub fn query_splits(&self) -> usize {
        self.query_splits
    }

    /// The query encoder's BatchNorm in `n` contiguous groups (see [`Self::query_splits`]).
    pub fn set_query_splits(&mut self, n: usize) {
        self.query_splits = n.max(1);
    }

    /// Counts an epoch as done (its last batch stepped); the session calls it at an epoch's end.
    pub fn end_epoch(&mut self) {
        self.epoch += 1;
    }

    /// Trains to `epochs` in all (at least the epochs done): the cosine schedules stretch over
    /// the new total.
    pub fn extend_to(&mut self, epochs: usize) -> Result<()> {
        if epochs < self.epoch {
            return Err(Error::Config(format!(
                "--epochs {epochs}: the run has already trained {} epochs",
                self.epoch
            )));
        }
        self.config.epochs = epochs;
        Ok(())
    }

    /// Starts from an encoder's weights: the online encoder takes them, the key encoder becomes
    /// its copy; optimiser state, queue and counters stay as they are.
    pub(crate) fn set_encoders(&mut self, online: Encoder) {
        self.key = Self::key_copy(&online, &self.config, &self.device);
        self.online = online;
    }

    /// The queue of `other` (a replica's, after a warm-up), moved to this trainer's device.
    pub(crate) fn copy_queue_of(&mut self, other: &Trainer) {
        self.queue.keys = other.queue.keys.clone().to_device(&self.device);
        self.queue.ids = other.queue.ids.clone().to_device(&self.device);
        self.queue.ptr = other.queue.ptr;
    }

    /// The objective the trainer's method trains.
    pub fn objective(&self) -> Box<dyn Objective> {
        self.config.method.objective()
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

    /// The EMA update of the key encoder by itself (benchmarks time it alone).
    pub fn update_key_encoder(&mut self, momentum: f64) {
        self.key = ema_update(self.key.clone(), &self.online, momentum);
    }

    /// Keys of one view (detached). With `bn_splits` > 1 the batch is shuffled, encoded in
    /// sub-batches (each with its own BatchNorm statistics, so a key's statistics do not come
    /// from the batch its query is normalised with) and put back in order: MoCo's shuffle-BN on
    /// one device. The key encoder's running statistics then take one update per sub-batch.
    fn key_forward(&self, x: Tensor<4>, view: ViewKind) -> Tensor<2> {
        let n = x.dims()[0];
        if self.config.bn_splits <= 1 || n < 4 {
            return self.key.forward(x).detach();
        }
        let groups = bn_split_groups(n, self.config.bn_splits, self.config.seed, self.step, view);
        let parts: Vec<Tensor<2>> = groups
            .iter()
            .map(|g| {
                self.key
                    .forward(x.clone().select(0, self.index(g)))
                    .detach()
            })
            .collect();
        let shuffled: Vec<usize> = groups.concat();
        let mut inverse = vec![0usize; n];
        for (pos, &i) in shuffled.iter().enumerate() {
            inverse[i] = pos;
        }
        Tensor::cat(parts, 0).select(0, self.index(&inverse))
    }

    fn index(&self, ids: &[usize]) -> Tensor<1, Int> {
        let ids: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        Tensor::<1, Int>::from_data(TensorData::new(ids.clone(), [ids.len()]), &self.device)
    }

    /// Queries of one view; in `splits` > 1 contiguous shards, each through the encoder alone
    /// (its own BatchNorm statistics), rows in order.
    fn query_forward(&self, x: Tensor<4>, splits: usize) -> Tensor<2> {
        let n = x.dims()[0];
        let parts = shards(n, splits);
        if parts.len() <= 1 {
            return self.online.forward(x);
        }
        let dims = x.dims();
        let outs = parts
            .into_iter()
            .map(|r| {
                self.online
                    .forward(x.clone().slice([r, 0..dims[1], 0..dims[2], 0..dims[3]]))
            })
            .collect();
        Tensor::cat(outs, 0)
    }

    /// Fills the queue with keys of real images (the key encoder on the originals) instead of the
    /// random unit vectors it starts with. With random negatives the loss starts low and climbs
    /// while real keys replace them; after this it is comparable from the first step (what a live
    /// curve of a short run needs). Changes no weights.
    pub fn warm_queue(&mut self, batch: &Batch) {
        let keys = self.key_forward(self.view(batch, ViewKind::Original), ViewKind::Original);
        let ids: Vec<i64> = batch.ids.iter().map(|&i| i as i64).collect();
        self.queue.enqueue(keys, &ids);
    }

    fn view(&self, batch: &Batch, v: ViewKind) -> Tensor<4> {
        Tensor::from_data(
            TensorData::new(batch.views[v].clone(), batch.shape()),
            &self.device,
        )
    }

    /// One optimisation step on a host batch (views made by the CPU loader). Returns the loss as a
    /// device tensor: reading it is a host round-trip, so callers read it only when they log.
    pub fn step(&mut self, batch: &Batch) -> Result<Tensor<1>> {
        if batch.len() < 2 {
            return Err(Error::Config(
                "a training batch needs at least 2 images".into(),
            ));
        }
        if batch.views.crop1.is_empty() {
            return Err(Error::Config(
                "training needs a batch built in train mode".into(),
            ));
        }
        let views = self.upload_views(batch);
        self.step_views(views, &batch.ids)
    }

    /// The views of a host batch that the method reads, uploaded to the training device.
    pub fn upload_views(&self, batch: &Batch) -> Views<Option<Tensor<4>>> {
        self.views_needed()
            .map(|v, needed| needed.then(|| self.view(batch, v)))
    }

    /// Which views the method reads.
    pub fn views_needed(&self) -> Views<bool> {
        self.objective().reads().any()
    }

    /// The batch size of a step's views, after checking that the method's views are all there
    /// and of one size, with at least two images.
    pub(crate) fn batch_len(&self, views: &Views<Option<Tensor<4>>>) -> Result<usize> {
        let needed = self.views_needed();
        let mut n = None;
        for (v, t) in views.iter() {
            match (t, needed[v]) {
                (Some(t), _) => {
                    let b = t.dims()[0];
                    if n.is_some_and(|n| n != b) {
                        return Err(Error::Config("views of different batch sizes".into()));
                    }
                    n = Some(b);
                }
                (None, true) => {
                    return Err(Error::Config(format!(
                        "{} needs the {v} view",
                        self.config.method.label()
                    )));
                }
                (None, false) => {}
            }
        }
        match n {
            Some(n) if n >= 2 => Ok(n),
            _ => Err(Error::Config(
                "a training batch needs at least 2 images".into(),
            )),
        }
    }

    // The step, in phases: data-parallel training runs the same phases on every replica and
    // differs only in which rows each encodes and how gradients are summed between them.

    /// Phase 1: the schedule's values for this step, and the EMA update of the key encoder.
    pub(crate) fn begin_step(&mut self) -> StepPlan {
        let m = self.ema_momentum();
        let plan = StepPlan { lr: self.lr() };
        self.update_key_encoder(m);
        plan
    }

    /// Phase 2: the keys of the views the method reads through the key encoder; with
    /// `shuffle_bn`, in the shuffled sub-batches of `bn_splits` (a replica's rows are such a
    /// sub-batch already).
    pub(crate) fn encode_keys(
        &self,
        views: &Views<Option<Tensor<4>>>,
        shuffle_bn: bool,
    ) -> Views<Option<Tensor<2>>> {
        let reads = self.objective().reads();
        views.as_ref().map(|v, x| {
            x.as_ref()
                .filter(|_| reads.key.contains(&v))
                .map(|x| match shuffle_bn {
                    true => self.key_forward(x.clone(), v),
                    false => self.key.forward(x.clone()).detach(),
                })
        })
    }

    /// Phase 3: the queries of the views the method reads through the query encoder; with
    /// `split_bn`, in the [`Self::query_splits`] sub-batches (a replica's rows are its shard
    /// already).
    pub(crate) fn encode_queries(
        &self,
        views: Views<Option<Tensor<4>>>,
        split_bn: bool,
    ) -> Views<Option<Tensor<2>>> {
        let reads = self.objective().reads();
        let splits = if split_bn { self.query_splits } else { 1 };
        views.map(|v, x| {
            x.filter(|_| reads.query.contains(&v))
                .map(|x| self.query_forward(x, splits))
        })
    }

    /// Phase 4: the objective's loss against this trainer's queue, for the images `ids` (the
    /// rows of `encoded`); with `mask_same_image`, their own queued keys are no negatives.
    pub(crate) fn loss(&self, encoded: &Encoded, ids: &[usize]) -> Result<Tensor<1>> {
        let batch_ids = self.config.mask_same_image.then(|| self.index(ids));
        let negatives = Negatives {
            queue: &self.queue.keys,
            temperature: self.config.temperature,
            same_image: batch_ids.as_ref().map(|batch_ids| SameImage {
                queue_ids: &self.queue.ids,
                batch_ids,
            }),
        };
        self.objective().loss(encoded, &negatives)
    }

    /// The gradients of `loss` for the query encoder's parameters.
    pub(crate) fn gradients(&self, loss: &Tensor<1>) -> GradientsParams {
        GradientsParams::from_grads(loss.backward(), &self.online)
    }

    /// Phase 5: the SGD step with `grads`; `keys` of the images `ids` (the whole batch's, in
    /// the order one device enqueues them) enqueued; the step counted.
    pub(crate) fn finish_step(
        &mut self,
        plan: StepPlan,
        grads: GradientsParams,
        keys: &Views<Option<Tensor<2>>>,
        ids: &[usize],
    ) -> Result<()> {
        let objective = self.objective();
        let enqueued = objective.enqueued(keys)?;
        self.online = self.optim.step(plan.lr, self.online.clone(), grads);
        self.queue
            .enqueue(enqueued, &enqueued_ids(objective.as_ref(), ids));
        self.step += 1;
        Ok(())
    }

    /// One optimisation step on views already on the device (normalised NCHW; only the views in
    /// [`Self::views_needed`] are read) of the images `ids` (dataset indices, one per row).
    pub fn step_views(
        &mut self,
        views: Views<Option<Tensor<4>>>,
        ids: &[usize],
    ) -> Result<Tensor<1>> {
        let n = self.batch_len(&views)?;
        if ids.len() != n {
            return Err(Error::Config(format!(
                "{} image ids for a batch of {n}",
                ids.len()
            )));
        }
        let plan = self.begin_step();
        let keys = self.encode_keys(&views, true);
        let queries = self.encode_queries(views, true);
        let encoded = Encoded { queries, keys };
        let loss = self.loss(&encoded, ids)?;
        let grads = self.gradients(&loss);
        self.finish_step(plan, grads, &encoded.keys, ids)?;
        Ok(loss.detach())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ema::parameters;
    use crate::method::{Method, OriginalBranch};
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
        for method in Method::ALL {
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

    fn rows(t: Tensor<2>) -> Vec<Vec<f32>> {
        let [n, d] = t.dims();
        let v = t.into_data().try_to_vec::<f32>().unwrap();
        (0..n).map(|i| v[i * d..(i + 1) * d].to_vec()).collect()
    }

    #[test]
    fn bn_splits_of_one_is_the_plain_key_pass_and_old_configs_read_as_one() {
        let t = leoclr_trainer();
        assert_eq!(t.config.bn_splits, 1);
        let x = Tensor::<4>::from_data(
            TensorData::new(toy_batch(8, 12, 5).views.original, [8, 1, 12, 12]),
            &t.device,
        );
        assert_eq!(
            rows(t.key_forward(x.clone(), ViewKind::Original)),
            rows(t.key.forward(x).detach())
        );
        // A run file written before the setting existed trains as before.
        let mut json = serde_json::to_value(&t.config).unwrap();
        json.as_object_mut().unwrap().remove("bn_splits");
        let old: TrainConfig = serde_json::from_value(json).unwrap();
        assert_eq!(old, t.config);
        // And two trainers, one told 1 explicitly, take bit-identical steps.
        let mut a = leoclr_trainer();
        let mut b = Trainer::new(
            TrainConfig {
                bn_splits: 1,
                ..old
            },
            &Device::flex(),
            4,
        )
        .unwrap();
        for i in 0..2 {
            let batch = toy_batch(8, 12, i);
            let (la, lb) = (a.step(&batch).unwrap(), b.step(&batch).unwrap());
            assert_eq!(la.into_scalar::<f32>(), lb.into_scalar::<f32>());
        }
        assert_eq!(parameters(&a.online), parameters(&b.online));
    }

    #[test]
    fn shuffled_bn_keys_equal_each_sub_batch_encoded_alone() {
        let mut t = leoclr_trainer();
        t.config.bn_splits = 3;
        t.step = 7;
        let n = 11;
        let imgs = toy_batch(n, 12, 9).views.original;
        let x = Tensor::<4>::from_data(TensorData::new(imgs.clone(), [n, 1, 12, 12]), &t.device);
        let keys = rows(t.key_forward(x.clone(), ViewKind::Original));
        let groups = bn_split_groups(n, 3, t.config.seed, 7, ViewKind::Original);
        // Sizes 3, 4, 4: every image once, in a seeded shuffle (not the identity).
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [3, 4, 4]);
        let mut all = groups.concat();
        assert_ne!(all, (0..n).collect::<Vec<_>>());
        all.sort();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
        assert_eq!(
            groups,
            bn_split_groups(n, 3, t.config.seed, 7, ViewKind::Original)
        );
        assert_ne!(
            groups,
            bn_split_groups(n, 3, t.config.seed, 8, ViewKind::Original)
        );
        // By hand: each group's images stacked alone through the key encoder, rows put back.
        let per = 12 * 12;
        for g in &groups {
            let sub: Vec<f32> = g
                .iter()
                .flat_map(|&i| imgs[i * per..(i + 1) * per].to_vec())
                .collect();
            let sub = Tensor::<4>::from_data(TensorData::new(sub, [g.len(), 1, 12, 12]), &t.device);
            for (row, &i) in rows(t.key.forward(sub).detach()).iter().zip(g) {
                for (a, b) in row.iter().zip(&keys[i]) {
                    assert!((a - b).abs() < 1e-5, "image {i}: {a} vs {b}");
                }
            }
        }
        // BatchNorm uses batch statistics here: the unsplit pass gives other keys.
        let plain = rows(t.key.forward(x).detach());
        assert!(
            plain
                .iter()
                .zip(&keys)
                .any(|(a, b)| a.iter().zip(b).any(|(a, b)| (a - b).abs() > 1e-4))
        );
        // A whole step trains with it, on every method; the short batch of 2 falls back to one group.
        for method in [
            Method::Mocov2 { symmetric: true },
            Method::Mocov2 { symmetric: false },
            Method::Leoclr {
                original_branch: OriginalBranch::Query,
            },
        ] {
            let cfg = TrainConfig {
                bn_splits: 2,
                ..tiny_config(method)
            };
            let mut t = Trainer::new(cfg, &Device::flex(), 2).unwrap();
            for n in [4, 2] {
                let l = t.step(&toy_batch(n, 12, 1)).unwrap().into_scalar::<f32>();
                assert!(l.is_finite(), "{method:?}: {l}");
            }
        }
    }

    #[test]
    fn warm_queue_fills_keys_and_changes_no_weight() {
        let mut t = leoclr_trainer();
        let before = (
            crate::ema::parameters(&t.online),
            crate::ema::parameters(&t.key),
        );
        let random = t.queue.to_vec().unwrap();
        t.warm_queue(&toy_batch(4, 12, 3));
        assert_eq!(t.queue.ptr, 4);
        let q = t.queue.to_vec().unwrap();
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

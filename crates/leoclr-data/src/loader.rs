//! A threaded loader with prefetch. Worker `w` builds batches `w, w + W, w + 2W, ...` into its own
//! bounded channel and the consumer reads them round-robin, so batches arrive in order and every
//! sample's randomness is derived from (seed, epoch, sample id): the same seed gives the same
//! crops whatever the number of workers or the thread timing.

use std::sync::Arc;

use crossbeam_channel::{Receiver, bounded};

use crate::augment::{
    AugmentConfig, ViewParams, apply_view, original_view, sample_crop_params,
    sample_original_params,
};
use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::rng::Rng;
use crate::views::{ViewKind, Views};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Two random crops and the original (with its random flip), shuffled.
    Train,
    /// The resized original only, no randomness, in dataset order: for embedding and evaluation.
    Eval,
}

#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Loader threads; 0 builds each batch on the calling thread when it is asked for (the
    /// browser has no threads).
    pub workers: usize,
    /// Batches each worker may build ahead.
    pub prefetch: usize,
    pub seed: u64,
    pub mode: Mode,
    /// Drop a last batch smaller than `batch_size`. A final batch of one image is always dropped in
    /// training, since BatchNorm cannot normalise it.
    pub drop_last: bool,
}

impl LoaderConfig {
    pub fn train(batch_size: usize, seed: u64) -> Self {
        Self {
            batch_size,
            workers: default_workers(),
            prefetch: 2,
            seed,
            mode: Mode::Train,
            drop_last: false,
        }
    }

    pub fn eval(batch_size: usize) -> Self {
        Self {
            batch_size,
            workers: default_workers(),
            prefetch: 2,
            seed: 0,
            mode: Mode::Eval,
            drop_last: false,
        }
    }
}

fn default_workers() -> usize {
    if cfg!(target_arch = "wasm32") {
        return 0;
    }
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8)
}

/// One batch, every view as normalised NCHW floats.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Position of this batch in the epoch.
    pub index: usize,
    /// Dataset indices of the samples.
    pub ids: Vec<usize>,
    pub labels: Vec<Option<u32>>,
    pub channels: usize,
    pub size: usize,
    /// Every view of the batch, `[n, channels, size, size]` each; the crops are empty in eval
    /// mode.
    pub views: Views<Vec<f32>>,
    /// What was sampled for each view, per sample (empty in eval mode).
    pub params: Vec<Views<ViewParams>>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn shape(&self) -> [usize; 4] {
        [self.len(), self.channels, self.size, self.size]
    }

    /// A batch of standard-normal views (no images behind it): for tests and step benchmarks.
    pub fn synthetic(n: usize, channels: usize, size: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let per = n * channels * size * size;
        let mut view = || (0..per).map(|_| rng.normal() as f32).collect::<Vec<_>>();
        Batch {
            index: 0,
            ids: (0..n).collect(),
            labels: vec![None; n],
            channels,
            size,
            views: Views::from_fn(|_| view()),
            params: vec![],
        }
    }
}

pub struct Loader;

/// One sample's views (the crops empty in eval mode) and, in train mode, what was sampled for
/// each.
pub type SampleViews = (Views<Vec<f32>>, Option<Views<ViewParams>>);

impl Loader {
    /// The sample order of an epoch: a seeded shuffle in training, dataset order in eval.
    pub fn order(len: usize, cfg: &LoaderConfig, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..len).collect();
        if cfg.mode == Mode::Train {
            Rng::derive(cfg.seed, &[0x5_4F_46, epoch as u64]).shuffle(&mut order);
        }
        order
    }

    pub fn num_batches(len: usize, cfg: &LoaderConfig) -> usize {
        let full = len / cfg.batch_size;
        let rest = len % cfg.batch_size;
        let keep_rest = rest > 0 && !cfg.drop_last && !(cfg.mode == Mode::Train && rest < 2);
        full + keep_rest as usize
    }

    /// What sample `id` of a `w`x`h` image draws in `epoch`: (crop 1, crop 2, original). The CPU
    /// loader and the device pipeline both call this, so a seed gives the same views on either.
    pub fn sample_params(
        w: usize,
        h: usize,
        aug: &AugmentConfig,
        seed: u64,
        epoch: usize,
        id: usize,
    ) -> Views<ViewParams> {
        let mut rng = Rng::derive(seed, &[epoch as u64, id as u64]);
        // In this order: the stream of draws is what a seed has always given.
        let crop1 = sample_crop_params(w, h, aug, &mut rng);
        let crop2 = sample_crop_params(w, h, aug, &mut rng);
        let original = sample_original_params(w, h, aug, &mut rng);
        Views {
            crop1,
            crop2,
            original,
        }
    }

    /// The dataset indices of batch `index` of an epoch (after the epoch's shuffle).
    pub fn batch_ids<'a>(order: &'a [usize], cfg: &LoaderConfig, index: usize) -> &'a [usize] {
        let start = index * cfg.batch_size;
        &order[start.min(order.len())..(start + cfg.batch_size).min(order.len())]
    }

    /// Builds one sample's views.
    pub fn sample(
        ds: &Dataset,
        aug: &AugmentConfig,
        mode: Mode,
        seed: u64,
        epoch: usize,
        id: usize,
    ) -> Result<SampleViews> {
        let img = ds.get(id)?;
        if img.channels != ds.channels {
            return Err(DataError::format(
                std::path::Path::new(&ds.describe(id)),
                format!("has {} channels, dataset has {}", img.channels, ds.channels),
            ));
        }
        match mode {
            Mode::Eval => {
                let original = original_view(&img, aug, None).pixels;
                Ok((
                    Views {
                        original,
                        ..Views::default()
                    },
                    None,
                ))
            }
            Mode::Train => {
                let params = Self::sample_params(img.width, img.height, aug, seed, epoch, id);
                let views = params.as_ref().map(|_, p| apply_view(&img, aug, p));
                Ok((views, Some(params)))
            }
        }
    }

    fn build(
        ds: &Dataset,
        aug: &AugmentConfig,
        cfg: &LoaderConfig,
        epoch: usize,
        index: usize,
        ids: &[usize],
    ) -> Result<Batch> {
        let per = ds.channels * aug.size * aug.size;
        let n = ids.len();
        let mut batch = Batch {
            index,
            ids: ids.to_vec(),
            labels: ids.iter().map(|&i| ds.label(i)).collect(),
            channels: ds.channels,
            size: aug.size,
            views: Views::default(),
            params: Vec::new(),
        };
        // Train mode renders every view, eval mode the original alone.
        let train = cfg.mode == Mode::Train;
        batch.views = Views::from_fn(|v| match (train, v) {
            (false, ViewKind::Crop1 | ViewKind::Crop2) => Vec::new(),
            _ => Vec::with_capacity(n * per),
        });
        if train {
            batch.params.reserve(n);
        }
        for &id in ids {
            let (views, params) = Self::sample(ds, aug, cfg.mode, cfg.seed, epoch, id)?;
            for (v, pixels) in views.into_iter() {
                batch.views[v].extend(pixels);
            }
            if let Some(p) = params {
                batch.params.push(p);
            }
        }
        Ok(batch)
    }

    /// Streams an epoch's batches, built on worker threads. Dropping the iterator stops the workers.
    pub fn epoch(
        ds: Arc<Dataset>,
        aug: Arc<AugmentConfig>,
        cfg: LoaderConfig,
        epoch: usize,
    ) -> BatchIter {
        let order = Arc::new(Self::order(ds.len(), &cfg, epoch));
        let total = Self::num_batches(ds.len(), &cfg);
        // The batches built on the calling thread (no workers asked for, or none to be had).
        let inline = |ds, aug, cfg, order| BatchIter {
            source: Source::Inline {
                ds,
                aug,
                cfg,
                epoch,
                order,
            },
            next: 0,
            total,
        };
        if cfg.workers == 0 {
            return inline(ds, aug, cfg, order);
        }
        let workers = cfg.workers.min(total.max(1));
        let mut receivers = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = bounded::<Result<Batch>>(cfg.prefetch.max(1));
            let (ds_w, aug_w, cfg_w, order_w) =
                (ds.clone(), aug.clone(), cfg.clone(), order.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("leoclr-loader-{w}"))
                .spawn(move || {
                    let (ds, aug, cfg, order) = (ds_w, aug_w, cfg_w, order_w);
                    let mut b = w;
                    while b < total {
                        let ids = Self::batch_ids(&order, &cfg, b);
                        let res = Self::build(&ds, &aug, &cfg, epoch, b, ids);
                        let failed = res.is_err();
                        if tx.send(res).is_err() || failed {
                            return;
                        }
                        b += workers;
                    }
                });
            if spawned.is_err() {
                // No thread to be had (a process at its limit): the same batches on the calling
                // thread. Dropping the receivers stops the workers already started.
                return inline(ds, aug, cfg, order);
            }
            receivers.push(rx);
        }
        BatchIter {
            source: Source::Threads(receivers),
            next: 0,
            total,
        }
    }

    /// Batch `index` of `epoch`, built on the calling thread (what a worker builds).
    pub fn batch(
        ds: &Dataset,
        aug: &AugmentConfig,
        cfg: &LoaderConfig,
        epoch: usize,
        index: usize,
    ) -> Result<Batch> {
        let order = Self::order(ds.len(), cfg, epoch);
        Self::build(
            ds,
            aug,
            cfg,
            epoch,
            index,
            Self::batch_ids(&order, cfg, index),
        )
    }
}

enum Source {
    Threads(Vec<Receiver<Result<Batch>>>),
    Inline {
        ds: Arc<Dataset>,
        aug: Arc<AugmentConfig>,
        cfg: LoaderConfig,
        epoch: usize,
        order: Arc<Vec<usize>>,
    },
}

pub struct BatchIter {
    source: Source,
    next: usize,
    total: usize,
}

impl BatchIter {
    pub fn total(&self) -> usize {
        self.total
    }
}

impl Iterator for BatchIter {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.total {
            return None;
        }
        let b = self.next;
        self.next += 1;
        let receivers = match &self.source {
            Source::Threads(r) => r,
            Source::Inline {
                ds,
                aug,
                cfg,
                epoch,
                order,
            } => {
                let ids = Loader::batch_ids(order, cfg, b);
                let res = Loader::build(ds, aug, cfg, *epoch, b, ids);
                if res.is_err() {
                    self.next = self.total;
                }
                return Some(res);
            }
        };
        match receivers[b % receivers.len()].recv() {
            Ok(item) => {
                if item.is_err() {
                    self.next = self.total;
                }
                Some(item)
            }
            Err(_) => {
                self.next = self.total;
                Some(Err(DataError::Config(
                    "loader worker stopped unexpectedly".into(),
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> Arc<Dataset> {
        let pixels = (0..n * 8 * 8).map(|i| (i % 251) as u8).collect();
        let labels = (0..n).map(|i| Some((i % 3) as u32)).collect();
        Arc::new(Dataset::in_memory(
            "toy".into(),
            8,
            8,
            1,
            pixels,
            labels,
            vec![],
        ))
    }

    #[test]
    fn batches_arrive_in_order_cover_the_epoch_and_repeat_with_seed() {
        let ds = toy(23);
        let aug = Arc::new(AugmentConfig::small(6, 1));
        let mut cfg = LoaderConfig::train(5, 11);
        cfg.workers = 3;
        let a: Vec<Batch> = Loader::epoch(ds.clone(), aug.clone(), cfg.clone(), 0)
            .map(|b| b.unwrap())
            .collect();
        assert_eq!(a.len(), 5);
        assert_eq!(a.last().unwrap().len(), 3, "short last batch kept");
        let mut ids: Vec<usize> = a.iter().flat_map(|b| b.ids.clone()).collect();
        assert_ne!(ids, (0..23).collect::<Vec<_>>(), "shuffled");
        ids.sort();
        assert_eq!(ids, (0..23).collect::<Vec<_>>());
        for (i, b) in a.iter().enumerate() {
            assert_eq!(b.index, i);
            assert_eq!(b.views.crop1.len(), b.len() * 36);
            assert_eq!(b.views.original.len(), b.len() * 36);
        }
        // One thread, no threads (the browser), and one batch on demand give the same batches.
        for workers in [1, 0] {
            cfg.workers = workers;
            let again: Vec<Batch> = Loader::epoch(ds.clone(), aug.clone(), cfg.clone(), 0)
                .map(|b| b.unwrap())
                .collect();
            assert_eq!(again.len(), a.len());
            for (x, y) in a.iter().zip(&again) {
                assert_eq!(x.ids, y.ids);
                assert_eq!(x.views, y.views);
                assert_eq!(x.params, y.params);
            }
        }
        let third = Loader::batch(&ds, &aug, &cfg, 0, 3).unwrap();
        assert_eq!(
            (third.index, &third.ids, &third.views),
            (3, &a[3].ids, &a[3].views)
        );
        let other: Vec<Batch> = Loader::epoch(ds, aug, cfg, 1).map(|b| b.unwrap()).collect();
        assert_ne!(other[0].ids, a[0].ids, "a new epoch reshuffles");
    }

    #[test]
    fn single_image_tail_is_dropped_in_training_kept_in_eval() {
        let ds = toy(11);
        let aug = Arc::new(AugmentConfig::small(4, 1));
        assert_eq!(Loader::num_batches(11, &LoaderConfig::train(5, 0)), 2);
        let eval: Vec<Batch> = Loader::epoch(ds, aug, LoaderConfig::eval(5), 0)
            .map(|b| b.unwrap())
            .collect();
        assert_eq!(eval.iter().map(Batch::len).sum::<usize>(), 11);
        assert_eq!(eval[2].ids, vec![10]);
    }
}

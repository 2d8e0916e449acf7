//! Data-parallel training: one replica of the trainer per device, each stepping a shard of every
//! global batch, on a worker thread of its own.
//!
//! A step over a global batch of `n` images on `N` devices:
//! 1. every replica applies the EMA (identical weights give identical key encoders);
//! 2. shuffle-BN across devices: each key view is permuted with the seeded permutation of
//!    [`bn_split_groups`] and cut into `N` groups, group `r` encoded on device `r` (so a key's
//!    BatchNorm statistics never come from the sub-batch its query is normalised with);
//! 3. the keys of all devices are gathered onto every device and put back in batch order;
//! 4. device `r` encodes the queries of the contiguous shard `r` ([`shards`]), takes its InfoNCE
//!    against the gathered keys of its images and the (identical) queue, weighted by its share of
//!    the batch, and back-propagates;
//! 5. gradients are summed across devices ([`GradReduce`]), so every replica holds the gradient of
//!    the global batch's mean loss;
//! 6. every replica takes the same SGD step and enqueues the global batch's keys, in the order one
//!    device would have enqueued them.
//!
//! The result equals one device stepping the whole batch with the key encoder's BatchNorm in
//! `N` shuffled groups (`--bn-splits N`) and the query encoder's in `N` contiguous groups
//! ([`Trainer::query_splits`]), to float tolerance. Replica 0 is the one checkpointed and
//! evaluated; BatchNorm running statistics stay per replica (only replica 0's are kept, as
//! PyTorch's DDP keeps rank 0's buffers).

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::distributed::{DistributedConfig, DistributedContext, ReduceOperation};
use burn::tensor::{Device, Int, Tensor, TensorData};
use leoclr_data::Batch;

use crate::BackendKind;
use crate::method::{Encoded, ViewKind, Views};
use crate::trainer::{Trainer, bn_split_groups, shards};
use crate::{Error, Result};

/// How the replicas' gradients are summed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradReduce {
    /// burn's collective `all_reduce` (`burn::tensor::distributed`), called by every replica's
    /// thread: device to device, no host copy. burn 0.22.1 implements it for CUDA (NCCL) only;
    /// other runtimes answer it with a panic, so it is chosen for `cuda` alone.
    Collective,
    /// Gradients moved to the first device, summed there and moved back (`Tensor::to_device`):
    /// for runtimes without collectives (wgpu, vulkan) and for replicas sharing one device (the
    /// CPU backend has a single device), where the moves cost nothing.
    Transfer,
}

impl GradReduce {
    /// The reduction a backend supports.
    pub fn for_backend(backend: BackendKind) -> Self {
        match backend {
            BackendKind::Cuda => Self::Collective,
            _ => Self::Transfer,
        }
    }
}

/// The replicas beside the session's own trainer (replica 0), and how they synchronise.
pub struct Replicas {
    /// Replicas 1..N, on their own devices.
    pub others: Vec<Trainer>,
    pub reduce: GradReduce,
    /// Every replica's (autodiff) device, replica 0's first: where keys and losses live.
    devices: Vec<Device>,
    /// The same devices without autodiff: where gradients live.
    plain: Vec<Device>,
    /// Keeps burn's communication server up while the replicas live (collectives only).
    _context: Option<DistributedContext>,
}

impl Replicas {
    /// Replica 0 and the others, copies of it on their own devices (made by
    /// [`crate::checkpoint::replicate`]: same weights, optimiser state, queue and parameter ids).
    pub fn new(first: &Trainer, others: Vec<Trainer>, reduce: GradReduce) -> Result<Self> {
        let devices = &others;
        if first.config().bn_splits > 1 && first.config().bn_splits != devices.len() + 1 {
            return Err(Error::Config(format!(
                "on {} devices shuffle-BN runs across the devices: --bn-splits must be 1 or {}, \
                 not {}",
                devices.len() + 1,
                devices.len() + 1,
                first.config().bn_splits
            )));
        }
        if others
            .iter()
            .any(|t| t.config() != first.config() || t.step_count() != first.step_count())
        {
            return Err(Error::Config(
                "replicas must be copies of the first trainer".into(),
            ));
        }
        let mut all = vec![first.device().clone()];
        all.extend(others.iter().map(|t| t.device().clone()));
        let plain: Vec<Device> = all.iter().map(|d| d.clone().without_autodiff()).collect();
        let context = (reduce == GradReduce::Collective).then(|| {
            DistributedContext::init(
                plain.clone(),
                DistributedConfig {
                    all_reduce_op: ReduceOperation::Sum,
                },
            )
        });
        Ok(Self {
            others,
            reduce,
            devices: all,
            plain,
            _context: context,
        })
    }

    /// Number of replicas, replica 0 included.
    pub fn count(&self) -> usize {
        self.others.len() + 1
    }

    /// Replaces replica 0's queue in every other replica (after a warm-up on replica 0).
    pub fn copy_queue(&mut self, first: &Trainer) {
        for t in &mut self.others {
            t.copy_queue_of(first);
        }
    }

    /// Counts an epoch as done on every other replica.
    pub(crate) fn end_epoch(&mut self) {
        for t in &mut self.others {
            t.end_epoch();
        }
    }

    /// One data-parallel step over a host batch; `first` is replica 0. Returns the global batch's
    /// loss on replica 0's device. The phases are [`Trainer::step_views`]'s, on every replica.
    pub fn step(&mut self, first: &mut Trainer, batch: &Batch) -> Result<Tensor<1>> {
        let n = batch.len();
        if n < 2 || batch.views.crop1.is_empty() {
            return Err(Error::Config(
                "a training batch needs at least 2 images, built in train mode".into(),
            ));
        }
        let reads = first.objective().reads();
        let parts = shards(n, self.count());
        // Key groups per view: the same seeded shuffle `--bn-splits` uses on one device.
        let (seed, step, count) = (first.config().seed, first.step_count(), self.count());
        let groups: Views<Vec<Vec<usize>>> = Views::from_fn(|v| match reads.key.contains(&v) {
            true => bn_split_groups(n, count, seed, step, v),
            false => Vec::new(),
        });
        let mut replicas: Vec<&mut Trainer> = Vec::with_capacity(self.count());
        replicas.push(first);
        replicas.extend(self.others.iter_mut());
        // 1: the schedule and the EMA, on every replica.
        let plans = on_each(&mut replicas, |_, t| t.begin_step())?;
        let plan = plans[0];
        // 2-3: each device's key groups, gathered onto every device in batch order.
        let global = keys(&mut replicas, &self.devices, batch, &groups)?;

        // 4: queries of this device's shard, its share of the loss, backward.
        let reduce = self.reduce;
        let plain = self.plain.clone();
        let results: Vec<(Option<Tensor<1>>, Option<GradientsParams>)> =
            on_each(&mut replicas, |r, t| -> Result<_> {
                let (loss, mut grads) = match parts.get(r) {
                    Some(range) => {
                        let (l, g) = shard_loss(t, batch, range.clone(), &global[r])?;
                        (Some(l), Some(g))
                    }
                    None => (None, None),
                };
                if reduce == GradReduce::Collective {
                    let mut g = grads.unwrap_or_default();
                    all_reduce_in_place(t.online(), &mut g, &plain[r], &plain);
                    grads = Some(g);
                }
                Ok((loss, grads))
            })?
            .into_iter()
            .collect::<Result<_>>()?;
        let (losses, mut grads): (Vec<_>, Vec<_>) = results.into_iter().unzip();

        // 5: the sum of the gradients on every replica.
        if reduce == GradReduce::Transfer {
            let ids: Vec<_> = replicas.iter().map(|t| param_ids(t.online())).collect();
            sum_by_transfer(&ids, &mut grads, &self.plain);
        }
        let grads: Vec<std::sync::Mutex<Option<GradientsParams>>> =
            grads.into_iter().map(std::sync::Mutex::new).collect();

        // 6: the same SGD step everywhere, the global keys enqueued.
        let stepped = on_each(&mut replicas, |r, t| -> Result<()> {
            let g = grads
                .get(r)
                .and_then(|g| g.lock().ok().and_then(|mut g| g.take()))
                .unwrap_or_default();
            t.finish_step(plan, g, &global[r], &batch.ids)
        })?;
        stepped.into_iter().collect::<Result<()>>()?;

        let dev0 = &self.devices[0];
        let loss = losses
            .into_iter()
            .flatten()
            .map(|l| l.to_device(dev0))
            .reduce(|a, b| a + b)
            .ok_or_else(|| Error::Config("no replica had images to train on".into()))?;
        Ok(loss)
    }
}

/// Steps 2-3: each device's key groups through its key encoder, and every device's keys
/// gathered onto every device in batch order.
fn keys(
    replicas: &mut [&mut Trainer],
    devices: &[Device],
    batch: &Batch,
    groups: &Views<Vec<Vec<usize>>>,
) -> Result<Vec<Views<Option<Tensor<2>>>>> {
    let local_keys: Vec<Views<Option<Tensor<2>>>> = on_each(replicas, |r, t| {
        // Each replica encodes its group of every key view as a batch of its own.
        let views = groups
            .as_ref()
            .map(|v, g| g.get(r).map(|ids| rows(batch, v, ids, t.device())));
        // The groups are shuffle-BN's sub-batches already: no further split on the replica.
        t.encode_keys(&views, false)
    })?;
    Ok(devices
        .iter()
        .map(|d| Views::from_fn(|v| gather(&local_keys, v, &groups[v], batch.len(), d)))
        .collect())
}

/// One replica's part of the loss: the queries of its shard `range` of the batch against the
/// gathered keys of those images and its queue, weighted by the shard's share of the batch, and
/// the gradients of that part.
fn shard_loss(
    t: &Trainer,
    batch: &Batch,
    range: std::ops::Range<usize>,
    global: &Views<Option<Tensor<2>>>,
) -> Result<(Tensor<1>, GradientsParams)> {
    let ids: Vec<usize> = range.clone().collect();
    let reads = t.objective().reads();
    let views = Views::from_fn(|v| {
        reads
            .query
            .contains(&v)
            .then(|| rows(batch, v, &ids, t.device()))
    });
    let queries = t.encode_queries(views, false);
    let keys = global.as_ref().map(|_, k| {
        k.as_ref().map(|k| {
            let d = k.dims()[1];
            k.clone().slice([range.clone(), 0..d])
        })
    });
    let shard_ids: Vec<usize> = range.clone().map(|i| batch.ids[i]).collect();
    let l = t.loss(&Encoded { queries, keys }, &shard_ids)?;
    let l = l.mul_scalar(range.len() as f64 / batch.len() as f64);
    let grads = t.gradients(&l);
    Ok((l.detach(), grads))
}

/// Runs `f` on every replica at once, a scoped thread each (replica 0 on the calling thread).
fn on_each<T: Send>(
    replicas: &mut [&mut Trainer],
    f: impl Fn(usize, &mut Trainer) -> T + Sync,
) -> Result<Vec<T>> {
    let f = &f;
    std::thread::scope(|s| {
        let mut iter = replicas.iter_mut().enumerate();
        let first = iter.next();
        let handles: Vec<_> = iter.map(|(r, t)| s.spawn(move || f(r, t))).collect();
        let mut out = Vec::with_capacity(handles.len() + 1);
        if let Some((r, t)) = first {
            out.push(f(r, t));
        }
        for h in handles {
            out.push(
                h.join()
                    .map_err(|_| Error::Backend("a replica's worker thread panicked".into()))?,
            );
        }
        Ok(out)
    })
}

/// Images `ids` of view `v` of a host batch, as a tensor on `device`.
fn rows(batch: &Batch, v: ViewKind, ids: &[usize], device: &Device) -> Tensor<4> {
    let [_, c, h, w] = batch.shape();
    let per = c * h * w;
    let data = &batch.views[v];
    let mut out = Vec::with_capacity(ids.len() * per);
    for &i in ids {
        out.extend_from_slice(&data[i * per..(i + 1) * per]);
    }
    Tensor::from_data(TensorData::new(out, [ids.len(), c, h, w]), device)
}

/// The keys of view `v` from every replica's group, on `device`, rows back in batch order.
fn gather(
    local: &[Views<Option<Tensor<2>>>],
    v: ViewKind,
    groups: &[Vec<usize>],
    n: usize,
    device: &Device,
) -> Option<Tensor<2>> {
    if groups.is_empty() {
        return None;
    }
    let parts: Vec<Tensor<2>> = local
        .iter()
        .filter_map(|k| k[v].clone())
        .map(|k| k.to_device(device))
        .collect();
    let mut inverse = vec![0i64; n];
    for (pos, &i) in groups.concat().iter().enumerate() {
        inverse[i] = pos as i64;
    }
    let index = Tensor::<1, Int>::from_data(TensorData::new(inverse, [n]), device);
    Some(Tensor::cat(parts, 0).select(0, index))
}

/// The ids and dimensions of a module's parameters, in visiting order.
struct ParamIds(Vec<(ParamId, Vec<usize>)>);

impl ModuleVisitor for ParamIds {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if param.is_require_grad() {
            self.0.push((param.id, param.val().dims().to_vec()));
        }
    }
}

fn param_ids<M: Module>(m: &M) -> Vec<(ParamId, Vec<usize>)> {
    let mut v = ParamIds(Vec::new());
    m.visit(&mut v);
    v.0
}

/// Takes a gradient of any rank out of `g` as a flat vector (with its shape), and puts one back.
fn take_flat(g: &mut GradientsParams, id: ParamId, rank: usize) -> Option<Tensor<1>> {
    match rank {
        1 => g.remove::<1>(id),
        2 => g.remove::<2>(id).map(|t| t.flatten(0, 1)),
        3 => g.remove::<3>(id).map(|t| t.flatten(0, 2)),
        4 => g.remove::<4>(id).map(|t| t.flatten(0, 3)),
        _ => None,
    }
}

fn put_flat(g: &mut GradientsParams, id: ParamId, shape: &[usize], flat: Tensor<1>) {
    match *shape {
        [a] => g.register::<1>(id, flat.reshape([a])),
        [a, b] => g.register::<2>(id, flat.reshape([a, b])),
        [a, b, c] => g.register::<3>(id, flat.reshape([a, b, c])),
        [a, b, c, d] => g.register::<4>(id, flat.reshape([a, b, c, d])),
        _ => {}
    }
}

/// Sums every parameter's gradient across replicas on the first device and gives each replica
/// the sum on its own device. Parameters are matched by visiting order (`ids[r]`: replica `r`'s
/// ids and shapes). A replica without a gradient (no images this step) adds nothing.
fn sum_by_transfer(
    ids: &[Vec<(ParamId, Vec<usize>)>],
    grads: &mut [Option<GradientsParams>],
    devices: &[Device],
) {
    let dev0 = &devices[0];
    let mut out: Vec<GradientsParams> = grads.iter().map(|_| GradientsParams::new()).collect();
    let count = ids.first().map_or(0, Vec::len);
    for p in 0..count {
        let sum = grads
            .iter_mut()
            .zip(ids)
            .filter_map(|(g, ids)| Some((g.as_mut()?, ids.get(p)?)))
            .filter_map(|(g, (id, shape))| take_flat(g, *id, shape.len()))
            .map(|t| t.to_device(dev0))
            .reduce(|a, b| a + b);
        if let Some(sum) = sum {
            for ((o, d), ids) in out.iter_mut().zip(devices).zip(ids) {
                if let Some((id, shape)) = ids.get(p) {
                    put_flat(o, *id, shape, sum.clone().to_device(d));
                }
            }
        }
    }
    for (g, o) in grads.iter_mut().zip(out) {
        *g = Some(o);
    }
}

/// burn's collective all-reduce (sum) of every parameter's gradient, called by each replica's
/// thread in the same parameter order; a missing gradient takes part as zeros.
fn all_reduce_in_place<M: Module>(
    model: &M,
    g: &mut GradientsParams,
    own: &Device,
    devices: &[Device],
) {
    for (id, shape) in param_ids(model) {
        let flat = take_flat(g, id, shape.len())
            .unwrap_or_else(|| Tensor::zeros([shape.iter().product::<usize>()], own));
        let reduced =
            burn::tensor::distributed::all_reduce(flat, ReduceOperation::Sum, devices.to_vec())
                .resolve();
        put_flat(g, id, &shape, reduced);
    }
}

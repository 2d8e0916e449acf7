//! Evaluation of frozen backbone features: weighted kNN (InstDisc / MoCo protocol) and a linear
//! probe trained on cached features.

use std::sync::Arc;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use leoclr_data::{AugmentConfig, Dataset, Loader, LoaderConfig, Rng};

use crate::encoder::Encoder;
use crate::head::l2_normalize;
use crate::{Error, Result};

/// Reads tensor data back as a host vector of `E`.
trait ToHost {
    fn to_host<E: burn::tensor::Element>(self) -> Result<Vec<E>>;
}

impl ToHost for TensorData {
    fn to_host<E: burn::tensor::Element>(self) -> Result<Vec<E>> {
        self.convert::<E>()
            .try_to_vec::<E>()
            .map_err(|e| Error::Backend(format!("{e:?}")))
    }
}

/// Features of a whole dataset, row-major `[len, dim]`.
#[derive(Clone, Debug)]
pub struct Features {
    pub dim: usize,
    pub data: Vec<f32>,
    pub labels: Vec<Option<u32>>,
}

impl Features {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn tensor(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(self.data.clone(), [self.len(), self.dim]),
            device,
        )
    }

    fn labels_u32(&self, what: &str) -> Result<Vec<u32>> {
        self.labels
            .iter()
            .map(|l| l.ok_or_else(|| Error::Config(format!("{what} set has unlabelled images"))))
            .collect()
    }
}

/// What to embed with: the backbone's pooled features, or the L2-normalised projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Backbone,
    Projection,
}

/// Embeds a dataset with a model in inference mode (BatchNorm running statistics). `progress` gets
/// (images done, total).
pub fn embed(
    encoder: &Encoder,
    dataset: Arc<Dataset>,
    aug: &AugmentConfig,
    batch_size: usize,
    output: Output,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Features> {
    let model = encoder.valid();
    let device = device.clone().inner();
    let total = dataset.len();
    let mut data = Vec::new();
    let mut labels = Vec::with_capacity(total);
    let mut dim = 0;
    for batch in Loader::epoch(
        dataset,
        Arc::new(aug.clone()),
        LoaderConfig::eval(batch_size),
        0,
    ) {
        let batch = batch?;
        let x = Tensor::<4>::from_data(
            TensorData::new(batch.views.original.clone(), batch.shape()),
            &device,
        );
        let f = match output {
            Output::Backbone => model.features(x),
            Output::Projection => model.forward(x),
        };
        dim = f.dims()[1];
        data.extend(f.into_data().to_host::<f32>()?);
        labels.extend(batch.labels);
        progress(labels.len(), total);
    }
    Ok(Features { dim, data, labels })
}

/// Indices of the `k` largest values of `row`, largest first, ties broken by the lower index.
/// On the host: burn's device `topk_with_indices` returns -1 indices on wgpu once k reaches
/// ~192 (the protocol's k is 200), and a host selection is exact and the same on every backend.
fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    let by_score = |a: &usize, b: &usize| row[*b].total_cmp(&row[*a]).then(a.cmp(b));
    let mut idx: Vec<usize> = (0..row.len()).collect();
    if k == 0 {
        return Vec::new();
    }
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, by_score);
        idx.truncate(k);
    }
    idx.sort_unstable_by(by_score);
    idx
}

/// Weighted kNN top-1 (k neighbours by cosine similarity, votes weighted by exp(sim / T)),
/// with `train` as the memory bank and `test` scored. Similarities are computed on `device`;
/// the neighbours are selected on the host.
pub fn knn_top1(
    train: &Features,
    test: &Features,
    k: usize,
    temperature: f32,
    device: &Device,
) -> Result<f32> {
    EvalOptions {
        knn_k: k,
        knn_t: temperature,
        probe_epochs: None,
    }
    .validate()?;
    let train_labels = train.labels_u32("kNN memory bank")?;
    let test_labels = test.labels_u32("kNN test")?;
    if train.dim != test.dim || train.is_empty() || test.is_empty() {
        return Err(Error::Config(
            "kNN needs non-empty train and test features of one width".into(),
        ));
    }
    let classes = train_labels
        .iter()
        .chain(&test_labels)
        .max()
        .map_or(0, |&m| m as usize + 1);
    let k = k.min(train.len());
    let device = device.clone().inner();
    let bank = l2_normalize(train.tensor(&device)).transpose();
    let mut correct = 0usize;
    let chunk = 256;
    for start in (0..test.len()).step_by(chunk) {
        let end = (start + chunk).min(test.len());
        let rows = Tensor::<2>::from_data(
            TensorData::new(
                test.data[start * test.dim..end * test.dim].to_vec(),
                [end - start, test.dim],
            ),
            &device,
        );
        let sim = l2_normalize(rows)
            .matmul(bank.clone())
            .into_data()
            .to_host::<f32>()?;
        for (r, row) in sim.chunks_exact(train.len()).enumerate() {
            // exp(sim / T) overflows f32 for T below ~0.011 (every class then ties at inf):
            // the votes are taken relative to the nearest neighbour, exp((sim - max) / T) <= 1,
            // in f64, which ranks the classes the same.
            let near = top_k(row, k);
            let top = near.first().map_or(0.0, |&n| row[n]) as f64;
            let mut votes = vec![0f64; classes];
            for n in near {
                votes[train_labels[n] as usize] +=
                    ((row[n] as f64 - top) / temperature as f64).exp();
            }
            let pred = votes
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i as u32);
            correct += (pred == Some(test_labels[start + r])) as usize;
        }
    }
    Ok(correct as f32 / test.len() as f32)
}

/// Both feature sets standardised per dimension with the train set's mean and standard deviation
/// (frozen features have arbitrary scales per dimension).
fn standardise(train: &Features, test: &Features) -> (Vec<f32>, Vec<f32>) {
    let d = train.dim;
    let n = train.len() as f64;
    let mut mean = vec![0f64; d];
    let mut var = vec![0f64; d];
    for row in train.data.chunks_exact(d) {
        row.iter()
            .enumerate()
            .for_each(|(j, &v)| mean[j] += v as f64 / n);
    }
    for row in train.data.chunks_exact(d) {
        row.iter()
            .enumerate()
            .for_each(|(j, &v)| var[j] += (v as f64 - mean[j]).powi(2) / n);
    }
    let std: Vec<f64> = var.iter().map(|v| v.sqrt().max(1e-6)).collect();
    let norm = |f: &Features| -> Vec<f32> {
        f.data
            .chunks_exact(d)
            .flat_map(|r| {
                r.iter()
                    .enumerate()
                    .map(|(j, &v)| ((v as f64 - mean[j]) / std[j]) as f32)
            })
            .collect()
    };
    (norm(train), norm(test))
}

/// Linear probe: a softmax classifier trained with Adam on standardised, frozen features.
pub fn linear_probe(
    train: &Features,
    test: &Features,
    epochs: usize,
    seed: u64,
    device: &Device,
) -> Result<f32> {
    let train_labels = train.labels_u32("linear probe train")?;
    let test_labels = test.labels_u32("linear probe test")?;
    let classes = train_labels
        .iter()
        .chain(&test_labels)
        .max()
        .map_or(0, |&m| m as usize + 1);
    let d = train.dim;
    let (xtr, xte) = standardise(train, test);
    let ad = device.clone().autodiff();
    // Zero initial weights: logistic regression is convex, so nothing is lost, and the probe then
    // never draws from the device's global generator, which tests running in parallel (and any
    // other user of the device) reseed and advance: same features, same accuracy, every time.
    let mut model: Linear = LinearConfig::new(d, classes)
        .with_initializer(burn::nn::Initializer::Zeros)
        .init(&ad);
    let mut optim = AdamConfig::new()
        .with_weight_decay(Some(burn::optim::decay::WeightDecayConfig::new(1e-4)))
        .init();
    let batch = 256usize;
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut rng = Rng::new(seed);
    let steps_per_epoch = train.len().div_ceil(batch);
    let total = (steps_per_epoch * epochs).max(1);
    let mut step = 0;
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(batch) {
            let x: Vec<f32> = chunk
                .iter()
                .flat_map(|&i| xtr[i * d..(i + 1) * d].iter().copied())
                .collect();
            let y: Vec<i64> = chunk.iter().map(|&i| train_labels[i] as i64).collect();
            let x = Tensor::<2>::from_data(TensorData::new(x, [chunk.len(), d]), &ad);
            let y = Tensor::<2, Int>::from_data(TensorData::new(y, [chunk.len(), 1]), &ad);
            let loss = log_softmax(model.forward(x), 1).gather(1, y).mean().neg();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let lr = 0.01 * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total as f64).cos());
            model = optim.step(lr, model, grads);
            step += 1;
        }
    }
    let model = model.valid();
    let plain = device.clone().inner();
    let x = Tensor::<2>::from_data(TensorData::new(xte, [test.len(), d]), &plain);
    let pred = model.forward(x).argmax(1).into_data().to_host::<i64>()?;
    let correct = pred
        .iter()
        .zip(&test_labels)
        .filter(|(p, t)| **p as u32 == **t)
        .count();
    Ok(correct as f32 / test.len() as f32)
}

/// Mean per-dimension standard deviation of L2-normalised embeddings: ~0 for a collapsed model,
/// ~1/sqrt(dim) for a healthy one.
pub fn embedding_std(f: &Features) -> f32 {
    let d = f.dim;
    let rows: Vec<Vec<f32>> = f
        .data
        .chunks_exact(d)
        .map(|r| {
            let n = r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            r.iter().map(|v| v / n).collect()
        })
        .collect();
    let n = rows.len() as f32;
    (0..d)
        .map(|j| {
            let m = rows.iter().map(|r| r[j]).sum::<f32>() / n;
            (rows.iter().map(|r| (r[j] - m).powi(2)).sum::<f32>() / n).sqrt()
        })
        .sum::<f32>()
        / d as f32
}

/// Scores of one encoder: kNN top-1, an optional linear probe, and the test features (reused for
/// embedding statistics).
pub struct Scores {
    pub knn_top1: f32,
    pub linear_top1: Option<f32>,
    pub test_features: Features,
}

/// How to score: weighted kNN (k, T) and an optional linear probe.
#[derive(Clone, Copy, Debug)]
pub struct EvalOptions {
    pub knn_k: usize,
    pub knn_t: f32,
    pub probe_epochs: Option<usize>,
}

impl EvalOptions {
    /// The protocol of the paper and of MoCo: weighted kNN, k=200, T=0.1.
    pub fn knn_only() -> Self {
        Self {
            knn_k: 200,
            knn_t: 0.1,
            probe_epochs: None,
        }
    }

    /// Refuses settings that would print a meaningless accuracy: k = 0, a temperature that is
    /// not a positive finite number, a probe of 0 epochs.
    pub fn validate(&self) -> Result<()> {
        if self.knn_k == 0 {
            return Err(Error::Config("kNN k must be at least 1".into()));
        }
        if !(self.knn_t.is_finite() && (1e-3..=1e3).contains(&self.knn_t)) {
            return Err(Error::Config(format!(
                "kNN temperature {} outside 0.001..=1000 (0.1 is the usual)",
                self.knn_t
            )));
        }
        if let Some(e) = self.probe_epochs
            && !(1..=MAX_PROBE_EPOCHS).contains(&e)
        {
            return Err(Error::Config(format!(
                "linear probe epochs {e} outside 1..={MAX_PROBE_EPOCHS} (30 is the usual)"
            )));
        }
        Ok(())
    }
}

/// More probe epochs than this is a typo, not a setting (10^12 used to run for ever).
pub const MAX_PROBE_EPOCHS: usize = 10_000;

/// Embeds bank and test with the backbone and scores them. `progress` gets ("bank" or "test",
/// images done, total).
pub fn evaluate(
    encoder: &Encoder,
    bank: &Arc<Dataset>,
    test: &Arc<Dataset>,
    aug: &AugmentConfig,
    device: &Device,
    opts: EvalOptions,
    progress: &mut dyn FnMut(&'static str, usize, usize),
) -> Result<Scores> {
    opts.validate()?;
    let fb = embed(
        encoder,
        bank.clone(),
        aug,
        512,
        Output::Backbone,
        device,
        &mut |d, n| progress("bank", d, n),
    )?;
    let ft = embed(
        encoder,
        test.clone(),
        aug,
        512,
        Output::Backbone,
        device,
        &mut |d, n| progress("test", d, n),
    )?;
    let knn_top1 = knn_top1(&fb, &ft, opts.knn_k, opts.knn_t, device)?;
    let linear_top1 = match opts.probe_epochs {
        Some(e) => Some(linear_probe(&fb, &ft, e, 0, device)?),
        None => None,
    };
    Ok(Scores {
        knn_top1,
        linear_top1,
        test_features: ft,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clusters(n: usize, seed: u64, noise: f32) -> Features {
        let mut rng = Rng::new(seed);
        let centers = [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
        ];
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let c = i % 3;
            data.extend(centers[c].iter().map(|v| v + noise * rng.normal() as f32));
            labels.push(Some(c as u32));
        }
        Features {
            dim: 4,
            data,
            labels,
        }
    }

    #[test]
    fn knn_and_probe_separate_clusters_and_fail_on_noise() {
        let dev = Device::flex();
        let (tr, te) = (clusters(300, 1, 0.1), clusters(90, 2, 0.1));
        assert!(knn_top1(&tr, &te, 20, 0.1, &dev).unwrap() > 0.95);
        let probe = linear_probe(&tr, &te, 20, 0, &dev).unwrap();
        assert!(probe > 0.95, "{probe}");
        // Same features, same accuracy: the probe draws nothing from the device's generator.
        assert_eq!(linear_probe(&tr, &te, 20, 0, &dev).unwrap(), probe);
        // Pure noise: chance level.
        let (nr, ne) = (clusters(300, 3, 50.0), clusters(300, 4, 50.0));
        let acc = knn_top1(&nr, &ne, 20, 0.1, &dev).unwrap();
        assert!(acc < 0.5, "{acc}");
    }

    #[test]
    fn knn_weighting_matches_hand_computation() {
        // Bank: two of class 0 near the query, three of class 1 farther: k=5 weighted votes.
        let bank = Features {
            dim: 2,
            data: vec![1.0, 0.1, 1.0, -0.1, 0.0, 1.0, 0.1, 1.0, -0.1, 1.0],
            labels: vec![Some(0), Some(0), Some(1), Some(1), Some(1)],
        };
        let q = Features {
            dim: 2,
            data: vec![1.0, 0.3],
            labels: vec![Some(0)],
        };
        let dev = Device::flex();
        // Sharp temperature: class 0's two close neighbours outweigh class 1's three.
        assert_eq!(knn_top1(&bank, &q, 5, 0.1, &dev).unwrap(), 1.0);
        // Flat temperature: the majority wins.
        assert_eq!(knn_top1(&bank, &q, 5, 100.0, &dev).unwrap(), 0.0);
    }

    #[test]
    fn top_k_is_exact_ordered_and_breaks_ties_by_index() {
        let row = [0.5, 0.9, -1.0, 0.9, 0.1, 0.7];
        assert_eq!(top_k(&row, 3), vec![1, 3, 5]);
        assert_eq!(top_k(&row, 6), vec![1, 3, 5, 0, 4, 2]);
        assert_eq!(top_k(&row, 1), vec![1]);
        // A long row against a full sort.
        let mut rng = Rng::new(9);
        let long: Vec<f32> = (0..5000).map(|_| rng.normal() as f32).collect();
        let mut all: Vec<usize> = (0..long.len()).collect();
        all.sort_by(|a, b| long[*b].total_cmp(&long[*a]));
        assert_eq!(top_k(&long, 200), all[..200].to_vec());
    }

    #[test]
    fn knn_refuses_meaningless_settings() {
        let dev = Device::flex();
        let (tr, te) = (clusters(30, 1, 0.1), clusters(9, 2, 0.1));
        for (k, t) in [
            (0, 0.1),
            (5, 0.0),
            (5, -1.0),
            (5, f32::NAN),
            (5, f32::INFINITY),
            (5, 1e-4),
            (5, 1e4),
        ] {
            let e = knn_top1(&tr, &te, k, t, &dev).unwrap_err();
            assert!(matches!(e, Error::Config(_)), "k {k} T {t}: {e}");
        }
        let zero_probe = EvalOptions {
            probe_epochs: Some(0),
            ..EvalOptions::knn_only()
        };
        assert!(zero_probe.validate().is_err());
        // k above the bank size uses the whole bank.
        assert!(knn_top1(&tr, &te, 500, 0.1, &dev).unwrap() > 0.95);
        // Sharp temperatures where exp(sim / T) overflows f32 (it used to give every class inf
        // and the last class the vote): the same clear clusters.
        for t in [0.01, 0.005, 0.001] {
            assert!(knn_top1(&tr, &te, 200, t, &dev).unwrap() > 0.95, "T {t}");
        }
    }

    #[test]
    fn embedding_std_detects_collapse() {
        let collapsed = Features {
            dim: 4,
            data: [1.0, 2.0, 3.0, 4.0].repeat(50),
            labels: vec![None; 50],
        };
        assert!(embedding_std(&collapsed) < 1e-6);
        let spread = clusters(300, 5, 0.5);
        assert!(embedding_std(&spread) > 0.2);
    }
}

//! "aug+" on the training device: the dataset stays resident on the device, the host samples each
//! view's parameters (a few numbers, exactly as the CPU loader does) and the pixels never leave the
//! device. Every step is a burn tensor op, so the same code runs as WGSL/SPIR-V/CUDA kernels on a
//! GPU, in the browser on WebGPU, and on the CPU backend (where the tests compare it with the CPU
//! pipeline, [`leoclr_data::augment::apply_view`], which stays the reference).
//!
//! Resampling and blur are linear and separable, so each is a pair of per-sample matrices built on
//! the device from the sampled box or sigma (`rows @ image @ colsᵀ`): one batched matmul each,
//! with the CPU's antialiasing taps and edge clamping reproduced exactly. Colour jitter runs in
//! four rounds; in round `r` each sample applies its own `r`-th operation and the others an
//! identity factor, which replays torchvision's per-image random order without per-image kernels.

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use leoclr_data::{AugmentConfig, Dataset, Loader, LoaderConfig, ViewParams, Views};

use crate::{Error, Result};

/// Where training views are made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AugmentOn {
    /// The CPU loader on worker threads: any dataset, the reference implementation.
    #[default]
    Cpu,
    /// The training device, from a resident copy of the dataset (images of one size).
    Device,
}

impl std::str::FromStr for AugmentOn {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "device" | "gpu" => Ok(Self::Device),
            other => Err(Error::Config(format!(
                "unknown augmentation place '{other}' (cpu, device)"
            ))),
        }
    }
}

impl std::fmt::Display for AugmentOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Device => "device",
        })
    }
}

/// A dataset uploaded once: [N, C, H, W] floats in [0, 1].
pub struct DeviceImages {
    pub images: Tensor<4>,
    pub labels: Vec<Option<u32>>,
    pub width: usize,
    pub height: usize,
    pub channels: usize,
}

impl DeviceImages {
    /// Uploads every image of `ds`. Needs one image size (IDX, CIFAR, STL-10; an image folder of
    /// mixed sizes must use the CPU loader).
    pub fn upload(ds: &Dataset, device: &Device) -> Result<Self> {
        if ds.is_empty() {
            return Err(Error::Config(
                "device augmentation of an empty dataset".into(),
            ));
        }
        let first = ds.get(0)?;
        let (w, h, c) = (first.width, first.height, ds.channels);
        let per = w * h * c;
        let bytes = ds.len().saturating_mul(per).saturating_mul(4);
        // Beyond this the host copy alone is a problem; the CPU loader streams instead.
        if bytes > (8usize << 30) {
            return Err(Error::Config(format!(
                "device augmentation keeps the dataset on the device: {} images of {w}x{h}x{c} need {:.1} GiB; use the CPU loader (--augment-on cpu)",
                ds.len(),
                bytes as f64 / (1u64 << 30) as f64
            )));
        }
        let mut data = Vec::with_capacity(ds.len() * per);
        for i in 0..ds.len() {
            let img = if i == 0 { first.clone() } else { ds.get(i)? };
            if img.width != w || img.height != h || img.channels != c {
                return Err(Error::Config(format!(
                    "device augmentation needs images of one size: {} is {}x{}x{}, the first was {w}x{h}x{c}; use the CPU loader (--augment-on cpu)",
                    ds.describe(i),
                    img.width,
                    img.height,
                    img.channels
                )));
            }
            // HWC bytes to CHW floats.
            for ch in 0..c {
                data.extend(
                    img.data
                        .iter()
                        .skip(ch)
                        .step_by(c)
                        .map(|&v| v as f32 / 255.0),
                );
            }
        }
        let images = Tensor::from_data(TensorData::new(data, [ds.len(), c, h, w]), device);
        Ok(Self {
            images,
            labels: (0..ds.len()).map(|i| ds.label(i)).collect(),
            width: w,
            height: h,
            channels: c,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images of `ids`, gathered on the device.
    pub fn gather(&self, ids: &[usize]) -> Tensor<4> {
        let device = self.images.device();
        let idx: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [ids.len()]), &device);
        self.images.clone().select(0, idx)
    }
}

/// A training batch whose views were made on the device.
pub struct DeviceBatch {
    pub ids: Vec<usize>,
    /// Every view (normalised NCHW); `None` where the method does not read it.
    pub views: Views<Option<Tensor<4>>>,
    pub params: Vec<Views<ViewParams>>,
}

impl DeviceBatch {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Builds batch `index` of `epoch` on the device: the same ids and the same sampled parameters as
/// the CPU loader's batch, so a seed trains the same way with either pipeline.
pub fn device_batch(
    images: &DeviceImages,
    aug: &AugmentConfig,
    cfg: &LoaderConfig,
    order: &[usize],
    epoch: usize,
    index: usize,
    needed: Views<bool>,
) -> DeviceBatch {
    let ids = Loader::batch_ids(order, cfg, index).to_vec();
    let params: Vec<Views<ViewParams>> = ids
        .iter()
        .map(|&id| Loader::sample_params(images.width, images.height, aug, cfg.seed, epoch, id))
        .collect();
    let originals = images.gather(&ids);
    let views = needed.map(|v, needed| {
        needed.then(|| {
            let p: Vec<&ViewParams> = params.iter().map(|p| &p[v]).collect();
            augment(originals.clone(), &p, aug)
        })
    });
    DeviceBatch { ids, views, params }
}

/// Renders views of a batch of [B, C, H, W] images in [0, 1] with the given parameters (one per
/// image): normalised [B, C, S, S], as [`leoclr_data::augment::apply_view`] renders each.
pub fn augment(images: Tensor<4>, params: &[&ViewParams], cfg: &AugmentConfig) -> Tensor<4> {
    let [b, c, h, w] = images.dims();
    assert_eq!(b, params.len(), "one parameter set per image");
    let device = images.device();
    let s = cfg.size;
    let spans =
        |span: fn(&ViewParams) -> (f32, f32)| params.iter().map(|p| span(p)).collect::<Vec<_>>();
    let rows = resample_matrix(
        &device,
        h,
        s,
        &spans(|p| (p.crop.y, p.crop.h)),
        &vec![false; b],
    );
    let flips: Vec<bool> = params.iter().map(|p| p.flipped).collect();
    let cols = resample_matrix(&device, w, s, &spans(|p| (p.crop.x, p.crop.w)), &flips);
    let mut x = separable(images, rows, cols);
    if params.iter().any(|p| p.jitter.is_some()) {
        x = jitter(x, params, c);
    }
    if c == 3 && params.iter().any(|p| p.grayscale) {
        let g = per_sample(&device, params.iter().map(|p| p.grayscale as u8 as f32));
        let l = luma(&x).expand([b, 3, s, s]);
        x = x.clone() + (l - x) * g;
    }
    if params.iter().any(|p| p.blur_sigma.is_some()) {
        let k = blur_matrix(
            &device,
            s,
            &params.iter().map(|p| p.blur_sigma).collect::<Vec<_>>(),
        );
        x = separable(x, k.clone(), k);
    }
    let mean = values(&device, cfg.mean.iter().copied()).reshape([1, c, 1, 1]);
    let inv_std = values(&device, cfg.std.iter().map(|v| 1.0 / v)).reshape([1, c, 1, 1]);
    (x - mean) * inv_std
}

/// Host values as a 1-D device tensor (per-sample parameters, per-channel statistics).
fn values(device: &Device, v: impl Iterator<Item = f32>) -> Tensor<1> {
    let v: Vec<f32> = v.collect();
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

/// One value per sample as a [B, 1, 1, 1] tensor.
fn per_sample(device: &Device, v: impl Iterator<Item = f32>) -> Tensor<4> {
    let v = values(device, v);
    let n = v.dims()[0];
    v.reshape([n, 1, 1, 1])
}

/// `out[b, c] = rows[b] @ x[b, c] @ cols[b]ᵀ` for x [B, C, H, W], rows [B, S, H], cols [B, T, W].
fn separable(x: Tensor<4>, rows: Tensor<3>, cols: Tensor<3>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let s = rows.dims()[1];
    let t = cols.dims()[1];
    // Along W: [B, C*H, W] @ [B, W, T].
    let x = x.reshape([b, c * h, w]).matmul(cols.swap_dims(1, 2));
    // Along H: [B, S, H] @ [B, H, C*T].
    let x = x
        .reshape([b, c, h, t])
        .swap_dims(1, 2)
        .reshape([b, h, c * t]);
    rows.matmul(x).reshape([b, s, c, t]).swap_dims(1, 2)
}

/// A column of `0..n` as floats, shaped [1, n, 1] or [1, 1, n].
fn ramp(device: &Device, lo: i64, hi: i64, along: usize) -> Tensor<3> {
    let v = Tensor::<1, Int>::arange(lo..hi, device).float();
    let n = (hi - lo) as usize;
    if along == 1 {
        v.reshape([1, n, 1])
    } else {
        v.reshape([1, 1, n])
    }
}

/// Folds taps over the padded range `-pad..len+pad` onto the clamped source pixel: [len+2pad, len].
fn clamp_fold(device: &Device, len: usize, pad: usize) -> Tensor<2> {
    let ext = len + 2 * pad;
    let mut m = vec![0f32; ext * len];
    for j in 0..ext {
        let src = (j as i64 - pad as i64).clamp(0, len as i64 - 1) as usize;
        m[j * len + src] = 1.0;
    }
    Tensor::from_data(TensorData::new(m, [ext, len]), device)
}

/// Per-sample [B, out, len] matrices of the CPU's triangle-filter taps (antialiased when shrinking,
/// bilinear when growing, out-of-range taps clamped onto the edge pixel, weights normalised), for
/// the span `(start, length)` of each sample; `flip` mirrors the output.
fn resample_matrix(
    device: &Device,
    len: usize,
    out: usize,
    spans: &[(f32, f32)],
    flip: &[bool],
) -> Tensor<3> {
    let b = spans.len();
    let scales: Vec<f32> = spans.iter().map(|&(_, l)| l / out as f32).collect();
    let max_support = scales.iter().cloned().fold(1.0f32, f32::max);
    let pad = max_support.ceil() as usize + 1;
    let col = |v: &mut dyn Iterator<Item = f32>| values(device, v).reshape([b, 1, 1]);
    let start = col(&mut spans.iter().map(|s| s.0));
    let scale = col(&mut scales.iter().copied());
    let inv_support = col(&mut scales.iter().map(|s| 1.0 / s.max(1.0)));
    let flip = col(&mut flip.iter().map(|&f| f as u8 as f32));
    // Output index, mirrored where flipped: o + f * (out - 1 - 2o).
    let o = ramp(device, 0, out as i64, 1);
    let o = o.clone() + flip * (o.mul_scalar(-2.0).add_scalar(out as f32 - 1.0));
    let center = start + (o.add_scalar(0.5)) * scale - 0.5;
    let j = ramp(device, -(pad as i64), (len + pad) as i64, 2);
    let wgt = (-(j - center).abs() * inv_support)
        .add_scalar(1.0)
        .clamp_min(0.0);
    let total = wgt.clone().sum_dim(2);
    let ext = len + 2 * pad;
    let folded = wgt
        .reshape([b * out, ext])
        .matmul(clamp_fold(device, len, pad));
    folded.reshape([b, out, len]) / total
}

/// Per-sample [B, S, S] Gaussian blur matrices (radius ceil(3σ), at least 1, edges clamped, as
/// the CPU blur); samples without blur get the identity.
fn blur_matrix(device: &Device, s: usize, sigmas: &[Option<f32>]) -> Tensor<3> {
    let b = sigmas.len();
    let radius = |sg: f32| ((3.0 * sg).ceil() as usize).max(1);
    let pad = sigmas
        .iter()
        .flatten()
        .map(|&sg| radius(sg))
        .max()
        .unwrap_or(1);
    let col = |v: &mut dyn Iterator<Item = f32>| values(device, v).reshape([b, 1, 1]);
    // 1 / (2σ²); unblurred rows use a huge value so only the centre tap survives (e^-1e9 = 0).
    let inv2s2 = col(&mut sigmas
        .iter()
        .map(|s| s.map_or(1e9, |sg| 1.0 / (2.0 * sg * sg))));
    let r = col(&mut sigmas.iter().map(|s| s.map_or(1.0, |sg| radius(sg) as f32)));
    let o = ramp(device, 0, s as i64, 1);
    let j = ramp(device, -(pad as i64), (s + pad) as i64, 2);
    let d = j - o;
    let inside = d.clone().abs().lower_equal(r).float();
    let wgt = (-(d.clone() * d) * inv2s2).exp() * inside;
    let total = wgt.clone().sum_dim(2);
    let ext = s + 2 * pad;
    let folded = wgt.reshape([b * s, ext]).matmul(clamp_fold(device, s, pad));
    folded.reshape([b, s, s]) / total
}

/// Rec. 601 luma of [B, 3, S, S]: [B, 1, S, S].
fn luma(x: &Tensor<4>) -> Tensor<4> {
    let ch = |i: usize| x.clone().narrow(1, i, 1);
    ch(0).mul_scalar(0.299) + ch(1).mul_scalar(0.587) + ch(2).mul_scalar(0.114)
}

/// ColorJitter with per-sample factors and order; values stay in [0, 1].
fn jitter(mut x: Tensor<4>, params: &[&ViewParams], c: usize) -> Tensor<4> {
    let device = x.device();
    for round in 0..4 {
        // Factor of operation `op` for each sample in this round, or the identity.
        let factor = |op: u8, identity: f32| -> Option<Tensor<4>> {
            let v: Vec<f32> = params
                .iter()
                .map(|p| match p.jitter {
                    Some(f) if p.jitter_order[round] == op => f[op as usize],
                    _ => identity,
                })
                .collect();
            v.iter()
                .any(|&f| f != identity)
                .then(|| per_sample(&device, v.into_iter()))
        };
        if let Some(f) = factor(0, 1.0) {
            x = (x * f).clamp(0.0, 1.0);
        }
        if let Some(f) = factor(1, 1.0) {
            let mean = if c == 3 {
                luma(&x).mean_dim(2).mean_dim(3)
            } else {
                x.clone().mean_dim(1).mean_dim(2).mean_dim(3)
            };
            x = blend(x, mean, f);
        }
        if c == 3 {
            if let Some(f) = factor(2, 1.0) {
                let g = luma(&x);
                x = blend(x, g, f);
            }
            if let Some(f) = factor(3, 0.0) {
                x = hue_shift(x, f);
            }
        }
    }
    x
}

/// `clamp(f * x + (1 - f) * other, 0, 1)`, `other` broadcast over x.
fn blend(x: Tensor<4>, other: Tensor<4>, f: Tensor<4>) -> Tensor<4> {
    let dims = x.dims();
    let other = other.expand(dims);
    let one_minus = f.clone().neg().add_scalar(1.0);
    (x * f + other * one_minus).clamp(0.0, 1.0)
}

/// Hue rotation through HSV, as the CPU's `rgb_to_hsv` / `hsv_to_rgb` (shift 0 leaves pixels as
/// they are up to rounding).
fn hue_shift(x: Tensor<4>, shift: Tensor<4>) -> Tensor<4> {
    let ch = |i: usize| x.clone().narrow(1, i, 1);
    let (r, g, bl) = (ch(0), ch(1), ch(2));
    let max = r.clone().max_pair(g.clone()).max_pair(bl.clone());
    let min = r.clone().min_pair(g.clone()).min_pair(bl.clone());
    let d = max.clone() - min;
    let zero_d = d.clone().equal_elem(0.0);
    let safe_d = d.clone().mask_fill(zero_d.clone(), 1.0);
    let hr = (g.clone() - bl.clone()) / safe_d.clone();
    // rem_euclid(6) of a value in [-1, 1].
    let hr = hr.clone() + hr.lower_elem(0.0).float().mul_scalar(6.0);
    let hg = (bl.clone() - r.clone()) / safe_d.clone() + 2.0;
    let hb = (r.clone() - g.clone()) / safe_d + 4.0;
    let is_r = max.clone().equal(r);
    let is_g = max.clone().equal(g);
    let h = hb.mask_where(is_g, hg).mask_where(is_r, hr).div_scalar(6.0);
    let h = h.mask_fill(zero_d, 0.0);
    let zero_max = max.clone().equal_elem(0.0);
    let sat = (d / max.clone().mask_fill(zero_max.clone(), 1.0)).mask_fill(zero_max, 0.0);
    let v = max;
    // Back to RGB with the shifted hue.
    let h = h + shift;
    let h = h.clone() - h.floor();
    let h6 = h.mul_scalar(6.0);
    let i = h6.clone().floor();
    let f = h6 - i.clone();
    let i = i.clone().mask_fill(i.greater_equal_elem(6.0), 0.0);
    let p = v.clone() * sat.clone().neg().add_scalar(1.0);
    let q = v.clone() * (sat.clone() * f.clone()).neg().add_scalar(1.0);
    let t = v.clone() * (sat * f.neg().add_scalar(1.0)).neg().add_scalar(1.0);
    let m: Vec<Tensor<4>> = (0..6)
        .map(|k| i.clone().equal_elem(k as f32).float())
        .collect();
    let pick = |vals: [&Tensor<4>; 6]| {
        vals.iter()
            .zip(&m)
            .map(|(v, m)| (*v).clone() * m.clone())
            .fold(v.zeros_like(), |a, b| a + b)
    };
    let r = pick([&v, &q, &p, &p, &t, &v]);
    let g = pick([&t, &v, &v, &q, &p, &p]);
    let b = pick([&p, &p, &t, &v, &v, &q]);
    Tensor::cat(vec![r, g, b], 1)
}

/// The device pipeline of one epoch, batch by batch, in the CPU loader's order.
pub struct DeviceEpoch {
    pub images: Arc<DeviceImages>,
    pub aug: Arc<AugmentConfig>,
    pub cfg: LoaderConfig,
    pub epoch: usize,
    pub order: Vec<usize>,
    pub needed: Views<bool>,
    next: usize,
    total: usize,
}

impl DeviceEpoch {
    pub fn new(
        images: Arc<DeviceImages>,
        aug: Arc<AugmentConfig>,
        cfg: LoaderConfig,
        epoch: usize,
        needed: Views<bool>,
    ) -> Self {
        let order = Loader::order(images.len(), &cfg, epoch);
        let total = Loader::num_batches(images.len(), &cfg);
        Self {
            images,
            aug,
            cfg,
            epoch,
            order,
            needed,
            next: 0,
            total,
        }
    }
}

impl Iterator for DeviceEpoch {
    type Item = DeviceBatch;

    fn next(&mut self) -> Option<DeviceBatch> {
        if self.next >= self.total {
            return None;
        }
        let b = device_batch(
            &self.images,
            &self.aug,
            &self.cfg,
            &self.order,
            self.epoch,
            self.next,
            self.needed,
        );
        self.next += 1;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leoclr_data::augment::apply_view;
    use leoclr_data::{DatasetSpec, ImageU8, OriginalAug, Rng, Split};

    /// A structured test image: gradients, a bright block and some noise, so crops, flips, jitter
    /// and blur all change the pixels.
    fn test_image(w: usize, h: usize, c: usize, seed: u64) -> ImageU8 {
        let mut rng = Rng::new(seed);
        let mut data = Vec::with_capacity(w * h * c);
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    let block = (x > w / 3 && x < w / 2 && y > h / 4) as u32 * 90;
                    let v = (x * 200 / w + ch * 40 + y * 30 / h) as u32 + block;
                    let noise = rng.below(24) as u32;
                    data.push((v + noise).min(255) as u8);
                }
            }
        }
        ImageU8::new(w, h, c, data)
    }

    /// [B, C, H, W] in [0, 1] from images of one size.
    fn stack(imgs: &[ImageU8], device: &Device) -> Tensor<4> {
        let (w, h, c) = (imgs[0].width, imgs[0].height, imgs[0].channels);
        let mut v = Vec::new();
        for img in imgs {
            for ch in 0..c {
                v.extend(
                    img.data
                        .iter()
                        .skip(ch)
                        .step_by(c)
                        .map(|&p| p as f32 / 255.0),
                );
            }
        }
        Tensor::from_data(TensorData::new(v, [imgs.len(), c, h, w]), device)
    }

    fn device_views(imgs: &[ImageU8], params: &[ViewParams], cfg: &AugmentConfig) -> Vec<Vec<f32>> {
        let dev = Device::flex();
        let p: Vec<&ViewParams> = params.iter().collect();
        let out = augment(stack(imgs, &dev), &p, cfg)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let per = out.len() / imgs.len();
        out.chunks_exact(per).map(|c| c.to_vec()).collect()
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn device_views_equal_cpu_views_for_the_same_parameters() {
        // Non-square images; shrinking (antialiased) and growing (bilinear); every operation on.
        for (c, size, always) in [(3, 12, true), (3, 30, true), (3, 16, false), (1, 20, true)] {
            let mut cfg = AugmentConfig::aug_plus(size, c);
            if always {
                cfg.jitter_p = 1.0;
                cfg.gray_p = 0.3;
                cfg.blur_p = 1.0;
            }
            let imgs: Vec<ImageU8> = (0..24).map(|i| test_image(23, 17, c, i)).collect();
            let mut rng = Rng::new(size as u64);
            let mut params: Vec<ViewParams> = (0..24)
                .map(|_| leoclr_data::augment::sample_crop_params(23, 17, &cfg, &mut rng))
                .collect();
            // And the original view, flipped and not.
            params[0] = ViewParams::original(23, 17, true);
            params[1] = ViewParams::original(23, 17, false);
            let dev = device_views(&imgs, &params, &cfg);
            let mut worst = 0f32;
            for ((img, p), d) in imgs.iter().zip(&params).zip(&dev) {
                let cpu = apply_view(img, &cfg, p);
                let diff = max_abs_diff(&cpu, d);
                assert!(diff < 1e-4, "c={c} size={size} {p:?}: max diff {diff}");
                worst = worst.max(diff);
            }
            eprintln!("c={c} size={size}: worst |cpu - device| = {worst:e}");
            if always {
                assert!(
                    params
                        .iter()
                        .all(|p| p.blur_sigma.is_some() || p.crop.w == 23.0)
                );
            }
        }
    }

    /// Two-sample Kolmogorov-Smirnov statistic.
    fn ks(mut a: Vec<f32>, mut b: Vec<f32>) -> f32 {
        a.sort_by(f32::total_cmp);
        b.sort_by(f32::total_cmp);
        let (mut i, mut j, mut d) = (0, 0, 0f32);
        while i < a.len() && j < b.len() {
            if a[i] <= b[j] {
                i += 1;
            } else {
                j += 1;
            }
            d = d.max((i as f32 / a.len() as f32 - j as f32 / b.len() as f32).abs());
        }
        d
    }

    /// Per-view mean, standard deviation and mean horizontal gradient of channel 0: brightness,
    /// contrast and sharpness, what jitter, grayscale and blur move.
    fn stats(v: &[f32], size: usize) -> [f32; 3] {
        let ch0 = &v[..size * size];
        let n = ch0.len() as f32;
        let mean = ch0.iter().sum::<f32>() / n;
        let std = (ch0.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n).sqrt();
        let grad = ch0
            .chunks_exact(size)
            .flat_map(|r| r.windows(2).map(|w| (w[1] - w[0]).abs()))
            .sum::<f32>()
            / (size * (size - 1)) as f32;
        [mean, std, grad]
    }

    #[test]
    fn device_pipeline_agrees_statistically_with_the_cpu_pipeline() {
        // Independent draws on each side (different seeds): the two pipelines must produce the
        // same distribution of views, not just the same views for the same parameters.
        let n = 400;
        let size = 16;
        let cfg = AugmentConfig::aug_plus(size, 3);
        let img = test_image(32, 32, 3, 7);
        let imgs = vec![img.clone(); n];
        let cpu: Vec<[f32; 3]> = (0..n)
            .map(|i| {
                let v =
                    leoclr_data::augment::crop_view(&img, &cfg, &mut Rng::derive(1, &[i as u64]));
                stats(&v.pixels, size)
            })
            .collect();
        let draw = |seed: u64| -> Vec<ViewParams> {
            (0..n)
                .map(|i| {
                    leoclr_data::augment::sample_crop_params(
                        32,
                        32,
                        &cfg,
                        &mut Rng::derive(seed, &[i as u64]),
                    )
                })
                .collect()
        };
        let dev: Vec<[f32; 3]> = device_views(&imgs, &draw(2), &cfg)
            .iter()
            .map(|v| stats(v, size))
            .collect();
        // alpha = 0.001: c(alpha) * sqrt(2 / n).
        let critical = 1.95 * (2.0 / n as f32).sqrt();
        for k in 0..3 {
            let d = ks(
                cpu.iter().map(|s| s[k]).collect(),
                dev.iter().map(|s| s[k]).collect(),
            );
            eprintln!("statistic {k}: KS D = {d:.3} (critical {critical:.3})");
            assert!(d < critical, "statistic {k}: KS D = {d} >= {critical}");
        }
        // The test has power: a device pipeline that forgot jitter or blur is rejected.
        for broken in ["jitter", "blur"] {
            let params: Vec<ViewParams> = draw(2)
                .into_iter()
                .map(|mut p| {
                    match broken {
                        "jitter" => p.jitter = None,
                        _ => p.blur_sigma = None,
                    }
                    p
                })
                .collect();
            let bad: Vec<[f32; 3]> = device_views(&imgs, &params, &cfg)
                .iter()
                .map(|v| stats(v, size))
                .collect();
            let worst = (0..3)
                .map(|k| {
                    ks(
                        cpu.iter().map(|s| s[k]).collect(),
                        bad.iter().map(|s| s[k]).collect(),
                    )
                })
                .fold(0.0, f32::max);
            eprintln!("without {broken}: largest KS D = {worst:.3}");
            assert!(
                worst > critical,
                "a pipeline without {broken} passed: D = {worst}"
            );
        }
    }

    fn idx_fixture(dir: &std::path::Path, n: usize, side: usize) {
        let imgs: Vec<u8> = (0..n * side * side).map(|i| (i * 37 % 251) as u8).collect();
        std::fs::write(
            dir.join("train-images-idx3-ubyte"),
            leoclr_data::idx::encode(&[n, side, side], &imgs),
        )
        .unwrap();
        let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        std::fs::write(
            dir.join("train-labels-idx1-ubyte"),
            leoclr_data::idx::encode(&[n], &labels),
        )
        .unwrap();
    }

    #[test]
    fn device_batches_are_the_cpu_loaders_batches() {
        let dir = tempfile::tempdir().unwrap();
        idx_fixture(dir.path(), 7, 10);
        let ds = Arc::new(Dataset::open(&DatasetSpec::new(dir.path(), Split::Train)).unwrap());
        // The original resized and flipped (ours), and augmented like the crops (the paper's).
        for original_aug in [OriginalAug::Flip, OriginalAug::Aug] {
            let aug = Arc::new(AugmentConfig {
                original_aug,
                ..AugmentConfig::small(8, 1)
            });
            let cfg = LoaderConfig::train(3, 11);
            let images = Arc::new(DeviceImages::upload(&ds, &Device::flex()).unwrap());
            assert_eq!((images.len(), images.width, images.channels), (7, 10, 1));
            let host: Vec<leoclr_data::Batch> =
                Loader::epoch(ds.clone(), aug.clone(), cfg.clone(), 2)
                    .map(|b| b.unwrap())
                    .collect();
            let dev: Vec<DeviceBatch> =
                DeviceEpoch::new(images, aug, cfg, 2, Views::from_fn(|_| true)).collect();
            // 7 images in batches of 3: 3, 3 and a last one of 1, dropped (BatchNorm).
            assert_eq!(host.len(), 2);
            assert_eq!(dev.len(), host.len());
            let mut jittered_originals = 0;
            for (h, d) in host.iter().zip(dev) {
                assert_eq!(h.ids, d.ids);
                assert_eq!(h.params, d.params);
                jittered_originals += h
                    .params
                    .iter()
                    .filter(|p| p.original.jitter.is_some())
                    .count();
                let views = d
                    .views
                    .map(|_, v| v.unwrap().into_data().try_to_vec::<f32>().unwrap());
                for (v, hv) in h.views.iter() {
                    assert!(max_abs_diff(hv, &views[v]) < 1e-4, "{v}");
                }
            }
            assert_eq!(
                jittered_originals > 0,
                original_aug == OriginalAug::Aug,
                "{original_aug}: {jittered_originals} originals jittered"
            );
        }
    }

    #[test]
    fn first_losses_match_with_either_pipeline() {
        use crate::config::{Method, OriginalBranch, TrainConfig};
        use crate::session::{Feed, ReadLoss, Session, fit_epoch};
        let dir = tempfile::tempdir().unwrap();
        idx_fixture(dir.path(), 8, 12);
        let ds = Arc::new(Dataset::open(&DatasetSpec::new(dir.path(), Split::Train)).unwrap());
        let aug = Arc::new(AugmentConfig::small(12, 1));
        let lc = LoaderConfig::train(4, 3);
        let losses = |device_feed: bool| {
            let cfg = TrainConfig::tiny_test(
                1,
                Method::Leoclr {
                    original_branch: OriginalBranch::Key,
                },
            );
            let t = crate::Trainer::new(cfg, &Device::flex(), 2).unwrap();
            let feed = if device_feed {
                Feed::Device(Arc::new(DeviceImages::upload(&ds, t.device()).unwrap()))
            } else {
                Feed::Host
            };
            let mut session = Session::new(t, ds.clone(), aug.clone(), lc.clone(), feed);
            session.read_loss = ReadLoss::Every(1);
            let mut seen = Vec::new();
            fit_epoch(&mut session, None, &mut |e| {
                seen.push(e.loss.unwrap());
                true
            })
            .unwrap();
            seen
        };
        let (host, dev) = (losses(false), losses(true));
        assert_eq!(host.len(), 2);
        for (h, d) in host.iter().zip(&dev) {
            assert!(
                (h - d).abs() < 1e-3 * h.abs(),
                "host {host:?} device {dev:?}"
            );
        }
    }

    #[test]
    fn mixed_image_sizes_are_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        for (name, w) in [("a.png", 8u32), ("b.png", 9)] {
            image::GrayImage::new(w, 8)
                .save(dir.path().join(name))
                .unwrap();
        }
        let ds = Dataset::open(&DatasetSpec::new(dir.path(), Split::Train)).unwrap();
        let err = DeviceImages::upload(&ds, &Device::flex())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("one size") && err.contains("b.png") && err.contains("--augment-on cpu"),
            "{err}"
        );
    }

    #[test]
    fn augment_on_parses() {
        assert_eq!("device".parse::<AugmentOn>().unwrap(), AugmentOn::Device);
        assert_eq!("cpu".parse::<AugmentOn>().unwrap(), AugmentOn::Cpu);
        assert!(
            "tpu"
                .parse::<AugmentOn>()
                .unwrap_err()
                .to_string()
                .contains("cpu, device")
        );
    }
}

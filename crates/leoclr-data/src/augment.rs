//! MoCo-v2 "aug+" augmentation on the CPU, and the LeOCLR original view.
//!
//! Every sampled parameter is returned with the view ([`ViewParams`]), crop boxes in original-image
//! pixel coordinates, so the app can draw them and tests can check them.

use serde::{Deserialize, Serialize};

use crate::image::ImageU8;
use crate::rng::Rng;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Output side in pixels (views are square).
    pub size: usize,
    /// RandomResizedCrop area fraction range.
    pub scale: (f64, f64),
    /// RandomResizedCrop aspect ratio range.
    pub ratio: (f64, f64),
    pub flip_p: f64,
    /// ColorJitter strengths: brightness, contrast, saturation, hue.
    pub jitter: [f64; 4],
    pub jitter_p: f64,
    pub gray_p: f64,
    pub blur_p: f64,
    /// Gaussian blur sigma range, in output pixels.
    pub blur_sigma: (f64, f64),
    /// Random horizontal flip of the original view.
    pub original_flip_p: f64,
    /// What else the original view gets besides resize + flip (absent in old run files: flip).
    #[serde(default)]
    pub original_aug: OriginalAug,
    /// Per-channel normalisation; one entry per input channel.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl AugmentConfig {
    /// MoCo-v2 "aug+" at the given output size.
    pub fn aug_plus(size: usize, channels: usize) -> Self {
        let (mean, std) = match channels {
            // ImageNet statistics, the usual choice for RGB.
            3 => (vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225]),
            // Fashion-MNIST statistics.
            _ => (vec![0.286; channels], vec![0.353; channels]),
        };
        Self {
            size,
            scale: (0.2, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            flip_p: 0.5,
            jitter: [0.4, 0.4, 0.4, 0.1],
            jitter_p: 0.8,
            gray_p: 0.2,
            blur_p: 0.5,
            blur_sigma: (0.1, 2.0),
            original_flip_p: 0.5,
            original_aug: OriginalAug::Flip,
            mean,
            std,
        }
    }

    /// "aug+" for small images (CIFAR, Fashion-MNIST): no blur, as in the MoCo CIFAR recipes, since a
    /// 2-pixel sigma wipes out a 28-pixel image.
    pub fn small(size: usize, channels: usize) -> Self {
        Self {
            blur_p: 0.0,
            ..Self::aug_plus(size, channels)
        }
    }

    /// Refuses settings the pipeline cannot honour (sizes, probabilities, normalisation).
    pub fn validate(&self, channels: usize) -> crate::error::Result<()> {
        self.check(channels).map_err(crate::DataError::Config)
    }

    fn check(&self, channels: usize) -> Result<(), String> {
        let in01 = |v: f64| (0.0..=1.0).contains(&v);
        if self.size == 0 || self.size > 1024 {
            return Err(format!("view size {} outside 1..=1024", self.size));
        }
        if !(self.scale.0 > 0.0 && self.scale.0 <= self.scale.1 && self.scale.1 <= 1.0) {
            return Err(format!(
                "crop scale {:?} must satisfy 0 < min <= max <= 1",
                self.scale
            ));
        }
        if !(self.ratio.0 > 0.0 && self.ratio.0 <= self.ratio.1) {
            return Err(format!(
                "crop ratio {:?} must satisfy 0 < min <= max",
                self.ratio
            ));
        }
        for p in [
            self.flip_p,
            self.jitter_p,
            self.gray_p,
            self.blur_p,
            self.original_flip_p,
        ] {
            if !in01(p) {
                return Err(format!("probability {p} outside [0, 1]"));
            }
        }
        if self.jitter.iter().any(|&j| !(0.0..=1.0).contains(&j)) || self.jitter[3] > 0.5 {
            return Err(format!(
                "jitter {:?} outside [0, 1] (hue at most 0.5)",
                self.jitter
            ));
        }
        if self.mean.len() != channels || self.std.len() != channels {
            return Err(format!(
                "normalisation has {} means / {} stds for {channels} channels",
                self.mean.len(),
                self.std.len()
            ));
        }
        if self.std.iter().any(|&s| s <= 0.0) {
            return Err("normalisation std must be positive".into());
        }
        Ok(())
    }
}

/// How the uncropped original view is augmented.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OriginalAug {
    /// Resized and randomly flipped, nothing else: the project's default, measured at small scale.
    #[default]
    Flip,
    /// The crops' whole "aug+" pipeline except the crop (flip, colour jitter, grayscale and blur
    /// with the crops' probabilities): the paper's "random augmentation for all the views".
    Aug,
}

impl std::str::FromStr for OriginalAug {
    type Err = crate::DataError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "flip" => Ok(Self::Flip),
            "aug" => Ok(Self::Aug),
            _ => Err(crate::DataError::Config(format!(
                "unknown original-view augmentation '{s}' (flip, aug)"
            ))),
        }
    }
}

impl std::fmt::Display for OriginalAug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Flip => "flip",
            Self::Aug => "aug",
        })
    }
}

/// A crop rectangle in original-image pixel coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CropBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// Everything sampled for one view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewParams {
    pub crop: CropBox,
    pub flipped: bool,
    /// Brightness, contrast, saturation factors and hue shift, when jitter was applied.
    pub jitter: Option<[f32; 4]>,
    pub grayscale: bool,
    pub blur_sigma: Option<f32>,
    /// The order the four jitter operations ran in (0 brightness, 1 contrast, 2 saturation, 3 hue):
    /// torchvision shuffles it per view, and the device pipeline must replay it.
    #[serde(default = "identity_order")]
    pub jitter_order: [u8; 4],
}

fn identity_order() -> [u8; 4] {
    [0, 1, 2, 3]
}

impl ViewParams {
    /// The whole image, resized, optionally flipped: the LeOCLR original view.
    pub fn original(w: usize, h: usize, flipped: bool) -> Self {
        Self {
            crop: CropBox {
                x: 0.0,
                y: 0.0,
                w: w as f32,
                h: h as f32,
            },
            flipped,
            jitter: None,
            grayscale: false,
            blur_sigma: None,
            jitter_order: identity_order(),
        }
    }
}

/// A view ready for the encoder: normalised CHW floats.
#[derive(Clone, Debug)]
pub struct View {
    pub pixels: Vec<f32>,
    pub params: ViewParams,
}

/// torchvision's `RandomResizedCrop.get_params`.
pub fn sample_crop(
    w: usize,
    h: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
    rng: &mut Rng,
) -> CropBox {
    let area = (w * h) as f64;
    let (lr0, lr1) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * rng.uniform(scale.0, scale.1);
        let aspect = rng.uniform(lr0, lr1).exp();
        let cw = (target * aspect).sqrt().round() as usize;
        let ch = (target / aspect).sqrt().round() as usize;
        if cw > 0 && cw <= w && ch > 0 && ch <= h {
            let y = rng.below((h - ch + 1) as u64) as usize;
            let x = rng.below((w - cw + 1) as u64) as usize;
            return CropBox {
                x: x as f32,
                y: y as f32,
                w: cw as f32,
                h: ch as f32,
            };
        }
    }
    // Fallback: a centre crop at the nearest allowed ratio.
    let in_ratio = w as f64 / h as f64;
    let (cw, ch) = if in_ratio < ratio.0 {
        (w, ((w as f64 / ratio.0).round() as usize).clamp(1, h))
    } else if in_ratio > ratio.1 {
        (((h as f64 * ratio.1).round() as usize).clamp(1, w), h)
    } else {
        (w, h)
    };
    CropBox {
        x: ((w - cw) / 2) as f32,
        y: ((h - ch) / 2) as f32,
        w: cw as f32,
        h: ch as f32,
    }
}

/// Separable triangle-filter taps for one axis: antialiased when shrinking, bilinear when growing.
fn taps(src_len: usize, start: f32, len: f32, out: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = len / out as f32;
    let support = scale.max(1.0);
    (0..out)
        .map(|o| {
            let center = start + (o as f32 + 0.5) * scale - 0.5;
            let lo = (center - support).floor() as isize;
            let hi = (center + support).ceil() as isize;
            let mut ws = Vec::with_capacity((hi - lo + 1) as usize);
            let first = lo.clamp(0, src_len as isize - 1) as usize;
            // Weights indexed from `first`, clamping out-of-range taps onto the edge pixels.
            let last = hi.clamp(0, src_len as isize - 1) as usize;
            ws.resize(last - first + 1, 0.0);
            let mut total = 0.0;
            for j in lo..=hi {
                let wgt = (1.0 - ((j as f32 - center).abs() / support)).max(0.0);
                if wgt > 0.0 {
                    let jj = j.clamp(0, src_len as isize - 1) as usize;
                    ws[jj - first] += wgt;
                    total += wgt;
                }
            }
            if total > 0.0 {
                ws.iter_mut().for_each(|w| *w /= total);
            } else {
                let jj = (center.round() as isize).clamp(0, src_len as isize - 1) as usize;
                return (jj, vec![1.0]);
            }
            (first, ws)
        })
        .collect()
}

/// Resamples the box of an HWC float image to `out`x`out`.
pub fn resample(src: &[f32], w: usize, h: usize, c: usize, b: CropBox, out: usize) -> Vec<f32> {
    let tx = taps(w, b.x, b.w, out);
    let ty = taps(h, b.y, b.h, out);
    // Horizontal pass over the rows the vertical taps touch.
    let row_lo = ty.iter().map(|t| t.0).min().unwrap_or(0);
    let row_hi = ty.iter().map(|t| t.0 + t.1.len()).max().unwrap_or(h);
    let mut tmp = vec![0f32; (row_hi - row_lo) * out * c];
    for y in row_lo..row_hi {
        let srow = &src[y * w * c..(y + 1) * w * c];
        let drow = &mut tmp[(y - row_lo) * out * c..(y - row_lo + 1) * out * c];
        for (ox, (first, ws)) in tx.iter().enumerate() {
            for ch in 0..c {
                let mut acc = 0.0;
                for (k, wgt) in ws.iter().enumerate() {
                    acc += wgt * srow[(first + k) * c + ch];
                }
                drow[ox * c + ch] = acc;
            }
        }
    }
    let mut dst = vec![0f32; out * out * c];
    for (oy, (first, ws)) in ty.iter().enumerate() {
        for i in 0..out * c {
            let mut acc = 0.0;
            for (k, wgt) in ws.iter().enumerate() {
                acc += wgt * tmp[(first + k - row_lo) * out * c + i];
            }
            dst[oy * out * c + i] = acc;
        }
    }
    dst
}

fn to_float(img: &ImageU8) -> Vec<f32> {
    img.data.iter().map(|&v| v as f32 / 255.0).collect()
}

fn flip_h(px: &mut [f32], s: usize, c: usize) {
    for y in 0..s {
        for x in 0..s / 2 {
            for ch in 0..c {
                px.swap((y * s + x) * c + ch, (y * s + s - 1 - x) * c + ch);
            }
        }
    }
}

fn luma(p: &[f32]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

fn blend(px: &mut [f32], other: impl Fn(usize) -> f32, f: f32) {
    for (i, v) in px.iter_mut().enumerate() {
        *v = (f * *v + (1.0 - f) * other(i)).clamp(0.0, 1.0);
    }
}

fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    let h = if d == 0.0 {
        0.0
    } else if max == r {
        ((g - b) / d).rem_euclid(6.0) / 6.0
    } else if max == g {
        ((b - r) / d + 2.0) / 6.0
    } else {
        ((r - g) / d + 4.0) / 6.0
    };
    let s = if max == 0.0 { 0.0 } else { d / max };
    (h, s, max)
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let h6 = h.rem_euclid(1.0) * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let p = v * (1.0 - s);
    let q = v * (1.0 - s * f);
    let t = v * (1.0 - s * (1.0 - f));
    match i as i32 % 6 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

/// torchvision ColorJitter's parameters: factors sampled first, then a random order.
fn sample_jitter(j: [f64; 4], rng: &mut Rng) -> ([f32; 4], [u8; 4]) {
    let factor = |s: f64, rng: &mut Rng| rng.uniform((1.0 - s).max(0.0), 1.0 + s) as f32;
    let b = factor(j[0], rng);
    let ct = factor(j[1], rng);
    let sat = factor(j[2], rng);
    let hue = rng.uniform(-j[3], j[3]) as f32;
    let mut order = [0u8, 1, 2, 3];
    rng.shuffle(&mut order);
    ([b, ct, sat, hue], order)
}

/// Applies ColorJitter factors (brightness, contrast, saturation, hue shift) in `order`.
fn color_jitter(px: &mut [f32], c: usize, f: [f32; 4], order: [u8; 4]) {
    let [b, ct, sat, hue] = f;
    let n = px.len() / c;
    for op in order {
        match op {
            0 => px.iter_mut().for_each(|v| *v = (*v * b).clamp(0.0, 1.0)),
            1 => {
                let mean = if c == 3 {
                    px.chunks_exact(3).map(luma).sum::<f32>() / n as f32
                } else {
                    px.iter().sum::<f32>() / px.len() as f32
                };
                blend(px, |_| mean, ct);
            }
            2 if c == 3 => {
                let gray: Vec<f32> = px.chunks_exact(3).map(luma).collect();
                blend(px, |i| gray[i / 3], sat);
            }
            3 if c == 3 && hue != 0.0 => {
                for p in px.chunks_exact_mut(3) {
                    let (h, s, v) = rgb_to_hsv(p[0], p[1], p[2]);
                    let (r, g, bb) = hsv_to_rgb(h + hue, s, v);
                    p[0] = r;
                    p[1] = g;
                    p[2] = bb;
                }
            }
            _ => {}
        }
    }
}

fn grayscale(px: &mut [f32]) {
    for p in px.chunks_exact_mut(3) {
        let l = luma(p);
        p.fill(l);
    }
}

fn gaussian_blur(px: &mut [f32], s: usize, c: usize, sigma: f32) {
    let r = ((3.0 * sigma).ceil() as isize).max(1);
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|v| v / total).collect();
    let idx = |v: isize| v.clamp(0, s as isize - 1) as usize;
    let mut tmp = vec![0f32; px.len()];
    for y in 0..s {
        for x in 0..s {
            for ch in 0..c {
                let mut acc = 0.0;
                for (t, kv) in k.iter().enumerate() {
                    acc += kv * px[(y * s + idx(x as isize + t as isize - r)) * c + ch];
                }
                tmp[(y * s + x) * c + ch] = acc;
            }
        }
    }
    for y in 0..s {
        for x in 0..s {
            for ch in 0..c {
                let mut acc = 0.0;
                for (t, kv) in k.iter().enumerate() {
                    acc += kv * tmp[(idx(y as isize + t as isize - r) * s + x) * c + ch];
                }
                px[(y * s + x) * c + ch] = acc;
            }
        }
    }
}

/// HWC [0,1] to normalised CHW.
fn normalise(px: &[f32], s: usize, c: usize, mean: &[f32], std: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; px.len()];
    for ch in 0..c {
        for i in 0..s * s {
            out[ch * s * s + i] = (px[i * c + ch] - mean[ch]) / std[ch];
        }
    }
    out
}

/// Samples one "aug+" view of a `w`x`h` image. Nothing drawn depends on pixel values, so the CPU
/// pipeline ([`apply_view`]) and the device pipeline can replay the same parameters.
pub fn sample_crop_params(w: usize, h: usize, cfg: &AugmentConfig, rng: &mut Rng) -> ViewParams {
    let crop = sample_crop(w, h, cfg.scale, cfg.ratio, rng);
    let flipped = rng.bernoulli(cfg.flip_p);
    sample_photometric(crop, flipped, cfg, rng)
}

/// The colour part of "aug+" (jitter, grayscale, blur), drawn in torchvision's order.
fn sample_photometric(
    crop: CropBox,
    flipped: bool,
    cfg: &AugmentConfig,
    rng: &mut Rng,
) -> ViewParams {
    let jitter = rng
        .bernoulli(cfg.jitter_p)
        .then(|| sample_jitter(cfg.jitter, rng));
    let grayscale = rng.bernoulli(cfg.gray_p);
    let blur_sigma = rng
        .bernoulli(cfg.blur_p)
        .then(|| rng.uniform(cfg.blur_sigma.0, cfg.blur_sigma.1) as f32);
    ViewParams {
        crop,
        flipped,
        jitter: jitter.map(|j| j.0),
        grayscale,
        blur_sigma,
        jitter_order: jitter.map_or(identity_order(), |j| j.1),
    }
}

/// Samples the original view's parameters: its flip and, with [`OriginalAug::Aug`], the crops'
/// colour augmentation (the flip is drawn first either way, so `flip` draws what it always did).
pub fn sample_original_params(
    w: usize,
    h: usize,
    cfg: &AugmentConfig,
    rng: &mut Rng,
) -> ViewParams {
    let plain = ViewParams::original(w, h, rng.bernoulli(cfg.original_flip_p));
    match cfg.original_aug {
        OriginalAug::Flip => plain,
        OriginalAug::Aug => sample_photometric(plain.crop, plain.flipped, cfg, rng),
    }
}

/// Renders a view with given parameters on the CPU: the reference implementation.
pub fn apply_view(img: &ImageU8, cfg: &AugmentConfig, params: &ViewParams) -> Vec<f32> {
    let (s, c) = (cfg.size, img.channels);
    let mut px = resample(&to_float(img), img.width, img.height, c, params.crop, s);
    if params.flipped {
        flip_h(&mut px, s, c);
    }
    if let Some(f) = params.jitter {
        color_jitter(&mut px, c, f, params.jitter_order);
    }
    if params.grayscale && c == 3 {
        grayscale(&mut px);
    }
    if let Some(sigma) = params.blur_sigma {
        gaussian_blur(&mut px, s, c, sigma);
    }
    normalise(&px, s, c, &cfg.mean, &cfg.std)
}

/// One random "aug+" view.
pub fn crop_view(img: &ImageU8, cfg: &AugmentConfig, rng: &mut Rng) -> View {
    let params = sample_crop_params(img.width, img.height, cfg, rng);
    View {
        pixels: apply_view(img, cfg, &params),
        params,
    }
}

/// The uncropped original: resized to the view size; with an `rng`, augmented as the run's
/// [`OriginalAug`] says (without one: clean, for evaluation and embedding).
pub fn original_view(img: &ImageU8, cfg: &AugmentConfig, rng: Option<&mut Rng>) -> View {
    let params = match rng {
        Some(r) => sample_original_params(img.width, img.height, cfg, r),
        None => ViewParams::original(img.width, img.height, false),
    };
    View {
        pixels: apply_view(img, cfg, &params),
        params,
    }
}

/// Normalised CHW back to displayable RGB bytes.
pub fn to_rgb8(pixels: &[f32], s: usize, cfg: &AugmentConfig) -> Vec<u8> {
    let c = cfg.mean.len();
    let mut out = Vec::with_capacity(s * s * 3);
    for i in 0..s * s {
        for rgb in 0..3 {
            let ch = if c == 3 { rgb } else { 0 };
            let v = pixels[ch * s * s + i] * cfg.std[ch] + cfg.mean[ch];
            out.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient_image(w: usize, h: usize, c: usize) -> ImageU8 {
        let data = (0..w * h * c).map(|i| ((i * 7) % 256) as u8).collect();
        ImageU8::new(w, h, c, data)
    }

    #[test]
    fn crop_boxes_lie_inside_and_repeat_with_seed() {
        let cfg = AugmentConfig::aug_plus(24, 3);
        for (w, h) in [(32, 32), (96, 40), (20, 90), (7, 5)] {
            let img = gradient_image(w, h, 3);
            for i in 0..200 {
                let mut a = Rng::derive(5, &[i]);
                let mut b = Rng::derive(5, &[i]);
                let va = crop_view(&img, &cfg, &mut a);
                let vb = crop_view(&img, &cfg, &mut b);
                assert_eq!(va.params, vb.params);
                assert_eq!(va.pixels, vb.pixels);
                let cb = va.params.crop;
                assert!(
                    cb.x >= 0.0 && cb.y >= 0.0 && cb.w >= 1.0 && cb.h >= 1.0,
                    "{cb:?}"
                );
                assert!(
                    cb.x + cb.w <= w as f32 && cb.y + cb.h <= h as f32,
                    "{cb:?} in {w}x{h}"
                );
                let frac = cb.w * cb.h / (w * h) as f32;
                assert!(frac <= 1.0 + 1e-6);
                assert_eq!(va.pixels.len(), 24 * 24 * 3);
                assert!(va.pixels.iter().all(|v| v.is_finite()));
            }
        }
        let img = gradient_image(32, 32, 3);
        let v1 = crop_view(&img, &cfg, &mut Rng::new(1));
        let v2 = crop_view(&img, &cfg, &mut Rng::new(2));
        assert_ne!(v1.params, v2.params, "different seeds, different crops");
    }

    #[test]
    fn crop_area_follows_scale_range() {
        let img = gradient_image(64, 64, 1);
        let mut rng = Rng::new(9);
        let fracs: Vec<f32> = (0..2000)
            .map(|_| {
                let b = sample_crop(64, 64, (0.2, 1.0), (0.75, 4.0 / 3.0), &mut rng);
                b.w * b.h / 4096.0
            })
            .collect();
        let min = fracs.iter().cloned().fold(1.0, f32::min);
        let mean = fracs.iter().sum::<f32>() / fracs.len() as f32;
        assert!(min > 0.17, "{min}");
        assert!((0.5..0.65).contains(&mean), "{mean}");
        let _ = img;
    }

    #[test]
    fn identity_resample_is_exact_and_downscale_averages() {
        let img = gradient_image(8, 8, 1);
        let f = to_float(&img);
        let full = CropBox {
            x: 0.0,
            y: 0.0,
            w: 8.0,
            h: 8.0,
        };
        let same = resample(&f, 8, 8, 1, full, 8);
        for (a, b) in same.iter().zip(&f) {
            assert!((a - b).abs() < 1e-6);
        }
        let flat = vec![0.25f32; 64 * 3];
        let small = resample(&flat, 8, 8, 3, full, 3);
        assert!(small.iter().all(|v| (v - 0.25).abs() < 1e-6));
    }

    #[test]
    fn original_view_is_resize_and_flip_only() {
        let img = gradient_image(28, 28, 1);
        let cfg = AugmentConfig::small(28, 1);
        let v = original_view(&img, &cfg, None);
        assert!(!v.params.flipped && v.params.jitter.is_none());
        let back = to_rgb8(&v.pixels, 28, &cfg);
        for i in 0..28 * 28 {
            assert!((back[i * 3] as i32 - img.data[i] as i32).abs() <= 1);
        }
        // A flip is the mirror image.
        let mut cfg_f = cfg.clone();
        cfg_f.original_flip_p = 1.0;
        let f = original_view(&img, &cfg_f, Some(&mut Rng::new(0)));
        assert!(f.params.flipped);
        assert_eq!(f.pixels[0], v.pixels[27]);
    }

    #[test]
    fn original_aug_flip_draws_only_the_flip_and_aug_draws_the_crops_colour_pipeline() {
        let img = gradient_image(20, 16, 3);
        let flip = AugmentConfig::aug_plus(16, 3);
        let aug = AugmentConfig {
            original_aug: OriginalAug::Aug,
            ..flip.clone()
        };
        let (mut jittered, mut gray, mut blurred, mut differ) = (0, 0, 0, 0);
        for i in 0..400 {
            // `flip`: exactly today's draw, one Bernoulli, and nothing else.
            let mut r = Rng::derive(3, &[i]);
            let p = sample_original_params(20, 16, &flip, &mut r);
            let mut by_hand = Rng::derive(3, &[i]);
            let flipped = by_hand.bernoulli(0.5);
            assert_eq!(p, ViewParams::original(20, 16, flipped));
            assert_eq!(r.next_u64(), by_hand.next_u64(), "flip draws one number");
            // `aug`: the same flip, the whole image, the crops' colour draws; repeats by seed.
            let a = original_view(&img, &aug, Some(&mut Rng::derive(3, &[i])));
            let b = original_view(&img, &aug, Some(&mut Rng::derive(3, &[i])));
            assert_eq!((&a.params, &a.pixels), (&b.params, &b.pixels));
            assert_eq!(a.params.crop, p.crop);
            assert_eq!(a.params.flipped, p.flipped);
            jittered += a.params.jitter.is_some() as usize;
            gray += a.params.grayscale as usize;
            blurred += a.params.blur_sigma.is_some() as usize;
            let plain = original_view(&img, &flip, Some(&mut Rng::derive(3, &[i])));
            let changed =
                a.params.jitter.is_some() || a.params.grayscale || a.params.blur_sigma.is_some();
            // (A blur of sigma ~0.1 can leave the pixels as they were.)
            match changed {
                false => assert_eq!(a.pixels, plain.pixels, "sample {i}"),
                true => differ += (a.pixels != plain.pixels) as usize,
            }
        }
        assert!(differ > 300, "{differ}");
        // The crops' probabilities: jitter 0.8, grayscale 0.2, blur 0.5.
        assert!((280..360).contains(&jittered), "{jittered}");
        assert!((50..115).contains(&gray), "{gray}");
        assert!((160..240).contains(&blurred), "{blurred}");
        // The small-image recipe has no blur, for the original either.
        let small = AugmentConfig {
            original_aug: OriginalAug::Aug,
            ..AugmentConfig::small(16, 3)
        };
        let mut r = Rng::new(1);
        assert!((0..200).all(|_| {
            sample_original_params(20, 16, &small, &mut r)
                .blur_sigma
                .is_none()
        }));
        assert_eq!("aug".parse::<OriginalAug>().unwrap(), OriginalAug::Aug);
        assert_eq!(OriginalAug::Flip.to_string(), "flip");
        assert!("crop".parse::<OriginalAug>().is_err());
    }

    #[test]
    fn jitter_gray_blur_keep_range() {
        let img = gradient_image(32, 32, 3);
        let mut cfg = AugmentConfig::aug_plus(32, 3);
        cfg.jitter_p = 1.0;
        cfg.gray_p = 1.0;
        cfg.blur_p = 1.0;
        let v = crop_view(&img, &cfg, &mut Rng::new(4));
        assert!(v.params.grayscale && v.params.jitter.is_some() && v.params.blur_sigma.is_some());
        let rgb = to_rgb8(&v.pixels, 32, &cfg);
        // Grayscale: the three channels agree (up to rounding).
        for p in rgb.chunks_exact(3) {
            assert!(
                (p[0] as i32 - p[1] as i32).abs() <= 1 && (p[1] as i32 - p[2] as i32).abs() <= 1
            );
        }
        let (h, s, v2) = rgb_to_hsv(0.2, 0.5, 0.9);
        let (r, g, b) = hsv_to_rgb(h, s, v2);
        assert!((r - 0.2).abs() < 1e-5 && (g - 0.5).abs() < 1e-5 && (b - 0.9).abs() < 1e-5);
    }

    #[test]
    fn config_validation_rejects_absurd_values() {
        let mut c = AugmentConfig::aug_plus(32, 3);
        assert!(c.validate(3).is_ok());
        assert!(c.validate(1).is_err());
        c.scale = (0.0, 1.0);
        assert!(c.validate(3).is_err());
        c = AugmentConfig::aug_plus(0, 3);
        assert!(c.validate(3).is_err());
    }
}

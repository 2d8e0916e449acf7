//! Scenes: a labelled data set rebuilt so that a random crop can miss the object. Each image of
//! the source (a Fashion-MNIST garment, say) is pasted at a random scale and position on a
//! larger canvas, over clutter cut from other images of the source, and keeps its label. On the
//! source itself a crop of scale 0.2-1 nearly always still shows the garment; on its scenes two
//! crops often show different things (the garment and a piece of clutter), the failure LeOCLR's
//! attraction to the uncropped original is meant to avoid.
//!
//! Deterministic: scene `i` depends only on the seed, `i` and the source.

use serde::{Deserialize, Serialize};

use crate::augment::{AugmentConfig, sample_crop_params};
use crate::dataset::Dataset;
use crate::error::Result;
use crate::image::ImageU8;
use crate::rng::Rng;

/// How scenes are made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SceneConfig {
    /// Canvas side in pixels.
    pub canvas: usize,
    /// The object's side, as a range in pixels (uniform).
    pub object: (usize, usize),
    /// Pieces of clutter per scene (uniform in the range).
    pub clutter: (usize, usize),
    /// A piece of clutter's side in pixels (uniform in the range).
    pub clutter_side: (usize, usize),
    /// Clutter brightness relative to the object's (so the object stays the most salient
    /// thing, as in a photograph of an object on a busy background).
    pub clutter_gain: f32,
    pub seed: u64,
}

impl Default for SceneConfig {
    fn default() -> Self {
        Self {
            canvas: 48,
            object: (16, 30),
            clutter: (2, 4),
            clutter_side: (10, 18),
            clutter_gain: 0.7,
            seed: 0,
        }
    }
}

/// Where the object is in a scene: `(x, y, side)` in canvas pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectBox {
    pub x: usize,
    pub y: usize,
    pub side: usize,
}

fn uniform(rng: &mut Rng, (lo, hi): (usize, usize)) -> usize {
    lo + rng.below((hi.saturating_sub(lo) + 1) as u64) as usize
}

/// `img` (one channel) resized to `side` x `side` (bilinear).
fn resized(img: &ImageU8, side: usize) -> Vec<f32> {
    let (w, h) = (img.width as f32, img.height as f32);
    let mut out = vec![0.0; side * side];
    for y in 0..side {
        for x in 0..side {
            let sx = ((x as f32 + 0.5) * w / side as f32 - 0.5).clamp(0.0, w - 1.0);
            let sy = ((y as f32 + 0.5) * h / side as f32 - 0.5).clamp(0.0, h - 1.0);
            let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(img.width - 1), (y0 + 1).min(img.height - 1));
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            let p = |x: usize, y: usize| img.data[(y * img.width + x) * img.channels] as f32;
            out[y * side + x] = (p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx) * (1.0 - fy)
                + (p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx) * fy;
        }
    }
    out
}

/// Pastes `patch` (`side` x `side`) at (x, y) on `canvas`, keeping the brighter pixel (the
/// source's backgrounds are black, so objects overlap like cut-outs).
fn paste(canvas: &mut [f32], c: usize, patch: &[f32], side: usize, x: usize, y: usize, gain: f32) {
    for py in 0..side {
        for px in 0..side {
            let (cx, cy) = (x + px, y + py);
            if cx < c && cy < c {
                let v = patch[py * side + px] * gain;
                let d = &mut canvas[cy * c + cx];
                *d = d.max(v);
            }
        }
    }
}

/// Scene `i` of `source` (one-channel images): the image and where its object is.
pub fn scene(source: &Dataset, i: usize, cfg: &SceneConfig) -> Result<(ImageU8, ObjectBox)> {
    let c = cfg.canvas;
    let mut rng = Rng::derive(cfg.seed, &[0x0005_CEE5, i as u64]);
    let mut canvas = vec![0f32; c * c];
    let n = source.len().max(1);
    for _ in 0..uniform(&mut rng, cfg.clutter) {
        // Clutter: a random piece of another image, shrunk.
        let other = source.get(rng.below(n as u64) as usize)?.to_channels(1);
        let half = (other.width / 2).max(1);
        let (ox, oy) = (
            rng.below(half as u64) as usize,
            rng.below(half as u64) as usize,
        );
        let piece = crop(&other, ox, oy, half);
        let side = uniform(&mut rng, cfg.clutter_side).min(c);
        let patch = resized(&piece, side);
        let (x, y) = (
            rng.below((c - side + 1) as u64) as usize,
            rng.below((c - side + 1) as u64) as usize,
        );
        paste(&mut canvas, c, &patch, side, x, y, cfg.clutter_gain);
    }
    let object = source.get(i)?.to_channels(1);
    let side = uniform(&mut rng, cfg.object).min(c);
    let (x, y) = (
        rng.below((c - side + 1) as u64) as usize,
        rng.below((c - side + 1) as u64) as usize,
    );
    paste(&mut canvas, c, &resized(&object, side), side, x, y, 1.0);
    let data = canvas
        .iter()
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    Ok((ImageU8::new(c, c, 1, data), ObjectBox { x, y, side }))
}

/// The `side` x `side` square of `img` at (x, y), clamped to the image.
fn crop(img: &ImageU8, x: usize, y: usize, side: usize) -> ImageU8 {
    let mut data = Vec::with_capacity(side * side);
    for py in 0..side {
        for px in 0..side {
            let (sx, sy) = ((x + px).min(img.width - 1), (y + py).min(img.height - 1));
            data.push(img.data[(sy * img.width + sx) * img.channels]);
        }
    }
    ImageU8::new(side, side, 1, data)
}

/// How often a random resized crop (the augmentation's, on a `canvas` x `canvas` scene) misses
/// the object: the fraction of crops that hold under a quarter of the object's area
/// ([`MISSED_BELOW`]), and of crop pairs (a training step's two views) where at least one does.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MissRate {
    pub crops: f64,
    pub pairs: f64,
    pub samples: usize,
}

/// A crop holding less than this share of the object's area misses it.
pub const MISSED_BELOW: f32 = 0.25;

/// The share of `object` (its area) inside the crop box `(x, y, w, h)`.
fn covered(object: &ObjectBox, (x, y, w, h): (f32, f32, f32, f32)) -> f32 {
    let (ox, oy, s) = (object.x as f32, object.y as f32, object.side as f32);
    let ix = ((x + w).min(ox + s) - x.max(ox)).max(0.0);
    let iy = ((y + h).min(oy + s) - y.max(oy)).max(0.0);
    ix * iy / (s * s).max(1.0)
}

/// [`MissRate`] over the given objects, two crops each, drawn as the training augmentation
/// `aug` draws them (its scale and ratio ranges) on `canvas`-sided scenes.
pub fn miss_rate(objects: &[ObjectBox], canvas: usize, aug: &AugmentConfig, seed: u64) -> MissRate {
    let mut rng = Rng::derive(seed, &[0x1155]);
    let (mut missed, mut pairs) = (0usize, 0usize);
    for o in objects {
        let a = sample_crop_params(canvas, canvas, aug, &mut rng).crop;
        let b = sample_crop_params(canvas, canvas, aug, &mut rng).crop;
        let miss = |c: crate::augment::CropBox| covered(o, (c.x, c.y, c.w, c.h)) < MISSED_BELOW;
        let (ma, mb) = (miss(a), miss(b));
        missed += ma as usize + mb as usize;
        pairs += (ma || mb) as usize;
    }
    let n = objects.len().max(1) as f64;
    MissRate {
        crops: missed as f64 / (2.0 * n),
        pairs: pairs as f64 / n,
        samples: objects.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(n: usize) -> Dataset {
        let imgs: Vec<ImageU8> = (0..n)
            .map(|k| {
                // A bright filled square on black, like a garment.
                let data = (0..28 * 28)
                    .map(|p| {
                        let (x, y) = (p % 28, p / 28);
                        if (6..22).contains(&x) && (4..24).contains(&y) {
                            200 + (k % 50) as u8
                        } else {
                            0
                        }
                    })
                    .collect();
                ImageU8::new(28, 28, 1, data)
            })
            .collect();
        let labels = (0..n).map(|k| Some((k % 3) as u32)).collect();
        let pixels = imgs.into_iter().flat_map(|i| i.data).collect();
        Dataset::in_memory(
            "squares".into(),
            28,
            28,
            1,
            pixels,
            labels,
            vec!["a".into(), "b".into(), "c".into()],
        )
    }

    #[test]
    fn scenes_are_seeded_and_keep_the_object_where_they_say() {
        let src = source(12);
        let cfg = SceneConfig::default();
        let (a, box_a) = scene(&src, 3, &cfg).unwrap();
        let (b, box_b) = scene(&src, 3, &cfg).unwrap();
        assert_eq!((a.data.clone(), box_a), (b.data, box_b));
        assert_eq!((a.width, a.height, a.channels), (48, 48, 1));
        let other = scene(
            &src,
            3,
            &SceneConfig {
                seed: 1,
                ..cfg.clone()
            },
        )
        .unwrap();
        assert_ne!(other.1, box_a);
        // The object's middle is as bright as the object; clutter is dimmer.
        let mid = (box_a.y + box_a.side / 2) * 48 + box_a.x + box_a.side / 2;
        assert!(a.data[mid] >= 190, "{}", a.data[mid]);
        assert!(a.data.iter().all(|&v| v as f32 <= 255.0));
    }

    #[test]
    fn crops_miss_small_objects_more_often_than_whole_images() {
        let aug = AugmentConfig::small(48, 1);
        let whole = vec![
            ObjectBox {
                x: 0,
                y: 0,
                side: 48
            };
            500
        ];
        // Small objects near the corners, where crops often miss them.
        let small: Vec<ObjectBox> = (0..500)
            .map(|i| ObjectBox {
                x: [0, 38][i % 2],
                y: [0, 38][(i / 2) % 2],
                side: 10,
            })
            .collect();
        let (w, s) = (
            miss_rate(&whole, 48, &aug, 0),
            miss_rate(&small, 48, &aug, 0),
        );
        // A crop of the whole image holds under a quarter of it only at scales 0.2-0.25; a
        // small object's is missed far more often.
        assert!(w.crops < 0.1, "{w:?}");
        assert!(s.crops > w.crops + 0.15, "whole {w:?} small {s:?}");
        assert!(s.pairs >= s.crops);
        assert_eq!(s.samples, 500);
    }
}

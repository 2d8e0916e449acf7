//! Inference on single images and small sets, for the app and the browser demo: embed a few views,
//! cosine similarities, nearest neighbours over a gallery, and a 2-D PCA map.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use leoclr_data::augment::original_view;
use leoclr_data::{AugmentConfig, ImageU8};

use crate::encoder::Encoder;
use crate::eval::Output;
use crate::{Error, Result};

/// Embeds views (each normalised CHW, `channels x size x size`) in inference mode; one row each.
pub fn embed_views(
    encoder: &Encoder,
    views: &[&[f32]],
    channels: usize,
    size: usize,
    output: Output,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let per = channels * size * size;
    if views.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(v) = views.iter().find(|v| v.len() != per) {
        return Err(Error::Config(format!(
            "view has {} values, expected {channels}x{size}x{size}",
            v.len()
        )));
    }
    let data: Vec<f32> = views.iter().flat_map(|v| v.iter().copied()).collect();
    let model = encoder.valid();
    let x = Tensor::<4>::from_data(
        TensorData::new(data, [views.len(), channels, size, size]),
        &device.clone().inner(),
    );
    let f = match output {
        Output::Backbone => model.features(x),
        Output::Projection => model.forward(x),
    };
    let dim = f.dims()[1];
    let flat = f
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Backend(format!("{e:?}")))?;
    Ok(flat.chunks_exact(dim).map(<[f32]>::to_vec).collect())
}

/// An arbitrary image (any size, gray or RGB) as the model's input: converted to the model's
/// channels and resized whole to the view size, like the LeOCLR original view.
pub fn model_input(img: &ImageU8, aug: &AugmentConfig) -> Vec<f32> {
    let img = img.to_channels(aug.mean.len());
    original_view(&img, aug, None).pixels
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

/// Rows scaled to unit length (cosine similarity becomes a dot product).
pub fn normalize_rows(data: &mut [f32], dim: usize) {
    for r in data.chunks_exact_mut(dim) {
        let n = r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        r.iter_mut().for_each(|v| *v /= n);
    }
}

/// The `k` rows of `gallery` (unit rows, `[n, dim]`) most similar to `query`, best first, as
/// (row, cosine). `exclude` leaves one row out (the query itself when it is in the gallery).
pub fn nearest(
    gallery: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
    exclude: Option<usize>,
) -> Vec<(usize, f32)> {
    let qn = query.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    let mut scored: Vec<(usize, f32)> = gallery
        .chunks_exact(dim)
        .enumerate()
        .filter(|(i, _)| Some(*i) != exclude)
        .map(|(i, r)| (i, r.iter().zip(query).map(|(a, b)| a * b).sum::<f32>() / qn))
        .collect();
    let k = k.min(scored.len());
    if k == 0 {
        return Vec::new();
    }
    scored.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
    scored.truncate(k);
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
}

/// The first two principal components of a set of rows: their mean and two unit axes, so that
/// rows added later (an uploaded photo) land on the same map.
#[derive(Clone, Debug)]
pub struct Pca2 {
    mean: Vec<f64>,
    axes: [Vec<f64>; 2],
}

impl Pca2 {
    /// Power iteration with deflation on the covariance of rows `[n, dim]`, from a deterministic
    /// start; `None` for no rows.
    pub fn fit(data: &[f32], dim: usize) -> Option<Self> {
        let n = data.len().checked_div(dim).unwrap_or(0);
        if n == 0 {
            return None;
        }
        let mut mean = vec![0f64; dim];
        for r in data.chunks_exact(dim) {
            mean.iter_mut().zip(r).for_each(|(m, &v)| *m += v as f64);
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = vec![0f64; dim * dim];
        let mut c = vec![0f64; dim];
        for r in data.chunks_exact(dim) {
            c.iter_mut()
                .zip(r.iter().zip(&mean))
                .for_each(|(c, (&v, m))| *c = v as f64 - m);
            for (i, &ci) in c.iter().enumerate() {
                if ci != 0.0 {
                    let row = &mut cov[i * dim..(i + 1) * dim];
                    row.iter_mut().zip(&c).for_each(|(a, &cj)| *a += ci * cj);
                }
            }
        }
        let mut axes: Vec<Vec<f64>> = Vec::new();
        for a in 0..2 {
            let mut v: Vec<f64> = (0..dim)
                .map(|i| 1.0 + ((i * 7 + a * 3) % 5) as f64)
                .collect();
            for _ in 0..200 {
                let mut w: Vec<f64> = cov
                    .chunks_exact(dim)
                    .map(|row| row.iter().zip(&v).map(|(a, b)| a * b).sum())
                    .collect();
                for u in &axes {
                    let d: f64 = w.iter().zip(u).map(|(a, b)| a * b).sum();
                    w.iter_mut().zip(u).for_each(|(x, y)| *x -= d * y);
                }
                let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
                if norm < 1e-20 {
                    break;
                }
                v = w.into_iter().map(|x| x / norm).collect();
            }
            // A fixed sign, so the map does not flip between runs.
            let big = v
                .iter()
                .copied()
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap_or(1.0);
            if big < 0.0 {
                v.iter_mut().for_each(|x| *x = -*x);
            }
            axes.push(v);
        }
        let [a0, a1] = <[Vec<f64>; 2]>::try_from(axes).ok()?;
        Some(Self {
            mean,
            axes: [a0, a1],
        })
    }

    /// A row's (x, y) on the two axes.
    pub fn project(&self, row: &[f32]) -> [f32; 2] {
        self.axes.each_ref().map(|u| {
            row.iter()
                .zip(&self.mean)
                .zip(u)
                .map(|((&v, m), a)| (v as f64 - m) * a)
                .sum::<f64>() as f32
        })
    }
}

impl Pca2 {
    /// Turns (or mirrors) the two axes to best match `previous`, the points of the same rows on
    /// an earlier map (orthogonal Procrustes in 2-D): re-fitted during training, the map then
    /// moves instead of flipping or spinning. `points` are this fit's projections of those rows;
    /// they are updated to the new axes. Nothing changes without as many previous points.
    pub fn align_to(&mut self, points: &mut [[f32; 2]], previous: &[[f32; 2]]) {
        if points.len() != previous.len() || points.is_empty() {
            return;
        }
        // M = Pᵀ Q; the best rotation and the best reflection in closed form, the better kept.
        let mut m = [[0f64; 2]; 2];
        for (p, q) in points.iter().zip(previous) {
            for (i, row) in m.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v += p[i] as f64 * q[j] as f64;
                }
            }
        }
        let (rot, refl) = (
            (m[0][0] + m[1][1]).hypot(m[1][0] - m[0][1]),
            (m[0][0] - m[1][1]).hypot(m[1][0] + m[0][1]),
        );
        // R maps a point p (row vector) to p R.
        let r = if rot >= refl {
            let t = (m[1][0] - m[0][1]).atan2(m[0][0] + m[1][1]);
            [[t.cos(), -t.sin()], [t.sin(), t.cos()]]
        } else {
            let t = (m[1][0] + m[0][1]).atan2(m[0][0] - m[1][1]);
            [[t.cos(), t.sin()], [t.sin(), -t.cos()]]
        };
        let [a0, a1] = &self.axes;
        let axis = |j: usize| -> Vec<f64> {
            a0.iter()
                .zip(a1)
                .map(|(x, y)| r[0][j] * x + r[1][j] * y)
                .collect()
        };
        self.axes = [axis(0), axis(1)];
        for p in points.iter_mut() {
            let (x, y) = (p[0] as f64, p[1] as f64);
            *p = [
                (x * r[0][0] + y * r[1][0]) as f32,
                (x * r[0][1] + y * r[1][1]) as f32,
            ];
        }
    }
}

/// Weighted kNN (the evaluation's vote: weights `exp(cos / t)`, k nearest) of rows `rows` of a
/// labelled gallery against the rest of it (leave one out): how many of those rows have a label
/// and how many are voted right. Rows of unit length; a slice of rows at a time, so the browser
/// can score a gallery across frames.
pub fn knn_leave_one_out(
    features: &[f32],
    dim: usize,
    labels: &[Option<u32>],
    k: usize,
    t: f32,
    rows: std::ops::Range<usize>,
) -> (usize, usize) {
    let (mut counted, mut correct) = (0, 0);
    for i in rows {
        let Some(truth) = labels.get(i).copied().flatten() else {
            continue;
        };
        let Some(q) = features.get(i * dim..(i + 1) * dim) else {
            break;
        };
        let mut votes: Vec<(u32, f32)> = Vec::new();
        for (j, w) in nearest(features, dim, q, k, Some(i)) {
            if let Some(l) = labels.get(j).copied().flatten() {
                let w = (w / t).exp();
                match votes.iter_mut().find(|v| v.0 == l) {
                    Some(v) => v.1 += w,
                    None => votes.push((l, w)),
                }
            }
        }
        counted += 1;
        let best = votes
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        if best.is_some_and(|b| b.0 == truth) {
            correct += 1;
        }
    }
    (counted, correct)
}

/// Projects rows `[n, dim]` on their first two principal components. Returns one (x, y) per row.
pub fn pca_2d(data: &[f32], dim: usize) -> Vec<[f32; 2]> {
    match Pca2::fit(data, dim) {
        Some(p) => data.chunks_exact(dim).map(|r| p.project(r)).collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_undoes_a_rotation_and_a_mirror() {
        // Rows spread mostly along two directions; a second fit on the rows turned by 90 degrees
        // in their own space and mirrored projects differently, and aligning brings it back.
        let dim = 3;
        let rows: Vec<f32> = (0..40)
            .flat_map(|i| {
                let (a, b) = ((i as f32 * 0.37).sin() * 3.0, (i as f32 * 0.91).cos());
                [a, b, 0.1 * a * b]
            })
            .collect();
        let pca = Pca2::fit(&rows, dim).unwrap();
        let before: Vec<[f32; 2]> = rows.chunks_exact(dim).map(|r| pca.project(r)).collect();
        let turned: Vec<f32> = rows
            .chunks_exact(dim)
            .flat_map(|r| [-r[1], r[0], -r[2]])
            .collect();
        let mut p2 = Pca2::fit(&turned, dim).unwrap();
        let mut after: Vec<[f32; 2]> = turned.chunks_exact(dim).map(|r| p2.project(r)).collect();
        p2.align_to(&mut after, &before);
        for (a, b) in after.iter().zip(&before) {
            assert!(
                (a[0] - b[0]).abs() < 1e-3 && (a[1] - b[1]).abs() < 1e-3,
                "{a:?} vs {b:?}"
            );
        }
        // New rows are projected on the aligned axes too.
        let r = &turned[3 * dim..4 * dim];
        let q = p2.project(r);
        assert!((q[0] - before[3][0]).abs() < 1e-3 && (q[1] - before[3][1]).abs() < 1e-3);
        // Axes turned by 50 degrees and mirrored: their map is the old one turned and mirrored.
        let (c, s) = (50f64.to_radians().cos(), 50f64.to_radians().sin());
        let [u, v] = &pca.axes;
        let mut p3 = Pca2 {
            mean: pca.mean.clone(),
            axes: [
                u.iter().zip(v).map(|(x, y)| c * x - s * y).collect(),
                u.iter().zip(v).map(|(x, y)| -(s * x + c * y)).collect(),
            ],
        };
        let mut moved: Vec<[f32; 2]> = rows.chunks_exact(dim).map(|r| p3.project(r)).collect();
        assert!(
            (moved[3][0] - before[3][0]).abs() > 0.1 || (moved[3][1] - before[3][1]).abs() > 0.1
        );
        p3.align_to(&mut moved, &before);
        for (a, b) in moved.iter().zip(&before) {
            assert!(
                (a[0] - b[0]).abs() < 1e-3 && (a[1] - b[1]).abs() < 1e-3,
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn leave_one_out_knn_votes_by_neighbours() {
        // Two tight clusters, labels 0 and 1, one mislabelled row in cluster 0.
        let mut f = Vec::new();
        let mut labels = Vec::new();
        for i in 0..10 {
            let e = i as f32 * 0.01;
            f.extend_from_slice(&[1.0, e]);
            labels.push(Some(if i == 9 { 1 } else { 0 }));
            f.extend_from_slice(&[e, 1.0]);
            labels.push(Some(1));
        }
        labels.push(None);
        f.extend_from_slice(&[0.7, 0.7]);
        normalize_rows(&mut f, 2);
        let (n, ok) = knn_leave_one_out(&f, 2, &labels, 5, 0.1, 0..labels.len());
        assert_eq!(
            (n, ok),
            (20, 19),
            "the unlabelled row is not counted, the odd one is wrong"
        );
        // Slices add up to the whole.
        let (a, b) = knn_leave_one_out(&f, 2, &labels, 5, 0.1, 0..7);
        let (c, d) = knn_leave_one_out(&f, 2, &labels, 5, 0.1, 7..labels.len());
        assert_eq!((a + c, b + d), (n, ok));
    }

    #[test]
    fn nearest_ranks_by_cosine_and_skips_the_query() {
        let mut g = vec![1.0, 0.0, 0.0, 1.0, 0.7, 0.7, -1.0, 0.0];
        normalize_rows(&mut g, 2);
        let r = nearest(&g, 2, &[2.0, 0.1], 2, None);
        assert_eq!(r.iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 2]);
        assert!((r[0].1 - cosine(&[1.0, 0.0], &[2.0, 0.1])).abs() < 1e-6);
        let r = nearest(&g, 2, &[1.0, 0.0], 10, Some(0));
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].0, 2);
        assert_eq!(r[2].0, 3);
    }

    #[test]
    fn pca_finds_the_spread_axes() {
        // Points spread along (1,1,0) by up to +-5 and along (0,0,1) by +-1, uncorrelated: each
        // position along the first axis appears with both signs of the second.
        let point = |i: usize| -> (f32, f32) {
            let a = ((i / 2) as f32 - 4.5) / 4.5 * 5.0;
            (a, if i.is_multiple_of(2) { 1.0 } else { -1.0 })
        };
        let mut data = Vec::new();
        for i in 0..20 {
            let (a, b) = point(i);
            data.extend([a, a, b]);
        }
        let p = pca_2d(&data, 3);
        assert_eq!(p.len(), 20);
        let s = 2f32.sqrt();
        for (i, xy) in p.iter().enumerate() {
            let (a, b) = point(i);
            assert!((xy[0].abs() - (a * s).abs()).abs() < 1e-3, "{xy:?}");
            assert!((xy[1].abs() - b.abs()).abs() < 1e-3, "{xy:?}");
        }
        // The first axis varies more than the second.
        let var = |k: usize| p.iter().map(|q| q[k] * q[k]).sum::<f32>();
        assert!(var(0) > 10.0 * var(1));
    }

    #[test]
    fn model_input_converts_channels_and_size() {
        let img = ImageU8::new(5, 3, 3, vec![100; 45]);
        let aug = AugmentConfig::small(8, 1);
        let x = model_input(&img, &aug);
        assert_eq!(x.len(), 64);
        let expect = (100.0 / 255.0 - aug.mean[0]) / aug.std[0];
        assert!(x.iter().all(|v| (v - expect).abs() < 1e-3));
    }

    #[test]
    fn embed_views_checks_shapes() {
        let dev = Device::flex();
        let cfg = crate::ModelConfig::new(crate::Backbone::Tiny, 1, true);
        let enc = Encoder::init_seeded(&cfg, 1, &dev);
        let v = vec![0.5f32; 64];
        let out = embed_views(&enc, &[&v, &v], 1, 8, Output::Projection, &dev).unwrap();
        assert_eq!(out.len(), 2);
        assert!((cosine(&out[0], &out[1]) - 1.0).abs() < 1e-5);
        assert!(embed_views(&enc, &[&v[..10]], 1, 8, Output::Projection, &dev).is_err());
    }
}

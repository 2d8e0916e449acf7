//! BatchNorm with batch statistics on NCHW f32 buffers: the statistics in two passes over each
//! channel (mean, then the centred variance, accumulated in f64), the normalisation in a third;
//! the backward pass as the two per-channel sums it needs and one pass for the input gradient.
//! Channels run on the pool's threads (each reads its own `n` runs of `h * w` values).

use super::par;

/// A tensor `[n, c, rest]` seen per channel: `c` channels of `n` runs of `rest` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channels {
    pub n: usize,
    pub c: usize,
    pub rest: usize,
}

impl Channels {
    pub fn len(&self) -> usize {
        self.n * self.c * self.rest
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per channel.
    fn count(&self) -> usize {
        self.n * self.rest
    }

    /// The runs of channel `ch` in a buffer laid out like the tensor.
    fn runs<'a>(&self, data: &'a [f32], ch: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (c, rest) = (self.c, self.rest);
        (0..self.n).map(move |i| &data[(i * c + ch) * rest..][..rest])
    }
}

/// The mean and the biased variance of every channel.
pub fn statistics(s: Channels, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), s.len(), "buffer for {s:?}");
    let count = s.count().max(1) as f64;
    let per = par::map(s.c, par::threads() > 1 && s.c > 1, |ch| {
        let mean = s
            .runs(x, ch)
            .map(|r| r.iter().map(|&v| v as f64).sum::<f64>())
            .sum::<f64>()
            / count;
        let var = s
            .runs(x, ch)
            .map(|r| {
                r.iter()
                    .map(|&v| {
                        let d = v as f64 - mean;
                        d * d
                    })
                    .sum::<f64>()
            })
            .sum::<f64>()
            / count;
        (mean as f32, var as f32)
    });
    per.into_iter().unzip()
}

/// `1 / sqrt(var + eps)` per channel.
pub fn inverse_std(var: &[f32], eps: f64) -> Vec<f32> {
    var.iter()
        .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
        .collect()
}

/// Calls `f(channel, runs)` for the runs of every channel of `out`, in parallel over channels.
/// Safe splitting: each image's block of `out` is cut into its channels' runs, and each worker
/// takes the runs of one channel from every image.
fn per_channel_mut(
    s: Channels,
    out: &mut [f32],
    f: impl Fn(usize, &mut [&mut [f32]]) + Sync + Send,
) {
    let mut by_channel: Vec<Vec<&mut [f32]>> = (0..s.c).map(|_| Vec::with_capacity(s.n)).collect();
    for image in out.chunks_mut(s.c * s.rest) {
        for (ch, run) in image.chunks_mut(s.rest).enumerate() {
            by_channel[ch].push(run);
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    if par::threads() > 1 && s.c > 1 {
        use rayon::prelude::*;
        by_channel
            .par_iter_mut()
            .enumerate()
            .for_each(|(ch, runs)| f(ch, runs));
        return;
    }
    for (ch, runs) in by_channel.iter_mut().enumerate() {
        f(ch, runs);
    }
}

/// `y = (x - mean) * inv_std * gamma + beta`, per channel.
pub fn normalize(
    s: Channels,
    x: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    beta: &[f32],
    y: &mut [f32],
) {
    assert_eq!((x.len(), y.len()), (s.len(), s.len()), "buffers for {s:?}");
    assert!(mean.len() == s.c && inv_std.len() == s.c && gamma.len() == s.c && beta.len() == s.c);
    per_channel_mut(s, y, |ch, runs| {
        let scale = inv_std[ch] * gamma[ch];
        let shift = beta[ch] - mean[ch] * scale;
        for (run, src) in runs.iter_mut().zip(s.runs(x, ch)) {
            for (o, &v) in run.iter_mut().zip(src) {
                *o = v * scale + shift;
            }
        }
    });
}

/// The gradients of [`normalize`] with the batch's own statistics (BatchNorm in training):
/// `dx` (written), and per channel `dgamma = Σ dy x̂`, `dbeta = Σ dy`.
pub fn backward(
    s: Channels,
    x: &[f32],
    dy: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    dx: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!((x.len(), dy.len(), dx.len()), (s.len(), s.len(), s.len()));
    let sums = par::map(s.c, par::threads() > 1 && s.c > 1, |ch| {
        let (m, is) = (mean[ch] as f64, inv_std[ch] as f64);
        let (mut sum_dy, mut sum_dy_xhat) = (0f64, 0f64);
        for (xr, gr) in s.runs(x, ch).zip(s.runs(dy, ch)) {
            let (mut a, mut b) = (0f32, 0f32);
            for (&v, &g) in xr.iter().zip(gr) {
                a += g;
                b += g * (v - m as f32);
            }
            sum_dy += a as f64;
            sum_dy_xhat += b as f64 * is;
        }
        (sum_dy as f32, sum_dy_xhat as f32)
    });
    let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = sums.into_iter().unzip();
    let count = s.count().max(1) as f32;
    per_channel_mut(s, dx, |ch, runs| {
        let (m, is, g) = (mean[ch], inv_std[ch], gamma[ch]);
        let k = g * is;
        let (mean_dy, mean_dy_xhat) = (dbeta[ch] / count, dgamma[ch] / count);
        for ((run, xr), gr) in runs.iter_mut().zip(s.runs(x, ch)).zip(s.runs(dy, ch)) {
            for ((o, &v), &d) in run.iter_mut().zip(xr).zip(gr) {
                let xhat = (v - m) * is;
                *o = k * (d - mean_dy - xhat * mean_dy_xhat);
            }
        }
    });
    (dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_channels_have_zero_mean_unit_variance_and_the_gradient_matches_differences() {
        let s = Channels {
            n: 3,
            c: 2,
            rest: 5,
        };
        let x: Vec<f32> = (0..s.len())
            .map(|i| ((i * 37 % 11) as f32) * 0.3 - 1.0)
            .collect();
        let (mean, var) = statistics(s, &x);
        let eps = 1e-5;
        let inv = inverse_std(&var, eps);
        let (gamma, beta) = (vec![1.5, -0.5], vec![0.25, 2.0]);
        let mut y = vec![0.0; s.len()];
        normalize(s, &x, &mean, &inv, &gamma, &beta, &mut y);
        let (m2, v2) = statistics(s, &y);
        for ch in 0..2 {
            assert!((m2[ch] - beta[ch]).abs() < 1e-5);
            assert!(
                (v2[ch] - gamma[ch] * gamma[ch] * var[ch] / (var[ch] + eps as f32)).abs() < 1e-4
            );
        }
        // L = <dy, y(x)>: the analytic gradient against central differences.
        let dy: Vec<f32> = (0..s.len())
            .map(|i| ((i * 13 % 7) as f32) * 0.2 - 0.5)
            .collect();
        let loss = |x: &[f32]| -> f64 {
            let (m, v) = statistics(s, x);
            let inv = inverse_std(&v, eps);
            let mut y = vec![0.0; s.len()];
            normalize(s, x, &m, &inv, &gamma, &beta, &mut y);
            y.iter()
                .zip(&dy)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum()
        };
        let mut dx = vec![0.0; s.len()];
        let (dgamma, dbeta) = backward(s, &x, &dy, &mean, &inv, &gamma, &mut dx);
        for i in [0, 7, 13, 29] {
            let h = 1e-2;
            let (mut a, mut b) = (x.clone(), x.clone());
            a[i] += h;
            b[i] -= h;
            let num = (loss(&a) - loss(&b)) / (2.0 * h as f64);
            assert!(
                (num - dx[i] as f64).abs() < 2e-3,
                "dx[{i}] {} vs {num}",
                dx[i]
            );
        }
        // dbeta = Σ dy, dgamma = Σ dy x̂.
        for ch in 0..2 {
            let sum: f32 = s.runs(&dy, ch).flatten().sum();
            assert!((dbeta[ch] - sum).abs() < 1e-4);
            let xhat_dy: f32 = s
                .runs(&x, ch)
                .flatten()
                .zip(s.runs(&dy, ch).flatten())
                .map(|(v, d)| (v - mean[ch]) * inv[ch] * d)
                .sum();
            assert!((dgamma[ch] - xhat_dy).abs() < 1e-4);
        }
    }
}

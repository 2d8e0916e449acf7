//! t-SNE (van der Maaten & Hinton, 2008) for the app's map, exact (O(n²) a step): galleries of up
//! to [`MAX_POINTS`] images. Initialised from the PCA map (Kobak & Berens, 2019: stable from run to
//! run, and its layout resembles the PCA view it replaces), with early exaggeration, momentum and
//! gains as in the reference implementation. It advances in [`Tsne::step`]s, so the browser can
//! spread it over frames and the desktop can report progress from a worker thread.

use crate::infer::Pca2;
use crate::{Error, Result};

/// Exact t-SNE holds an n x n matrix and costs n² a step: 5,000 points are 100 MB and seconds a
/// step in the browser, the practical ceiling for a map computed on demand.
pub const MAX_POINTS: usize = 5_000;

/// Settings; the defaults are the reference implementation's.
#[derive(Clone, Copy, Debug)]
pub struct TsneParams {
    pub perplexity: f32,
    pub iterations: usize,
    /// Step size; `None`: `max(n / exaggeration, 50)` (Belkina et al., 2019), which keeps small
    /// maps from oscillating and large ones from crawling.
    pub learning_rate: Option<f32>,
    /// Steps with the attraction exaggerated (and lower momentum) at the start.
    pub exaggeration_steps: usize,
    pub exaggeration: f32,
}

impl Default for TsneParams {
    fn default() -> Self {
        Self {
            perplexity: 30.0,
            iterations: 1000,
            learning_rate: None,
            exaggeration_steps: 250,
            exaggeration: 12.0,
        }
    }
}

pub struct Tsne {
    n: usize,
    /// Symmetric joint probabilities, `[n, n]`.
    p: Vec<f32>,
    y: Vec<[f32; 2]>,
    update: Vec<[f32; 2]>,
    gains: Vec<[f32; 2]>,
    iter: usize,
    params: TsneParams,
}

impl Tsne {
    /// Prepares t-SNE of rows `[n, dim]`: the input affinities (a binary search per row for the
    /// bandwidth giving the perplexity, capped at `(n - 1) / 3`) and the PCA start.
    pub fn new(data: &[f32], dim: usize, params: TsneParams) -> Result<Self> {
        let n = data.len().checked_div(dim).unwrap_or(0);
        if !(4..=MAX_POINTS).contains(&n) || n * dim != data.len() {
            return Err(Error::Config(format!(
                "t-SNE maps 4 to {MAX_POINTS} rows (exact, n² memory); these are {n}"
            )));
        }
        let p = affinities(data, dim, params.perplexity.min((n - 1) as f32 / 3.0));
        let pca = Pca2::fit(data, dim).ok_or_else(|| Error::Config("no rows".into()))?;
        let mut y: Vec<[f32; 2]> = data.chunks_exact(dim).map(|r| pca.project(r)).collect();
        // Scaled so the first coordinate has standard deviation 1e-4.
        let sd = (y.iter().map(|p| p[0] * p[0]).sum::<f32>() / n as f32).sqrt();
        let s = if sd > 0.0 { 1e-4 / sd } else { 1.0 };
        y.iter_mut().for_each(|p| *p = [p[0] * s, p[1] * s]);
        Ok(Self {
            n,
            p,
            y,
            update: vec![[0.0; 2]; n],
            gains: vec![[1.0; 2]; n],
            iter: 0,
            params,
        })
    }

    /// Runs up to `steps` more iterations; true once all are done.
    pub fn step(&mut self, steps: usize) -> bool {
        for _ in 0..steps {
            if self.done() {
                break;
            }
            self.iterate();
        }
        self.done()
    }

    pub fn done(&self) -> bool {
        self.iter >= self.params.iterations
    }

    /// (iterations done, iterations in all).
    pub fn progress(&self) -> (usize, usize) {
        (self.iter, self.params.iterations)
    }

    /// The map as it stands.
    pub fn points(&self) -> &[[f32; 2]] {
        &self.y
    }

    fn iterate(&mut self) {
        let n = self.n;
        let early = self.iter < self.params.exaggeration_steps;
        let (exag, momentum) = if early {
            (self.params.exaggeration, 0.5)
        } else {
            (1.0, 0.8)
        };
        let eta = self
            .params
            .learning_rate
            .unwrap_or((n as f32 / self.params.exaggeration).max(50.0));
        // Student-t kernel values and their sum.
        let mut num = vec![0f32; n * n];
        let mut z = 0f64;
        for i in 0..n {
            for j in (i + 1)..n {
                let d = [self.y[i][0] - self.y[j][0], self.y[i][1] - self.y[j][1]];
                let q = 1.0 / (1.0 + d[0] * d[0] + d[1] * d[1]);
                num[i * n + j] = q;
                num[j * n + i] = q;
                z += 2.0 * q as f64;
            }
        }
        let z = z.max(1e-12) as f32;
        for i in 0..n {
            let mut g = [0f32; 2];
            for j in 0..n {
                if i == j {
                    continue;
                }
                let q = num[i * n + j];
                let w = (exag * self.p[i * n + j] - q / z) * q;
                g[0] += w * (self.y[i][0] - self.y[j][0]);
                g[1] += w * (self.y[i][1] - self.y[j][1]);
            }
            for (k, gk) in g.iter().enumerate() {
                let grad = 4.0 * gk;
                let gain = &mut self.gains[i][k];
                *gain = if (grad > 0.0) != (self.update[i][k] > 0.0) {
                    *gain + 0.2
                } else {
                    (*gain * 0.8).max(0.01)
                };
                self.update[i][k] = momentum * self.update[i][k] - eta * *gain * grad;
            }
        }
        let mut mean = [0f32; 2];
        for (y, u) in self.y.iter_mut().zip(&self.update) {
            y[0] += u[0];
            y[1] += u[1];
            mean[0] += y[0] / n as f32;
            mean[1] += y[1] / n as f32;
        }
        self.y
            .iter_mut()
            .for_each(|y| *y = [y[0] - mean[0], y[1] - mean[1]]);
        self.iter += 1;
    }
}

/// Joint probabilities `(P_j|i + P_i|j) / 2n` from Gaussian neighbourhoods of the given perplexity.
fn affinities(data: &[f32], dim: usize, perplexity: f32) -> Vec<f32> {
    let n = data.len() / dim;
    let rows: Vec<&[f32]> = data.chunks_exact(dim).collect();
    let target = (perplexity as f64).ln();
    let mut p = vec![0f32; n * n];
    let mut d = vec![0f64; n];
    for i in 0..n {
        for (j, dj) in d.iter_mut().enumerate() {
            *dj = rows[i]
                .iter()
                .zip(rows[j])
                .map(|(a, b)| ((a - b) * (a - b)) as f64)
                .sum();
        }
        let (mut beta, mut lo, mut hi) = (1f64, 0f64, f64::INFINITY);
        let mut row = vec![0f64; n];
        for _ in 0..64 {
            let mut sum = 0f64;
            let mut dot = 0f64;
            for j in 0..n {
                row[j] = if j == i { 0.0 } else { (-d[j] * beta).exp() };
                sum += row[j];
                dot += d[j] * row[j];
            }
            let sum = sum.max(1e-300);
            let entropy = sum.ln() + beta * dot / sum;
            if (entropy - target).abs() < 1e-5 {
                break;
            }
            if entropy > target {
                lo = beta;
                beta = if hi.is_finite() {
                    (beta + hi) / 2.0
                } else {
                    beta * 2.0
                };
            } else {
                hi = beta;
                beta = (beta + lo) / 2.0;
            }
        }
        let sum: f64 = row.iter().sum::<f64>().max(1e-300);
        for j in 0..n {
            p[i * n + j] = (row[j] / sum) as f32;
        }
    }
    let mut joint = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            joint[i * n + j] = ((p[i * n + j] + p[j * n + i]) / (2.0 * n as f32)).max(1e-12);
        }
    }
    joint
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three well-separated clusters in 10-D come out as three groups: every point's nearest
    /// neighbour on the map is in its own cluster.
    #[test]
    fn separates_clusters() {
        let (dim, per) = (10, 40);
        let mut rng = leoclr_data::Rng::new(7);
        let mut data = Vec::new();
        for c in 0..3 {
            for _ in 0..per {
                for k in 0..dim {
                    let centre = if k == c { 10.0 } else { 0.0 };
                    data.push(centre + rng.normal() as f32);
                }
            }
        }
        let mut t = Tsne::new(&data, dim, TsneParams::default()).unwrap();
        assert_eq!(t.progress(), (0, 1000));
        assert!(!t.step(100));
        assert!(t.step(2000));
        assert_eq!(t.progress(), (1000, 1000));
        let y = t.points();
        assert!(y.iter().all(|p| p[0].is_finite() && p[1].is_finite()));
        let mut right = 0;
        for i in 0..y.len() {
            let nn = (0..y.len())
                .filter(|&j| j != i)
                .min_by(|&a, &b| {
                    let da = (y[a][0] - y[i][0]).hypot(y[a][1] - y[i][1]);
                    let db = (y[b][0] - y[i][0]).hypot(y[b][1] - y[i][1]);
                    da.total_cmp(&db)
                })
                .unwrap();
            right += usize::from(nn / per == i / per);
        }
        assert_eq!(
            right,
            y.len(),
            "{right} of {} neighbours in their cluster",
            y.len()
        );
    }

    #[test]
    fn refuses_too_few_or_too_many_rows() {
        assert!(Tsne::new(&[0.0; 6], 2, TsneParams::default()).is_err());
        assert!(Tsne::new(&vec![0.0; 2 * (MAX_POINTS + 1)], 2, TsneParams::default()).is_err());
    }
}

//! Max pooling on NCHW f32 buffers (any kernel, stride and padding; dilation 1): each output
//! the largest of its window (padding never wins), with the winner's place in the plane kept
//! for the backward pass, which adds each output's gradient to its winner.

use super::par;

/// A pooling's sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Images times channels.
    pub planes: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl PoolGeometry {
    /// Output height and width (floor), or `None` when the window does not fit.
    pub fn out_size(&self) -> Option<[usize; 2]> {
        let dim = |i: usize, size: usize| {
            if self.stride[i] == 0 || self.kernel[i] == 0 || self.padding[i] * 2 > self.kernel[i] {
                return None;
            }
            (size + 2 * self.padding[i])
                .checked_sub(self.kernel[i])
                .map(|d| d / self.stride[i] + 1)
        };
        Some([dim(0, self.height)?, dim(1, self.width)?])
    }
}

/// `y` = the pooled planes; `argmax` (when given, one per output) = the winner's index inside
/// its plane.
pub fn max_pool_forward(g: &PoolGeometry, x: &[f32], y: &mut [f32], argmax: Option<&mut [u32]>) {
    let [oh, ow] = g.out_size().unwrap_or([0, 0]);
    let (plane, out_plane) = (g.height * g.width, oh * ow);
    assert_eq!((x.len(), y.len()), (g.planes * plane, g.planes * out_plane));
    let pool_plane = |xp: &[f32], yp: &mut [f32], mut ap: Option<&mut [u32]>| {
        for p in 0..oh {
            let h0 = (p * g.stride[0]) as isize - g.padding[0] as isize;
            let (hs, he) = (
                h0.max(0) as usize,
                ((h0 + g.kernel[0] as isize) as usize).min(g.height),
            );
            for q in 0..ow {
                let w0 = (q * g.stride[1]) as isize - g.padding[1] as isize;
                let (ws, we) = (
                    w0.max(0) as usize,
                    ((w0 + g.kernel[1] as isize) as usize).min(g.width),
                );
                let (mut best, mut at) = (f32::NEG_INFINITY, hs * g.width + ws);
                for h in hs..he {
                    let row = &xp[h * g.width..][ws..we];
                    for (k, &v) in row.iter().enumerate() {
                        // NaN wins, as in PyTorch (so it propagates).
                        if v > best || v.is_nan() {
                            best = v;
                            at = h * g.width + ws + k;
                        }
                    }
                }
                yp[p * ow + q] = best;
                if let Some(a) = ap.as_deref_mut() {
                    a[p * ow + q] = at as u32;
                }
            }
        }
    };
    let parallel = par::threads() > 1 && g.planes > 1;
    match argmax {
        None => par::for_each_chunk(y, out_plane, parallel, |i, yp| {
            pool_plane(&x[i * plane..][..plane], yp, None)
        }),
        Some(a) => {
            assert_eq!(a.len(), y.len());
            #[cfg(not(target_arch = "wasm32"))]
            if parallel {
                use rayon::prelude::*;
                y.par_chunks_mut(out_plane)
                    .zip(a.par_chunks_mut(out_plane))
                    .enumerate()
                    .for_each(|(i, (yp, ap))| pool_plane(&x[i * plane..][..plane], yp, Some(ap)));
                return;
            }
            for (i, (yp, ap)) in y
                .chunks_mut(out_plane)
                .zip(a.chunks_mut(out_plane))
                .enumerate()
            {
                pool_plane(&x[i * plane..][..plane], yp, Some(ap));
            }
        }
    }
}

/// `dx` (written) from the outputs' gradients `dy` and the winners of the forward pass.
pub fn max_pool_backward(g: &PoolGeometry, dy: &[f32], argmax: &[u32], dx: &mut [f32]) {
    let [oh, ow] = g.out_size().unwrap_or([0, 0]);
    let (plane, out_plane) = (g.height * g.width, oh * ow);
    assert_eq!(
        (dy.len(), argmax.len(), dx.len()),
        (g.planes * out_plane, g.planes * out_plane, g.planes * plane)
    );
    par::for_each_chunk(dx, plane, par::threads() > 1 && g.planes > 1, |i, dp| {
        dp.fill(0.0);
        let (d, a) = (
            &dy[i * out_plane..][..out_plane],
            &argmax[i * out_plane..][..out_plane],
        );
        for (&v, &k) in d.iter().zip(a) {
            if let Some(slot) = dp.get_mut(k as usize) {
                *slot += v;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_like_the_definition_and_routes_gradients_to_the_winners() {
        let g = PoolGeometry {
            planes: 2,
            height: 5,
            width: 4,
            kernel: [3, 3],
            stride: [2, 2],
            padding: [1, 1],
        };
        assert_eq!(g.out_size(), Some([3, 2]));
        let x: Vec<f32> = (0..40).map(|i| ((i * 17 % 23) as f32) - 11.0).collect();
        let mut y = vec![0.0; 12];
        let mut a = vec![0u32; 12];
        max_pool_forward(&g, &x, &mut y, Some(&mut a));
        for pl in 0..2 {
            for p in 0..3 {
                for q in 0..2 {
                    let mut best = f32::NEG_INFINITY;
                    for h in (p * 2) as isize - 1..(p * 2) as isize + 2 {
                        for w in (q * 2) as isize - 1..(q * 2) as isize + 2 {
                            if (0..5).contains(&h) && (0..4).contains(&w) {
                                best = best.max(x[pl * 20 + h as usize * 4 + w as usize]);
                            }
                        }
                    }
                    let o = pl * 6 + p * 2 + q;
                    assert_eq!(y[o], best);
                    assert_eq!(x[pl * 20 + a[o] as usize], best);
                }
            }
        }
        let mut y2 = vec![0.0; 12];
        max_pool_forward(&g, &x, &mut y2, None);
        assert_eq!(y, y2);
        let dy: Vec<f32> = (0..12).map(|i| i as f32 + 1.0).collect();
        let mut dx = vec![f32::NAN; 40];
        max_pool_backward(&g, &dy, &a, &mut dx);
        // Every input gets the sum of the gradients of the outputs it won, the others 0.
        for pl in 0..2 {
            for k in 0..20 {
                let want: f32 = (0..6)
                    .filter(|&o| a[pl * 6 + o] as usize == k)
                    .map(|o| dy[pl * 6 + o])
                    .sum();
                assert_eq!(dx[pl * 20 + k], want, "plane {pl} pixel {k}");
            }
        }
    }
}

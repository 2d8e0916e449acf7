//! CPU kernels on raw f32 buffers (no burn types): what the Flex side of the extension calls.

pub mod conv;
pub mod gemm;
pub mod geometry;
pub mod im2col;
pub mod norm;
pub mod par;
pub mod pool;

pub use conv::{conv2d_forward, conv2d_input_grad, conv2d_weight_grad};
pub use geometry::ConvGeometry;

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one multiply-add at a time, in f64.
    fn direct(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f64> {
        let [oh, ow] = g.out_size().unwrap();
        let mut y = vec![0.0; g.output_len()];
        for n in 0..g.batch {
            for f in 0..g.filters {
                for p in 0..oh {
                    for q in 0..ow {
                        let mut acc = 0.0f64;
                        for c in 0..g.channels {
                            for r in 0..g.kernel[0] {
                                for s in 0..g.kernel[1] {
                                    let h = (p * g.stride[0] + r * g.dilation[0]) as isize
                                        - g.padding[0].0 as isize;
                                    let v = (q * g.stride[1] + s * g.dilation[1]) as isize
                                        - g.padding[1].0 as isize;
                                    if h < 0
                                        || v < 0
                                        || h >= g.height as isize
                                        || v >= g.width as isize
                                    {
                                        continue;
                                    }
                                    let xi = ((n * g.channels + c) * g.height + h as usize)
                                        * g.width
                                        + v as usize;
                                    let wi =
                                        ((f * g.channels + c) * g.kernel[0] + r) * g.kernel[1] + s;
                                    acc += x[xi] as f64 * w[wi] as f64;
                                }
                            }
                        }
                        y[((n * g.filters + f) * oh + p) * ow + q] = acc;
                    }
                }
            }
        }
        y
    }

    fn noise(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn close(got: &[f32], want: &[f64], what: &str, g: &ConvGeometry) {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (*a as f64 - b).abs() <= 1e-5 * scale,
                "{what} [{i}]: {a} vs {b} for {g:?}"
            );
        }
    }

    fn geometries() -> Vec<ConvGeometry> {
        let mut out = vec![];
        let base = ConvGeometry {
            batch: 1,
            channels: 1,
            height: 5,
            width: 5,
            filters: 1,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [(1, 1), (1, 1)],
            dilation: [1, 1],
        };
        // (batch, channels, filters, size, kernel, stride, padding)
        for (b, c, f, hw, k, s, p) in [
            (1, 1, 1, 5, 3, 1, 1),
            (3, 1, 16, 28, 7, 2, 3),
            (2, 3, 4, 9, 3, 2, 1),
            (5, 16, 16, 7, 3, 1, 1),
            (4, 16, 32, 7, 1, 2, 0),
            (2, 64, 8, 4, 1, 1, 0),
            (1, 4, 3, 11, 5, 3, 2),
            (7, 2, 5, 1, 3, 1, 1),
            (3, 8, 4, 2, 3, 2, 1),
            (300, 3, 2, 2, 3, 1, 1),
        ] {
            out.push(ConvGeometry {
                batch: b,
                channels: c,
                height: hw,
                width: hw,
                filters: f,
                kernel: [k, k],
                stride: [s, s],
                padding: [(p, p), (p, p)],
                ..base
            });
        }
        // Odd, asymmetric and dilated.
        out.push(ConvGeometry {
            batch: 3,
            channels: 2,
            height: 6,
            width: 9,
            filters: 3,
            kernel: [2, 3],
            stride: [1, 2],
            padding: [(0, 1), (2, 0)],
            dilation: [2, 1],
        });
        out
    }

    #[test]
    fn forward_and_both_gradients_match_the_definition() {
        for (i, g) in geometries().into_iter().enumerate() {
            let x = noise(g.input_len(), i as u32 * 3 + 1);
            let w = noise(g.weight_len(), i as u32 * 3 + 2);
            let dy = noise(g.output_len(), i as u32 * 3 + 3);
            let mut y = vec![f32::NAN; g.output_len()];
            conv2d_forward(&g, &x, &w, &mut y);
            close(&y, &direct(&g, &x, &w), "forward", &g);

            // <dy, conv(x, w)> is linear in x and in w: its gradients are the adjoints, checked
            // element by element through unit vectors of a few entries each.
            let mut dx = vec![f32::NAN; g.input_len()];
            conv2d_input_grad(&g, &w, &dy, &mut dx);
            let mut dw = vec![f32::NAN; g.weight_len()];
            conv2d_weight_grad(&g, &x, &dy, &mut dw);
            let dot = |y: &[f64]| y.iter().zip(&dy).map(|(a, b)| a * *b as f64).sum::<f64>();
            let picks = |len: usize| (0..len).step_by((len / 7).max(1)).collect::<Vec<_>>();
            for j in picks(x.len()) {
                let mut e = vec![0.0; x.len()];
                e[j] = 1.0;
                let want = dot(&direct(&g, &e, &w));
                assert!((dx[j] as f64 - want).abs() < 1e-4, "dx[{j}] {g:?}");
            }
            for j in picks(w.len()) {
                let mut e = vec![0.0; w.len()];
                e[j] = 1.0;
                let want = dot(&direct(&g, &x, &e));
                assert!((dw[j] as f64 - want).abs() < 1e-3, "dw[{j}] {g:?}");
            }
        }
    }

    #[test]
    fn the_weight_gradient_is_the_same_bits_on_any_thread_count() {
        let g = ConvGeometry {
            batch: 64,
            channels: 8,
            height: 6,
            width: 6,
            filters: 4,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [(1, 1), (1, 1)],
            dilation: [1, 1],
        };
        let x = noise(g.input_len(), 5);
        let dy = noise(g.output_len(), 6);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut dw = vec![0.0; g.weight_len()];
                conv2d_weight_grad(&g, &x, &dy, &mut dw);
                dw
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
    }
}

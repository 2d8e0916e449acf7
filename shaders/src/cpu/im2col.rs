//! im2col and its adjoint col2im for a tile of images, through a zero-padded scratch copy of each
//! channel plane: every tap of every output row is then a plain run of that plane (a copy, or an
//! add for col2im, the compiler vectorises at stride 1), with no bounds logic in the loops.

use super::geometry::ConvGeometry;

/// The padded height and width of a plane (the input with every tap's reach inside it).
fn padded(g: &ConvGeometry) -> (usize, usize) {
    (
        g.height + g.padding[0].0 + g.padding[0].1,
        g.width + g.padding[1].0 + g.padding[1].1,
    )
}

/// The sizes both walks over a tile use (`None` when the convolution has no output).
struct Walk {
    ow: usize,
    pixels: usize,
    /// Columns of the tile: `n * pixels`.
    width: usize,
    plane: usize,
    image: usize,
    hp: usize,
    wp: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    pt: usize,
    pl: usize,
    /// The input columns an output row reads, from its first: `(ow - 1) * sw + 1`.
    span: usize,
}

impl Walk {
    fn of(g: &ConvGeometry, n: usize) -> Option<Self> {
        let [oh, ow] = g.out_size()?;
        let pixels = oh * ow;
        if pixels == 0 {
            return None;
        }
        let plane = g.height * g.width;
        let (hp, wp) = padded(g);
        Some(Self {
            ow,
            pixels,
            width: n * pixels,
            plane,
            image: g.channels * plane,
            hp,
            wp,
            kh: g.kernel[0],
            kw: g.kernel[1],
            sh: g.stride[0],
            sw: g.stride[1],
            dh: g.dilation[0],
            dw: g.dilation[1],
            pt: g.padding[0].0,
            pl: g.padding[1].0,
            span: (ow - 1) * g.stride[1] + 1,
        })
    }
}

/// Writes the im2col columns of images `first .. first + n` of `x` (NCHW) into `col`: row
/// `(c * kh + r) * kw + s`, columns `t * oh * ow ..` for the tile's image `t`; 0 in the padding.
///
/// Each channel plane is first copied into a zero-padded scratch plane, so that every tap of
/// every output row reads a plain (strided) run of it: no bounds logic per row or element.
pub fn im2col_tile(g: &ConvGeometry, x: &[f32], first: usize, n: usize, col: &mut [f32]) {
    let Some(Walk {
        ow,
        pixels,
        width,
        plane,
        image,
        hp,
        wp,
        kh,
        kw,
        sh,
        sw,
        dh,
        dw,
        pt,
        pl,
        span,
    }) = Walk::of(g, n)
    else {
        return;
    };
    let mut xpad = vec![0f32; hp * wp];
    for t in 0..n {
        for c in 0..g.channels {
            let src = &x[(first + t) * image + c * plane..][..plane];
            for (h, row) in src.chunks_exact(g.width).enumerate() {
                xpad[(h + pt) * wp + pl..][..g.width].copy_from_slice(row);
            }
            for r in 0..kh {
                for s in 0..kw {
                    let row = (c * kh + r) * kw + s;
                    let dst = &mut col[row * width + t * pixels..][..pixels];
                    for (p, d) in dst.chunks_exact_mut(ow).enumerate() {
                        let start = (p * sh + r * dh) * wp + s * dw;
                        let line = &xpad[start..start + span];
                        if sw == 1 {
                            for (v, x) in d.iter_mut().zip(line) {
                                *v = *x;
                            }
                        } else {
                            for (v, x) in d.iter_mut().zip(line.chunks(sw)) {
                                *v = x[0];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col_tile`]: adds each column entry back onto the input pixel it was read
/// from, into `dx` (the tile's images, NCHW, accumulated, not overwritten). Accumulates in a
/// zero-padded scratch plane per channel (the taps' reach), then adds its interior to `dx`.
pub fn col2im_tile(g: &ConvGeometry, col: &[f32], n: usize, dx: &mut [f32]) {
    let Some(Walk {
        ow,
        pixels,
        width,
        plane,
        image,
        hp,
        wp,
        kh,
        kw,
        sh,
        sw,
        dh,
        dw,
        pt,
        pl,
        span,
    }) = Walk::of(g, n)
    else {
        return;
    };
    let mut acc = vec![0f32; hp * wp];
    for t in 0..n {
        for c in 0..g.channels {
            acc.fill(0.0);
            for r in 0..kh {
                for s in 0..kw {
                    let row = (c * kh + r) * kw + s;
                    let src = &col[row * width + t * pixels..][..pixels];
                    for (p, d) in src.chunks_exact(ow).enumerate() {
                        let start = (p * sh + r * dh) * wp + s * dw;
                        let line = &mut acc[start..start + span];
                        if sw == 1 {
                            for (a, v) in line.iter_mut().zip(d) {
                                *a += *v;
                            }
                        } else {
                            for (a, v) in line.chunks_mut(sw).zip(d) {
                                a[0] += *v;
                            }
                        }
                    }
                }
            }
            let out = &mut dx[t * image + c * plane..][..plane];
            for (h, row) in out.chunks_exact_mut(g.width).enumerate() {
                let a = &acc[(h + pt) * wp + pl..][..g.width];
                for (d, v) in row.iter_mut().zip(a) {
                    *d += *v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// col2im is im2col's adjoint, <im2col(x), c> = <x, col2im(c)>, for both loop orders.
    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        for (h, w) in [(5, 6), (2, 3), (9, 11)] {
            let g = ConvGeometry {
                batch: 3,
                channels: 2,
                height: h,
                width: w,
                filters: 1,
                kernel: [3, 2],
                stride: [2, 1],
                padding: [(1, 2), (0, 1)],
                dilation: [1, 2],
            };
            let n = g.batch;
            let len = g.col_rows() * n * g.out_pixels();
            let x: Vec<f32> = (0..g.input_len())
                .map(|i| (i as f32 * 0.37).sin())
                .collect();
            let c: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let mut col = vec![f32::NAN; len];
            im2col_tile(&g, &x, 0, n, &mut col);
            let mut dx = vec![0.0; x.len()];
            col2im_tile(&g, &c, n, &mut dx);
            let a: f64 = col.iter().zip(&c).map(|(a, b)| (a * b) as f64).sum();
            let b: f64 = x.iter().zip(&dx).map(|(a, b)| (a * b) as f64).sum();
            assert!((a - b).abs() < 1e-4, "{h}x{w}: {a} vs {b}");
        }
    }
}

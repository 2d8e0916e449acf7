//! The convolution and its two gradients on raw NCHW f32 buffers, as GEMMs over tiles of whole
//! images: a tile's im2col columns (`col_rows x images * pixels`) are written once into a buffer
//! the thread keeps, then one product per tile covers every image in it (the batch folded into
//! the GEMM's long dimension, instead of one small product per image).
//!
//! - forward: `y[tile] = W · col(x[tile])`;
//! - input gradient: `dx[tile] = col2im(Wᵀ · dy[tile])`; tiles own their images, so no two threads
//!   add into one pixel;
//! - weight gradient: `dW = Σ dy[tile] · col(x[tile])ᵀ`, summed in a fixed number of groups of
//!   tiles fixed by the geometry, then the groups in order: the same bits for any thread count.

use super::gemm::{Mat, matmul};
use super::geometry::ConvGeometry;
use super::im2col::{col2im_tile, im2col_tile};
use super::par;

/// Tiles of whole images for the passes whose columns are independent.
struct Tiles {
    per_tile: usize,
    count: usize,
}

impl Tiles {
    fn of(g: &ConvGeometry) -> Self {
        let per_tile = g.images_per_tile(par::threads());
        Self {
            per_tile,
            count: g.batch.div_ceil(per_tile),
        }
    }

    fn images(&self, tile: usize, batch: usize) -> std::ops::Range<usize> {
        tile * self.per_tile..((tile + 1) * self.per_tile).min(batch)
    }

    /// One tile (a single large image, or a batch of one) is threaded inside its GEMM instead.
    fn parallel(&self) -> bool {
        self.count > 1 && par::threads() > 1
    }
}

fn check(g: &ConvGeometry, x: usize, w: usize, y: usize) {
    assert!(
        g.out_size().is_some(),
        "convolution geometry {g:?} has no output"
    );
    assert_eq!(x, g.input_len(), "input buffer for {g:?}");
    assert_eq!(w, g.weight_len(), "weight buffer for {g:?}");
    assert_eq!(y, g.output_len(), "output buffer for {g:?}");
}

/// Fills `col` (`col_rows x images * pixels`) with the im2col columns of `images`.
fn fill_columns(g: &ConvGeometry, x: &[f32], images: std::ops::Range<usize>, col: &mut [f32]) {
    im2col_tile(g, x, images.start, images.len(), col);
}

/// `y = conv(x, w)` with `x` `[batch, channels, height, width]`, `w` `[filters, channels, kh, kw]`
/// and `y` `[batch, filters, oh, ow]`, all row-major.
pub fn conv2d_forward(g: &ConvGeometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    check(g, x.len(), w.len(), y.len());
    if let Some((c, first)) = g.without_padding_taps() {
        return forward(&c, x, &crop_weight(g, &c, first, w), y);
    }
    forward(g, x, w, y);
}

fn forward(g: &ConvGeometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    let (pixels, rows, filters) = (g.out_pixels(), g.col_rows(), g.filters);
    if y.is_empty() {
        return;
    }
    let tiles = Tiles::of(g);
    let weights = Mat::rows(w, filters, rows);
    let threads = par::gemm_threads(!tiles.parallel());
    let image_out = filters * pixels;
    par::for_each_chunk(y, tiles.per_tile * image_out, tiles.parallel(), |t, out| {
        let images = tiles.images(t, g.batch);
        let n = images.len();
        if n == 1 && g.is_pointwise() {
            let image_len = g.channels * pixels;
            let xi = &x[images.start * image_len..(images.start + 1) * image_len];
            let cols = Mat::rows(xi, rows, pixels);
            return matmul(out, pixels, false, weights, cols, threads);
        }
        let width = n * pixels;
        let spill = if n == 1 { 0 } else { filters * width };
        par::with_scratch(rows * width, spill, |col, res| {
            fill_columns(g, x, images, col);
            let cols = Mat::rows(col, rows, width);
            if n == 1 {
                return matmul(out, pixels, false, weights, cols, threads);
            }
            matmul(res, width, false, weights, cols, threads);
            // [filter][image][pixel] -> [image][filter][pixel].
            for i in 0..n {
                for f in 0..filters {
                    let src = &res[f * width + i * pixels..f * width + (i + 1) * pixels];
                    out[(i * filters + f) * pixels..(i * filters + f + 1) * pixels]
                        .copy_from_slice(src);
                }
            }
        })
    });
}

/// The tile's output gradient as a `filters x images * pixels` matrix: the slice itself for one
/// image, else gathered into `buf`.
fn gradient_rows<'a>(
    g: &ConvGeometry,
    dy: &'a [f32],
    images: std::ops::Range<usize>,
    buf: &'a mut [f32],
) -> Mat<'a> {
    let (pixels, filters) = (g.out_pixels(), g.filters);
    let image_out = filters * pixels;
    let n = images.len();
    if n == 1 {
        let i = images.start;
        return Mat::rows(&dy[i * image_out..(i + 1) * image_out], filters, pixels);
    }
    let width = n * pixels;
    for (t, i) in images.enumerate() {
        for f in 0..filters {
            let src = &dy[(i * filters + f) * pixels..(i * filters + f + 1) * pixels];
            buf[f * width + t * pixels..f * width + (t + 1) * pixels].copy_from_slice(src);
        }
    }
    Mat::rows(&buf[..filters * width], filters, width)
}

/// The input gradient `dx` (`[batch, channels, height, width]`, overwritten) of `y = conv(x, w)`
/// given `dy = ∂L/∂y`.
pub fn conv2d_input_grad(g: &ConvGeometry, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    check(g, dx.len(), w.len(), dy.len());
    if let Some((c, first)) = g.without_padding_taps() {
        return input_grad(&c, &crop_weight(g, &c, first, w), dy, dx);
    }
    input_grad(g, w, dy, dx);
}

fn input_grad(g: &ConvGeometry, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (pixels, rows, filters) = (g.out_pixels(), g.col_rows(), g.filters);
    let image_len = g.channels * g.height * g.width;
    if dx.is_empty() {
        return;
    }
    let tiles = Tiles::of(g);
    // Wᵀ: `[channels * kh * kw, filters]`.
    let weights_t = Mat::rows(w, filters, rows).t();
    let threads = par::gemm_threads(!tiles.parallel());
    par::for_each_chunk(
        dx,
        tiles.per_tile * image_len,
        tiles.parallel(),
        |t, dxt| {
            let images = tiles.images(t, g.batch);
            let n = images.len();
            let width = n * pixels;
            let gather = if n == 1 { 0 } else { filters * width };
            if n == 1 && g.is_pointwise() {
                par::with_scratch(0, gather, |_, buf| {
                    let dyt = gradient_rows(g, dy, images, buf);
                    matmul(dxt, pixels, false, weights_t, dyt, threads);
                });
                return;
            }
            par::with_scratch(rows * width, gather, |dcol, buf| {
                let dyt = gradient_rows(g, dy, images.clone(), buf);
                matmul(dcol, width, false, weights_t, dyt, threads);
                dxt.fill(0.0);
                col2im_tile(g, dcol, n, dxt);
            });
        },
    );
}

/// The weight gradient `dw` (`[filters, channels, kh, kw]`, overwritten) of `y = conv(x, w)` given
/// `dy = ∂L/∂y`. Summed chunk by chunk in an order fixed by the geometry (see
/// [`ConvGeometry::weight_chunks`]): the same bits on any thread count.
pub fn conv2d_weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    check(g, x.len(), dw.len(), dy.len());
    if let Some((c, first)) = g.without_padding_taps() {
        // The dropped taps multiplied only padding: their gradient is exactly zero.
        let mut part = vec![0.0; c.weight_len()];
        weight_grad(&c, x, dy, &mut part);
        dw.fill(0.0);
        for_kept_taps(g, &c, first, |full, kept| {
            dw[full].copy_from_slice(&part[kept])
        });
        return;
    }
    weight_grad(g, x, dy, dw);
}

/// Calls `f(full, kept)` for each run of kept taps: the index range of a kernel row in the
/// full weight `[filters, channels, kh, kw]` and in the cropped one.
fn for_kept_taps(
    g: &ConvGeometry,
    c: &ConvGeometry,
    first: [usize; 2],
    mut f: impl FnMut(std::ops::Range<usize>, std::ops::Range<usize>),
) {
    let ([kh, kw], [ch, cw]) = (g.kernel, c.kernel);
    for fc in 0..g.filters * g.channels {
        for r in 0..ch {
            let full = (fc * kh + first[0] + r) * kw + first[1];
            let kept = (fc * ch + r) * cw;
            f(full..full + cw, kept..kept + cw);
        }
    }
}

/// The weight of `g` restricted to the taps `c` keeps.
fn crop_weight(g: &ConvGeometry, c: &ConvGeometry, first: [usize; 2], w: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; c.weight_len()];
    for_kept_taps(g, c, first, |full, kept| {
        out[kept].copy_from_slice(&w[full])
    });
    out
}

fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let (pixels, rows, filters) = (g.out_pixels(), g.col_rows(), g.filters);
    dw.fill(0.0);
    if dy.is_empty() {
        return;
    }
    let (groups, per_chunk) = g.weight_chunks();
    let chunks = g.batch.div_ceil(per_chunk);
    let per_group = chunks.div_ceil(groups);
    let parallel = groups > 1 && par::threads() > 1;
    // One group: its products are threaded inside (their output blocks split, the sum over
    // columns kept in order, so still deterministic).
    let threads = par::gemm_threads(!parallel);
    let image_len = g.channels * pixels;
    // Adds chunk `c`'s products into `acc`.
    let chunk = |c: usize, acc: &mut [f32]| {
        let images = c * per_chunk..((c + 1) * per_chunk).min(g.batch);
        let n = images.len();
        let width = n * pixels;
        let gather = if n == 1 { 0 } else { filters * width };
        if n == 1 && g.is_pointwise() {
            par::with_scratch(0, gather, |_, buf| {
                let xi = &x[images.start * image_len..(images.start + 1) * image_len];
                let dyt = gradient_rows(g, dy, images, buf);
                let cols_t = Mat::rows(xi, rows, pixels).t();
                matmul(acc, rows, true, dyt, cols_t, threads);
            });
            return;
        }
        par::with_scratch(rows * width, gather, |col, buf| {
            fill_columns(g, x, images.clone(), col);
            let dyt = gradient_rows(g, dy, images, buf);
            let cols_t = Mat::rows(col, rows, width).t();
            matmul(acc, rows, true, dyt, cols_t, threads);
        });
    };
    if groups == 1 {
        for c in 0..chunks {
            chunk(c, dw);
        }
        return;
    }
    let partials = par::map(groups, parallel, |grp| {
        let mut acc = vec![0.0f32; filters * rows];
        for c in grp * per_group..((grp + 1) * per_group).min(chunks) {
            chunk(c, &mut acc);
        }
        acc
    });
    for p in partials {
        for (d, v) in dw.iter_mut().zip(&p) {
            *d += *v;
        }
    }
}

//! The shape of one 2-D convolution (NCHW input, OIHW weight, one group) and how the CPU kernels
//! cut its batch into tiles.

/// A 2-D convolution's sizes: input `[batch, channels, height, width]`, weight
/// `[filters, channels, kernel[0], kernel[1]]`, output `[batch, filters, out[0], out[1]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub filters: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// `(before, after)` for height, then width.
    pub padding: [(usize, usize); 2],
    pub dilation: [usize; 2],
}

/// Bytes of im2col columns a tile aims for: about a core's L2 on current x86 and ARM parts, so the
/// columns the GEMM reads are still in cache after im2col wrote them.
const TILE_COLUMN_BYTES: usize = 512 * 1024;

/// The weight gradient's chunks are longer (their products' inner dimension is the chunk's
/// columns: a long one amortises the packing).
const WEIGHT_CHUNK_BYTES: usize = 2 << 20;

/// A weight gradient of at least this many values is one group threaded inside its products.
const LARGE_WEIGHT: usize = 64 * 1024;

/// Partial weight gradients kept at once: at most this many bytes of them.
const PARTIAL_BYTES: usize = 32 << 20;

impl ConvGeometry {
    /// Output height and width; `None` when the (padded, dilated) kernel does not fit the input
    /// or a stride or dilation is zero.
    pub fn out_size(&self) -> Option<[usize; 2]> {
        let dim = |i: usize, size: usize| {
            let (stride, dilation) = (self.stride[i], self.dilation[i]);
            if stride == 0 || dilation == 0 || self.kernel[i] == 0 {
                return None;
            }
            let span = dilation * (self.kernel[i] - 1) + 1;
            let padded = size + self.padding[i].0 + self.padding[i].1;
            padded.checked_sub(span).map(|d| d / stride + 1)
        };
        Some([dim(0, self.height)?, dim(1, self.width)?])
    }

    /// Output pixels per image and channel (`out[0] * out[1]`).
    pub fn out_pixels(&self) -> usize {
        self.out_size().map_or(0, |[p, q]| p * q)
    }

    /// Rows of the im2col matrix: the GEMM's inner dimension (`channels * kh * kw`).
    pub fn col_rows(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.channels * self.height * self.width
    }

    pub fn weight_len(&self) -> usize {
        self.filters * self.col_rows()
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.filters * self.out_pixels()
    }

    /// Bytes of im2col columns per image.
    pub fn column_bytes(&self) -> usize {
        self.col_rows() * self.out_pixels() * std::mem::size_of::<f32>()
    }

    /// Whole images per tile of the forward pass and the input gradient: as many as keep a
    /// tile's im2col columns near [`TILE_COLUMN_BYTES`] (at least one), and no more than give
    /// every one of `threads` two tiles. Those passes compute every output column alone, so the
    /// tiling changes no result; the weight gradient, which sums over tiles, tiles by the geometry
    /// alone ([`Self::weight_chunks`]).
    pub fn images_per_tile(&self, threads: usize) -> usize {
        let by_bytes = TILE_COLUMN_BYTES / self.column_bytes().max(1);
        by_bytes.min(self.batch.div_ceil(2 * threads.max(1))).max(1)
    }

    /// How the weight gradient cuts the batch, from the geometry alone (so its summation order,
    /// and its bits, are the same on every machine and thread count): `(groups, images per
    /// chunk)`. A wide layer on small maps (a large gradient, few columns an image) is one group
    /// whose chunks are long products threaded inside; a layer on large maps is up to 16 groups
    /// summed into partial gradients in parallel, then added in order.
    pub fn weight_chunks(&self) -> (usize, usize) {
        let per_chunk =
            (WEIGHT_CHUNK_BYTES / self.column_bytes().max(1)).clamp(1, self.batch.max(1));
        let chunks = self.batch.div_ceil(per_chunk);
        let partial = self.weight_len() * std::mem::size_of::<f32>();
        let groups = if self.weight_len() >= LARGE_WEIGHT {
            1
        } else {
            (PARTIAL_BYTES / partial.max(1)).clamp(1, 16).min(chunks)
        };
        (groups, per_chunk)
    }

    /// The geometry without the kernel's outer taps that read only padding for every output
    /// (a 3x3 kernel on a 1x1 map reads 8 zeros for each value; on a 2x2 map at stride 2, 5),
    /// with the first kept tap per dimension: the same output from a GEMM with fewer rows.
    /// `None` when every tap reads some input.
    pub fn without_padding_taps(&self) -> Option<(ConvGeometry, [usize; 2])> {
        let out = self.out_size()?;
        let size = [self.height, self.width];
        let mut g = *self;
        let mut first = [0; 2];
        for i in 0..2 {
            let (k, s, d, (before, after)) = (
                self.kernel[i],
                self.stride[i],
                self.dilation[i],
                self.padding[i],
            );
            let reads = |r: usize| {
                (0..out[i]).any(|p| {
                    let at = p * s + r * d;
                    at >= before && at - before < size[i]
                })
            };
            let r0 = (0..k).find(|&r| reads(r))?;
            let r1 = (0..k).rev().find(|&r| reads(r))? + 1;
            g.kernel[i] = r1 - r0;
            g.padding[i] = (
                before.checked_sub(r0 * d)?,
                after.checked_sub((k - r1) * d)?,
            );
            first[i] = r0;
        }
        (g.kernel != self.kernel && g.out_size() == Some(out)).then_some((g, first))
    }

    /// A 1x1 kernel with stride 1 and no padding reads the input image itself as its im2col
    /// matrix `[channels, pixels]`, so those kernels skip the copy.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.padding == [(0, 0), (0, 0)]
            && self.dilation == [1, 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(h: usize, k: usize, stride: usize, pad: usize) -> ConvGeometry {
        ConvGeometry {
            batch: 2,
            channels: 3,
            height: h,
            width: h,
            filters: 4,
            kernel: [k, k],
            stride: [stride, stride],
            padding: [(pad, pad), (pad, pad)],
            dilation: [1, 1],
        }
    }

    #[test]
    fn output_sizes_follow_torch() {
        assert_eq!(geometry(28, 7, 2, 3).out_size(), Some([14, 14]));
        assert_eq!(geometry(7, 3, 2, 1).out_size(), Some([4, 4]));
        assert_eq!(geometry(7, 1, 2, 0).out_size(), Some([4, 4]));
        assert_eq!(geometry(1, 3, 1, 1).out_size(), Some([1, 1]));
        assert_eq!(geometry(2, 5, 1, 0).out_size(), None);
        assert_eq!(geometry(5, 3, 0, 1).out_size(), None);
    }

    #[test]
    fn tiles_hold_whole_images_and_the_weight_gradient_ignores_threads() {
        let g = ConvGeometry {
            batch: 256,
            ..geometry(7, 3, 1, 1)
        };
        for threads in [1, 2, 16] {
            let t = g.images_per_tile(threads);
            assert!((1..=256).contains(&t), "{t}");
            assert!(256_usize.div_ceil(t) >= 2 * threads.min(128));
        }
        let big = ConvGeometry {
            batch: 4,
            channels: 64,
            ..geometry(224, 7, 1, 3)
        };
        assert_eq!(big.images_per_tile(2), 1);
        // The weight gradient's cut ignores threads: a wide layer is one group.
        let wide = ConvGeometry {
            batch: 256,
            channels: 128,
            filters: 128,
            ..geometry(1, 3, 1, 1)
        };
        assert_eq!(wide.weight_chunks().0, 1);
        // A narrow layer on large maps is several groups.
        let large_maps = ConvGeometry {
            batch: 256,
            ..geometry(64, 3, 1, 1)
        };
        assert!(large_maps.weight_chunks().0 > 1);
    }
}

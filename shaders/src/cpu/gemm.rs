//! A bounds-checked front to the `gemm` crate's matrix product on strided f32 matrices.

/// A strided read-only matrix: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows x cols` matrix (rows `cols` apart).
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    pub fn strided(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// The transpose, without moving anything.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Whether every element lies inside `data` (checked before the unchecked product).
    fn fits(&self, len: usize) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < len
    }
}

/// `dst = a · b` (or `dst += a · b` with `accumulate`), `dst` row-major with rows `dst_stride`
/// apart. The crate transposes internally so the longer output dimension feeds its microkernel.
pub fn matmul(
    dst: &mut [f32],
    dst_stride: usize,
    accumulate: bool,
    a: Mat<'_>,
    b: Mat<'_>,
    threads: gemm::Parallelism,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "inner dimensions differ");
    let dst_view = Mat::strided(dst, m, n, dst_stride, 1);
    assert!(
        a.fits(a.data.len()) && b.fits(b.data.len()) && dst_view.fits(dst.len()),
        "matrix view outside its buffer"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                dst[i * dst_stride..i * dst_stride + n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: every index the product touches was checked to lie inside its slice above, and
    // `dst` is borrowed mutably, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            threads,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_products_and_accumulation() {
        // a: 2x3, b: 3x2 given as the transpose of a row-major 2x3.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let bt = [1.0, 0.0, -1.0, 2.0, 1.0, 0.5];
        let mut dst = [10.0; 4];
        matmul(
            &mut dst,
            2,
            false,
            Mat::rows(&a, 2, 3),
            Mat::rows(&bt, 2, 3).t(),
            gemm::Parallelism::None,
        );
        assert_eq!(dst, [-2.0, 5.5, -2.0, 16.0]);
        matmul(
            &mut dst,
            2,
            true,
            Mat::rows(&a, 2, 3),
            Mat::rows(&bt, 2, 3).t(),
            gemm::Parallelism::None,
        );
        assert_eq!(dst, [-4.0, 11.0, -4.0, 32.0]);
    }

    #[test]
    #[should_panic(expected = "outside its buffer")]
    fn views_past_the_buffer_are_refused() {
        let a = [1.0; 5];
        let mut dst = [0.0; 4];
        matmul(
            &mut dst,
            2,
            false,
            Mat::rows(&a, 2, 3),
            Mat::rows(&a, 3, 2),
            gemm::Parallelism::None,
        );
    }
}

//! The backend extension trait: one method per kernel of ours, routed by burn's generated
//! `Dispatch` glue to the backend a tensor lives on.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};
use burn::tensor::ops::ConvOptions;

/// The project's kernels, implemented for burn's CPU backend and for autodiff over it; the entry
/// points in `op.rs` send other devices (and dtypes) to burn's own operations.
#[backend_extension(Flex, Autodiff)]
pub trait ConvKernels: Backend {
    /// A 2-D convolution without bias (groups 1, f32).
    fn leoclr_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// BatchNorm with the batch's statistics (training): the output, then the per-channel mean
    /// and biased variance (outside the graph, for the running statistics).
    fn leoclr_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Max pooling (dilation 1, floor).
    fn leoclr_max_pool2d(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self>;
}

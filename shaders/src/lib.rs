//! The project's own kernels, plugged into burn through its backend extension (as brush does for
//! its renderer): where burn's generic kernels hold the training step back.
//!
//! Today, on the CPU (`cpu/`, raw f32 buffers): the 2-D convolution (the `gemm` crate's
//! microkernels), BatchNorm with batch statistics and max pooling, forward and backward;
//! `flex.rs` and `autodiff.rs` connect them to burn's CPU backend and its autodiff. The entry
//! points in `op.rs` are what models call: our kernels where they apply, burn's everywhere else,
//! so the same model code runs on every device.

mod autodiff;
pub mod cpu;
mod extension;
mod flex;
mod op;

pub use extension::ConvKernels;
pub use op::{
    ConvImpl, batch_norm_train, conv_impl, conv2d, max_pool2d, ours_for, set_conv_impl,
    uses_our_conv,
};

//! The entry points models call: our kernels on the CPU backend (f32; convolutions of one group),
//! burn's elsewhere.

use std::sync::atomic::{AtomicU8, Ordering};

use burn::backend::{DType, DispatchDevice};
use burn::tensor::module;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

use crate::extension::ConvKernels;

/// Which convolution the CPU backend runs: ours (the default) or burn's own, kept selectable so a
/// benchmark can put the two side by side in one process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvImpl {
    #[default]
    Ours,
    Burn,
}

static CONV_IMPL: AtomicU8 = AtomicU8::new(0);

/// Chooses the CPU convolution for the whole process (benchmarks; results agree to float
/// rounding, so a run may switch between steps).
pub fn set_conv_impl(choice: ConvImpl) {
    CONV_IMPL.store(choice as u8, Ordering::Relaxed);
}

pub fn conv_impl() -> ConvImpl {
    match CONV_IMPL.load(Ordering::Relaxed) {
        0 => ConvImpl::Ours,
        _ => ConvImpl::Burn,
    }
}

fn on_cpu_backend(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// Whether our BatchNorm and pooling kernels serve `x` (f32 on the CPU backend, unless burn's
/// kernels were chosen for the process).
pub fn ours_for(x: &Tensor<4>) -> bool {
    conv_impl() == ConvImpl::Ours && x.dtype() == DType::F32 && on_cpu_backend(&x.device())
}

/// BatchNorm with the batch's statistics on our kernel (call when [`ours_for`] says so): the
/// output, then the per-channel mean and biased variance (outside the graph), as burn's
/// `module::batch_norm_train` returns them.
pub fn batch_norm_train(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    let (y, mean, var) = <burn::backend::Dispatch as ConvKernels>::leoclr_batch_norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    );
    (
        Tensor::from_dispatch(y),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(var),
    )
}

/// Max pooling on our kernel (call when [`ours_for`] says so; dilation 1, floor).
pub fn max_pool2d(
    x: Tensor<4>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Tensor<4> {
    Tensor::from_dispatch(<burn::backend::Dispatch as ConvKernels>::leoclr_max_pool2d(
        x.into_dispatch(),
        kernel,
        stride,
        padding,
    ))
}

/// Whether [`conv2d`] takes our kernel for these operands.
pub fn uses_our_conv(x: &Tensor<4>, weight: &Tensor<4>, options: &ConvOptions<2>) -> bool {
    conv_impl() == ConvImpl::Ours
        && options.groups == 1
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && on_cpu_backend(&x.device())
        && on_cpu_backend(&weight.device())
}

/// `conv2d(x, weight) + bias`, as burn's `module::conv2d`, on our kernels where they apply.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    if !uses_our_conv(&x, &weight, &options) {
        return module::conv2d(x, weight, bias, options);
    }
    let y = Tensor::<4>::from_dispatch(<burn::backend::Dispatch as ConvKernels>::leoclr_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        options,
    ));
    match bias {
        Some(b) => {
            let k = b.dims()[0];
            y + b.reshape([1, k, 1, 1])
        }
        None => y,
    }
}

//! The extension on burn's CPU backend (`Flex`): burn's tensors in and out, our kernels between.

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::ops::ModuleOps;
use burn::backend::{DType, Flex, TensorMetadata};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Bytes, Shape};

use crate::cpu::norm::Channels;
use crate::cpu::pool::PoolGeometry;
use crate::cpu::{self, ConvGeometry};
use crate::extension::ConvKernels;

/// The geometry of `conv2d(x, w)`, or `None` where our kernels do not apply (another rank or
/// dtype, groups, or a kernel larger than the padded input, which burn reports itself).
pub(crate) fn geometry(x: &Shape, w: &Shape, options: &ConvOptions<2>) -> Option<ConvGeometry> {
    let (x, w) = (x.as_slice(), w.as_slice());
    if x.len() != 4 || w.len() != 4 || options.groups != 1 || x[1] != w[1] {
        return None;
    }
    let g = ConvGeometry {
        batch: x[0],
        channels: x[1],
        height: x[2],
        width: x[3],
        filters: w[0],
        kernel: [w[2], w[3]],
        stride: options.stride,
        padding: options.padding,
        dilation: options.dilation,
    };
    g.out_size().map(|_| g)
}

fn f32_contiguous(t: &FlexTensor) -> Option<FlexTensor> {
    (t.dtype() == DType::F32).then(|| t.to_contiguous())
}

fn slice(t: &FlexTensor) -> &[f32] {
    // `f32_contiguous` made it contiguous f32; `as_slice` is then always `Some`.
    t.as_slice::<f32>().unwrap_or(&[])
}

fn tensor(data: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(Shape::new(shape)),
        DType::F32,
    )
}

/// Contiguous f32 views of the operands with their geometry, or `None` (burn's kernels then).
fn operands(
    x: &FlexTensor,
    w: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<(ConvGeometry, FlexTensor, FlexTensor)> {
    let g = geometry(&x.shape(), &w.shape(), options)?;
    Some((g, f32_contiguous(x)?, f32_contiguous(w)?))
}

impl ConvKernels for Flex {
    fn leoclr_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        let Some((g, xc, wc)) = operands(&x, &weight, &options) else {
            return Flex::conv2d(x, weight, None, options);
        };
        let [oh, ow] = g.out_size().unwrap_or([0, 0]);
        let mut y = vec![0.0f32; g.output_len()];
        cpu::conv2d_forward(&g, slice(&xc), slice(&wc), &mut y);
        tensor(y, [g.batch, g.filters, oh, ow])
    }

    fn leoclr_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (out, mean, var, _) = norm_forward(x, gamma, beta, epsilon);
        (out, mean, var)
    }

    fn leoclr_max_pool2d(
        x: FlexTensor,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FlexTensor {
        pool_forward(x, kernel, stride, padding, false).0
    }
}

fn vector(data: Vec<f32>) -> FlexTensor {
    let n = data.len();
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(Shape::new([n])),
        DType::F32,
    )
}

/// The channels view of a `[n, c, ...]` f32 tensor.
pub(crate) fn channels_of(x: &FlexTensor) -> Channels {
    let shape = x.shape();
    let dims = shape.as_slice();
    Channels {
        n: dims.first().copied().unwrap_or(0),
        c: dims.get(1).copied().unwrap_or(0),
        rest: dims.iter().skip(2).product(),
    }
}

/// BatchNorm in training on our kernels: output, mean, variance, and `1 / std` (for the
/// backward pass). The caller checked the dtypes (f32) and shapes.
pub(crate) fn norm_forward(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor, Vec<f32>) {
    let shape = x.shape();
    let s = channels_of(&x);
    let (xc, gc, bc) = (
        x.to_contiguous(),
        gamma.to_contiguous(),
        beta.to_contiguous(),
    );
    let (mean, var) = cpu::norm::statistics(s, slice(&xc));
    let inv = cpu::norm::inverse_std(&var, epsilon);
    let mut y = vec![0.0f32; s.len()];
    cpu::norm::normalize(s, slice(&xc), &mean, &inv, slice(&gc), slice(&bc), &mut y);
    let out = FlexTensor::new(Bytes::from_elems(y), Layout::contiguous(shape), DType::F32);
    (out, vector(mean), vector(var), inv)
}

/// `(dx, dgamma, dbeta)` of BatchNorm in training.
pub(crate) fn norm_backward(
    x: FlexTensor,
    gamma: FlexTensor,
    dy: FlexTensor,
    mean: &[f32],
    inv_std: &[f32],
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let shape = x.shape();
    let s = channels_of(&x);
    let (xc, gc, dyc) = (x.to_contiguous(), gamma.to_contiguous(), dy.to_contiguous());
    let mut dx = vec![0.0f32; s.len()];
    let (dgamma, dbeta) = cpu::norm::backward(
        s,
        slice(&xc),
        slice(&dyc),
        mean,
        inv_std,
        slice(&gc),
        &mut dx,
    );
    let dx = FlexTensor::new(Bytes::from_elems(dx), Layout::contiguous(shape), DType::F32);
    (dx, vector(dgamma), vector(dbeta))
}

/// The geometry of pooling `x` (`[n, c, h, w]`).
pub(crate) fn pool_geometry(
    x: &FlexTensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> PoolGeometry {
    let shape = x.shape();
    let d = shape.as_slice();
    PoolGeometry {
        planes: d[0] * d[1],
        height: d[2],
        width: d[3],
        kernel,
        stride,
        padding,
    }
}

/// Max pooling on our kernel: the output and (with `winners`) each output's winner.
pub(crate) fn pool_forward(
    x: FlexTensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    winners: bool,
) -> (FlexTensor, Vec<u32>) {
    let g = pool_geometry(&x, kernel, stride, padding);
    let [oh, ow] = g.out_size().unwrap_or([0, 0]);
    let d = x.shape();
    let (n, c) = (d[0], d[1]);
    let xc = x.to_contiguous();
    let mut y = vec![0.0f32; g.planes * oh * ow];
    let mut argmax = match winners {
        true => vec![0u32; y.len()],
        false => Vec::new(),
    };
    let a = winners.then_some(argmax.as_mut_slice());
    cpu::pool::max_pool_forward(&g, slice(&xc), &mut y, a);
    (tensor(y, [n, c, oh, ow]), argmax)
}

/// `dx` of max pooling from the winners of its forward pass.
pub(crate) fn pool_backward(
    shape: Shape,
    g: &PoolGeometry,
    dy: FlexTensor,
    argmax: &[u32],
) -> FlexTensor {
    let dyc = dy.to_contiguous();
    let mut dx = vec![0.0f32; g.planes * g.height * g.width];
    cpu::pool::max_pool_backward(g, slice(&dyc), argmax, &mut dx);
    FlexTensor::new(Bytes::from_elems(dx), Layout::contiguous(shape), DType::F32)
}

/// `∂L/∂x` of `y = conv2d(x, w)` given `dy = ∂L/∂y`.
pub(crate) fn input_grad(
    x: FlexTensor,
    w: FlexTensor,
    dy: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    match (operands(&x, &w, options), f32_contiguous(&dy)) {
        (Some((g, _, wc)), Some(dyc)) => {
            let mut dx = vec![0.0f32; g.input_len()];
            cpu::conv2d_input_grad(&g, slice(&wc), slice(&dyc), &mut dx);
            tensor(dx, [g.batch, g.channels, g.height, g.width])
        }
        _ => Flex::conv2d_x_backward(x, w, dy, options.clone()),
    }
}

/// `∂L/∂w` of `y = conv2d(x, w)` given `dy = ∂L/∂y`.
pub(crate) fn weight_grad(
    x: FlexTensor,
    w: FlexTensor,
    dy: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    match (operands(&x, &w, options), f32_contiguous(&dy)) {
        (Some((g, xc, _)), Some(dyc)) => {
            let mut dw = vec![0.0f32; g.weight_len()];
            cpu::conv2d_weight_grad(&g, slice(&xc), slice(&dyc), &mut dw);
            tensor(dw, [g.filters, g.channels, g.kernel[0], g.kernel[1]])
        }
        _ => Flex::conv2d_weight_backward(x, w, dy, options.clone()),
    }
}

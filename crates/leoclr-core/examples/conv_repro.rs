//! A minimal reproduction, against burn alone, of the CPU convolution the profile of the tiny
//! model's training step puts on top (docs/performance.md): the 7x7 stride-2 stem on one input
//! channel, beside a 3x3 convolution of the same batch with 16 channels in and out. Prints the
//! milliseconds per forward call and the arithmetic rate of each, for a report upstream; the
//! same two convolutions in PyTorch are the one-liner in docs/performance.md.
//!
//!   RAYON_NUM_THREADS=2 cargo run --release --example conv_repro -p leoclr-core
//!   (or ~/.cache/leoclr/target/debug/examples/conv_repro after the test command's build)

use std::time::Instant;

use burn::tensor::module::{conv2d, unfold4d};
use burn::tensor::ops::{ConvOptions, UnfoldOptions};
use burn::tensor::{Device, Distribution, Tensor};

/// The same convolution as unfold (im2col) then one batched matmul: what a GEMM-based kernel
/// would do. Equal results to float rounding.
fn im2col_conv(x: Tensor<4>, w: Tensor<4>, options: &ConvOptions<2>) -> Tensor<4> {
    let [n, _, h, wd] = x.dims();
    let [cout, cin, kh, kw] = w.dims();
    let (s, p) = (options.stride, options.padding.map(|(a, _)| a));
    let cols = unfold4d(x, [kh, kw], UnfoldOptions::new(s, p, [1, 1]));
    let oh = (h + 2 * p[0] - kh) / s[0] + 1;
    let ow = (wd + 2 * p[1] - kw) / s[1] + 1;
    let w2 = w.reshape([1, cout, cin * kh * kw]);
    w2.matmul(cols).reshape([n, cout, oh, ow])
}

fn time(name: &str, x: Tensor<4>, w: Tensor<4>, options: ConvOptions<2>) {
    let run = || conv2d(x.clone(), w.clone(), None, options.clone());
    let reference = run();
    let diff = (im2col_conv(x.clone(), w.clone(), &options) - reference)
        .abs()
        .max()
        .into_scalar::<f32>();
    report(name, &x, &w, &run);
    report(
        &format!("{name} as im2col + matmul (max diff {diff:.1e})"),
        &x,
        &w,
        &|| im2col_conv(x.clone(), w.clone(), &options),
    );
}

fn report(name: &str, x: &Tensor<4>, w: &Tensor<4>, run: &dyn Fn() -> Tensor<4>) {
    let [n, _, _, _] = x.dims();
    let [cout, cin, kh, kw] = w.dims();
    let out = run();
    let [_, _, oh, ow] = out.dims();
    let _ = out.into_data();
    let reps = 10;
    let t = Instant::now();
    for _ in 0..reps {
        let _ = run().into_data();
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0 / reps as f64;
    let flops = 2.0 * (n * cout * oh * ow * cin * kh * kw) as f64;
    println!(
        "{name:<40} x {:?} w {:?}: {ms:8.2} ms  {:6.2} GFLOP/s",
        x.dims(),
        w.dims(),
        flops / ms / 1e6
    );
}

fn main() {
    let dev = Device::flex();
    let n = 768; // a batch of 256 images, three views each
    let normal = Distribution::Normal(0.0, 1.0);
    time(
        "stem: 7x7 stride 2, 1 -> 16 channels",
        Tensor::<4>::random([n, 1, 28, 28], normal, &dev),
        Tensor::<4>::random([16, 1, 7, 7], normal, &dev),
        ConvOptions::new([2, 2], [3, 3], [1, 1], 1),
    );
    time(
        "block: 3x3 stride 1, 16 -> 16 channels",
        Tensor::<4>::random([n, 16, 7, 7], normal, &dev),
        Tensor::<4>::random([16, 16, 3, 3], normal, &dev),
        ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
    );
}

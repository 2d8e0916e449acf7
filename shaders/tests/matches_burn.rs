//! Our CPU convolution against burn's own, through the public entry point and burn's autodiff:
//! the forward and both gradients on random shapes (strides 1 and 2, padding, 1/3/16/64 channels,
//! batch 1, odd and non-square sizes, dilation), to float tolerance.

use burn::tensor::module;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use leoclr_kernels::{conv2d, uses_our_conv};

fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn tensor(shape: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(noise(n, seed), shape), device)
}

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 2e-5 * scale,
        "{what}: max |difference| {worst} (scale {scale})"
    );
}

/// (batch, channels in, channels out, height, width, kernel, stride, padding, dilation)
type Case = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

const CASES: &[Case] = &[
    (4, 1, 16, 28, 28, 7, 2, 3, 1),
    (1, 3, 8, 13, 9, 3, 1, 1, 1),
    (2, 16, 16, 7, 7, 3, 1, 1, 1),
    (3, 16, 32, 7, 7, 3, 2, 1, 1),
    (3, 16, 32, 7, 7, 1, 2, 0, 1),
    (2, 64, 64, 4, 4, 3, 1, 1, 1),
    (2, 64, 16, 5, 5, 1, 1, 0, 1),
    (1, 64, 3, 1, 1, 3, 1, 1, 1),
    (5, 3, 4, 11, 6, 5, 3, 2, 1),
    (2, 3, 5, 9, 9, 3, 1, 2, 2),
    (40, 16, 16, 7, 7, 3, 1, 1, 1),
];

#[test]
fn forward_and_gradients_equal_burns_conv() {
    let device = Device::flex().autodiff();
    for (i, &(n, c, k, h, w, ks, s, p, d)) in CASES.iter().enumerate() {
        let options = ConvOptions::new([s, s], [p, p], [d, d], 1);
        let x = tensor([n, c, h, w], 3 * i as u64 + 1, &device);
        let wt = tensor([k, c, ks, ks], 3 * i as u64 + 2, &device);
        assert!(
            uses_our_conv(&x, &wt, &options),
            "case {i} not on our kernel"
        );
        let run = |ours: bool| {
            let (x, wt) = (x.clone().require_grad(), wt.clone().require_grad());
            let y = if ours {
                conv2d(x.clone(), wt.clone(), None, options.clone())
            } else {
                module::conv2d(x.clone(), wt.clone(), None, options.clone())
            };
            let dy = tensor(y.dims(), 3 * i as u64 + 3, &device);
            let grads = (y.clone() * dy).sum().backward();
            let dx = x.grad(&grads).unwrap();
            let dw = wt.grad(&grads).unwrap();
            (values(y.inner()), values(dx), values(dw))
        };
        let (ours, burn) = (run(true), run(false));
        let what = format!("case {i} {:?}", CASES[i]);
        assert_close(&ours.0, &burn.0, &format!("{what} forward"));
        assert_close(&ours.1, &burn.1, &format!("{what} input gradient"));
        assert_close(&ours.2, &burn.2, &format!("{what} weight gradient"));
    }
}

#[test]
fn bias_no_grad_inputs_and_other_devices() {
    let device = Device::flex();
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let x = tensor([2, 3, 6, 6], 9, &device);
    let wt = tensor([4, 3, 3, 3], 10, &device);
    let b = Tensor::<1>::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0, 0.0], [4]), &device);
    let ours = conv2d(x.clone(), wt.clone(), Some(b.clone()), options.clone());
    let burn = module::conv2d(x.clone(), wt.clone(), Some(b), options.clone());
    assert_close(&values(ours), &values(burn), "with bias");
    // Grouped convolutions are burn's.
    let grouped = ConvOptions::new([1, 1], [1, 1], [1, 1], 3);
    let wg = tensor([3, 1, 3, 3], 11, &device);
    assert!(!uses_our_conv(&x, &wg, &grouped));
    let g = conv2d(x.clone(), wg.clone(), None, grouped.clone());
    assert_eq!(g.dims(), [2, 3, 6, 6]);
    // Under autodiff with nothing tracked (the key encoder), the forward alone.
    let ad = Device::flex().autodiff();
    let xa = tensor([2, 3, 6, 6], 9, &ad);
    let wa = tensor([4, 3, 3, 3], 10, &ad);
    let y = conv2d(xa, wa, None, options.clone());
    assert_close(
        &values(y.inner()),
        &values(module::conv2d(x, wt, None, options)),
        "untracked",
    );
}

/// BatchNorm in training and max pooling on our kernels against burn's, through autodiff: the
/// outputs, the batch statistics, and the gradients of input, gamma and beta.
#[test]
fn batch_norm_and_max_pool_equal_burns() {
    use leoclr_kernels::{batch_norm_train, max_pool2d, ours_for};
    let device = Device::flex().autodiff();
    for (i, shape) in [
        [4, 3, 5, 5],
        [2, 16, 7, 7],
        [8, 64, 1, 1],
        [1, 2, 9, 6],
        [3, 32, 1, 1],
        [2, 32, 1, 1],
        [3, 16, 3, 3],
    ]
    .into_iter()
    .enumerate()
    {
        let seed = 100 + 7 * i as u64;
        let x = tensor(shape, seed, &device);
        assert!(ours_for(&x));
        let c = shape[1];
        let vec1 = |s: u64| Tensor::<1>::from_data(TensorData::new(noise(c, s), [c]), &device);
        let (gamma, beta) = (vec1(seed + 1), vec1(seed + 2));
        let dy = tensor(shape, seed + 3, &device);
        let run = |ours: bool| {
            let (x, g, b) = (
                x.clone().require_grad(),
                gamma.clone().require_grad(),
                beta.clone().require_grad(),
            );
            let (y, mean, var) = if ours {
                batch_norm_train(x.clone(), g.clone(), b.clone(), 1e-5)
            } else {
                let r = module::batch_norm_train(x.clone(), g.clone(), b.clone(), 1e-5);
                (r.output, r.mean, r.variance)
            };
            let grads = (y.clone() * dy.clone()).sum().backward();
            let v1 = |t: Tensor<1>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            (
                values(y.inner()),
                v1(mean.inner()),
                v1(var.inner()),
                values(x.grad(&grads).unwrap()),
                v1(g.grad(&grads).unwrap()),
                v1(b.grad(&grads).unwrap()),
            )
        };
        let (a, b) = (run(true), run(false));
        let what = format!("batch norm {shape:?}");
        assert_close(&a.0, &b.0, &format!("{what} output"));
        assert_close(&a.1, &b.1, &format!("{what} mean"));
        assert_close(&a.2, &b.2, &format!("{what} variance"));
        assert_close(&a.3, &b.3, &format!("{what} input gradient"));
        assert_close(&a.4, &b.4, &format!("{what} gamma gradient"));
        assert_close(&a.5, &b.5, &format!("{what} beta gradient"));

        if shape[2] >= 3 {
            let options = burn::tensor::ops::MaxPoolOptions::new([3, 3])
                .with_stride([2, 2])
                .with_padding([1, 1]);
            let run = |ours: bool| {
                let x = x.clone().require_grad();
                let y = if ours {
                    max_pool2d(x.clone(), [3, 3], [2, 2], [1, 1])
                } else {
                    module::max_pool2d(x.clone(), options.clone())
                };
                let dy = tensor(y.dims(), seed + 4, &device);
                let grads = (y.clone() * dy).sum().backward();
                (values(y.inner()), values(x.grad(&grads).unwrap()))
            };
            let (a, b) = (run(true), run(false));
            assert_close(&a.0, &b.0, &format!("max pool {shape:?} output"));
            assert_close(&a.1, &b.1, &format!("max pool {shape:?} input gradient"));
        }
    }
}

//! Every convolution of a model's training step, outside the model: forward, input gradient and
//! weight gradient, with burn's CPU convolution and with ours (shaders/), timed alone on the same
//! tensors. Prints one line per layer and pass, milliseconds and GFLOP/s, in the form
//! `scripts/conv-repro.sh` puts beside PyTorch's (same shapes, same threads).
//!
//!   conv_repro [tiny|resnet18] [batch]    (tiny: 28 px, standard stem; resnet18: 32 px, small stem)
//!   RAYON_NUM_THREADS=2 ~/.cache/leoclr/target/debug/examples/conv_repro tiny 256

use std::time::Instant;

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use leoclr_core::config::{Backbone, ModelConfig};

/// (name, batch, channels in, channels out, side in, kernel, stride, padding) of every
/// convolution in the model's forward pass, in order.
fn layers(backbone: &str, batch: usize) -> Vec<(String, [usize; 7])> {
    let (cfg, side) = match backbone {
        "resnet18" => (ModelConfig::new(Backbone::ResNet18, 3, true), 32),
        _ => (ModelConfig::new(Backbone::Tiny, 1, false), 28),
    };
    let (blocks, widths, _) = cfg.backbone.layout();
    let mut out = Vec::new();
    let mut push = |name: String, c: usize, k: usize, s: usize, ks: usize, st: usize| {
        out.push((name, [batch, c, k, s, ks, st, ks / 2]));
    };
    let mut s = side;
    if cfg.small_stem {
        push("stem 3x3".into(), cfg.in_channels, widths[0], s, 3, 1);
    } else {
        push("stem 7x7/2".into(), cfg.in_channels, widths[0], s, 7, 2);
        s = s.div_ceil(2).div_ceil(2);
    }
    let mut c = widths[0];
    for (stage, (&n, &w)) in blocks.iter().zip(&widths).enumerate() {
        for b in 0..n {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let name = format!("layer{}.{b}", stage + 1);
            push(format!("{name} conv1"), c, w, s, 3, stride);
            if stride != 1 || c != w {
                push(format!("{name} downsample"), c, w, s, 1, stride);
            }
            s = s.div_ceil(stride);
            push(format!("{name} conv2"), w, w, s, 3, 1);
            c = w;
        }
    }
    out
}

/// Milliseconds per call (median of 5 rounds of `reps` calls, after one warm-up call).
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() * 1000.0 / reps as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backbone = args.get(1).map_or("tiny", String::as_str);
    let batch: usize = args.get(2).and_then(|b| b.parse().ok()).unwrap_or(256);
    let dev = Device::flex().autodiff();
    let normal = Distribution::Normal(0.0, 1.0);
    println!(
        "| layer | x | w | pass | burn ms | ours ms | burn GFLOP/s | ours GFLOP/s | ours / burn |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let (mut total_burn, mut total_ours) = (0.0, 0.0);
    for (name, [n, c, k, side, ks, stride, pad]) in layers(backbone, batch) {
        let x = Tensor::<4>::random([n, c, side, side], normal, &dev);
        let w = Tensor::<4>::random([k, c, ks, ks], normal, &dev);
        let options = ConvOptions::new([stride, stride], [pad, pad], [1, 1], 1);
        let out = side.div_ceil(stride);
        let flops = 2.0 * (n * k * out * out * c * ks * ks) as f64;
        let reps = (2e9 / flops).clamp(1.0, 50.0) as usize;
        let stem = name.starts_with("stem");
        for pass in ["forward", "input grad", "weight grad"] {
            if stem && pass == "input grad" {
                // The images need no gradient: neither framework computes this one.
                continue;
            }
            let run = |ours: bool| {
                let (x, w, options) = (x.clone(), w.clone(), options.clone());
                let conv = move |x: Tensor<4>, w: Tensor<4>| match ours {
                    true => leoclr_kernels::conv2d(x, w, None, options.clone()),
                    false => conv2d(x, w, None, options.clone()),
                };
                time(reps, || match pass {
                    "forward" => {
                        let _ = conv(x.clone().inner(), w.clone().inner()).into_data();
                    }
                    _ => {
                        let (xr, wr) = match pass {
                            "input grad" => {
                                (x.clone().require_grad(), w.clone().inner().autodiff())
                            }
                            _ => (x.clone().inner().autodiff(), w.clone().require_grad()),
                        };
                        let y = conv(xr.clone(), wr.clone());
                        let g = y.sum().backward();
                        let grad = if pass == "input grad" {
                            xr.grad(&g)
                        } else {
                            wr.grad(&g)
                        };
                        let _ = grad.map(|t| t.into_data());
                    }
                })
            };
            // The backward passes include their forward: subtract it.
            let (b, o) = (run(false), run(true));
            let (fb, fo) = match pass {
                "forward" => (0.0, 0.0),
                _ => (
                    time(reps, || {
                        let _ = conv2d(x.clone().inner(), w.clone().inner(), None, options.clone())
                            .into_data();
                    }),
                    time(reps, || {
                        let _ = leoclr_kernels::conv2d(
                            x.clone().inner(),
                            w.clone().inner(),
                            None,
                            options.clone(),
                        )
                        .into_data();
                    }),
                ),
            };
            let (b, o) = ((b - fb).max(1e-6), (o - fo).max(1e-6));
            total_burn += b;
            total_ours += o;
            println!(
                "| {name} | [{n}, {c}, {side}, {side}] | [{k}, {c}, {ks}, {ks}] /{stride} | {pass} | {b:.2} | {o:.2} | {:.1} | {:.1} | {:.2}x |",
                flops / b / 1e6,
                flops / o / 1e6,
                b / o
            );
        }
    }
    println!(
        "| all | | | | {total_burn:.1} | {total_ours:.1} | | | {:.2}x |",
        total_burn / total_ours
    );
}

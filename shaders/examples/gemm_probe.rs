//! The `gemm` crate alone on the products a convolution tile makes (one thread): the ceiling
//! the CPU kernels work under. `gemm_probe` prints GFLOP/s per shape.
use leoclr_kernels::cpu::gemm::{Mat, matmul};
use std::time::Instant;

fn main() {
    for (m, n, k, what) in [
        (
            16,
            455,
            144,
            "layer1 forward tile: W[16x144] x col[144x455]",
        ),
        (16, 4096, 144, "same, a wide tile"),
        (128, 56, 1152, "layer4 conv2 forward tile"),
        (144, 455, 16, "layer1 input grad: Wt[144x16] x dy[16x455]"),
        (
            16,
            144,
            455,
            "layer1 weight grad: dy[16x455] x colT[455x144]",
        ),
        (256, 256, 256, "square 256"),
        (512, 512, 512, "square 512"),
    ] {
        let a = vec![1.0f32; m * k];
        let b = vec![0.5f32; k * n];
        let mut c = vec![0.0f32; m * n];
        let reps = (2e9 / (2.0 * (m * n * k) as f64)).max(10.0) as usize;
        let run = |c: &mut [f32]| {
            matmul(
                c,
                n,
                false,
                Mat::rows(&a, m, k),
                Mat::rows(&b, k, n),
                gemm::Parallelism::None,
            )
        };
        run(&mut c);
        let t = Instant::now();
        for _ in 0..reps {
            run(&mut c);
        }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        println!(
            "{m:>4} x {n:>5} x {k:>5}: {:6.1} GFLOP/s  {what}",
            2.0 * (m * n * k) as f64 / s / 1e9
        );
    }
}

//! One short run on burn-wgpu (Mesa lavapipe on a CPU-only machine): its first-step loss, and the
//! second step's after an update, must match the CPU backend. Same seed, same weights, same batch.
//!
//! Needs a Vulkan (or Metal/DX12) adapter. Set LEOCLR_SKIP_WGPU=1 to skip on a machine with none;
//! CI installs mesa-vulkan-drivers and runs it.

use burn::tensor::Device;
use leoclr_core::{BackendKind, Method, OriginalBranch, TrainConfig, Trainer};
use leoclr_data::Batch;

fn losses(device: &Device) -> Vec<f32> {
    let cfg = TrainConfig {
        queue_size: 64,
        batch_size: 8,
        ..TrainConfig::tiny_test(
            1,
            Method::Leoclr {
                original_branch: OriginalBranch::Key,
            },
        )
    };
    let mut t = Trainer::new(cfg, device, 2).unwrap();
    (0..2)
        .map(|i| {
            t.step(&Batch::synthetic(8, 1, 16, i))
                .unwrap()
                .into_scalar::<f32>()
        })
        .collect()
}

#[test]
fn wgpu_first_steps_match_cpu() {
    if std::env::var("LEOCLR_SKIP_WGPU").is_ok_and(|v| v == "1") {
        eprintln!("LEOCLR_SKIP_WGPU=1: skipped");
        return;
    }
    let cpu = losses(&BackendKind::Cpu.device());
    let gpu = losses(&BackendKind::Wgpu.device());
    eprintln!("cpu {cpu:?} wgpu {gpu:?}");
    for (c, g) in cpu.iter().zip(&gpu) {
        assert!(c.is_finite() && g.is_finite());
        assert!(
            (c - g).abs() < 2e-3 * c.abs().max(1.0),
            "cpu {c} vs wgpu {g}"
        );
    }
}

//! One short run on burn-wgpu (Mesa lavapipe on a CPU-only machine): its first-step loss, and the
//! second step's after an update, must match the CPU backend. Same seed, same weights, same batch.
//!
//! Needs a Vulkan (or Metal/DX12) adapter. Set LEOCLR_SKIP_WGPU=1 to skip on a machine with none;
//! CI installs mesa-vulkan-drivers and runs it.

use burn::tensor::Device;
use leoclr_core::{
    Backbone, BackendKind, Method, ModelConfig, OriginalBranch, TrainConfig, Trainer,
};
use leoclr_data::{Batch, Rng};

fn batch(n: usize, size: usize, seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let mut v = || {
        (0..n * size * size)
            .map(|_| rng.normal() as f32)
            .collect::<Vec<_>>()
    };
    Batch {
        index: 0,
        ids: (0..n).collect(),
        labels: vec![None; n],
        channels: 1,
        size,
        crops: [v(), v()],
        original: v(),
        params: vec![],
    }
}

fn losses(device: &Device) -> Vec<f32> {
    let mut model = ModelConfig::new(Backbone::Tiny, 1, true);
    model.head_hidden = vec![64];
    model.head_out = 32;
    let cfg = TrainConfig {
        method: Method::Leoclr {
            original_branch: OriginalBranch::Key,
        },
        queue_size: 64,
        epochs: 1,
        batch_size: 8,
        ..TrainConfig::small(model)
    };
    let mut t = Trainer::new(cfg, device, 2).unwrap();
    (0..2)
        .map(|i| t.step(&batch(8, 16, i)).unwrap().into_scalar::<f32>())
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

//! Reduced precision on the CPU backend. burn fixes a device's float type at its first tensor, so
//! the f32 reference runs in a child process (this test binary again) and bf16 in this one.

use burn::tensor::Device;
use leoclr_core::{BackendKind, Method, OriginalBranch, Precision, TrainConfig, Trainer};
use leoclr_data::Batch;

const CHILD: &str = "LEOCLR_PRECISION_CHILD";

fn losses(device: &Device) -> Vec<f32> {
    let cfg = TrainConfig {
        queue_size: 32,
        ..TrainConfig::tiny_test(
            1,
            Method::Leoclr {
                original_branch: OriginalBranch::Key,
            },
        )
    };
    let mut t = Trainer::new(cfg, device, 4).unwrap();
    (0..3)
        .map(|i| {
            t.step(&Batch::synthetic(8, 1, 12, i))
                .unwrap()
                .into_scalar::<f32>()
        })
        .collect()
}

#[test]
fn bf16_steps_track_f32_and_precision_is_fixed_per_process() {
    if std::env::var(CHILD).is_ok_and(|v| v == "f32") {
        let l = losses(&BackendKind::Cpu.device_with(Precision::F32).unwrap());
        println!("F32 {}", serde_json::to_string(&l).unwrap());
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "bf16_steps_track_f32_and_precision_is_fixed_per_process",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, "f32")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("F32 "))
        .unwrap_or_else(|| panic!("{text}"));
    let f32_losses: Vec<f32> = serde_json::from_str(line).unwrap();

    let device = BackendKind::Cpu.device_with(Precision::Bf16).unwrap();
    let bf16_losses = losses(&device);
    eprintln!("f32 {f32_losses:?} bf16 {bf16_losses:?}");
    for (a, b) in f32_losses.iter().zip(&bf16_losses) {
        assert!(
            b.is_finite() && (a - b).abs() < 0.05 * a.abs().max(1.0),
            "f32 {a} vs bf16 {b}"
        );
    }
    // The device is now locked to bf16: asking for another type is a clear error, not a panic.
    let err = BackendKind::Cpu
        .device_with(Precision::F16)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot switch"), "{err}");
}

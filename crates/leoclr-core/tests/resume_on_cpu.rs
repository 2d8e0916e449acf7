//! Resuming a CPU run stays on the CPU: burn materialises a restored optimiser state on its
//! default device, which is wgpu unless the process says otherwise, so resuming used to load the
//! Vulkan driver. `default_device_on_cpu` (what the binaries call first) keeps it on flex. One
//! test in its own process: the check reads this process's loaded libraries.

use burn::tensor::Device;
use leoclr_core::checkpoint::{load_trainer, save};
use leoclr_core::run::RunMeta;
use leoclr_core::{Method, OriginalBranch, TrainConfig, Trainer};
use leoclr_data::Batch;

#[test]
fn resuming_a_cpu_run_loads_no_gpu_driver() {
    leoclr_core::default_device_on_cpu();
    let cfg = TrainConfig::tiny_test(
        1,
        Method::Leoclr {
            original_branch: OriginalBranch::Key,
        },
    );
    let dev = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(cfg, &dev, 2).unwrap();
    t.step(&Batch::synthetic(4, 1, 10, 0)).unwrap();
    save(dir.path(), &t, &RunMeta::default()).unwrap();
    let (mut resumed, _) = load_trainer(dir.path(), &dev).unwrap();
    let loss = resumed.step(&Batch::synthetic(4, 1, 10, 1)).unwrap();
    assert!(loss.into_scalar::<f32>().is_finite());
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    assert!(
        !maps.contains("libvulkan"),
        "the Vulkan loader was loaded by a CPU resume"
    );
}

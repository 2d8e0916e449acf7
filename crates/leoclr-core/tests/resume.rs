//! Train -> checkpoint -> resume continues the same run: weights, queue and BatchNorm statistics.
//! Any parameter that silently stopped requiring gradients shows up here as a drift.

use burn::module::Module;
use burn::tensor::Device;
use leoclr_core::checkpoint::{load_trainer, save};
use leoclr_core::ema::parameters;
use leoclr_core::run::RunMeta;
use leoclr_core::{Method, OriginalBranch, TrainConfig, Trainer};
use leoclr_data::Batch;

fn toy_batch(n: usize, size: usize, seed: u64) -> Batch {
    Batch::synthetic(n, 1, size, seed)
}

fn cfg() -> TrainConfig {
    TrainConfig {
        queue_size: 6,
        ..TrainConfig::tiny_test(
            1,
            Method::Leoclr {
                original_branch: OriginalBranch::Key,
            },
        )
    }
}

#[test]
fn resume_continues_the_same_run_exactly() {
    let dev = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<_> = (0..4).map(|i| toy_batch(4, 10, i)).collect();
    // Straight through.
    let mut a = Trainer::new(cfg(), &dev, 2).unwrap();
    let losses_a: Vec<f32> = batches
        .iter()
        .map(|b| a.step(b).unwrap().into_scalar::<f32>())
        .collect();
    // Two steps, checkpoint, reload, two more.
    let mut b = Trainer::new(cfg(), &dev, 2).unwrap();
    b.step(&batches[0]).unwrap();
    b.step(&batches[1]).unwrap();
    b.end_epoch();
    let noted = RunMeta {
        dataset: Some("x".into()),
        ..RunMeta::default()
    };
    save(dir.path(), &b, &noted).unwrap();
    drop(b);
    let (mut c, meta) = load_trainer(dir.path(), &dev).unwrap();
    assert_eq!((meta.epoch, c.step_count(), c.epoch()), (1, 2, 1));
    assert_eq!(meta.run.dataset.as_deref(), Some("x"));
    c.step(&batches[2]).unwrap();
    let lc = c.step(&batches[3]).unwrap().into_scalar::<f32>();
    // The resumed run's last loss is the uninterrupted run's.
    assert!(
        (lc - losses_a[3]).abs() < 1e-5 * losses_a[3].abs().max(1.0),
        "resumed loss {lc} vs {}",
        losses_a[3]
    );
    let pa = parameters(a.online());
    let pc = parameters(c.online());

    for (x, y) in pa.iter().flatten().zip(pc.iter().flatten()) {
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
    assert_eq!(a.queue().to_vec().unwrap(), c.queue().to_vec().unwrap());
    assert_eq!(a.queue().ids_vec().unwrap(), c.queue().ids_vec().unwrap());
    assert_eq!(a.queue().ptr, c.queue().ptr);
    // BatchNorm running statistics were saved too: inference outputs agree.
    let x = burn::tensor::Tensor::<4>::ones([2, 1, 10, 10], &dev);
    let ya = a
        .online()
        .valid()
        .features(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let yc = c
        .online()
        .valid()
        .features(x)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for (p, q) in ya.iter().zip(&yc) {
        assert!((p - q).abs() < 1e-4);
    }
}

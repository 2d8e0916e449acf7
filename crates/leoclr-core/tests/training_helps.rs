//! Training helps: a short LeOCLR run (6 epochs of 4,000 images, about 40 s) on the bundled
//! Fashion-MNIST subset must beat the same backbone at random initialisation on kNN by a margin (the README's claim in miniature;
//! until now only the browser test asserted that learning happens).

use burn::tensor::Device;
use leoclr_core::Encoder;
use leoclr_core::eval::{EvalOptions, evaluate};
use leoclr_core::run::{DataSpec, ModelSpec, Plan, RunSpec};
use leoclr_core::session::fit_epoch;

#[test]
fn a_short_run_beats_random_init_on_knn() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let spec = RunSpec {
        data: DataSpec {
            data: root.join("assets/fashion-mnist-subset"),
            limit: Some(4000),
            test_limit: Some(1000),
            ..DataSpec::default()
        },
        model: ModelSpec {
            small_stem: Some(false),
            ..ModelSpec::default()
        },
        epochs: 6,
        batch: 128,
        queue: 1024,
        ..RunSpec::default()
    };
    let plan = Plan::new(spec).unwrap();
    let device = Device::flex();
    let mut session = plan.session(&device).unwrap();
    for _ in 0..6 {
        let s = fit_epoch(&mut session, None, &mut |_| true).unwrap();
        assert!(s.complete && s.loss.is_finite(), "{s:?}");
    }
    let (bank, test) = (
        plan.sets.bank.as_ref().unwrap(),
        plan.sets.test.as_ref().unwrap(),
    );
    let knn = |enc: &Encoder| {
        evaluate(
            enc,
            bank,
            test,
            &plan.aug,
            &device,
            EvalOptions::knn_only(),
            &mut |_, _, _| {},
        )
        .unwrap()
        .knn_top1
    };
    let trained = knn(session.trainer.online());
    let cfg = &plan.config;
    let random = knn(&Encoder::init_seeded(&cfg.model, cfg.seed, &device));
    eprintln!("kNN top-1: random init {random:.4}, after 6 epochs {trained:.4}");
    // Measured on the build machine: 65.1% at random init, 68.3% after these 6 epochs (kNN
    // first dips below random init: 3 epochs of 5,000 images gave 64.4% against 65.8%). The
    // margin leaves room for another machine's float differences.
    assert!(
        trained > random + 0.015,
        "trained {trained} vs random init {random}"
    );
}

//! Against a real PyTorch: the exported backbone loads in torchvision's ResNet (as
//! `scripts/torchvision_resnet.py` builds it) with only `fc.*` missing and computes the same
//! features; and `scripts/torch_step.py`, the PyTorch side of `scripts/bench-vs-torch.sh`, computes
//! the same first-step loss on the same weights, views and queue (so that benchmark compares equal
//! work).
//!
//! Needs Debian's `python3-torch` and `python3-torchvision`; `scripts/test.sh` installs them and
//! sets `LEOCLR_REQUIRE_TORCH=1`, so in CI their absence fails the test instead of skipping it.

mod common;

use std::process::Command;

use burn::tensor::Device;
use common::{
    features_on_random_input, json_of, python, reshape_npy, script, torch_available,
    trained_encoder, write_npy,
};
use leoclr_core::{Backbone, Method, ModelConfig, OriginalBranch, TrainConfig, Trainer};
use leoclr_data::Batch;

/// Exports a two-step-trained `backbone` and compares features on a random batch with
/// PyTorch's.
fn round_trip(backbone: Backbone, channels: usize, small_stem: bool, size: usize) -> f32 {
    let dir = tempfile::tempdir().unwrap();
    let (enc, meta) = trained_encoder(dir.path(), backbone, channels, small_stem, size);
    let weights = dir.path().join("backbone.safetensors");
    let bytes = leoclr_core::torchvision::backbone_safetensors(
        &enc.backbone,
        &meta.config.model,
        meta.step as u64,
    )
    .unwrap();
    std::fs::write(&weights, bytes).unwrap();

    let n = 3;
    let (xin, fout) = features_on_random_input(dir.path(), &enc, n, channels, size);
    reshape_npy(&xin, [n, channels, size, size]);
    let script = script("torchvision_resnet.py");
    let code = format!(
        "import sys; sys.path.insert(0, {dir:?}); import torchvision_resnet as t; \
         t.check({w:?}, {xin:?}, {fout:?}, {bb:?}, '{channels}', '{ss}')",
        dir = script.parent().unwrap().to_str().unwrap(),
        xin = xin.to_str().unwrap(),
        fout = fout.to_str().unwrap(),
        w = weights.to_str().unwrap(),
        bb = backbone.to_string(),
        ss = small_stem as u8,
    );
    let r = json_of(Command::new(python()).args(["-c", &code]));
    assert_eq!(
        r["missing"],
        serde_json::json!(["fc.bias", "fc.weight"]),
        "{r}"
    );
    assert_eq!(r["unexpected"], serde_json::json!([]), "{r}");
    let diff = r["max_abs_diff"].as_f64().unwrap() as f32;
    let scale = r["max_abs_feature"].as_f64().unwrap().max(1.0) as f32;
    println!(
        "{backbone} small stem {small_stem}: max |burn - torch| = {diff:e} (features up to {scale:e})"
    );
    // float32 agreement: 1e-4 absolute on features of order 1, relative beyond (a two-step
    // ResNet-18's BatchNorm statistics blow random inputs up to ~1e5).
    diff / scale
}

#[test]
fn exported_backbones_load_in_torchvision_with_the_same_features() {
    if !torch_available() {
        eprintln!("skipped: python3-torch / python3-torchvision not installed");
        return;
    }
    for (backbone, channels, small_stem, size) in [
        (Backbone::Tiny, 1, false, 28),
        (Backbone::Tiny, 3, true, 16),
        (Backbone::ResNet18, 3, false, 32),
        (Backbone::ResNet18, 3, true, 16),
    ] {
        let diff = round_trip(backbone, channels, small_stem, size);
        assert!(diff < 1e-4, "{backbone} small stem {small_stem}: {diff}");
    }
}

/// The first training step's loss here and in `scripts/torch_step.py` on the same weights, views
/// and queue, for every method: equal to 1e-4.
#[test]
fn the_pytorch_step_computes_the_same_loss() {
    if !torch_available() {
        eprintln!("skipped: python3-torch / python3-torchvision not installed");
        return;
    }
    let script = script("torch_step.py");
    for (method, name) in [
        (
            Method::Leoclr {
                original_branch: OriginalBranch::Key,
            },
            "leoclr",
        ),
        (
            Method::Leoclr {
                original_branch: OriginalBranch::Query,
            },
            "leoclr-query",
        ),
        (Method::Mocov2 { symmetric: true }, "mocov2"),
        (Method::Mocov2 { symmetric: false }, "mocov2-asym"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (channels, size, n) = (1, 28, 8);
        let cfg = TrainConfig {
            model: ModelConfig::new(Backbone::Tiny, channels, false),
            queue_size: 64,
            ..TrainConfig::tiny_test(channels, method)
        };
        let mut t = Trainer::new(cfg, &Device::flex(), 2).unwrap();
        let bytes = leoclr_core::torchvision::backbone_safetensors(
            &t.online().backbone,
            &t.config().model,
            0,
        )
        .unwrap();
        std::fs::write(dir.path().join("backbone.safetensors"), bytes).unwrap();
        let head = leoclr_core::torchvision::head_safetensors(&t.online().head).unwrap();
        std::fs::write(dir.path().join("head.safetensors"), head).unwrap();
        let batch = Batch::synthetic(n, channels, size, 3);
        let per = channels * size * size;
        // view0, view1, view2: crop 1, crop 2, original, as torch_step.py numbers them.
        for (v, pixels) in batch.views.iter() {
            let name = format!("view{}.npy", v.seed());
            write_npy(&dir.path().join(name), [n, per], pixels);
        }
        let q = t.queue().to_vec().unwrap();
        write_npy(&dir.path().join("queue.npy"), [64, q.len() / 64], &q);
        let ours = t.step(&batch).unwrap().into_scalar::<f32>();
        let r = json_of(
            Command::new(python())
                .arg(&script)
                .args(["loss", dir.path().to_str().unwrap(), name, "tiny", "1", "0"])
                .arg(t.config().temperature.to_string()),
        );
        let theirs = r["loss"].as_f64().unwrap() as f32;
        println!("{name}: burn {ours} pytorch {theirs}");
        assert!((ours - theirs).abs() < 1e-4, "{name}: {ours} vs {theirs}");
    }
}

//! Against a real PyTorch: the exported backbone loads in torchvision's ResNet (as
//! `scripts/torchvision_resnet.py` builds it) with only `fc.*` missing and computes the same
//! features; and `scripts/torch_step.py`, the PyTorch side of `scripts/bench-vs-torch.sh`, computes
//! the same first-step loss on the same weights, views and queue (so that benchmark compares equal
//! work).
//!
//! Needs Debian's `python3-torch` and `python3-torchvision`; `scripts/test.sh` installs them and
//! sets `LEOCLR_REQUIRE_TORCH=1`, so in CI their absence fails the test instead of skipping it.

use std::path::Path;
use std::process::Command;

use burn::tensor::{Device, Tensor, TensorData};
use leoclr_core::run::RunMeta;
use leoclr_core::{
    Backbone, Method, ModelConfig, OriginalBranch, TrainConfig, Trainer, checkpoint,
};
use leoclr_data::formats::npy::NpyWriter;
use leoclr_data::{Batch, Rng};

/// Debian's interpreter, where Debian's torch lives (a `python3` earlier on PATH, such as a
/// pyenv shim, does not see it); `LEOCLR_PYTHON` overrides.
fn python() -> String {
    std::env::var("LEOCLR_PYTHON").unwrap_or_else(|_| {
        match Path::new("/usr/bin/python3").exists() {
            true => "/usr/bin/python3".into(),
            false => "python3".into(),
        }
    })
}

fn torch_available() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import torch, torchvision"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("LEOCLR_REQUIRE_TORCH").is_ok_and(|v| v == "1") {
        panic!("python3-torch / python3-torchvision are missing (scripts/test.sh installs them)");
    }
    ok
}

/// Runs a Python command that prints one JSON object; its failure output in the panic.
fn json_of(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).unwrap()
}

fn write_npy(path: &Path, shape: [usize; 2], values: &[f32]) {
    let mut w = NpyWriter::create(path, shape[0], shape[1]).unwrap();
    w.write_rows(values).unwrap();
    w.finish().unwrap();
}

/// Trains `backbone` two steps (so weights and BatchNorm statistics are not the initial ones),
/// exports it, and compares features on a random batch with PyTorch's.
fn round_trip(backbone: Backbone, channels: usize, small_stem: bool, size: usize) -> f32 {
    let dir = tempfile::tempdir().unwrap();
    let mut model = ModelConfig::new(backbone, channels, small_stem);
    model.head_hidden = vec![32];
    model.head_out = 16;
    let cfg = TrainConfig {
        model,
        queue_size: 16,
        batch_size: 4,
        ..TrainConfig::tiny_test(
            channels,
            Method::Leoclr {
                original_branch: OriginalBranch::Key,
            },
        )
    };
    let mut t = Trainer::new(cfg, &Device::flex(), 2).unwrap();
    for i in 0..2 {
        t.step(&Batch::synthetic(4, channels, size, i)).unwrap();
    }
    checkpoint::save(dir.path(), &t, &RunMeta::default()).unwrap();
    let (enc, meta) =
        checkpoint::load_encoder(&dir.path().join(checkpoint::FILE_NAME), &Device::flex()).unwrap();
    let weights = dir.path().join("backbone.safetensors");
    let bytes = leoclr_core::torchvision::backbone_safetensors(
        &enc.backbone,
        &meta.config.model,
        meta.step as u64,
    )
    .unwrap();
    std::fs::write(&weights, bytes).unwrap();

    let n = 3;
    let mut rng = Rng::new(7);
    let x: Vec<f32> = (0..n * channels * size * size)
        .map(|_| rng.normal() as f32)
        .collect();
    let input = Tensor::<4>::from_data(
        TensorData::new(x.clone(), [n, channels, size, size]),
        &Device::flex(),
    );
    let f = enc.features(input);
    let d = f.dims()[1];
    let f = f.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    // The input as [n, c*h*w] rows, reshaped in Python.
    let (xin, fout) = (dir.path().join("x.npy"), dir.path().join("f.npy"));
    write_npy(&xin, [n, channels * size * size], &x);
    write_npy(&fout, [n, d], &f);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/torchvision_resnet.py");
    let code = format!(
        "import sys, numpy as np; sys.path.insert(0, {dir:?}); import torchvision_resnet as t; \
         x = np.load({xin:?}).reshape({n}, {channels}, {size}, {size}); np.save({xin:?}, x); \
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
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/torch_step.py");
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
        let bytes =
            leoclr_core::torchvision::backbone_safetensors(&t.online.backbone, &t.config.model, 0)
                .unwrap();
        std::fs::write(dir.path().join("backbone.safetensors"), bytes).unwrap();
        let head = leoclr_core::torchvision::head_safetensors(&t.online.head).unwrap();
        std::fs::write(dir.path().join("head.safetensors"), head).unwrap();
        let batch = Batch::synthetic(n, channels, size, 3);
        let per = channels * size * size;
        for (i, v) in [&batch.crops[0], &batch.crops[1], &batch.original]
            .into_iter()
            .enumerate()
        {
            write_npy(&dir.path().join(format!("view{i}.npy")), [n, per], v);
        }
        let q = t.queue.to_vec().unwrap();
        write_npy(&dir.path().join("queue.npy"), [64, q.len() / 64], &q);
        let ours = t.step(&batch).unwrap().into_scalar::<f32>();
        let r = json_of(
            Command::new(python())
                .arg(&script)
                .args(["loss", dir.path().to_str().unwrap(), name, "tiny", "1", "0"])
                .arg(t.config.temperature.to_string()),
        );
        let theirs = r["loss"].as_f64().unwrap() as f32;
        println!("{name}: burn {ours} pytorch {theirs}");
        assert!((ours - theirs).abs() < 1e-4, "{name}: {ours} vs {theirs}");
    }
}

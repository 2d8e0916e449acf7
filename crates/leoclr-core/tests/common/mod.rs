//! Helpers shared by the tests that run Python (PyTorch, ONNX) on what this crate exports.

#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::{Device, Tensor, TensorData};
use leoclr_core::run::RunMeta;
use leoclr_core::{
    Backbone, Encoder, Method, ModelConfig, OriginalBranch, TrainConfig, Trainer, checkpoint,
};
use leoclr_data::formats::npy::NpyWriter;
use leoclr_data::{Batch, Rng};

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(name)
}

/// Debian's interpreter, where Debian's torch lives (a `python3` earlier on PATH, such as a
/// pyenv shim, does not see it); `LEOCLR_PYTHON` overrides.
pub fn python() -> String {
    std::env::var("LEOCLR_PYTHON").unwrap_or_else(|_| {
        match Path::new("/usr/bin/python3").exists() {
            true => "/usr/bin/python3".into(),
            false => "python3".into(),
        }
    })
}

/// Whether Debian's interpreter imports `modules` (comma-separated); with
/// `LEOCLR_REQUIRE_TORCH=1` (set by scripts/test.sh) their absence panics naming `packages`.
pub fn python_has(modules: &str, packages: &str) -> bool {
    let ok = Command::new(python())
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("LEOCLR_REQUIRE_TORCH").is_ok_and(|v| v == "1") {
        panic!("{packages} are missing (scripts/test.sh installs them)");
    }
    ok
}

pub fn torch_available() -> bool {
    python_has("torch, torchvision", "python3-torch / python3-torchvision")
}

/// Runs a Python command that prints one JSON object; its failure output in the panic.
pub fn json_of(cmd: &mut Command) -> serde_json::Value {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).unwrap()
}

pub fn write_npy(path: &Path, shape: [usize; 2], values: &[f32]) {
    let mut w = NpyWriter::create(path, shape[0], shape[1]).unwrap();
    w.write_rows(values).unwrap();
    w.finish().unwrap();
}

/// An encoder trained two steps (so weights and BatchNorm statistics are not the initial ones),
/// saved in `dir` and loaded back as a run's encoder is.
pub fn trained_encoder(
    dir: &Path,
    backbone: Backbone,
    channels: usize,
    small_stem: bool,
    size: usize,
) -> (Encoder, checkpoint::Meta) {
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
    checkpoint::save(dir, &t, &RunMeta::default()).unwrap();
    checkpoint::load_encoder(&dir.join(checkpoint::FILE_NAME), &Device::flex()).unwrap()
}

/// A random normal input `[n, channels, size, size]` and the encoder's backbone features on it,
/// both also written as `.npy` in `dir` (the input as `[n, c*h*w]` rows: reshape in Python).
pub fn features_on_random_input(
    dir: &Path,
    enc: &Encoder,
    n: usize,
    channels: usize,
    size: usize,
) -> (PathBuf, PathBuf) {
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
    let (xin, fout) = (dir.join("x.npy"), dir.join("f.npy"));
    write_npy(&xin, [n, channels * size * size], &x);
    write_npy(&fout, [n, d], &f);
    (xin, fout)
}

/// Reshapes the rows of `x.npy` written above to `[n, c, h, w]` in place (numpy).
pub fn reshape_npy(xin: &Path, shape: [usize; 4]) {
    let [n, c, h, w] = shape;
    let code = format!(
        "import numpy as np; np.save({p:?}, np.load({p:?}).reshape({n}, {c}, {h}, {w}))",
        p = xin.to_str().unwrap()
    );
    let out = Command::new(python()).args(["-c", &code]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! The ONNX export outside this project: the graph passes the `onnx` package's full checker
//! (with strict shape inference), and computes burn's features, run node by node in PyTorch
//! (`scripts/onnx_check.py check`) and, where ONNX Runtime is installed, by ONNX Runtime
//! (`scripts/onnx_check.py ort`).
//!
//! Needs Debian's `python3-onnx`, `python3-torch` and `python3-numpy`; ONNX Runtime comes from
//! the Python registry into a virtual environment whose interpreter `LEOCLR_ORT_PYTHON` names.
//! `scripts/test.sh` provides all three and sets `LEOCLR_REQUIRE_TORCH=1` and
//! `LEOCLR_REQUIRE_ORT=1` when it could install ONNX Runtime, so in CI a missing piece fails.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    features_on_random_input, json_of, python, python_has, reshape_npy, script, trained_encoder,
};
use leoclr_core::Backbone;
use leoclr_core::onnx::{InputShape, backbone_onnx};

fn onnx_available() -> bool {
    python_has("onnx, torch, numpy", "python3-onnx / python3-torch")
}

fn ort_python() -> Option<String> {
    let p = std::env::var("LEOCLR_ORT_PYTHON").ok();
    if p.is_none() && std::env::var("LEOCLR_REQUIRE_ORT").is_ok_and(|v| v == "1") {
        panic!("LEOCLR_REQUIRE_ORT=1 but LEOCLR_ORT_PYTHON names no interpreter");
    }
    p
}

fn run_check(python: &str, mode: &str, model: &Path, xin: &Path, fout: &Path) -> serde_json::Value {
    json_of(
        Command::new(python)
            .arg(script("onnx_check.py"))
            .arg(mode)
            .args([model, xin, fout]),
    )
}

/// Relative disagreement: 1e-4 absolute on features of order 1, relative beyond (a two-step
/// network's BatchNorm statistics can blow random inputs up).
fn relative(r: &serde_json::Value) -> f64 {
    r["max_abs_diff"].as_f64().unwrap() / r["max_abs_feature"].as_f64().unwrap().max(1.0)
}

#[test]
fn exported_graphs_pass_the_checker_and_compute_burns_features() {
    if !onnx_available() {
        eprintln!("skipped: python3-onnx / python3-torch not installed");
        return;
    }
    let ort = ort_python();
    for (backbone, channels, small_stem, size, batch, nodes) in [
        // stem 4 + 4 blocks x 7 + 3 downsamples x 2 + pool and flatten 2
        (Backbone::Tiny, 1, false, 28, None, 40),
        (Backbone::Tiny, 3, true, 16, Some(3), 39),
        (
            Backbone::ResNet18,
            3,
            false,
            32,
            None,
            4 + 8 * 7 + 3 * 2 + 2,
        ),
        // Bottleneck blocks: 3 more nodes each, and a downsample in every stage.
        (
            Backbone::ResNet50,
            3,
            true,
            16,
            None,
            3 + 16 * 10 + 4 * 2 + 2,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (enc, meta) = trained_encoder(dir.path(), backbone, channels, small_stem, size);
        let shape = InputShape {
            batch,
            height: size,
            width: size,
        };
        let metadata = [("leoclr.view_size".to_string(), size.to_string())];
        let bytes = backbone_onnx(&enc.backbone, &meta.config.model, shape, &metadata).unwrap();
        let model = dir.path().join("backbone.onnx");
        std::fs::write(&model, &bytes).unwrap();
        let n = 3;
        let (xin, fout) = features_on_random_input(dir.path(), &enc, n, channels, size);
        reshape_npy(&xin, [n, channels, size, size]);

        let r = run_check(&python(), "check", &model, &xin, &fout);
        let what = format!("{backbone} small stem {small_stem}");
        assert_eq!(r["opset"], serde_json::json!([13]), "{what}: {r}");
        assert_eq!(r["nodes"], nodes, "{what}: {r}");
        let ops = [
            "Add",
            "BatchNormalization",
            "Conv",
            "Flatten",
            "GlobalAveragePool",
            "Relu",
        ];
        let mut ops: Vec<&str> = ops.to_vec();
        if !small_stem {
            ops.push("MaxPool");
            ops.sort();
        }
        assert_eq!(r["ops"], serde_json::json!(ops), "{what}: {r}");
        let axis = batch.map_or(serde_json::json!("batch"), |b| serde_json::json!(b));
        let feature_dim = backbone.feature_dim();
        assert_eq!(
            r["input"],
            serde_json::json!(["input", axis, channels, size, size]),
            "{what}: {r}"
        );
        assert_eq!(
            r["output"],
            serde_json::json!(["features", axis, feature_dim]),
            "{what}: {r}"
        );
        assert_eq!(r["metadata"]["leoclr.view_size"], size.to_string());
        assert_eq!(r["shape"], serde_json::json!([n, feature_dim]));
        println!("{what}: reference interpreter max |burn - onnx| = {r}");
        assert!(relative(&r) < 1e-4, "{what}: {r}");

        if let Some(p) = &ort {
            let r = run_check(p, "ort", &model, &xin, &fout);
            println!("{what}: ONNX Runtime {r}");
            assert!(relative(&r) < 1e-4, "{what}: {r}");
        }
    }
}

#[test]
fn a_zero_sized_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (enc, meta) = trained_encoder(dir.path(), Backbone::Tiny, 1, false, 28);
    for shape in [
        InputShape {
            batch: Some(0),
            height: 28,
            width: 28,
        },
        InputShape {
            batch: None,
            height: 0,
            width: 28,
        },
    ] {
        let err = backbone_onnx(&enc.backbone, &meta.config.model, shape, &[]).unwrap_err();
        assert!(err.to_string().contains("must be positive"), "{err}");
    }
}

//! The `leoclr` binary end to end on the bundled Fashion-MNIST subset: train, metrics, checkpoint,
//! stop and resume (same losses as an uninterrupted run), eval --json, and clear errors on bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

fn leoclr(args: &[&str]) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new(env!("CARGO_BIN_EXE_leoclr"))
        .args(args)
        .current_dir(root)
        .output()
        .expect("run leoclr")
}

fn ok(args: &[&str]) -> String {
    let out = leoclr(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "leoclr {args:?} failed:\n{text}");
    text
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const RUN: &[&str] = &[
    "train",
    "--limit",
    "96",
    "--test-limit",
    "64",
    "--epochs",
    "2",
    "--batch",
    "32",
    "--queue",
    "64",
    "--small-stem",
    "false",
    "--no-baseline",
    "--workers",
    "2",
];

fn run_dir(tmp: &tempfile::TempDir, name: &str) -> PathBuf {
    tmp.path().join(name)
}

#[test]
fn train_stop_resume_and_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let a = run_dir(&tmp, "a");
    let b = run_dir(&tmp, "b");
    let mut args = RUN.to_vec();
    args.extend(["--out", a.to_str().unwrap()]);
    ok(&args);
    let ma = metrics(&a);
    assert_eq!(ma.len(), 2);
    for key in ["epoch", "loss", "lr", "images_per_s"] {
        assert!(ma[1].get(key).is_some(), "metrics lack {key}: {}", ma[1]);
    }
    let knn = ma[1]["knn_top1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&knn));
    assert!(a.join("checkpoint.leoclr").exists());

    // Stop after the first epoch's checkpoint, then resume in a new process.
    let mut args = RUN.to_vec();
    args.extend(["--out", b.to_str().unwrap(), "--max-steps", "3"]);
    ok(&args);
    assert_eq!(metrics(&b).len(), 1);
    let text = ok(&["train", "--resume", b.to_str().unwrap()]);
    assert!(text.contains("resuming"), "{text}");
    let mb = metrics(&b);
    assert_eq!(mb.len(), 2);
    for e in 0..2 {
        let (la, lb) = (
            ma[e]["loss"].as_f64().unwrap(),
            mb[e]["loss"].as_f64().unwrap(),
        );
        assert!(
            (la - lb).abs() < 1e-3 * la.abs(),
            "epoch {}: {la} vs {lb}",
            e + 1
        );
    }

    let out = ok(&[
        "eval",
        "--checkpoint",
        a.to_str().unwrap(),
        "--limit",
        "96",
        "--test-limit",
        "64",
        "--probe-epochs",
        "5",
        "--json",
    ]);
    // Export what the browser ships: the encoder alone, a gallery and its unit-length embeddings.
    let web = run_dir(&tmp, "web");
    let text = ok(&[
        "export",
        "--checkpoint",
        a.to_str().unwrap(),
        "--gallery",
        "50",
        "--out",
        web.to_str().unwrap(),
    ]);
    assert!(text.contains("50 gallery images"), "{text}");
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(web.join("gallery.json")).unwrap()).unwrap();
    let dim = info["dim"].as_u64().unwrap() as usize;
    let feats = std::fs::read(web.join("gallery-features.f32")).unwrap();
    assert_eq!(feats.len(), 50 * dim * 4);
    let row: Vec<f32> = feats[..dim * 4]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert!((row.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-4);
    let model = std::fs::metadata(web.join("model.leoclr")).unwrap().len();
    let full = std::fs::metadata(a.join("checkpoint.leoclr"))
        .unwrap()
        .len();
    assert!(model < full / 2, "{model} vs {full}");

    let line = out.lines().rev().find(|l| l.starts_with('{')).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    for key in ["knn_top1", "linear_top1"] {
        let x = v[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&x), "{key} = {x}");
    }
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let out = leoclr(&[
        "train",
        "--data",
        "/nonexistent/data",
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("/nonexistent/data") && !err.contains("panicked"),
        "{err}"
    );
    let out = leoclr(&[
        "train",
        "--temperature",
        "0",
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("temperature"));
    // A corrupt checkpoint.
    let ck = tmp.path().join("checkpoint.leoclr");
    std::fs::write(&ck, b"garbage").unwrap();
    let out = leoclr(&["eval", "--checkpoint", ck.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("checkpoint.leoclr") && err.contains("not a LeOCLR checkpoint"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn bench_prints_a_json_row_per_configuration() {
    let out = ok(&[
        "bench",
        "--json",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--e2e-batches",
        "2",
        "--batch",
        "8",
        "--queue",
        "16",
        "--small-stem",
        "false",
        // RGB copies of the grayscale data: hue and saturation run in both pipelines.
        "--channels",
        "3",
    ]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // One row per place the views are made: the CPU loader, then the device pipeline.
    assert_eq!(rows.len(), 2, "{out}");
    for (v, on) in rows.iter().zip(["cpu", "device"]) {
        for key in [
            "backend",
            "method",
            "backbone",
            "res",
            "batch",
            "images_per_s",
            "first_step_s",
            "ema_ms",
            "augment_images_per_s",
            "end_to_end_vs_step",
        ] {
            assert!(v.get(key).is_some(), "bench row lacks {key}: {v}");
        }
        assert_eq!(v["backend"], "cpu");
        assert_eq!(v["augment_on"], on);
        assert!(v["images_per_s"].as_f64().unwrap() > 0.0);
        assert!(v["augment_images_per_s"].as_f64().unwrap() > 0.0);
        assert!(v["end_to_end_images_per_s"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn train_with_device_augmentation_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let c = run_dir(&tmp, "c");
    let d = run_dir(&tmp, "d");
    let mut args = RUN.to_vec();
    args.extend(["--augment-on", "device", "--out", c.to_str().unwrap()]);
    ok(&args);
    let cfg = std::fs::read_to_string(c.join("config.json")).unwrap();
    assert!(cfg.contains("\"augment_on\": \"device\""), "{cfg}");
    // Stopped after the first epoch and resumed in a new process, the run keeps making its views
    // on the device and repeats the uninterrupted run's losses.
    let mut args = RUN.to_vec();
    args.extend([
        "--augment-on",
        "device",
        "--out",
        d.to_str().unwrap(),
        "--max-steps",
        "3",
    ]);
    ok(&args);
    ok(&["train", "--resume", d.to_str().unwrap()]);
    let (mc, md) = (metrics(&c), metrics(&d));
    assert_eq!((mc.len(), md.len()), (2, 2));
    for e in 0..2 {
        let (lc, ld) = (
            mc[e]["loss"].as_f64().unwrap(),
            md[e]["loss"].as_f64().unwrap(),
        );
        assert!(
            (lc - ld).abs() < 1e-3 * lc.abs(),
            "epoch {}: {lc} vs {ld}",
            e + 1
        );
    }
}

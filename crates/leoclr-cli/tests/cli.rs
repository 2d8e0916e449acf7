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

/// `leoclr bench --json` on a tiny setting (one step of batch 8, queue 16, the plain stem), plus
/// `extra` arguments.
fn small_bench(extra: &[&str]) -> String {
    let mut args = vec![
        "bench",
        "--json",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--batch",
        "8",
        "--queue",
        "16",
        "--small-stem",
        "false",
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

/// The JSON objects among a command's output lines (one per `--json` row).
fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
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

/// A run of [`RUN`] in `dir` stopped after the first epoch's 3 steps (checkpoint and one metrics
/// line written).
fn stopped_run(dir: &Path) {
    let mut args = RUN.to_vec();
    args.extend(["--out", dir.to_str().unwrap(), "--max-steps", "3"]);
    let text = ok(&args);
    assert!(text.contains("the last epoch's checkpoint in"), "{text}");
}

#[test]
fn a_stop_before_the_first_epoch_ends_says_there_is_no_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_dir(&tmp, "early");
    let mut args = RUN.to_vec();
    args.extend(["--out", dir.to_str().unwrap(), "--max-steps", "1"]);
    let text = ok(&args);
    assert!(
        text.contains("before the first epoch ended") && text.contains("holds no checkpoint"),
        "{text}"
    );
    assert!(!dir.join("checkpoint.leoclr").exists());
}

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
    stopped_run(&b);
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
    // The backbone for PyTorch: torchvision's key names, query and key encoders differ, and an
    // exported model (query encoder only) has no key encoder to give.
    let tv = |enc: &str, from: &Path| {
        let file = tmp.path().join(format!("{enc}.safetensors"));
        let text = ok(&[
            "export",
            "--format",
            "torchvision",
            "--encoder",
            enc,
            "--checkpoint",
            from.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
        ]);
        assert!(
            text.contains("leoclr_resnet(\"tiny\", in_channels=1"),
            "{text}"
        );
        std::fs::read(file).unwrap()
    };
    let (q, k) = (tv("query", &a), tv("key", &a));
    let header_len = u64::from_le_bytes(q[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&q[8..8 + header_len]).unwrap();
    for key in [
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.bn2.num_batches_tracked",
    ] {
        assert!(header.get(key).is_some(), "{key} missing: {header}");
    }
    assert_ne!(
        q, k,
        "the key encoder is exported, not the query encoder again"
    );
    // The backbone as ONNX, from the run and from the browser's exported model: the input shape
    // and normalisation are the run's; the graph itself is checked in Python by leoclr-core's
    // tests/onnx.rs.
    for (from, batch) in [(&a, None), (&web.join("model.leoclr"), Some("8"))] {
        let file = tmp.path().join("backbone.onnx");
        let mut args = vec![
            "export",
            "--format",
            "onnx",
            "--checkpoint",
            from.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
            // The second export replaces the first's file.
            "--overwrite",
        ];
        args.extend(batch.iter().flat_map(|b| ["--onnx-batch", b]));
        let text = ok(&args);
        let axis = batch.unwrap_or("batch");
        assert!(
            text.contains(&format!("input 'input' [{axis}, 1, 28, 28]"))
                && text.contains(&format!("output 'features' [{axis}, 128]")),
            "{text}"
        );
        let bytes = std::fs::read(&file).unwrap();
        let has = |s: &str| bytes.windows(s.len()).any(|w| w == s.as_bytes());
        assert!(has("layer2.0.downsample.0.weight") && has("leoclr.mean"));
    }
    let refused = leoclr(&[
        "export",
        "--format",
        "torchvision",
        "--encoder",
        "key",
        "--checkpoint",
        web.join("model.leoclr").to_str().unwrap(),
        "--out",
        tmp.path().join("none.safetensors").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        refused.status.code() == Some(1)
            && err.contains("model.leoclr")
            && err.contains("key encoder"),
        "{err}"
    );
    // An exported model cannot be resumed: the message names that file, nothing else.
    let m = web.join("model.leoclr");
    let refused = leoclr(&["train", "--resume", m.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{}: records no run settings", m.display()))
            && !err.contains("model.leoclr/checkpoint.leoclr"),
        "{err}"
    );
    // The checkpoint file itself resumes like its directory (here: a finished run).
    let text = ok(&[
        "train",
        "--resume",
        a.join("checkpoint.leoclr").to_str().unwrap(),
    ]);
    assert!(
        text.contains("resuming") && text.contains("at epoch 2/2"),
        "{text}"
    );

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
    // RGB copies of the grayscale data: hue and saturation run in both pipelines.
    let out = small_bench(&["--e2e-batches", "2", "--channels", "3"]);
    let rows = json_lines(&out);
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
        // Device memory is a GPU figure; the CPU's is the process's peak RSS.
        assert!(v["device_peak_mb"].is_null(), "{v}");
        assert!(v["peak_rss_mb"].as_f64().unwrap() > 0.0);
        assert_eq!(v["devices"], 1);
    }
    // Data-parallel rows: one per device count, the step on a host batch.
    let out = small_bench(&["--e2e-batches", "1", "--devices", "1,2"]);
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 2, "{out}");
    for (v, d) in rows.iter().zip([1, 2]) {
        assert_eq!(v["devices"], d, "{v}");
        assert!(v["images_per_s"].as_f64().unwrap() > 0.0, "{v}");
    }
}

/// `bench-ann` on synthetic vectors: the exact row first, then one row per `ef`, with recall
/// against the exact scan.
#[test]
fn bench_ann_reports_recall_against_the_exact_scan() {
    let out = ok(&[
        "bench-ann",
        "--synthetic",
        "3000",
        "--dim",
        "16",
        "--queries",
        "50",
        "--ef",
        "32,128",
        "--json",
    ]);
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 3, "{out}");
    assert_eq!(rows[0]["search"], "exact scan");
    assert_eq!(rows[0]["recall_at_k"], 1.0);
    assert!(rows[2]["search"].as_str().unwrap().contains("ef=128"));
    assert!(rows[2]["recall_at_k"].as_f64().unwrap() >= 0.9, "{out}");
    assert!(rows[2]["build_s"].as_f64().unwrap() > 0.0);
    let out = leoclr(&["bench-ann", "--synthetic", "20", "--queries", "50"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("too few"));
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

#[test]
fn eval_refuses_meaningless_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("checkpoint.leoclr");
    std::fs::write(&ck, b"never read: the settings are refused first").unwrap();
    for (flag, value, word) in [
        ("--knn-k", "0", "k must be at least 1"),
        ("--knn-t", "0", "temperature"),
        ("--knn-t", "-1", "temperature"),
        ("--knn-t", "NaN", "temperature"),
        ("--probe-epochs", "0", "probe epochs"),
    ] {
        let arg = format!("{flag}={value}");
        let out = leoclr(&["eval", "--checkpoint", ck.to_str().unwrap(), &arg]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag} {value}: {err}");
        assert!(err.contains(word) && !err.contains("panicked"), "{err}");
    }
}

#[test]
fn compare_takes_train_method_names_seeds_and_budgets_and_refuses_unknown_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("cmp");
    let text = ok(&[
        "compare",
        "--methods",
        "leoclr,mocov2-asym,random_init",
        "--seeds",
        "0,1",
        "--budget",
        "epochs,cost",
        "--data",
        "assets/fashion-mnist-subset",
        "--limit",
        "64",
        "--test-limit",
        "32",
        "--epochs",
        "1",
        "--batch",
        "32",
        "--queue",
        "64",
        "--probe-epochs",
        "1",
        "--workers",
        "1",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let tables: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    let names: Vec<(&str, &str, u64)> = tables
        .iter()
        .map(|t| {
            (
                t["budget"].as_str().unwrap(),
                t["method"].as_str().unwrap(),
                t["epochs"].as_u64().unwrap(),
            )
        })
        .collect();
    // Table order; under equal cost asymmetric MoCo-v2 (4 units an image: a query's forward
    // and backward, a key's forward) gets 7/4 the epochs of LeOCLR (7 units), rounded: 2.
    assert_eq!(
        names,
        [
            ("epochs", "random_init", 0),
            ("epochs", "mocov2_asym", 1),
            ("epochs", "leoclr_key", 1),
            ("cost", "random_init", 0),
            ("cost", "mocov2_asym", 2),
            ("cost", "leoclr_key", 1),
        ],
        "{text}"
    );
    for t in &tables {
        let seeds: Vec<u64> = t["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["seed"].as_u64().unwrap())
            .collect();
        assert_eq!(seeds, [0, 1], "{t}");
        assert!(t["knn_top1_std"].as_f64().unwrap() >= 0.0);
    }
    // A run whose epochs agree under both budgets is trained once and shared by the tables.
    assert_eq!(tables[2]["runs"], tables[5]["runs"]);
    let trained = text.matches(" epochs  kNN ").count();
    assert_eq!(trained, 2 * 4, "{text}");
    let md = std::fs::read_to_string(out_dir.join("results.md")).unwrap();
    assert!(md.contains("Equal compute") && md.contains(" ± "), "{md}");
    let out = leoclr(&[
        "compare",
        "--methods",
        "simclr",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown row 'simclr'"), "{err}");
    // The earlier results are untouched.
    assert!(out_dir.join("results.json").exists());
}

/// A run records its paths as JSON text: a path that is not UTF-8 is a clear error before
/// anything is written (it used to panic while the command line was recorded).
#[cfg(unix)]
#[test]
fn a_non_utf8_path_is_a_clear_error_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = tmp.path().as_os_str().to_owned();
    dir.push(std::ffi::OsStr::from_bytes(b"/run-\xff"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_leoclr"))
        .args(RUN)
        .args(["--max-steps", "3", "--out"])
        .arg(&dir)
        .current_dir(root)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("run-\u{FFFD}") && err.contains("UTF-8") && !err.contains("panicked"),
        "{err}"
    );
    assert!(!Path::new(&dir).exists(), "nothing written");
}

/// A checkpoint whose checksum is right but whose length fields are huge (the checksum is easy to
/// recompute): a clear error, not an arithmetic-overflow panic.
#[test]
fn crafted_checkpoint_lengths_are_refused() {
    let fnv1a = |data: &[u8]| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("checkpoint.leoclr");
    for json_len in [u64::MAX, u64::MAX - 7, 1 << 40] {
        let mut body = b"LEOCLR\x00\x01".to_vec();
        body.extend_from_slice(&json_len.to_le_bytes());
        body.extend_from_slice(&[0u8; 32]);
        let sum = fnv1a(&body);
        body.extend_from_slice(&sum.to_le_bytes());
        std::fs::write(&ck, &body).unwrap();
        let out = leoclr(&["eval", "--checkpoint", ck.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("checkpoint.leoclr")
                && err.contains("truncated")
                && !err.contains("panicked"),
            "{err}"
        );
    }
}

#[test]
fn subset_refuses_to_write_over_its_source() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let src = root.join("assets/fashion-mnist-subset");
    let copy = tmp.path().join("data");
    std::fs::create_dir_all(&copy).unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
    }
    let before: Vec<u64> = ["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"]
        .iter()
        .map(|f| std::fs::metadata(copy.join(f)).unwrap().len())
        .collect();
    let out = leoclr(&[
        "subset",
        "--data",
        copy.to_str().unwrap(),
        "--out",
        copy.join(".").to_str().unwrap(),
        "--train",
        "10",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the dataset being read"), "{err}");
    let after: Vec<u64> = ["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"]
        .iter()
        .map(|f| std::fs::metadata(copy.join(f)).unwrap().len())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn a_new_run_refuses_a_directory_that_holds_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_dir(&tmp, "r");
    let mut args = RUN.to_vec();
    args.extend(["--out", dir.to_str().unwrap(), "--max-steps", "3"]);
    ok(&args);
    let files = ["checkpoint.leoclr", "metrics.jsonl", "config.json"];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    let out = leoclr(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("already holds a run")
            && err.contains("--resume")
            && err.contains("--overwrite"),
        "{err}"
    );
    for (f, b) in files.iter().zip(&before) {
        assert_eq!(&std::fs::read(dir.join(f)).unwrap(), b, "{f} changed");
    }
    // --overwrite starts over.
    args.push("--overwrite");
    ok(&args);
    assert_eq!(metrics(&dir).len(), 1);
}

#[test]
fn training_goes_on_without_a_test_split() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = tmp.path().join("train-only");
    std::fs::create_dir_all(&data).unwrap();
    for f in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"] {
        std::fs::copy(
            root.join("assets/fashion-mnist-subset").join(f),
            data.join(f),
        )
        .unwrap();
    }
    let dir = run_dir(&tmp, "r");
    let mut args = RUN.to_vec();
    args.extend([
        "--data",
        data.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    let text = ok(&args);
    assert!(
        text.contains("no labelled test data: skipped kNN"),
        "{text}"
    );
    assert!(metrics(&dir).iter().all(|m| m.get("knn_top1").is_none()));
}

/// A resume keeps the recorded settings, says so, may extend the run with --epochs, refuses
/// settings it cannot change by name, and works from another working directory (the data path
/// is recorded absolute).
#[test]
fn resume_extends_a_run_and_refuses_what_it_cannot_change() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_dir(&tmp, "r");
    let mut args = RUN.to_vec();
    args.extend(["--out", dir.to_str().unwrap()]);
    ok(&args);
    assert_eq!(metrics(&dir).len(), 2);
    for (flag, value) in [
        ("--lr", "0.1"),
        ("--out", "/tmp/elsewhere"),
        ("--batch", "16"),
    ] {
        let out = leoclr(&["train", "--resume", dir.to_str().unwrap(), flag, value]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{flag}: {err}");
        assert!(
            err.contains(&format!("{flag} cannot change when resuming")),
            "{err}"
        );
    }
    let out = leoclr(&["train", "--resume", dir.to_str().unwrap(), "--epochs", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already trained 2 epochs"), "{err}");
    assert_eq!(metrics(&dir).len(), 2, "nothing changed");
    // From another working directory, to 3 epochs.
    let out = Command::new(env!("CARGO_BIN_EXE_leoclr"))
        .args([
            "train",
            "--resume",
            dir.to_str().unwrap(),
            "--epochs",
            "3",
            "--no-baseline",
        ])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("at epoch 2/3") && text.contains("recorded settings"),
        "{text}"
    );
    let m = metrics(&dir);
    assert_eq!(m.len(), 3);
    assert_eq!(m[2]["epoch"], 3);
}

/// The paper's preset with an override, shuffle-BN and an augmented original: recorded in the
/// checkpoint, kept by a resume, and not changeable by one.
#[test]
fn paper_settings_and_bn_splits_survive_a_resume() {
    use leoclr_core::{OriginalBranch, checkpoint};
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_dir(&tmp, "paper");
    let mut args = RUN.to_vec();
    args.extend([
        "--epochs",
        "1",
        "--method",
        "leoclr-paper",
        "--original-branch",
        "key",
        "--bn-splits",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    ok(&args);
    for (flag, value) in [("--bn-splits", "1"), ("--original-aug", "flip")] {
        let out = leoclr(&["train", "--resume", dir.to_str().unwrap(), flag, value]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{flag} cannot change when resuming")),
            "{err}"
        );
    }
    ok(&[
        "train",
        "--resume",
        dir.to_str().unwrap(),
        "--epochs",
        "2",
        "--no-baseline",
    ]);
    assert_eq!(metrics(&dir).len(), 2);
    let file = dir.join(checkpoint::FILE_NAME);
    let (trainer, meta) = checkpoint::load_trainer(&file, &burn::tensor::Device::flex()).unwrap();
    assert_eq!((meta.epoch, trainer.config().bn_splits), (2, 2));
    assert_eq!(
        trainer.config().method,
        leoclr_core::Method::Leoclr {
            original_branch: OriginalBranch::Key
        }
    );
    let spec = meta.run.spec.unwrap();
    assert_eq!(spec.model.method.name(), "leoclr-paper");
    assert_eq!(spec.model.original_branch, Some(OriginalBranch::Key));
    assert_eq!(spec.model.label(), "leoclr_key_aug");
    assert_eq!(spec.bn_splits, 2);
    let aug = meta.run.augment.unwrap();
    assert_eq!(aug.original_aug, leoclr_data::OriginalAug::Aug);
}

/// `--devices 2` on the CPU backend (two replicas sharing the CPU): trains, its epoch loss tracks
/// the one-device run of the same seed, it resumes on one device, and impossible settings are
/// refused by name before anything runs.
#[test]
fn a_data_parallel_run_tracks_one_device_and_resumes_on_another_count() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let dir = run_dir(&tmp, name);
        let mut args = RUN.to_vec();
        args.extend(["--epochs", "1", "--out", dir.to_str().unwrap()]);
        args.extend(extra);
        let args = args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        (dir, args)
    };
    let (one, args) = run("one", &[]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (two, args) = run("two", &["--devices", "2"]);
    let text = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(text.contains("on 2 devices"), "{text}");
    let loss = |dir: &Path| metrics(dir)[0]["loss"].as_f64().unwrap();
    let (l1, l2) = (loss(&one), loss(&two));
    eprintln!("epoch loss: 1 device {l1}, 2 devices {l2}");
    assert!(
        (l1 - l2).abs() < 0.05 * l1,
        "1 device {l1} vs 2 devices {l2}"
    );
    ok(&[
        "train",
        "--resume",
        two.to_str().unwrap(),
        "--epochs",
        "2",
        "--devices",
        "1",
    ]);
    assert_eq!(metrics(&two).len(), 2);
    for (extra, says) in [
        (&["--devices", "0"][..], "between 1 and 64"),
        (
            &["--devices", "2", "--augment-on", "device"][..],
            "--augment-on cpu",
        ),
        (
            &["--devices", "2", "--bn-splits", "4"][..],
            "--bn-splits must be 1 or 2",
        ),
        (&["--devices", "20"][..], "a batch of at least 40"),
    ] {
        let (_, args) = run("bad", extra);
        let out = leoclr(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{extra:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// A small image folder: two classes of 6 distinct 20x20 RGB images, plus `a/dup.png`, an exact
/// copy of `b/img3.png`.
fn image_folder(root: &Path) {
    for (c, class) in ["a", "b"].into_iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..6u32 {
            let img = image::RgbImage::from_fn(20, 20, |x, y| {
                let v = ((x * (i + 2) + y * (3 + c as u32) + i * 37) % 256) as u8;
                image::Rgb([v, if c == 0 { 255 - v } else { v / 2 }, (x * 12) as u8])
            });
            img.save(root.join(class).join(format!("img{i}.png")))
                .unwrap();
        }
    }
    std::fs::copy(root.join("b/img3.png"), root.join("a/dup.png")).unwrap();
}

#[test]
fn embed_then_retrieve_on_an_image_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let imgs = tmp.path().join("imgs");
    image_folder(&imgs);
    let run = run_dir(&tmp, "run");
    let p = |p: &Path| p.to_str().unwrap().to_string();
    ok(&[
        "train",
        "--data",
        &p(&imgs),
        "--size",
        "16",
        "--epochs",
        "1",
        "--batch",
        "4",
        "--queue",
        "8",
        "--no-baseline",
        "--workers",
        "1",
        "--out",
        &p(&run),
    ]);
    let index = tmp.path().join("index");
    let embed = |extra: &[&str]| {
        let mut args = vec![
            "embed".to_string(),
            "--checkpoint".into(),
            p(&run),
            "--data".into(),
            p(&imgs),
            "--batch".into(),
            "5".into(),
            "--out".into(),
            p(&index),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        leoclr(&args)
    };
    let out = embed(&["--projector", "--projections"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let npy = std::fs::read(index.join("features.npy")).unwrap();
    let header = String::from_utf8_lossy(&npy[10..128]).to_string();
    assert!(header.contains("'shape': (13, 128)"), "{header}");
    let meta = std::fs::read_to_string(index.join("metadata.tsv")).unwrap();
    let lines: Vec<&str> = meta.lines().collect();
    assert_eq!(lines[0], "index\tname\tlabel");
    assert_eq!(lines.len(), 14);
    let files: Vec<String> = lines[1..]
        .iter()
        .map(|l| l.split('\t').nth(1).unwrap().to_string())
        .collect();
    assert!(files.iter().all(|f| Path::new(f).exists()), "{files:?}");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.ends_with("\ta") || l.ends_with("\tb")),
        "{meta}"
    );
    for f in [
        "projections.npy",
        "vectors.tsv",
        "sprite.png",
        "projector_config.pbtxt",
        "index.json",
    ] {
        assert!(index.join(f).exists(), "{f}");
    }
    let vectors = std::fs::read_to_string(index.join("vectors.tsv")).unwrap();
    assert_eq!(vectors.lines().count(), 13);
    assert_eq!(vectors.lines().next().unwrap().split('\t').count(), 128);
    // An index already there stays unless --overwrite.
    let again = embed(&[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));

    // The duplicate pair: a query of b/img3.png finds itself and its copy first, at cosine 1.
    let text = ok(&[
        "retrieve",
        "--index",
        &p(&index),
        "--query",
        &p(&imgs.join("b/img3.png")),
        "-k",
        "3",
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let hits = r["neighbours"].as_array().unwrap();
    assert_eq!(hits.len(), 3);
    let mut top2: Vec<String> = hits[..2]
        .iter()
        .map(|h| {
            Path::new(h["name"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_string()
        })
        .collect();
    top2.sort();
    assert_eq!(top2, ["dup.png", "img3.png"], "{r}");
    for h in &hits[..2] {
        assert!((h["score"].as_f64().unwrap() - 1.0).abs() < 1e-4, "{r}");
    }
    assert!(hits[2]["score"].as_f64().unwrap() < hits[1]["score"].as_f64().unwrap() + 1e-6);
    let table = ok(&[
        "retrieve",
        "--index",
        &p(&index),
        "--query",
        &p(&imgs.join("a/img0.png")),
    ]);
    assert_eq!(table.lines().count(), 11, "{table}");
    assert!(table.contains("(exact search)"), "{table}");

    // With an HNSW graph (`--ann on`; auto only builds one from 20,000 images): the same pair
    // first, the search says it is approximate, --exact scans; a damaged graph is refused by name.
    let index3 = tmp.path().join("index3");
    let out = leoclr(&[
        "embed",
        "--checkpoint",
        &p(&run),
        "--data",
        &p(&imgs),
        "--out",
        &p(&index3),
        "--ann",
        "on",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("HNSW graph"));
    assert!(index3.join("ann.hnsw.graph").exists() && index3.join("ann.hnsw.data").exists());
    let (index3_arg, img3) = (p(&index3), p(&imgs.join("b/img3.png")));
    let query = |extra: &[&str]| {
        let mut args = vec![
            "retrieve",
            "--index",
            &index3_arg,
            "--query",
            &img3,
            "-k",
            "2",
            "--json",
        ];
        args.extend(extra);
        let text = ok(&args);
        serde_json::from_str::<serde_json::Value>(text.lines().next().unwrap()).unwrap()
    };
    for (extra, kind) in [
        (&[][..], "approximate (HNSW, ef 64)"),
        (&["--exact"][..], "exact"),
    ] {
        let r = query(extra);
        assert_eq!(r["search"], kind, "{r}");
        let mut names: Vec<String> = r["neighbours"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                Path::new(h["name"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_string()
            })
            .collect();
        names.sort();
        assert_eq!(names, ["dup.png", "img3.png"], "{r}");
    }
    let graph = index3.join("ann.hnsw.graph");
    let mut bytes = std::fs::read(&graph).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&graph, &bytes).unwrap();
    let out = leoclr(&[
        "retrieve",
        "--index",
        &p(&index3),
        "--query",
        &p(&imgs.join("b/img3.png")),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ann.hnsw.graph") && err.contains("digest") && !err.contains("panicked"),
        "{err}"
    );

    // A corrupt file: a clear error naming it and nothing left at --out; --skip-bad lists it.
    std::fs::write(imgs.join("a/zz_broken.png"), b"\x89PNG not really").unwrap();
    let index2 = tmp.path().join("index2");
    let out = leoclr(&[
        "embed",
        "--checkpoint",
        &p(&run),
        "--data",
        &p(&imgs),
        "--out",
        &p(&index2),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("zz_broken.png") && !err.contains("panicked"),
        "{err}"
    );
    assert!(!index2.exists(), "a half-written index was left");
    ok(&[
        "embed",
        "--checkpoint",
        &p(&run),
        "--data",
        &p(&imgs),
        "--out",
        &p(&index2),
        "--skip-bad",
    ]);
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(index2.join("index.json")).unwrap()).unwrap();
    assert_eq!(info["images"], 13);
    assert_eq!(info["skipped"].as_array().unwrap().len(), 1);
    assert!(
        info["skipped"][0]
            .as_str()
            .unwrap()
            .contains("zz_broken.png"),
        "{info}"
    );
    let npy = std::fs::read(index2.join("features.npy")).unwrap();
    assert!(String::from_utf8_lossy(&npy[10..128]).contains("'shape': (13, 128)"));
    assert_eq!(npy.len() as u64 % 4, 0);
}

/// Bad data through the binary, one case a row (add a row for every bug found): `train` exits 1
/// with a message naming the file, never panics, and a run already in `--out` stays as it was,
/// even with `--overwrite` (the data is read before anything is written).
#[test]
fn bad_input_corpus_through_the_binary() {
    use leoclr_data::{ImageU8, cifar, idx, stl10};
    let tmp = tempfile::tempdir().unwrap();
    let run = run_dir(&tmp, "run");
    stopped_run(&run);
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap() != ".lock")
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot(&run);
    let gz = |b: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let labels = idx::encode(&[4], &[0, 1, 2, 3]);
    let images = idx::encode(&[4, 8, 8], &[7; 256]);
    let gray = ImageU8::new(32, 32, 3, vec![9; 32 * 32 * 3]);
    /// (case, files to write, the file the message must name)
    type Case = (&'static str, Vec<(&'static str, Vec<u8>)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "truncated IDX images",
            vec![
                ("train-images-idx3-ubyte", images[..100].to_vec()),
                ("train-labels-idx1-ubyte", labels.clone()),
            ],
            "train-images-idx3-ubyte",
        ),
        (
            "corrupt gzip",
            vec![
                ("train-images-idx3-ubyte.gz", gz(&images)[..40].to_vec()),
                ("train-labels-idx1-ubyte", labels.clone()),
            ],
            "train-images-idx3-ubyte.gz",
        ),
        (
            "labels for another count",
            vec![
                ("train-images-idx3-ubyte", images.clone()),
                ("train-labels-idx1-ubyte", idx::encode(&[3], &[0, 1, 2])),
            ],
            "train-labels-idx1-ubyte",
        ),
        (
            "0x0 images",
            vec![
                ("train-images-idx3-ubyte", idx::encode(&[4, 0, 0], &[])),
                ("train-labels-idx1-ubyte", labels.clone()),
            ],
            "train-images-idx3-ubyte",
        ),
        (
            "absurd IDX dimensions",
            vec![
                (
                    "train-images-idx3-ubyte",
                    idx::encode(&[1 << 30, 1 << 20, 1 << 20], &[1; 64]),
                ),
                ("train-labels-idx1-ubyte", labels.clone()),
            ],
            "train-images-idx3-ubyte",
        ),
        (
            "not IDX at all",
            vec![
                ("train-images-idx3-ubyte.gz", b"<html>404</html>".to_vec()),
                ("train-labels-idx1-ubyte", labels.clone()),
            ],
            "train-images-idx3-ubyte.gz",
        ),
        (
            "truncated CIFAR batch",
            vec![(
                "data_batch_1.bin",
                cifar::encode(&[(1, gray.clone()), (2, gray.clone())], false)[..5000].to_vec(),
            )],
            "data_batch_1.bin",
        ),
        (
            "truncated STL-10 images",
            vec![
                (
                    "train_X.bin",
                    stl10::encode_record(&ImageU8::new(96, 96, 3, vec![1; 96 * 96 * 3]))[..1000]
                        .to_vec(),
                ),
                ("train_y.bin", vec![1]),
            ],
            "train_X.bin",
        ),
        (
            "an image folder whose first file is not an image",
            vec![
                ("a-first.png", b"not a png".to_vec()),
                ("b.png", Vec::new()),
            ],
            "a-first.png",
        ),
    ];
    for (case, files, named) in cases {
        let data = tmp.path().join(case.replace(' ', "-"));
        std::fs::create_dir_all(&data).unwrap();
        for (name, bytes) in &files {
            std::fs::write(data.join(name), bytes).unwrap();
        }
        let out = leoclr(&[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--overwrite",
            "--no-baseline",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
        assert!(
            err.contains(named) && !err.contains("panicked"),
            "{case}: the message should name {named}: {err}"
        );
        assert!(
            snapshot(&run) == before,
            "{case}: the run directory changed"
        );
    }
}

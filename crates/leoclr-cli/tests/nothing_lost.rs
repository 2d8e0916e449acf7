//! Issue 23's cases through the binary, one test each: what a careless user or a hostile file did
//! to `embed`, `retrieve`, `export`, `bench-ann`, `eval`, `compare` and `train`, and what happens
//! now (a clear error naming the file or flag, nothing of the user's lost, no panic).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn leoclr(args: &[&str]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new(env!("CARGO_BIN_EXE_leoclr"))
        .args(args)
        .current_dir(root)
        .output()
        .expect("run leoclr")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(args: &[&str]) -> String {
    let out = leoclr(args);
    assert!(
        out.status.success(),
        "leoclr {args:?} failed:\n{}",
        text(&out)
    );
    text(&out)
}

/// A refusal: exit 1, no panic, the message contains every one of `words`.
fn refused(args: &[&str], words: &[&str]) -> String {
    let out = leoclr(args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "leoclr {args:?}:\n{t}");
    assert!(!t.contains("panicked"), "leoclr {args:?} panicked:\n{t}");
    for w in words {
        assert!(t.contains(w), "leoclr {args:?}: no '{w}' in\n{t}");
    }
    t
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir` with its bytes, to show a command left it as it was.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Twelve 20 px PNGs in two classes.
fn image_folder(root: &Path) {
    for (c, class) in ["a", "b"].into_iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..6u32 {
            let img = image::RgbImage::from_fn(20, 20, |x, y| {
                let v = ((x * (i + 2) + y * (3 + c as u32) + i * 37) % 256) as u8;
                image::Rgb([v, v / 2, (x * 12) as u8])
            });
            img.save(root.join(class).join(format!("img{i}.png")))
                .unwrap();
        }
    }
}

/// A data folder and a one-epoch run trained on it (seconds).
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    run: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let data = root.join("photos");
        image_folder(&data);
        let run = root.join("run");
        // Its own images as the labelled test set: the run has a kNN figure to log.
        ok(&[
            "train",
            "--data",
            s(&data),
            "--test-data",
            s(&data),
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
            s(&run),
        ]);
        Self {
            _tmp: tmp,
            root,
            data,
            run,
        }
    }

    fn checkpoint(&self) -> PathBuf {
        self.run.join("checkpoint.leoclr")
    }

    /// `embed` of the fixture's data to `out`, with `extra` flags.
    fn embed(&self, out: &Path, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = [
            "embed",
            "--checkpoint",
            s(&self.run),
            "--data",
            s(&self.data),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.extend(["--out".into(), s(out).into()]);
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn case_01_embed_over_its_own_data_is_refused_and_the_data_survives() {
    let f = Fixture::new();
    let before = snapshot(&f.data);
    let a = f.embed(&f.data, &["--overwrite"]);
    refused(&strs(&a), &["the dataset being read"]);
    // Another data set as --out: not an index, so not replaced even with --overwrite.
    let other = f.root.join("other-data");
    image_folder(&other);
    let a = f.embed(&other, &["--overwrite"]);
    refused(
        &strs(&a),
        &["is not an embedding index", "even with --overwrite"],
    );
    assert_eq!(snapshot(&f.data), before);
    assert!(other.join("a/img0.png").exists());
}

#[test]
fn case_02_embed_into_the_run_directory_keeps_the_checkpoint() {
    let f = Fixture::new();
    let before = snapshot(&f.run);
    let a = f.embed(&f.run, &["--overwrite"]);
    refused(&strs(&a), &["the checkpoint being read"]);
    assert_eq!(snapshot(&f.run), before);
}

#[test]
fn case_03_embed_onto_an_existing_file_is_refused_and_nothing_is_moved() {
    let f = Fixture::new();
    let before = snapshot(&f.run);
    let a = f.embed(&f.checkpoint(), &[]);
    refused(&strs(&a), &["checkpoint.leoclr"]);
    let metrics = f.run.join("metrics.jsonl");
    let a = f.embed(&metrics, &[]);
    refused(&strs(&a), &["exists and is a file"]);
    assert_eq!(snapshot(&f.run), before);
    ok(&["train", "--resume", s(&f.run), "--epochs", "2"]);
}

#[test]
fn case_04_export_never_overwrites_silently_nor_its_own_checkpoint() {
    let f = Fixture::new();
    let ck = f.checkpoint();
    let before = std::fs::read(&ck).unwrap();
    refused(
        &[
            "export",
            "--checkpoint",
            s(&ck),
            "--format",
            "onnx",
            "--out",
            s(&ck),
            "--overwrite",
        ],
        &["the checkpoint being read"],
    );
    let notes = f.root.join("notes.txt");
    std::fs::write(&notes, "mine").unwrap();
    refused(
        &[
            "export",
            "--checkpoint",
            s(&f.run),
            "--format",
            "onnx",
            "--out",
            s(&notes),
        ],
        &["notes.txt", "is not an ONNX model"],
    );
    let onnx = f.root.join("b.onnx");
    ok(&[
        "export",
        "--checkpoint",
        s(&f.run),
        "--format",
        "onnx",
        "--out",
        s(&onnx),
    ]);
    refused(
        &[
            "export",
            "--checkpoint",
            s(&f.run),
            "--format",
            "onnx",
            "--out",
            s(&onnx),
        ],
        &["--overwrite"],
    );
    let t = ok(&[
        "export",
        "--checkpoint",
        s(&f.run),
        "--format",
        "onnx",
        "--out",
        s(&onnx),
        "--overwrite",
    ]);
    assert!(t.contains("b.onnx"), "{t}");
    // A safetensors export does not replace an ONNX file.
    refused(
        &[
            "export",
            "--checkpoint",
            s(&f.run),
            "--format",
            "torchvision",
            "--out",
            s(&onnx),
            "--overwrite",
        ],
        &["is not a safetensors file"],
    );
    assert_eq!(std::fs::read(&ck).unwrap(), before);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "mine");
}

/// An index of the fixture with an HNSW graph.
fn graph_index(f: &Fixture) -> PathBuf {
    let index = f.root.join("index");
    ok(&strs(&f.embed(&index, &["--ann", "on"])));
    index
}

#[test]
fn case_05_a_huge_k_on_a_graph_index_returns_every_row() {
    let f = Fixture::new();
    let index = graph_index(&f);
    for k in ["18446744073709551615", "100000000000"] {
        let t = ok(&[
            "retrieve",
            "--index",
            s(&index),
            "--query",
            s(&f.data.join("a/img1.png")),
            "-k",
            k,
            "--json",
        ]);
        let r: serde_json::Value = serde_json::from_str(t.lines().next().unwrap()).unwrap();
        assert!(r["search"].as_str().unwrap().contains("HNSW"), "{r}");
        assert!(r["neighbours"].as_array().unwrap().len() <= 12, "{r}");
    }
}

#[test]
fn case_06_a_non_utf8_path_is_shown_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let f = Fixture::new();
    let index = f.root.join("index");
    ok(&strs(&f.embed(&index, &[])));
    let odd = f.root.join(std::ffi::OsStr::from_bytes(b"q\xff.png"));
    std::fs::copy(f.data.join("a/img2.png"), &odd).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_leoclr"))
        .arg("retrieve")
        .args(["--index", s(&index), "--json", "-k", "2", "--query"])
        .arg(&odd)
        .output()
        .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("q\u{fffd}.png"), "{t}");
    // export records its command line: a non-UTF-8 argument there too.
    let web = f.root.join(std::ffi::OsStr::from_bytes(b"web\xfe"));
    let out = Command::new(env!("CARGO_BIN_EXE_leoclr"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args([
            "export",
            "--checkpoint",
            s(&f.run),
            "--gallery",
            "8",
            "--out",
        ])
        .arg(&web)
        .output()
        .unwrap();
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
}

/// Rewrites a JSON file through `edit`.
fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_string(&v).unwrap()).unwrap();
}

#[test]
fn case_07_index_json_is_checked_before_it_sizes_anything() {
    let f = Fixture::new();
    let index = f.root.join("index");
    ok(&strs(&f.embed(&index, &[])));
    let info = index.join("index.json");
    let good = std::fs::read(&info).unwrap();
    let query = f.data.join("a/img1.png");
    // The fixture's photos are RGB: a 2-long mean fits no model, a zero std divides by zero.
    let cases: [(&str, serde_json::Value, &str); 4] = [
        ("size", serde_json::json!(100_000), "view size 100000"),
        ("size", serde_json::json!(0), "view size 0"),
        (
            "mean",
            serde_json::json!([0.5, 0.5]),
            "normalisation has 2 means",
        ),
        (
            "std",
            serde_json::json!([0.0, 0.0, 0.0]),
            "std must be positive",
        ),
    ];
    for (field, value, words) in cases {
        std::fs::write(&info, &good).unwrap();
        edit_json(&info, |v| v["augment"][field] = value);
        let t = refused(
            &["retrieve", "--index", s(&index), "--query", s(&query)],
            &["index.json", words],
        );
        assert!(!t.contains("invalid configuration"), "{t}");
    }
}

/// Writes a float32 .npy header for `shape` (no data).
fn npy_header(shape: &str) -> Vec<u8> {
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out
}

#[test]
fn case_08_zero_width_features_are_refused() {
    let f = Fixture::new();
    let index = f.root.join("index");
    ok(&strs(&f.embed(&index, &[])));
    std::fs::write(index.join("features.npy"), npy_header("(12, 0)")).unwrap();
    edit_json(&index.join("index.json"), |v| {
        v["dim"] = serde_json::json!(0)
    });
    refused(
        &[
            "retrieve",
            "--index",
            s(&index),
            "--query",
            s(&f.data.join("a/img1.png")),
        ],
        &["index.json", "dim 0"],
    );
    refused(
        &["bench-ann", "--index", s(&index)],
        &["features.npy", "zero width"],
    );
    refused(
        &["bench-ann", "--synthetic", "100", "--dim", "0"],
        &["--dim 0"],
    );
}

#[test]
fn case_09_bench_ann_sizes_are_bounded() {
    refused(
        &["bench-ann", "--synthetic", "1000000000000"],
        &["--synthetic"],
    );
    refused(
        &["bench-ann", "--synthetic", "1000", "--dim", "100000000"],
        &["--dim"],
    );
    refused(
        &[
            "bench-ann",
            "--synthetic",
            "18446744073709551615",
            "--dim",
            "18446744073709551615",
        ],
        &["--dim"],
    );
    refused(
        &["bench-ann", "--synthetic", "8000000", "--dim", "4096"],
        &["GiB"],
    );
}

/// Recomputes the size and digest index.json records for graph file `which` (0 graph, 1 data):
/// what a crafted pair carries.
fn reseal(index: &Path, which: usize) {
    let names = ["ann.hnsw.graph", "ann.hnsw.data"];
    let path = index.join(names[which]);
    let len = std::fs::metadata(&path).unwrap().len();
    let digest = leoclr_core::ann::digest(&path).unwrap();
    edit_json(&index.join("index.json"), |v| {
        v["ann"]["bytes"][which] = serde_json::json!(len);
        v["ann"]["digest"][which] = serde_json::json!(digest);
    });
}

#[test]
fn case_10_a_resealed_damaged_graph_is_a_clear_error() {
    let f = Fixture::new();
    let index = graph_index(&f);
    let query = f.data.join("a/img1.png");
    let (graph, data) = (index.join("ann.hnsw.graph"), index.join("ann.hnsw.data"));
    let (g0, d0) = (
        std::fs::read(&graph).unwrap(),
        std::fs::read(&data).unwrap(),
    );
    // A neighbour count made huge, a vector length made huge, a truncated data file.
    let mut g = g0.clone();
    let at = g.len() / 2;
    g[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut d = d0.clone();
    // The first vector's length field: after the file's magic and dimension, the point's
    // magic and id.
    d[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
    for (which, bytes) in [(0, g), (1, d), (1, d0[..d0.len() / 2].to_vec())] {
        std::fs::write(&graph, &g0).unwrap();
        std::fs::write(&data, &d0).unwrap();
        std::fs::write(if which == 0 { &graph } else { &data }, &bytes).unwrap();
        reseal(&index, 0);
        reseal(&index, 1);
        let t = refused(
            &["retrieve", "--index", s(&index), "--query", s(&query)],
            &["unreadable HNSW graph"],
        );
        assert!(!t.contains("panicked") && !t.contains("assertion"), "{t}");
    }
}

#[test]
fn case_11_sharp_knn_temperatures_vote_stably_and_absurd_ones_are_refused() {
    let f = Fixture::new();
    let eval = |t: &str| -> f64 {
        let out = ok(&[
            "eval",
            "--checkpoint",
            s(&f.run),
            "--data",
            s(&f.data),
            "--bank-data",
            s(&f.data),
            "--test-data",
            s(&f.data),
            "--knn-t",
            t,
            "--probe-epochs",
            "1",
            "--json",
        ]);
        let v: serde_json::Value =
            serde_json::from_str(out.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
        v["knn_top1"].as_f64().unwrap()
    };
    // The bank is the test set: the nearest neighbour is the image itself, so the sharpest
    // temperature (1-NN in effect) is right on every image; exp(1 / 0.001) overflowed f32 and
    // gave the last class every vote (half of these images).
    assert_eq!(eval("0.001"), 1.0);
    refused(
        &[
            "eval",
            "--checkpoint",
            s(&f.run),
            "--data",
            s(&f.data),
            "--knn-t",
            "0.0001",
        ],
        &["kNN temperature"],
    );
}

#[test]
fn case_12_skip_bad_goes_past_a_bad_first_image_and_says_when_none_reads() {
    let f = Fixture::new();
    // Sorted first in the folder.
    std::fs::write(f.data.join("a/000-broken.png"), b"not a png").unwrap();
    let index = f.root.join("index");
    let t = ok(&strs(&f.embed(&index, &["--skip-bad"])));
    assert!(
        t.contains("12 images") && t.contains("000-broken.png"),
        "{t}"
    );
    let bad = f.root.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    for i in 0..3 {
        std::fs::write(bad.join(format!("x{i}.jpg")), b"junk").unwrap();
    }
    refused(
        &[
            "embed",
            "--checkpoint",
            s(&f.run),
            "--data",
            s(&bad),
            "--skip-bad",
            "--out",
            s(&f.root.join("none")),
        ],
        &["no readable images"],
    );
    assert!(!f.root.join("none").exists());
}

#[test]
fn case_13_a_second_writer_of_one_out_is_refused() {
    let f = Fixture::new();
    let index = f.root.join("index");
    let held = leoclr_core::destination::lock(&index).unwrap();
    refused(
        &strs(&f.embed(&index, &[])),
        &["another leoclr process", "pid"],
    );
    drop(held);
    ok(&strs(&f.embed(&index, &[])));
}

#[test]
fn case_14_compare_seeds_are_distinct_and_bounded() {
    refused(&["compare", "--seeds", "1,1"], &["seed 1 is given twice"]);
    let many: Vec<String> = (0..33).map(|i| i.to_string()).collect();
    refused(
        &["compare", "--seeds", &many.join(",")],
        &["between 1 and 32 seeds", "not 33"],
    );
}

#[test]
fn case_15_long_out_names_leave_room_for_scratch_files() {
    let f = Fixture::new();
    let long = f.root.join("i".repeat(250));
    ok(&strs(&f.embed(&long, &[])));
    assert!(long.join("index.json").exists());
    let onnx = f.root.join(format!("{}.onnx", "o".repeat(245)));
    ok(&[
        "export",
        "--checkpoint",
        s(&f.run),
        "--format",
        "onnx",
        "--out",
        s(&onnx),
    ]);
    assert!(onnx.exists());
}

#[test]
fn case_16_resume_clears_stale_temporaries_and_restores_whole_metrics_lines() {
    let f = Fixture::new();
    let stale = f.run.join(".checkpoint.leoclr.999999.0.tmp");
    std::fs::write(&stale, vec![0u8; 1024]).unwrap();
    // A process killed between the checkpoint and its metrics line: the line is missing.
    let metrics = f.run.join("metrics.jsonl");
    let full = std::fs::read_to_string(&metrics).unwrap();
    let last: serde_json::Value = serde_json::from_str(full.lines().last().unwrap()).unwrap();
    assert!(last["knn_top1"].is_number(), "{last}");
    let kept: Vec<&str> = full.lines().collect();
    std::fs::write(
        &metrics,
        format!("{}\n", kept[..kept.len() - 1].join("\n")).trim_start(),
    )
    .unwrap();
    ok(&["train", "--resume", s(&f.run)]);
    assert!(!stale.exists());
    let back = std::fs::read_to_string(&metrics).unwrap();
    let line: serde_json::Value = serde_json::from_str(back.lines().last().unwrap()).unwrap();
    assert_eq!(line["epoch"], last["epoch"]);
    assert!(
        line["knn_top1"].is_number() && line["embedding_std"].is_number(),
        "{line}"
    );
}

#[test]
fn case_17_small_refusals_up_front() {
    let f = Fixture::new();
    // Not "invalid configuration:" for a damaged index.
    let index = f.root.join("index");
    ok(&strs(&f.embed(&index, &[])));
    std::fs::write(index.join("metadata.tsv"), "index\tname\tlabel\nx\ty\tz\n").unwrap();
    let t = refused(
        &[
            "retrieve",
            "--index",
            s(&index),
            "--query",
            s(&f.data.join("a/img1.png")),
        ],
        &["metadata.tsv", "no numeric index"],
    );
    assert!(!t.contains("invalid configuration"), "{t}");
    // --out . is refused before anything is embedded, and leaves nothing behind.
    let out = Command::new(env!("CARGO_BIN_EXE_leoclr"))
        .current_dir(&f.root)
        .args([
            "embed",
            "--checkpoint",
            s(&f.run),
            "--data",
            s(&f.data),
            "--out",
            ".",
            "--overwrite",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("working directory"), "{}", text(&out));
    assert!(
        std::fs::read_dir(&f.root)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().contains("partial"))
    );
    refused(
        &[
            "export",
            "--checkpoint",
            s(&f.run),
            "--format",
            "onnx",
            "--onnx-batch",
            "18446744073709551615",
            "--out",
            s(&f.root.join("x.onnx")),
        ],
        &["--onnx-batch"],
    );
    refused(
        &strs(&f.embed(&f.root.join("e"), &["--ef-search", "0"])),
        &["--ef-search 0"],
    );
}

#[test]
fn an_index_pins_its_model_and_retrieve_refuses_a_model_that_moved_on() {
    let f = Fixture::new();
    let index = f.root.join("index");
    ok(&strs(&f.embed(&index, &[])));
    let query = f.data.join("a/img1.png");
    ok(&["retrieve", "--index", s(&index), "--query", s(&query)]);
    ok(&["train", "--resume", s(&f.run), "--epochs", "2"]);
    refused(
        &["retrieve", "--index", s(&index), "--query", s(&query)],
        &["epoch 1", "epoch 2", "embed again"],
    );
}

#[test]
fn a_resume_records_its_data_absolute_and_overwrite_replaces_the_whole_run() {
    let f = Fixture::new();
    // Resumed from another working directory with a relative --data.
    let out = Command::new(env!("CARGO_BIN_EXE_leoclr"))
        .current_dir(&f.root)
        .args([
            "train", "--resume", "run", "--epochs", "2", "--data", "photos",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let (_, meta) =
        leoclr_core::checkpoint::load_encoder(&f.checkpoint(), &burn::tensor::Device::flex())
            .unwrap();
    assert!(meta.run.spec.unwrap().data.data.is_absolute());
    // --overwrite stopped before its first epoch ended: no old checkpoint left to resume.
    let t = ok(&[
        "train",
        "--data",
        s(&f.data),
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
        s(&f.run),
        "--overwrite",
        "--max-steps",
        "1",
    ]);
    assert!(t.contains("holds no checkpoint"), "{t}");
    assert!(!f.checkpoint().exists());
    // And a run is never written into the data it trains on.
    refused(
        &[
            "train",
            "--data",
            s(&f.data),
            "--size",
            "16",
            "--epochs",
            "1",
            "--batch",
            "4",
            "--no-baseline",
            "--out",
            s(&f.data.join("a")),
            "--overwrite",
        ],
        &["the dataset being read"],
    );
}

/// The repository root: where the bundled data's default path resolves.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Found going further, command by command (docs/bad-input.md, "Further cases"): `bench --out`
/// wrote its rows over a checkpoint, `compare --out` wrote into a training run's directory.
#[test]
fn bench_and_compare_write_only_their_own_kind() {
    let f = Fixture::new();
    let before = snapshot(&f.run);
    let bench = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "bench",
            "--data",
            s(&f.data),
            "--batch",
            "4",
            "--res",
            "16",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--e2e-batches",
            "1",
            "--augment-on",
            "cpu",
            "--out",
            s(out),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    refused(
        &strs(&bench(&f.checkpoint(), &["--overwrite"])),
        &["checkpoint.leoclr", "is not benchmark rows"],
    );
    let rows = f.root.join("rows.json");
    ok(&strs(&bench(&rows, &[])));
    let first: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rows).unwrap()).unwrap();
    assert!(first[0]["images_per_s"].as_f64().unwrap() > 0.0, "{first}");
    refused(&strs(&bench(&rows, &[])), &["--overwrite"]);
    ok(&strs(&bench(&rows, &["--overwrite"])));
    let out = Command::new(env!("CARGO_BIN_EXE_leoclr"))
        .current_dir(repo_root())
        .args([
            "compare",
            "--limit",
            "64",
            "--test-limit",
            "32",
            "--epochs",
            "1",
            "--methods",
            "leoclr_key",
            "--out",
            s(&f.run),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is not a comparison"), "{}", text(&out));
    assert_eq!(snapshot(&f.run), before);
}

/// Flags that ran for ever, started a thread each, or gave NaN rates.
#[test]
fn unbounded_counts_are_refused_up_front() {
    let f = Fixture::new();
    refused(
        &[
            "eval",
            "--checkpoint",
            s(&f.run),
            "--data",
            s(&f.data),
            "--test-data",
            s(&f.data),
            "--probe-epochs",
            "1000000000000",
        ],
        &["linear probe epochs 1000000000000"],
    );
    refused(
        &[
            "train",
            "--data",
            s(&f.data),
            "--epochs",
            "1",
            "--batch",
            "4",
            "--workers",
            "100000",
            "--out",
            s(&f.root.join("w")),
        ],
        &["--workers 100000"],
    );
    refused(&["bench", "--steps", "0"], &["--steps 0"]);
    refused(&["bench", "--batch", "0"], &["--batch 0"]);
    refused(
        &["bench", "--e2e-batches", "1000000000000"],
        &["--e2e-batches"],
    );
}

/// A query that is no image is refused from its first bytes, and a file larger than any image
/// from its size: neither is read whole (a 3 GB file was).
#[test]
fn a_huge_query_file_is_not_read_whole() {
    let f = Fixture::new();
    let index = f.root.join("index");
    ok(&strs(&f.embed(&index, &[])));
    for (name, len, words) in [
        ("big.png", 3u64 << 30, "larger than any image"),
        ("sparse.png", 200 << 20, "unrecognised image format"),
    ] {
        let q = f.root.join(name);
        std::fs::File::create(&q).unwrap().set_len(len).unwrap();
        refused(
            &["retrieve", "--index", s(&index), "--query", s(&q)],
            &[name, words],
        );
    }
}

/// A comparison continues only with the settings its rows were trained with: rows are found by
/// method, epochs and seed, so a second command with masking on would have reused the first's.
#[test]
fn a_comparison_continues_only_with_its_own_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cmp");
    let compare = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_leoclr"));
        c.current_dir(repo_root()).args([
            "compare",
            "--limit",
            "64",
            "--test-limit",
            "32",
            "--epochs",
            "1",
            "--batch",
            "16",
            "--queue",
            "32",
            "--probe-epochs",
            "1",
            "--methods",
            "leoclr_key",
            "--out",
            s(&out),
        ]);
        c.args(extra).output().unwrap()
    };
    let first = compare(&["--mask-same-image", "false"]);
    assert!(first.status.success(), "{}", text(&first));
    let again = compare(&["--mask-same-image", "false", "--seeds", "0,1"]);
    assert!(again.status.success(), "{}", text(&again));
    let other = compare(&["--mask-same-image", "true"]);
    assert_eq!(other.status.code(), Some(1), "{}", text(&other));
    assert!(
        text(&other).contains("mask_same_image differs"),
        "{}",
        text(&other)
    );
}

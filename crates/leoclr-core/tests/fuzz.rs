//! A fuzzer on stable Rust: seed files in every format this project reads (IDX raw and gzipped,
//! CIFAR-10/100, STL-10, PNG/BMP images, checkpoints), mutated at random (bit flips, bytes set to
//! 0x00/0xff/0x7f, truncation, repeated runs, length fields set huge). Every mutant goes through
//! the reader, which must answer a value or an error and never panic. Checkpoint mutants get their
//! checksum recomputed (as a crafted file would), so the parser behind it is reached.
//!
//! A second test does the same for the files of an embedding index (the npy matrix, index.json
//! with metadata.tsv, the HNSW graph with its digest recomputed), a third for checkpoint
//! metadata as the commands then use it.
//!
//! Time per target: `LEOCLR_FUZZ_SECS` (default 3; the test command runs 12, a long run e.g.
//! `LEOCLR_FUZZ_SECS=600 cargo test --workspace fuzz_ -- --nocapture`). A panicking input is
//! saved as `tests/fuzz-corpus/<target>-<hash>.bin`, and every run replays the corpus first.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use leoclr_core::ann::{AnnIndex, AnnParams};
use leoclr_core::checkpoint;
use leoclr_core::index::{self, EmbedIndex, IndexInfo};
use leoclr_core::run::RunMeta;
use leoclr_core::{Method, OriginalBranch, TrainConfig, Trainer};
use leoclr_data::formats::npy;
use leoclr_data::{
    Dataset, DatasetFormat, DatasetSpec, ImageU8, Rng, Split, cifar, folder, idx, stl10,
};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn pick(rng: &mut Rng, n: usize) -> usize {
    rng.below(n as u64) as usize
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    let rounds = 1 + pick(rng, 4);
    for _ in 0..rounds {
        if b.is_empty() {
            break;
        }
        let at = pick(rng, b.len());
        match pick(rng, 6) {
            0 => b[at] ^= 1 << pick(rng, 8),
            1 => b[at] = [0x00, 0xff, 0x7f, 0x80][pick(rng, 4)],
            2 => b.truncate(at),
            3 => {
                let end = (at + 1 + pick(rng, 64)).min(b.len());
                let run = b[at..end].to_vec();
                b.splice(at..at, run);
            }
            // A length or dimension field set huge (u32 big-endian and u64 little-endian).
            4 if at + 4 <= b.len() => b[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes()),
            _ if at + 8 <= b.len() => {
                let huge = [u64::MAX, u64::MAX - 7, u64::MAX / 3, 1 << 40][pick(rng, 4)];
                b[at..at + 8].copy_from_slice(&huge.to_le_bytes());
            }
            _ => b[at] = !b[at],
        }
    }
    b
}

/// Runs `target` on the corpus entries for `name`, then on mutants of `seeds` for the time
/// budget; returns the inputs that panicked (saved to the corpus).
fn fuzz(name: &str, seeds: &[Vec<u8>], target: &dyn Fn(&[u8])) -> Vec<PathBuf> {
    let secs: f64 = std::env::var("LEOCLR_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let mut panicked = Vec::new();
    // An input that kills the process (an abort, a library's `process::exit`) is caught by no
    // unwind: with LEOCLR_FUZZ_LAST=1 each input is written first to the temporary directory
    // (`leoclr-fuzz-<target>-last.bin`), so the one that killed it is on disk.
    let last = std::env::var_os("LEOCLR_FUZZ_LAST")
        .map(|_| std::env::temp_dir().join(format!("leoclr-fuzz-{name}-last.bin")));
    let mut run = |input: &[u8], save: bool| {
        if let Some(p) = &last {
            let _ = std::fs::write(p, input);
        }
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            let path = corpus().join(format!("{name}-{:016x}.bin", fnv1a(input)));
            if save {
                let _ = std::fs::write(&path, input);
            }
            panicked.push(path);
        }
    };
    let mut replayed = 0;
    for entry in std::fs::read_dir(corpus()).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with(&format!("{name}-")))
        {
            run(&std::fs::read(&p).unwrap(), false);
            replayed += 1;
        }
    }
    let mut rng = Rng::new(fnv1a(name.as_bytes()) ^ std::process::id() as u64);
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < Duration::from_secs_f64(secs) {
        let seed = &seeds[pick(&mut rng, seeds.len())];
        run(&mutate(seed, &mut rng), true);
        n += 1;
    }
    eprintln!(
        "fuzz {name}: {replayed} corpus inputs, {n} mutants, {} panicked",
        panicked.len()
    );
    panicked
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn image(w: usize, h: usize) -> ImageU8 {
    ImageU8::new(
        w,
        h,
        3,
        (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect(),
    )
}

/// Opens the files written to a fresh directory as a dataset and reads every image.
fn open_dir(files: &[(&str, &[u8])], format: DatasetFormat, split: Split) {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    if let Ok(ds) = Dataset::open(&DatasetSpec {
        path: dir.path().to_path_buf(),
        format: Some(format),
        split,
        limit: Some(8),
    }) {
        for i in 0..ds.len() {
            let _ = ds.get(i);
        }
    }
}

#[test]
fn fuzz_readers_and_checkpoints_never_panic() {
    // Quiet: the panics are caught and reported below.
    std::panic::set_hook(Box::new(|_| {}));
    let mut found = Vec::new();

    let labels = idx::encode(&[3], &[1, 2, 3]);
    let images = idx::encode(&[3, 5, 4], &[9; 60]);
    found.extend(fuzz(
        "idx",
        &[images.clone(), gz(&images), labels.clone()],
        &|b| {
            let _ = idx::from_files(
                (Path::new("i"), b.to_vec()),
                (Path::new("l"), labels.clone()),
                false,
            );
            let _ = idx::from_files(
                (Path::new("i"), images.clone()),
                (Path::new("l"), b.to_vec()),
                false,
            );
        },
    ));

    let c10 = cifar::encode(&[(1, image(32, 32)), (7, image(32, 32))], false);
    let c100 = cifar::encode(&[(3, image(32, 32))], true);
    found.extend(fuzz("cifar", &[c10, c100], &|b| {
        open_dir(
            &[("data_batch_1.bin", b), ("test_batch.bin", b)],
            DatasetFormat::Cifar10,
            Split::Train,
        );
        open_dir(
            &[("train.bin", b), ("test.bin", b)],
            DatasetFormat::Cifar100,
            Split::Test,
        );
    }));

    let stl = [
        stl10::encode_record(&image(96, 96)),
        stl10::encode_record(&image(96, 96)),
    ]
    .concat();
    found.extend(fuzz("stl10", &[stl, vec![1, 2]], &|b| {
        open_dir(
            &[("train_X.bin", b), ("train_y.bin", &[1, 2])],
            DatasetFormat::Stl10,
            Split::Train,
        );
        open_dir(
            &[("train_X.bin", &[0; 2 * 96 * 96 * 3]), ("train_y.bin", b)],
            DatasetFormat::Stl10,
            Split::Train,
        );
    }));

    let mut png = Vec::new();
    let mut bmp = Vec::new();
    let img = image::RgbImage::from_raw(6, 5, image(6, 5).data).unwrap();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    img.write_to(&mut std::io::Cursor::new(&mut bmp), image::ImageFormat::Bmp)
        .unwrap();
    found.extend(fuzz("image", &[png, bmp], &|b| {
        let _ = folder::decode_bytes(Path::new("x"), b);
    }));

    let cfg = TrainConfig::tiny_test(
        1,
        Method::Leoclr {
            original_branch: OriginalBranch::Key,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let t = Trainer::new(cfg, &Device::flex(), 2).unwrap();
    let meta = RunMeta {
        view_size: Some(16),
        ..RunMeta::default()
    };
    let full = std::fs::read(checkpoint::save(dir.path(), &t, &meta).unwrap()).unwrap();
    // The header, the metadata and the section lengths: what a crafted file changes (the tensor
    // bytes behind them are burn's record format).
    let json_len = u64::from_le_bytes(full[8..16].try_into().unwrap()) as usize;
    let head = 16 + json_len + 16;
    found.extend(fuzz("checkpoint", std::slice::from_ref(&full), &|b| {
        let mut m = b[..b.len().min(head)].to_vec();
        if b.len() >= head {
            m.extend_from_slice(&full[head..full.len() - 8]);
            let sum = fnv1a(&m);
            m.extend_from_slice(&sum.to_le_bytes());
        }
        let _ = checkpoint::load_encoder_from_bytes(Path::new("c"), &m, &Device::flex());
        let ck = tempfile::tempdir().unwrap();
        std::fs::write(ck.path().join(checkpoint::FILE_NAME), &m).unwrap();
        let _ = checkpoint::load_trainer(ck.path(), &Device::flex());
    }));

    let _ = std::panic::take_hook();
    assert!(found.is_empty(), "inputs that panicked (saved): {found:?}");
}

/// A small index on disk: features, metadata, index.json (and, with `graph`, an HNSW graph).
fn index_files(dir: &Path, rows: usize, dim: usize, graph: bool) -> IndexInfo {
    let mut rng = Rng::new(3);
    let mut feats: Vec<f32> = (0..rows * dim).map(|_| rng.normal() as f32).collect();
    leoclr_core::infer::normalize_rows(&mut feats, dim);
    let mut w = npy::NpyWriter::create(&dir.join(index::FEATURES_FILE), rows, dim).unwrap();
    w.write_rows(&feats).unwrap();
    w.finish().unwrap();
    let meta: String = std::iter::once("index\tname\tlabel\n".to_string())
        .chain((0..rows).map(|i| format!("{i}\tx#{i}\t{}\n", i % 3)))
        .collect();
    std::fs::write(dir.join(index::METADATA_FILE), meta).unwrap();
    let ann = graph.then(|| {
        AnnIndex::build(&feats, dim, AnnParams::default())
            .unwrap()
            .save(dir)
            .unwrap()
    });
    let info = IndexInfo {
        checkpoint: dir.join("checkpoint.leoclr"),
        encoder: "query".into(),
        images: rows,
        dim,
        channels: 1,
        augment: leoclr_data::AugmentConfig::small(8, 1),
        data: dir.to_path_buf(),
        split: "train".into(),
        skipped: vec![],
        projections: false,
        model: None,
        ann,
    };
    std::fs::write(
        dir.join(index::INFO_FILE),
        serde_json::to_string(&info).unwrap(),
    )
    .unwrap();
    info
}

/// The readers of embedding indexes: the npy matrix, index.json with metadata.tsv (then a
/// search, and a query prepared as index.json says), and the HNSW graph files with their digest
/// recomputed, as a crafted pair would have it (the structure check behind the digest is what
/// they reach).
#[test]
fn fuzz_index_files_never_panic() {
    std::panic::set_hook(Box::new(|_| {}));
    let mut found = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let info = index_files(dir.path(), 40, 6, true);
    let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();

    let npy_seed = read(index::FEATURES_FILE);
    found.extend(fuzz("npy", &[npy_seed], &|b| {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.npy");
        std::fs::write(&p, b).unwrap();
        let _ = npy::read_f32_matrix(&p);
    }));

    let (info_seed, meta_seed) = (read(index::INFO_FILE), read(index::METADATA_FILE));
    let other = tempfile::tempdir().unwrap();
    index_files(other.path(), 40, 6, false);
    let exact_info = std::fs::read(other.path().join(index::INFO_FILE)).unwrap();
    let query = ImageU8::new(9, 7, 1, (0..63).map(|i| (i * 5) as u8).collect());
    found.extend(fuzz(
        "index",
        &[info_seed.clone(), exact_info, meta_seed],
        &|b| {
            for target in [index::INFO_FILE, index::METADATA_FILE] {
                std::fs::write(other.path().join(target), b).unwrap();
                if let Ok(ix) = EmbedIndex::open_with(other.path(), false) {
                    let _ = ix.search(&[0.5; 6], 1000);
                    // What retrieve does with the recorded view before the model sees it.
                    let _ = leoclr_core::infer::model_input(&query, &ix.info.augment);
                }
            }
            index_files(other.path(), 40, 6, false);
        },
    ));

    let (graph_seed, data_seed) = (read("ann.hnsw.graph"), read("ann.hnsw.data"));
    let ann = info.ann.clone().unwrap();
    found.extend(fuzz(
        "hnsw",
        &[graph_seed.clone(), data_seed.clone()],
        &|b| {
            for (i, name) in ["ann.hnsw.graph", "ann.hnsw.data"].iter().enumerate() {
                let d = tempfile::tempdir().unwrap();
                std::fs::write(d.path().join("ann.hnsw.graph"), &graph_seed).unwrap();
                std::fs::write(d.path().join("ann.hnsw.data"), &data_seed).unwrap();
                std::fs::write(d.path().join(name), b).unwrap();
                let mut crafted = ann.clone();
                crafted.bytes[i] = b.len() as u64;
                crafted.digest[i] = leoclr_core::ann::digest(&d.path().join(name)).unwrap();
                if let Ok(g) = AnnIndex::load(d.path(), &crafted, 40, 6) {
                    let _ = g.search(&[0.4; 6], 50, None);
                }
            }
        },
    ));

    let _ = std::panic::take_hook();
    assert!(found.is_empty(), "inputs that panicked (saved): {found:?}");
}

/// Checkpoint metadata as a crafted file would set it (the JSON edited, the checksum
/// recomputed), then used as the commands use it: the trainer restored, the view an evaluation
/// or an index would take, an image prepared and embedded through it.
#[test]
fn fuzz_checkpoint_metadata_in_use_never_panics() {
    std::panic::set_hook(Box::new(|_| {}));
    let cfg = TrainConfig::tiny_test(
        1,
        Method::Leoclr {
            original_branch: OriginalBranch::Key,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let t = Trainer::new(cfg, &Device::flex(), 2).unwrap();
    let meta = RunMeta {
        view_size: Some(16),
        augment: Some(leoclr_data::AugmentConfig::small(16, 1)),
        ..RunMeta::default()
    };
    let full = std::fs::read(checkpoint::save(dir.path(), &t, &meta).unwrap()).unwrap();
    let json_len = u64::from_le_bytes(full[8..16].try_into().unwrap()) as usize;
    let json = full[16..16 + json_len].to_vec();
    let tail = full[16 + json_len..full.len() - 8].to_vec();
    let img = ImageU8::new(12, 10, 1, (0..120).map(|i| (i * 7) as u8).collect());
    let found = fuzz("ckmeta", &[json], &|b| {
        let mut m = full[..8].to_vec();
        m.extend_from_slice(&(b.len() as u64).to_le_bytes());
        m.extend_from_slice(b);
        m.extend_from_slice(&tail);
        let sum = fnv1a(&m);
        m.extend_from_slice(&sum.to_le_bytes());
        let dev = Device::flex();
        let _ = checkpoint::trainer_from_bytes(Path::new("c"), &m, &dev);
        if let Ok((enc, meta)) = checkpoint::load_encoder_from_bytes(Path::new("c"), &m, &dev)
            && let Ok(aug) = meta
                .run
                .eval_augment(meta.config.model.in_channels, None, 16)
        {
            let x = leoclr_core::infer::model_input(
                &img.to_channels(meta.config.model.in_channels),
                &aug,
            );
            let _ = leoclr_core::infer::embed_views(
                &enc,
                &[&x],
                meta.config.model.in_channels,
                aug.size,
                leoclr_core::eval::Output::Backbone,
                &dev,
            );
        }
    });
    let _ = std::panic::take_hook();
    assert!(found.is_empty(), "inputs that panicked (saved): {found:?}");
}

//! `leoclr bench-ann`: approximate against exact nearest-neighbour search on an embedding index
//! or on synthetic vectors: the graph's build time and memory, and per setting of `ef` the
//! recall@k against the exact scan and the time per query (one thread), with the exact scan's
//! time as the reference row. Queries are held out of the graph.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use leoclr_core::ann::{AnnIndex, AnnParams, recall};
use leoclr_core::index::FEATURES_FILE;
use leoclr_core::infer::{nearest, normalize_rows};
use leoclr_data::Rng;
use leoclr_data::formats::npy;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct BenchAnnArgs {
    /// An index directory written by `leoclr embed` (its features are the data).
    #[arg(long, conflicts_with = "synthetic")]
    pub index: Option<PathBuf>,
    /// Instead of an index: this many synthetic vectors (clustered: 1000 Gaussian clusters).
    #[arg(long)]
    pub synthetic: Option<usize>,
    /// Width of the synthetic vectors.
    #[arg(long, default_value_t = 512)]
    pub dim: usize,
    /// Intrinsic dimension of the synthetic vectors: clusters in a `latent`-dimensional space,
    /// mapped into `dim` by a fixed random linear map, plus a little noise (embeddings lie near a
    /// low-dimensional surface); 0: clusters with isotropic noise in all `dim` dimensions, where
    /// distances concentrate and a graph search has little to go on.
    #[arg(long, default_value_t = 32)]
    pub latent: usize,
    /// Queries, held out of the graph (the last rows of the index; more synthetic vectors).
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Neighbours per query.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Candidate-list sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128")]
    pub ef: Vec<usize>,
    #[arg(long, default_value_t = AnnParams::default().m)]
    pub m: usize,
    #[arg(long, default_value_t = AnnParams::default().ef_construction)]
    pub ef_construction: usize,
    /// Exact-scan queries timed (the exact results of every query are computed regardless).
    #[arg(long, default_value_t = 200)]
    pub exact_timed: usize,
    /// One JSON object per row instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Row {
    search: String,
    rows: usize,
    dim: usize,
    recall_at_k: f64,
    ms_per_query: f64,
    speedup_vs_exact: f64,
    build_s: f64,
    memory_mb: f64,
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// `n` vectors around 1000 seeded cluster centres, noise half the centres' scale: in a
/// `latent`-dimensional space mapped into `dim` by a fixed random matrix (plus noise of 0.05 in
/// every dimension), or, with `latent` 0, directly in `dim` dimensions.
fn synthetic(n: usize, dim: usize, latent: usize) -> Vec<f32> {
    let mut rng = Rng::new(17);
    let d = if latent == 0 { dim } else { latent };
    let centres: Vec<f32> = (0..1000 * d).map(|_| rng.normal() as f32).collect();
    let map: Vec<f32> = (0..dim * latent)
        .map(|_| rng.normal() as f32 / (latent as f32).sqrt())
        .collect();
    let mut v = Vec::with_capacity(n * dim);
    let mut z = vec![0f32; d];
    for _ in 0..n {
        let c = rng.below(1000) as usize;
        for (j, zj) in z.iter_mut().enumerate() {
            *zj = centres[c * d + j] + 0.5 * rng.normal() as f32;
        }
        if latent == 0 {
            v.extend_from_slice(&z);
            continue;
        }
        for row in map.chunks_exact(latent) {
            let x: f32 = row.iter().zip(&z).map(|(a, b)| a * b).sum();
            v.push(x + 0.05 * rng.normal() as f32);
        }
    }
    v
}

/// Every size a flag sets, bounded before anything is allocated (a `--synthetic 1e12` or a
/// huge `--dim` used to abort allocating petabytes; `--dim 0` panicked).
fn check_flags(a: &BenchAnnArgs) -> Result<()> {
    let within = |name: &str, v: usize, lo: usize, hi: usize| -> Result<()> {
        if !(lo..=hi).contains(&v) {
            bail!("--{name} {v}: between {lo} and {hi}");
        }
        Ok(())
    };
    within("dim", a.dim, 1, 8192)?;
    within("latent", a.latent, 0, 1024)?;
    within("queries", a.queries, 1, 1_000_000)?;
    within("k", a.k, 1, 10_000)?;
    within("m", a.m, 1, 255)?;
    within("ef-construction", a.ef_construction, 1, 100_000)?;
    for &ef in &a.ef {
        within("ef", ef, 1, 100_000)?;
    }
    if let Some(n) = a.synthetic {
        within("synthetic", n, 2, 50_000_000)?;
        let gib = (n as f64) * (a.dim as f64) * 4.0 / (1u64 << 30) as f64;
        if gib > 16.0 {
            bail!(
                "--synthetic {n} x --dim {}: {gib:.0} GiB of vectors; at most 16 GiB",
                a.dim
            );
        }
    }
    Ok(())
}

/// The vectors to search, as unit rows: an index's features or synthetic ones.
fn vectors(a: &BenchAnnArgs) -> Result<(usize, usize, Vec<f32>)> {
    let (n, dim, mut data) = match (&a.index, a.synthetic) {
        (Some(dir), None) => npy::read_f32_matrix(&dir.join(FEATURES_FILE))?,
        (None, Some(n)) => (n, a.dim, synthetic(n, a.dim, a.latent)),
        _ => bail!("give --index DIR or --synthetic N"),
    };
    normalize_rows(&mut data, dim);
    Ok((n, dim, data))
}

pub fn run(a: BenchAnnArgs) -> Result<()> {
    check_flags(&a)?;
    let (n, dim, data) = vectors(&a)?;
    if n <= a.queries + a.k {
        bail!(
            "{n} rows: too few for {} held-out queries and k = {}",
            a.queries,
            a.k
        );
    }
    let base = n - a.queries;
    let (db, qs) = data.split_at(base * dim);
    let queries: Vec<&[f32]> = qs.chunks_exact(dim).collect();
    let exact: Vec<Vec<(usize, f32)>> = queries
        .iter()
        .map(|q| nearest(db, dim, q, a.k, None))
        .collect();
    let timed = a.exact_timed.clamp(1, queries.len());
    let t = Instant::now();
    for q in &queries[..timed] {
        std::hint::black_box(nearest(db, dim, q, a.k, None));
    }
    let exact_ms = 1000.0 * t.elapsed().as_secs_f64() / timed as f64;
    let mut rows = vec![Row {
        search: "exact scan".into(),
        rows: base,
        dim,
        recall_at_k: 1.0,
        ms_per_query: exact_ms,
        speedup_vs_exact: 1.0,
        build_s: 0.0,
        memory_mb: (db.len() * 4) as f64 / 1048576.0,
    }];
    let before = rss_mb();
    let t = Instant::now();
    let params = AnnParams {
        m: a.m,
        ef_construction: a.ef_construction,
        ef_search: 0,
    };
    let mut ann = AnnIndex::build(db, dim, params)?;
    let build_s = t.elapsed().as_secs_f64();
    let memory_mb = rss_mb() - before;
    for &ef in &a.ef {
        ann.params.ef_search = ef;
        let t = Instant::now();
        let found: Vec<Vec<(usize, f32)>> =
            queries.iter().map(|q| ann.search(q, a.k, None)).collect();
        let ms = 1000.0 * t.elapsed().as_secs_f64() / queries.len() as f64;
        rows.push(Row {
            search: format!("HNSW M={} efc={} ef={ef}", a.m, a.ef_construction),
            rows: base,
            dim,
            recall_at_k: recall(&found, &exact),
            ms_per_query: ms,
            speedup_vs_exact: exact_ms / ms,
            build_s,
            memory_mb,
        });
    }
    print(&a, &rows)
}

fn print(a: &BenchAnnArgs, rows: &[Row]) -> Result<()> {
    if a.json {
        for r in rows {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(());
    }
    println!(
        "| search | rows x dim | recall@{} | ms / query (1 thread) | vs exact | build s | memory MB |",
        a.k
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} x {} | {:.4} | {:.3} | {:.1}x | {:.1} | {:.0} |",
            r.search,
            r.rows,
            r.dim,
            r.recall_at_k,
            r.ms_per_query,
            r.speedup_vs_exact,
            r.build_s,
            r.memory_mb
        );
    }
    Ok(())
}

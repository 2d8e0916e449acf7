//! Approximate nearest neighbours over unit-length feature rows: an HNSW graph (the `hnsw_rs`
//! crate, chosen over `instant-distance` by the recall/latency table in docs/performance.md),
//! used above [`EXACT_BELOW`] rows; below it the exact scan is fast enough and exact.
//!
//! An index is saved next to an embedding index (`ann.hnsw.graph`, `ann.hnsw.data`) with its
//! sizes and a digest of both files recorded in `index.json`: a file that does not match is
//! refused before `hnsw_rs` reads it (its reader trusts its input).

use std::path::{Path, PathBuf};

use hnsw_rs::api::AnnT;
use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::{Distance, Hnsw};
use serde::{Deserialize, Serialize};

use crate::infer::nearest;
use crate::{Error, Result};

/// Below this many rows searches scan every row (a 60,000 x 128 scan takes ~8 ms a query on one
/// core; an HNSW graph over it ~30 s to build on two).
pub const EXACT_BELOW: usize = 20_000;

/// The graph's settings. `ef_search` 64 gave recall@10 0.9999 on Fashion-MNIST embeddings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnParams {
    /// Neighbours kept per node and layer (HNSW's M).
    pub m: usize,
    pub ef_construction: usize,
    /// Candidates explored per query: recall against speed.
    pub ef_search: usize,
}

impl AnnParams {
    /// The defaults with a search width for `rows` rows: 64 up to 200,000 (recall@10 0.9999 on
    /// Fashion-MNIST's 59,000), 256 above (0.992 on a million synthetic 512-d vectors, where 64
    /// found 0.896): docs/performance.md.
    pub fn for_rows(rows: usize) -> Self {
        Self {
            ef_search: if rows <= 200_000 { 64 } else { 256 },
            ..Self::default()
        }
    }
}

impl Default for AnnParams {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
        }
    }
}

/// `1 - dot` of unit rows, never negative. anndists' `DistDot` asserts `dot <= 1`, which the
/// rounding of two equal unit vectors can break (a duplicate image would panic the search).
#[derive(Clone, Copy, Debug, Default)]
pub struct UnitDot;

impl Distance<f32> for UnitDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        // Eight partial sums: vectorised by the compiler.
        let mut acc = [0f32; 8];
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let tail: f32 = ca
            .remainder()
            .iter()
            .zip(cb.remainder())
            .map(|(x, y)| x * y)
            .sum();
        for (x, y) in ca.zip(cb) {
            for i in 0..8 {
                acc[i] += x[i] * y[i];
            }
        }
        (1.0 - (acc.iter().sum::<f32>() + tail)).max(0.0)
    }
}

/// What `index.json` records of a saved graph, checked before it is read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnInfo {
    pub params: AnnParams,
    pub rows: usize,
    pub dim: usize,
    /// Byte sizes of the graph and data files.
    pub bytes: [u64; 2],
    /// Digest of the graph and data files ([`digest`]).
    pub digest: [u64; 2],
}

/// File base name of a saved graph inside an index directory.
pub const BASENAME: &str = "ann";

fn files(dir: &Path) -> [PathBuf; 2] {
    [
        dir.join(format!("{BASENAME}.hnsw.graph")),
        dir.join(format!("{BASENAME}.hnsw.data")),
    ]
}

/// A 64-bit digest of a file's bytes (word-wise multiply-xor, not cryptographic): it tells a
/// truncated, damaged or swapped file from the one `embed` wrote.
pub fn digest(path: &Path) -> Result<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        if n == 0 {
            return Ok(h);
        }
        let (words, rest) = buf[..n].as_chunks::<8>();
        for w in words
            .iter()
            .map(|w| u64::from_le_bytes(*w))
            .chain((!rest.is_empty()).then(|| {
                let mut last = [0u8; 8];
                last[..rest.len()].copy_from_slice(rest);
                u64::from_le_bytes(last) ^ (rest.len() as u64) << 56
            }))
        {
            h = (h ^ w).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
        }
    }
}

/// An HNSW graph over the rows of a feature matrix; row `i` is data id `i`.
pub struct AnnIndex {
    hnsw: Hnsw<'static, f32, UnitDot>,
    pub params: AnnParams,
    pub rows: usize,
    pub dim: usize,
}

impl AnnIndex {
    /// Builds the graph over unit rows `[n, dim]` on all cores.
    pub fn build(rows: &[f32], dim: usize, params: AnnParams) -> Result<Self> {
        if dim == 0 || !rows.len().is_multiple_of(dim) {
            return Err(Error::Config(format!(
                "{} values are not rows of {dim}",
                rows.len()
            )));
        }
        let n = rows.len() / dim;
        if params.m == 0 || params.m > 255 || params.ef_construction == 0 {
            return Err(Error::Config(format!(
                "HNSW settings M {} (1..=255), ef_construction {} (>= 1)",
                params.m, params.ef_construction
            )));
        }
        let mut hnsw = Hnsw::new(params.m, n.max(1), 16, params.ef_construction, UnitDot);
        let items: Vec<(&[f32], usize)> = rows.chunks_exact(dim).zip(0..).collect();
        hnsw.parallel_insert_slice(&items);
        hnsw.set_searching_mode(true);
        Ok(Self {
            hnsw,
            params,
            rows: n,
            dim,
        })
    }

    /// The `k` rows most similar to a unit `query`, best first: (row, cosine). `exclude` leaves
    /// one row out.
    pub fn search(&self, query: &[f32], k: usize, exclude: Option<usize>) -> Vec<(usize, f32)> {
        // hnsw_rs allocates for `want` results up front: never more than the graph holds (a
        // `-k 18446744073709551615` used to abort on the allocation).
        let k = k.min(self.rows);
        let want = (k + usize::from(exclude.is_some())).min(self.rows);
        let ef = self.params.ef_search.max(want);
        let mut out: Vec<(usize, f32)> = self
            .hnsw
            .search(query, want, ef)
            .into_iter()
            .filter(|n| Some(n.d_id) != exclude)
            .map(|n| (n.d_id, 1.0 - n.distance))
            .collect();
        out.truncate(k);
        out
    }

    /// Writes the graph into `dir` and returns what `index.json` records of it.
    pub fn save(&self, dir: &Path) -> Result<AnnInfo> {
        self.hnsw
            .file_dump(dir, BASENAME)
            .map_err(|e| Error::index(dir, format!("cannot write the HNSW graph: {e}")))?;
        let [g, d] = files(dir);
        let size = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.len())
                .map_err(|e| Error::Io {
                    path: p.to_path_buf(),
                    source: e,
                })
        };
        Ok(AnnInfo {
            params: self.params,
            rows: self.rows,
            dim: self.dim,
            bytes: [size(&g)?, size(&d)?],
            digest: [digest(&g)?, digest(&d)?],
        })
    }

    /// Reads back a graph saved in `dir`, after checking its files against `info` (sizes, then
    /// digests) and `info` against the features it indexes (`rows` x `dim`).
    pub fn load(dir: &Path, info: &AnnInfo, rows: usize, dim: usize) -> Result<Self> {
        let bad = |p: &Path, m: &str| Error::index(p, m);
        if (info.rows, info.dim) != (rows, dim) {
            return Err(bad(
                dir,
                "the HNSW graph was built over other features (rebuild it with `leoclr embed --ann on`)",
            ));
        }
        for (i, p) in files(dir).iter().enumerate() {
            let len = std::fs::metadata(p)
                .map(|m| m.len())
                .map_err(|e| Error::Io {
                    path: p.clone(),
                    source: e,
                })?;
            if len != info.bytes[i] {
                return Err(bad(
                    p,
                    "truncated or replaced (its size is not the one recorded)",
                ));
            }
            if digest(p)? != info.digest[i] {
                return Err(bad(
                    p,
                    "damaged or replaced (its digest is not the one recorded)",
                ));
            }
        }
        // The digest only tells accidents; a crafted pair with a recomputed digest is checked
        // structurally before hnsw_rs's reader (which trusts every length) sees it.
        let [graph_file, data_file] = files(dir);
        crate::ann_dump::check(&graph_file, &data_file, rows, dim)
            .map_err(|m| bad(dir, &format!("unreadable HNSW graph: {m}")))?;
        // The reader borrows its loader for the graph's lifetime; one small loader per open index
        // is kept for the process (the graph and vectors themselves are owned by the index).
        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, BASENAME)));
        fn read(
            io: &'static mut HnswIo,
        ) -> std::result::Result<Hnsw<'static, f32, UnitDot>, String> {
            io.load_hnsw::<f32, UnitDot>().map_err(|e| e.to_string())
        }
        let loaded = crate::quiet::catch(move || read(io));
        let mut hnsw = match loaded {
            Ok(Ok(h)) => h,
            Ok(Err(e)) | Err(e) => return Err(bad(dir, &format!("unreadable HNSW graph: {e}"))),
        };
        if hnsw.get_nb_point() != rows {
            return Err(bad(dir, "the HNSW graph holds another number of rows"));
        }
        hnsw.set_searching_mode(true);
        Ok(Self {
            hnsw,
            params: info.params,
            rows,
            dim,
        })
    }
}

/// How a search runs: the exact scan, or the graph when there is one.
pub enum Searcher {
    Exact,
    Approximate(Box<AnnIndex>),
}

impl Searcher {
    /// The `k` nearest unit rows of `features` to `query` (unit), best first.
    pub fn search(
        &self,
        features: &[f32],
        dim: usize,
        query: &[f32],
        k: usize,
        exclude: Option<usize>,
    ) -> Vec<(usize, f32)> {
        match self {
            Self::Exact => nearest(features, dim, query, k, exclude),
            Self::Approximate(a) => a.search(query, k, exclude),
        }
    }

    /// Words for the user: "exact" or "approximate (HNSW, ef 64)".
    pub fn describe(&self) -> String {
        match self {
            Self::Exact => "exact".into(),
            Self::Approximate(a) => format!("approximate (HNSW, ef {})", a.params.ef_search),
        }
    }
}

/// Recall@k of approximate results against exact ones (fraction of the true k found).
pub fn recall(approx: &[Vec<(usize, f32)>], exact: &[Vec<(usize, f32)>]) -> f64 {
    let mut found = 0usize;
    let mut total = 0usize;
    for (a, e) in approx.iter().zip(exact) {
        total += e.len();
        found += e
            .iter()
            .filter(|(i, _)| a.iter().any(|(j, _)| j == i))
            .count();
    }
    found as f64 / total.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::normalize_rows;

    fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = leoclr_data::Rng::new(seed);
        let centres: Vec<f32> = (0..20 * dim).map(|_| rng.normal() as f32).collect();
        let mut v: Vec<f32> = (0..n * dim)
            .map(|i| centres[(i / dim % 20) * dim + i % dim] + 0.4 * rng.normal() as f32)
            .collect();
        normalize_rows(&mut v, dim);
        v
    }

    #[test]
    fn graph_search_finds_what_the_scan_finds_and_survives_a_save() {
        let (n, dim) = (3000, 32);
        let data = clustered(n, dim, 1);
        let queries = clustered(100, dim, 2);
        // Noisy 32-d clusters are harder for a graph than real embeddings (recall@10 0.97 at
        // ef 64 here, 0.9999 on Fashion-MNIST's): a wider search for this check of the wiring.
        let params = AnnParams {
            ef_search: 256,
            ..AnnParams::default()
        };
        let ann = AnnIndex::build(&data, dim, params).unwrap();
        let exact: Vec<_> = queries
            .chunks_exact(dim)
            .map(|q| nearest(&data, dim, q, 10, None))
            .collect();
        let approx: Vec<_> = queries
            .chunks_exact(dim)
            .map(|q| ann.search(q, 10, None))
            .collect();
        let r = recall(&approx, &exact);
        assert!(r >= 0.98, "recall@10 {r}");
        // Scores are cosines, best first; a row excluded is not returned.
        let top = &approx[0];
        assert!(top.windows(2).all(|w| w[0].1 >= w[1].1 - 1e-6));
        assert!((top[0].1 - exact[0][0].1).abs() < 1e-4 || top[0].0 != exact[0][0].0);
        let own = ann.search(&data[..dim], 5, Some(0));
        assert!(own.iter().all(|(i, _)| *i != 0) && own.len() == 5);
        // A duplicate of an indexed row (dot rounding above 1) is found, not a panic.
        assert_eq!(ann.search(&data[dim..2 * dim], 1, None)[0].0, 1);

        let dir = tempfile::tempdir().unwrap();
        let info = ann.save(dir.path()).unwrap();
        let back = AnnIndex::load(dir.path(), &info, n, dim).unwrap();
        let again: Vec<_> = queries
            .chunks_exact(dim)
            .map(|q| back.search(q, 10, None))
            .collect();
        assert!(recall(&again, &exact) >= 0.98);
        // Refused before hnsw_rs reads them: other features, a truncated file, a flipped byte.
        assert!(AnnIndex::load(dir.path(), &info, n + 1, dim).is_err());
        let data_file = dir.path().join("ann.hnsw.data");
        let mut bytes = std::fs::read(&data_file).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        std::fs::write(&data_file, &bytes).unwrap();
        let e = AnnIndex::load(dir.path(), &info, n, dim).err().unwrap();
        assert!(e.to_string().contains("digest"), "{e}");
        bytes.truncate(mid);
        std::fs::write(&data_file, &bytes).unwrap();
        let e = AnnIndex::load(dir.path(), &info, n, dim).err().unwrap();
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}

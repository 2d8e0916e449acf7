//! A bounded reader for `hnsw_rs`'s dump files that checks every count, length and reference
//! before `hnsw_rs`'s own loader sees them. That loader trusts its input: a crafted file makes it
//! allocate what a length field says, read past a buffer, panic on an assertion or call
//! `process::exit(1)`. A graph whose size and digest were recomputed after tampering gets past
//! the digest check, so the structure itself is checked here (format of hnsw_rs 0.3, dump mode
//! "full", as `AnnIndex::save` writes it).

use std::io::{BufReader, Read, Seek};
use std::path::Path;

const MAGIC_DESCR_4: u32 = 0x002a_6779;
const MAGIC_LAYER: u32 = 0x000a_676f;
const MAGIC_POINT: u32 = 0x000a_678f;
const MAGIC_DATA: u32 = 0xa67f_0000;
/// hnsw_rs's `NB_LAYER_MAX`.
const LAYERS: u8 = 16;
/// Names in the description are at most this long (hnsw_rs refuses longer ones too).
const NAME_MAX: usize = 256;

struct In<R> {
    r: R,
    what: &'static str,
}

impl<R: Read + Seek> In<R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut b = [0u8; N];
        self.r
            .read_exact(&mut b)
            .map_err(|_| format!("{}: ends early", self.what))?;
        Ok(b)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_ne_bytes(self.bytes()?))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_ne_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_ne_bytes(self.bytes()?))
    }
    fn usize(&mut self) -> Result<usize, String> {
        usize::try_from(self.u64()?).map_err(|_| format!("{}: a count past usize", self.what))
    }
    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_ne_bytes(self.bytes()?))
    }
    fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_ne_bytes(self.bytes()?))
    }
    fn name(&mut self) -> Result<String, String> {
        let len = self.usize()?;
        if len > NAME_MAX {
            return Err(format!("{}: a name of {len} bytes", self.what));
        }
        let mut b = vec![0u8; len];
        self.r
            .read_exact(&mut b)
            .map_err(|_| format!("{}: ends early", self.what))?;
        String::from_utf8(b).map_err(|_| format!("{}: a name that is not UTF-8", self.what))
    }
    fn skip(&mut self, n: u64) -> Result<(), String> {
        let n = i64::try_from(n).map_err(|_| format!("{}: a length past the file", self.what))?;
        self.r
            .seek_relative(n)
            .map_err(|_| format!("{}: ends early", self.what))
    }
    fn expect(&mut self, magic: u32, at: &str) -> Result<(), String> {
        match self.u32()? {
            m if m == magic => Ok(()),
            m => Err(format!("{}: bad magic {m:#x} at {at}", self.what)),
        }
    }
}

fn open(path: &Path, what: &'static str) -> Result<In<BufReader<std::fs::File>>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{what}: {e}"))?;
    Ok(In {
        r: BufReader::new(f),
        what,
    })
}

/// Checks `graph` and `data` (an `hnsw_rs` full dump) against the index they belong to: `rows`
/// points of `dim` f32 each, every id and reference in range, every length what the loader will
/// trust. `Err` says what is wrong.
pub fn check(graph: &Path, data: &Path, rows: usize, dim: usize) -> Result<(), String> {
    let mut g = open(graph, "graph file")?;
    let mut d = open(data, "data file")?;
    check_data_length(data, rows, dim)?;
    let max_connections = description(&mut g, rows, dim)?;
    d.expect(MAGIC_DATA, "its start")?;
    if d.usize()? != dim {
        return Err("data file: another dimension than the graph's".into());
    }
    let sizes = points(&mut g, &mut d, rows, dim, max_connections)?;
    // The entry point.
    let origin = g.usize()?;
    let (layer, rank) = (g.u8()?, g.i32()?);
    if origin >= rows || !fits(&sizes, (layer, rank)) {
        return Err("graph file: the entry point is not in the graph".into());
    }
    Ok(())
}

/// The data file's length follows from the index: its header, then per point a magic, an id, a
/// length and the vector. Checked first, since skipping a vector by seeking succeeds past the
/// end of a truncated file.
fn check_data_length(data: &Path, rows: usize, dim: usize) -> Result<(), String> {
    let want = (dim as u64)
        .checked_mul(4)
        .and_then(|v| v.checked_add(20))
        .and_then(|p| p.checked_mul(rows as u64))
        .and_then(|p| p.checked_add(12));
    let have = std::fs::metadata(data)
        .map_err(|e| format!("data file: {e}"))?
        .len();
    if want != Some(have) {
        return Err(format!(
            "data file: {have} bytes, {rows} vectors of {dim} need {}",
            want.map_or("more than a file holds".into(), |w| w.to_string())
        ));
    }
    Ok(())
}

/// The graph's description, checked against the index; returns its connection count (M).
fn description<R: Read + Seek>(g: &mut In<R>, rows: usize, dim: usize) -> Result<usize, String> {
    g.expect(MAGIC_DESCR_4, "its start")?;
    if g.u8()? != 1 {
        return Err("graph file: not a full dump".into());
    }
    let max_connections = g.u8()? as usize;
    let scale = g.f64()?;
    if !(scale.is_finite() && scale > 0.0) || max_connections == 0 {
        return Err("graph file: unusable level scale or connection count".into());
    }
    if g.u8()? != LAYERS {
        return Err("graph file: another layer count than hnsw_rs uses".into());
    }
    let _ef = g.usize()?;
    let (points, dimension) = (g.usize()?, g.usize()?);
    if (points, dimension) != (rows, dim) {
        return Err(format!(
            "graph file: describes {points} points of {dimension}, the index has {rows} of {dim}"
        ));
    }
    let _distance = g.name()?;
    if g.name()? != "f32" {
        return Err("graph file: not a graph over f32 vectors".into());
    }
    Ok(max_connections)
}

/// Whether `(layer, rank)` names a point of a graph whose layers hold `sizes` points.
fn fits(sizes: &[usize], (l, r): (u8, i32)) -> bool {
    sizes
        .get(l as usize)
        .is_some_and(|&n| r >= 0 && (r as usize) < n)
}

/// Points by layer, each with its neighbours at every layer and its vector in the data file;
/// returns the layers' sizes.
fn points<R: Read + Seek>(
    g: &mut In<R>,
    d: &mut In<R>,
    rows: usize,
    dim: usize,
    max_connections: usize,
) -> Result<Vec<usize>, String> {
    let vector_bytes = (dim as u64) * 4;
    let layers = g.u8()?;
    if layers > LAYERS {
        return Err(format!("graph file: {layers} layers"));
    }
    let mut sizes = Vec::with_capacity(layers as usize);
    // The highest rank referenced in each layer (references may point to layers read later).
    let mut highest = [-1i64; LAYERS as usize];
    let mut total = 0usize;
    // A neighbour list is at most 2M long in hnsw_rs (layer 0), M above.
    let list_max = 2 * max_connections;
    for l in 0..layers {
        g.expect(MAGIC_LAYER, "a layer")?;
        let n = g.usize()?;
        total = total
            .checked_add(n)
            .filter(|&t| t <= rows)
            .ok_or_else(|| "graph file: more points than the index has".to_string())?;
        for r in 0..n {
            g.expect(MAGIC_POINT, "a point")?;
            let origin = g.usize()?;
            let (layer, rank) = (g.u8()?, g.i32()?);
            if origin >= rows || layer != l || rank != r as i32 {
                return Err(format!(
                    "graph file: point {r} of layer {l} is out of place"
                ));
            }
            for _ in 0..LAYERS {
                let k = g.usize()?;
                if k > list_max {
                    return Err(format!("graph file: a neighbour list of {k}"));
                }
                for _ in 0..k {
                    let id = g.usize()?;
                    let (nl, nr) = (g.u8()?, g.i32()?);
                    let dist = g.f32()?;
                    if id >= rows || nl >= layers || nr < 0 || !dist.is_finite() {
                        return Err("graph file: a neighbour outside the graph".into());
                    }
                    highest[nl as usize] = highest[nl as usize].max(nr as i64);
                }
            }
            d.expect(MAGIC_DATA, "a point's vector")?;
            if d.u64()? != origin as u64 || d.u64()? != vector_bytes {
                return Err(format!(
                    "data file: point {origin} does not match the graph"
                ));
            }
            d.skip(vector_bytes)?;
        }
        sizes.push(n);
    }
    if total != rows {
        return Err(format!("graph file: {total} points for {rows} rows"));
    }
    let referenced = highest
        .iter()
        .enumerate()
        .all(|(l, &h)| h < 0 || fits(&sizes, (l as u8, h as i32)));
    if !referenced {
        return Err("graph file: a neighbour refers to a point that is not there".into());
    }
    Ok(sizes)
}

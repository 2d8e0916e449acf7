//! Tiles over threads: rayon's pool natively (the one burn's CPU backend runs on), a plain loop in
//! the browser (no threads there), and per-thread scratch buffers reused across calls.

use std::cell::RefCell;

/// Threads a parallel loop here may use.
pub fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        rayon::current_num_threads()
    }
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
}

/// Calls `f(index, chunk)` for each `chunk_len`-long chunk of `data` (the last may be shorter), on
/// the pool's threads when `parallel`.
pub fn for_each_chunk(
    data: &mut [f32],
    chunk_len: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    let chunk_len = chunk_len.max(1);
    #[cfg(not(target_arch = "wasm32"))]
    if parallel {
        use rayon::prelude::*;
        data.par_chunks_mut(chunk_len)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
        return;
    }
    let _ = parallel;
    for (i, c) in data.chunks_mut(chunk_len).enumerate() {
        f(i, c);
    }
}

/// `(0..n).map(f)` collected in order, computed on the pool's threads when `parallel`.
pub fn map<T: Send>(n: usize, parallel: bool, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    #[cfg(not(target_arch = "wasm32"))]
    if parallel {
        use rayon::prelude::*;
        return (0..n).into_par_iter().map(f).collect();
    }
    let _ = parallel;
    (0..n).map(f).collect()
}

/// The GEMM's own threading: inside a tile none (the tiles are the parallel loop), across the
/// pool when one tile is all there is (a single large image).
pub fn gemm_threads(parallel_inside: bool) -> gemm::Parallelism {
    #[cfg(not(target_arch = "wasm32"))]
    if parallel_inside && threads() > 1 {
        return gemm::Parallelism::Rayon(threads());
    }
    let _ = parallel_inside;
    gemm::Parallelism::None
}

thread_local! {
    static SCRATCH: RefCell<[Vec<f32>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// Runs `f` with two scratch buffers of `a` and `b` floats (contents unspecified: callers write
/// before they read). The buffers stay with the thread for the next tile, so a layer allocates
/// nothing per image; a nested call on the same thread (a pool thread that steals a tile while
/// it waits) gets fresh ones.
pub fn with_scratch<R>(a: usize, b: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| {
        if let Ok(mut bufs) = cell.try_borrow_mut() {
            let [x, y] = &mut *bufs;
            if x.len() < a {
                x.resize(a, 0.0);
            }
            if y.len() < b {
                y.resize(b, 0.0);
            }
            return f(&mut x[..a], &mut y[..b]);
        }
        f(&mut vec![0.0; a], &mut vec![0.0; b])
    })
}

//! Helpers the readers share.

use std::path::{Path, PathBuf};

/// Resolves an optional well-known sub-directory (e.g. `cifar-10-batches-bin`).
pub(super) fn resolve_dir(path: &Path, sub: &str, probe: &str) -> PathBuf {
    if path.join(probe).exists() {
        path.to_path_buf()
    } else if path.join(sub).join(probe).exists() {
        path.join(sub)
    } else {
        path.to_path_buf()
    }
}

/// Reads one line per class name from an optional metadata file.
pub(super) fn read_names(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

//! The names of the files a run directory holds, in a leaf module: the run code and the rule for
//! what a command may replace (`destination`) both read them, neither through the other.

use std::path::Path;

use crate::{Error, Result};

pub const CHECKPOINT_FILE: &str = "checkpoint.leoclr";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const CONFIG_FILE: &str = "config.json";
/// Held (an advisory lock, holding the owner's pid) while a process trains in the directory.
pub const LOCK_FILE: &str = ".lock";

/// Whether `dir` holds a run (a checkpoint or a metrics log).
pub fn holds_run(dir: &Path) -> bool {
    dir.join(CHECKPOINT_FILE).exists() || dir.join(METRICS_FILE).exists()
}

/// An advisory lock on the file at `path` holding this process's pid: `Ok(Ok(file))` while this
/// process holds it (released when the file is dropped, or the process dies), `Ok(Err(pid))`
/// naming the holder when another process does.
pub fn claim(path: &Path) -> Result<std::result::Result<std::fs::File, String>> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)
                .and_then(|_| file.write_all(std::process::id().to_string().as_bytes()))
                .map_err(|e| Error::io(path, e))?;
            Ok(Ok(file))
        }
        Err(std::fs::TryLockError::WouldBlock) => Ok(Err(
            std::fs::read_to_string(path).unwrap_or_else(|_| "unknown".into())
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(path, e)),
    }
}

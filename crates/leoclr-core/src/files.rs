//! The names of the files a run directory holds, in a leaf module: the run code and the rule for
//! what a command may replace (`destination`) both read them, neither through the other.

use std::path::Path;

pub const CHECKPOINT_FILE: &str = "checkpoint.leoclr";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const CONFIG_FILE: &str = "config.json";
/// Held (an advisory lock, holding the owner's pid) while a process trains in the directory.
pub const LOCK_FILE: &str = ".lock";

/// Whether `dir` holds a run (a checkpoint or a metrics log).
pub fn holds_run(dir: &Path) -> bool {
    dir.join(CHECKPOINT_FILE).exists() || dir.join(METRICS_FILE).exists()
}

//! A run's `metrics.jsonl`: one JSON line per finished epoch.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub use crate::files::METRICS_FILE;

/// One line of `metrics.jsonl`: an epoch's summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub loss: f32,
    pub lr: f64,
    #[serde(default)]
    pub ema_momentum: f64,
    pub images_per_s: f64,
    #[serde(default)]
    pub epoch_s: f64,
    #[serde(default)]
    pub step: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knn_top1: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_std: Option<f32>,
}

/// Reads a run's `metrics.jsonl`; a missing file is an empty log, a bad line an error naming it.
pub fn read_metrics(dir: &Path) -> Result<Vec<EpochRecord>> {
    let path = dir.join(METRICS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::checkpoint(&path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

pub(super) fn append_metrics(dir: &Path, rec: &EpochRecord) -> Result<()> {
    let path = dir.join(METRICS_FILE);
    let line =
        serde_json::to_string(rec).map_err(|e| Error::Config(format!("metrics record: {e}")))?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{line}"))
        .map_err(|e| Error::io(&path, e))
}

/// The records of `history` (a checkpoint's) that the metrics log lacks: what a crash between
/// the checkpoint and the log line loses.
pub(super) fn missing_metrics(dir: &Path, history: &[EpochRecord]) -> Result<Vec<EpochRecord>> {
    let logged = read_metrics(dir)?;
    let last = logged.iter().map(|r| r.epoch).max().unwrap_or(0);
    Ok(history.iter().filter(|r| r.epoch > last).cloned().collect())
}

/// Appends the records of `history` that the metrics log lacks.
#[cfg(test)]
fn restore_metrics(dir: &Path, history: &[EpochRecord]) -> Result<()> {
    for rec in missing_metrics(dir, history)? {
        append_metrics(dir, &rec)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize) -> EpochRecord {
        EpochRecord {
            epoch,
            loss: 2.5,
            lr: 0.1,
            ema_momentum: 0.99,
            images_per_s: 10.0,
            epoch_s: 1.0,
            step: 4 * epoch,
            knn_top1: None,
            embedding_std: None,
        }
    }

    #[test]
    fn lost_metrics_lines_come_back_from_the_checkpoint_history() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = record(1);
        first.knn_top1 = Some(0.5);
        append_metrics(dir.path(), &first).unwrap();
        // The checkpoint knows epochs 1 and 2; the log lost epoch 2.
        restore_metrics(dir.path(), &[record(1), record(2)]).unwrap();
        let log = read_metrics(dir.path()).unwrap();
        assert_eq!(log, vec![first, record(2)]);
        // Nothing to restore: unchanged.
        restore_metrics(dir.path(), &[record(1), record(2)]).unwrap();
        assert_eq!(read_metrics(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn metrics_log_names_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_metrics(dir.path()).unwrap().is_empty());
        let rec = EpochRecord {
            epoch: 1,
            loss: 2.5,
            lr: 0.1,
            ema_momentum: 0.99,
            images_per_s: 10.0,
            epoch_s: 1.0,
            step: 4,
            knn_top1: Some(0.5),
            embedding_std: None,
        };
        let line = serde_json::to_string(&rec).unwrap();
        std::fs::write(dir.path().join(METRICS_FILE), format!("{line}\nnot json\n")).unwrap();
        let err = read_metrics(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("metrics.jsonl") && err.contains("line 2"),
            "{err}"
        );
        std::fs::write(dir.path().join(METRICS_FILE), format!("{line}\n")).unwrap();
        assert_eq!(read_metrics(dir.path()).unwrap(), vec![rec]);
    }
}

//! A training run: its typed settings ([`RunSpec`]), the [`Plan`] derived from them, and the run
//! directory that `leoclr train` and the app share ([`Run`]: checkpoints, metrics, resume).
//!
//! Inside, imports go one way: `spec` and `metrics` ← `meta` ← `plan` and `checkpoint` ← `dir`.

pub mod checkpoint;
mod dir;
mod meta;
mod metrics;
mod plan;
mod spec;

pub use dir::{
    CONFIG_FILE, Control, Existing, LOCK_FILE, Outcome, ResumeChanges, Run, RunEvent, RunInfo,
    RunLock, holds_run, lock_run_dir, stopped_note,
};
pub use meta::RunMeta;
pub use metrics::{EpochRecord, METRICS_FILE, read_metrics};
pub use plan::{Plan, Sets, open_sets, view_size, view_size_skipping};
pub use spec::{
    AugPreset, BUNDLED_DATA, DEBIAN_FASHION_MNIST, DataSpec, MethodRef, ModelSpec, Preset, RunSpec,
    augment,
};

//! A training run as a directory: the settings, a checkpoint after every epoch and a
//! `metrics.jsonl` log. Shared by `leoclr train` and the desktop app, so a run started in one can be
//! watched, stopped and resumed in the other. Reports through events, never prints.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use burn::tensor::Device;

use super::checkpoint;
use super::meta::RunMeta;
use super::metrics::{EpochRecord, METRICS_FILE, append_metrics, missing_metrics};
use super::plan::Plan;
use super::spec::RunSpec;
use crate::destination::OutputKind;
use crate::encoder::Encoder;
use crate::eval::{EvalOptions, Scores, embedding_std, evaluate};
use crate::session::{Session, StepEvent, fit_epoch};
use crate::{Error, Result};

pub use crate::files::LOCK_FILE;
pub use crate::files::{CONFIG_FILE, holds_run};

/// An exclusive claim on a run directory; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// Claims `dir` for this process, or says which process holds it.
pub fn lock_run_dir(dir: &Path) -> Result<RunLock> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    match crate::files::claim(&dir.join(LOCK_FILE))? {
        Ok(file) => Ok(RunLock { _file: file }),
        Err(pid) => Err(Error::Busy {
            dir: dir.to_path_buf(),
            pid,
        }),
    }
}

/// Pause and stop requests from another thread (the app's buttons, Ctrl-C).
#[derive(Debug, Default)]
pub struct Control {
    stop: AtomicBool,
    pause: AtomicBool,
}

impl Control {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
    pub fn set_paused(&self, paused: bool) {
        self.pause.store(paused, Ordering::Relaxed);
    }
    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    pub fn is_paused(&self) -> bool {
        self.pause.load(Ordering::Relaxed)
    }
    /// Blocks while paused; true when the run should stop.
    fn wait(&self) -> bool {
        while self.is_paused() && !self.is_stopped() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.is_stopped()
    }
}

/// What a run reports, one stream whoever drives it: `leoclr train`'s progress bars, each row
/// of `leoclr compare`, the app's Training panel (through a channel from its worker thread) and
/// Train here (a step a frame) all consume these.
#[derive(Clone, Debug)]
pub enum RunEvent {
    /// Training begins (or resumes): what it is and where it stands.
    Started(RunInfo),
    Step(StepEvent),
    /// Embedding bank/test for kNN: (which, done, total).
    Evaluating(&'static str, usize, usize),
    /// An epoch ended and its checkpoint and metrics line are on disk.
    Epoch(EpochRecord),
    /// Training ended: every epoch done, or stopped.
    Done(Outcome),
    /// Training failed; the message says why (and which checkpoint is kept).
    Failed(String),
}

/// A run as it starts: for a status line and the curves of what was trained before.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// Method, data, model and backend in one line.
    pub summary: String,
    pub dir: std::path::PathBuf,
    pub resumed: bool,
    /// Epochs done and to do.
    pub epoch: usize,
    pub epochs: usize,
    pub steps_per_epoch: usize,
    /// The epochs logged so far (a resumed run's).
    pub history: Vec<EpochRecord>,
}

/// How `train` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every epoch done.
    Finished,
    /// Stopped by `Control::stop` or `max_steps`; the last epoch's checkpoint is kept.
    Stopped { steps: usize },
}

/// What a stop left in `dir`, for the user: the checkpoint to resume from, or that the run
/// stopped before its first epoch ended and left none.
pub fn stopped_note(steps: usize, dir: &Path) -> String {
    if dir.join(checkpoint::FILE_NAME).is_file() {
        format!(
            "stopped after {steps} steps; the last epoch's checkpoint in {} is kept",
            dir.display()
        )
    } else {
        format!(
            "stopped after {steps} steps, before the first epoch ended: {} holds no checkpoint \
             (nothing to resume or export)",
            dir.display()
        )
    }
}

/// What a new run does with a directory that already holds a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Existing {
    /// Refuse to start (the default: nothing is lost by mistake).
    #[default]
    Refuse,
    /// Start over: a new settings file and metrics log, the checkpoint replaced after epoch 1.
    Replace,
}

/// What a resumed run may change; everything else (method, model, batch, learning rate, queue,
/// augmentation, seed) stays as recorded, since the checkpoint's state depends on it.
#[derive(Clone, Debug, Default)]
pub struct ResumeChanges {
    /// Train to this many epochs (at least the epochs done): extends a finished run.
    pub epochs: Option<usize>,
    /// The data, moved or reached from another directory (same images, so the same epochs).
    pub data: Option<std::path::PathBuf>,
    pub test_data: Option<std::path::PathBuf>,
    pub bank_data: Option<std::path::PathBuf>,
    pub workers: Option<usize>,
    pub eval_every: Option<usize>,
    pub backend: Option<crate::BackendKind>,
    /// Another device count: replicas are copies of the checkpoint's one state.
    pub devices: Option<usize>,
}

impl ResumeChanges {
    fn apply(&self, spec: &mut RunSpec, epochs_done: usize) -> Result<()> {
        if let Some(e) = self.epochs {
            if e < epochs_done {
                return Err(Error::Config(format!(
                    "--epochs {e}: the run has already trained {epochs_done} epochs"
                )));
            }
            spec.epochs = e;
        }
        let d = &mut spec.data;
        d.data = self.data.clone().unwrap_or(d.data.clone());
        d.test_data = self.test_data.clone().or(d.test_data.take());
        d.bank_data = self.bank_data.clone().or(d.bank_data.take());
        d.workers = self.workers.or(d.workers);
        // Recorded absolute like a new run's, whatever the working directory of the resume.
        d.make_absolute();
        spec.eval_every = self.eval_every.unwrap_or(spec.eval_every);
        spec.backend = self.backend.unwrap_or(spec.backend);
        spec.devices = self.devices.unwrap_or(spec.devices);
        Ok(())
    }
}

/// Removes the temporary files an interrupted `write_atomic` left in a run directory.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ours = [checkpoint::FILE_NAME, CONFIG_FILE]
            .iter()
            .any(|f| name.starts_with(&format!(".{f}.")));
        if ours && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A run ready to train: its plan (datasets, augmentation, settings), the session that steps it,
/// and its directory.
pub struct Run {
    pub plan: Plan,
    pub session: Session,
    pub device: Device,
    pub resumed: bool,
    /// For a new run: what to do with a run already in its directory.
    pub existing: Existing,
    meta: RunMeta,
    /// The last epoch's record, restored from the checkpoint on resume, when the process that
    /// wrote the checkpoint died before its evaluation: evaluated first, then logged.
    pending: Option<EpochRecord>,
}

impl Run {
    /// Prepares a new run (nothing is written until training starts; a directory that already
    /// holds a run is refused then, unless `existing` is set to replace it). `argv` is recorded
    /// in the checkpoint for provenance.
    pub fn create(mut spec: RunSpec, argv: Option<Vec<String>>) -> Result<Self> {
        // Recorded absolute, so the run resumes from any working directory.
        spec.data.make_absolute();
        let plan = Plan::new(spec)?;
        let device = plan.device();
        let session = plan.session(&device)?;
        Ok(Self::assemble(plan, session, device, argv, false))
    }

    /// Opens the run in `dir` to continue it from its last checkpoint, with the settings it was
    /// started with. `dir` may also name the checkpoint file itself.
    pub fn resume(dir: &Path) -> Result<Self> {
        Self::resume_with(dir, &ResumeChanges::default())
    }

    /// [`Run::resume`] with the changes a resumed run may take (more epochs, moved data, ...).
    pub fn resume_with(dir: &Path, changes: &ResumeChanges) -> Result<Self> {
        let file = match dir.is_file() {
            true => dir.to_path_buf(),
            false => dir.join(checkpoint::FILE_NAME),
        };
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let (_, meta) = checkpoint::load_encoder(&file, &Device::flex())?;
        let bad = |m: &str| Error::checkpoint(&file, m);
        let mut spec = meta.run.spec.ok_or_else(|| {
            bad("records no run settings (an exported model, or not written by `leoclr train`)")
        })?;
        spec.out = dir.to_path_buf();
        changes.apply(&mut spec, meta.epoch)?;
        let plan = Plan::new(spec)?;
        let device = plan.device();
        let (mut trainer, _) = checkpoint::load_trainer(&file, &device)?;
        // More epochs stretch the cosine schedules over the new total.
        trainer.extend_to(plan.config.epochs)?;
        let session = plan.session_with(trainer)?;
        let mut run = Self::assemble(plan, session, device, meta.run.argv, true);
        let mut missing = missing_metrics(dir, &meta.run.history)?;
        // The checkpoint is the last epoch's state: that epoch can still be evaluated (the
        // process that wrote it died before), so its line waits for the evaluation.
        if missing
            .last()
            .is_some_and(|r| r.epoch == meta.epoch && run.due_for_eval(r.epoch))
        {
            run.pending = missing.pop();
        }
        for rec in &missing {
            append_metrics(dir, rec)?;
        }
        run.meta.history = meta.run.history;
        Ok(run)
    }

    /// A new run of a plan already made (a row of a comparison, whose datasets are open), in
    /// `dir`.
    pub fn from_plan(mut plan: Plan, dir: &Path, argv: Option<Vec<String>>) -> Result<Self> {
        plan.spec.out = dir.to_path_buf();
        plan.spec.data.make_absolute();
        let device = plan.device();
        let session = plan.session(&device)?;
        Ok(Self::assemble(plan, session, device, argv, false))
    }

    fn assemble(
        plan: Plan,
        session: Session,
        device: Device,
        argv: Option<Vec<String>>,
        resumed: bool,
    ) -> Self {
        let meta = plan.meta(argv);
        Self {
            plan,
            session,
            device,
            resumed,
            existing: Existing::Refuse,
            meta,
            pending: None,
        }
    }

    pub fn spec(&self) -> &RunSpec {
        &self.plan.spec
    }

    pub fn trainer(&self) -> &crate::Trainer {
        &self.session.trainer
    }

    pub fn dir(&self) -> &Path {
        &self.plan.spec.out
    }

    pub fn is_finished(&self) -> bool {
        let t = &self.session.trainer;
        t.epoch() >= t.config().epochs
    }

    /// kNN (k=200, T=0.1) of an encoder on this run's bank and test sets, if it has them.
    pub fn knn(
        &self,
        encoder: &Encoder,
        progress: &mut dyn FnMut(&'static str, usize, usize),
    ) -> Result<Option<Scores>> {
        let (Some(bank), Some(test)) = (&self.plan.sets.bank, &self.plan.sets.test) else {
            return Ok(None);
        };
        evaluate(
            encoder,
            bank,
            test,
            &self.plan.aug,
            &self.device,
            EvalOptions::knn_only(),
            progress,
        )
        .map(Some)
    }

    /// The run's inputs: `--out` may not be one of them, inside one or around one.
    fn inputs(&self) -> Vec<crate::destination::Input<'_>> {
        let d = &self.plan.spec.data;
        std::iter::once(d.data.as_path())
            .chain(d.test_data.as_deref())
            .chain(d.bank_data.as_deref())
            .map(crate::destination::Input::data)
            .collect()
    }

    fn start_dir(&self) -> Result<()> {
        let dir = self.dir();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        // A writer killed mid-save leaves its temporary file; this process holds the lock, so
        // any such file is stale.
        remove_stale_temps(dir);
        if !self.resumed && self.session.trainer.step_count() == 0 {
            if self.existing == Existing::Refuse && holds_run(dir) {
                return Err(Error::RunExists {
                    dir: dir.to_path_buf(),
                });
            }
            // A directory with a run's settings but neither checkpoint nor log (a run stopped
            // before its first epoch ended) holds nothing to lose.
            let replace = self.existing == Existing::Replace || !holds_run(dir);
            crate::destination::check(dir, OutputKind::Run, replace, &self.inputs())?;
            // Replacing a run replaces all of it now: the old checkpoint left beside the new
            // settings would be resumed as if it were the new run's.
            if replace {
                for f in [checkpoint::FILE_NAME, METRICS_FILE] {
                    let p = dir.join(f);
                    if p.exists() {
                        std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                    }
                }
            }
            let cfg = serde_json::json!({
                "spec": self.plan.spec,
                "train": self.plan.config,
                "augment": *self.plan.aug,
            });
            let cfg = serde_json::to_vec_pretty(&cfg)
                .map_err(|e| Error::Config(format!("run settings: {e}")))?;
            checkpoint::write_atomic(&dir.join(CONFIG_FILE), &cfg)?;
            // A new run starts a new metrics log.
            let _ = std::fs::remove_file(dir.join(METRICS_FILE));
        }
        Ok(())
    }

    /// An error during an epoch, with the checkpoint that survives it named where there is one.
    fn interrupted(&self, cause: Error) -> Error {
        let checkpoint = self.dir().join(checkpoint::FILE_NAME);
        if checkpoint.exists() {
            Error::Interrupted {
                cause: Box::new(cause),
                checkpoint,
            }
        } else {
            cause
        }
    }

    /// Whether the epoch that ends at `epoch` is evaluated: every `eval_every` epochs and the last.
    fn due_for_eval(&self, epoch: usize) -> bool {
        let every = self.plan.spec.eval_every;
        epoch >= self.session.trainer.config().epochs || (every > 0 && epoch.is_multiple_of(every))
    }

    /// `rec` (the record of the epoch just checkpointed) with its kNN and embedding spread when
    /// the epoch is due for evaluation; the history the next checkpoint records gets them too.
    fn evaluated(
        &mut self,
        mut rec: EpochRecord,
        on_event: &mut dyn FnMut(RunEvent),
    ) -> Result<EpochRecord> {
        if !self.due_for_eval(rec.epoch) {
            return Ok(rec);
        }
        let online = self.session.trainer.online().clone();
        let scores = self
            .knn(&online, &mut |w, d, n| {
                on_event(RunEvent::Evaluating(w, d, n))
            })
            .map_err(|e| self.interrupted(e))?;
        if let Some(s) = scores {
            rec.knn_top1 = Some(s.knn_top1);
            rec.embedding_std = Some(embedding_std(&s.test_features));
        }
        if let Some(last) = self
            .meta
            .history
            .last_mut()
            .filter(|l| l.epoch == rec.epoch)
        {
            *last = rec.clone();
        }
        Ok(rec)
    }

    /// What [`RunEvent::Started`] says of this run.
    pub fn info(&self) -> RunInfo {
        let t = &self.session.trainer;
        let train = &self.plan.sets.train;
        RunInfo {
            summary: format!(
                "{} on {} ({} images, {}px), {:?}, backend {}, augment on {}{}",
                self.plan.spec.model.label(),
                train.name,
                train.len(),
                self.plan.view_size,
                t.config().model.backbone,
                self.plan.spec.backend,
                self.plan.spec.augment_on,
                match self.session.devices() {
                    1 => String::new(),
                    n => format!(", {n} devices"),
                }
            ),
            dir: self.dir().to_path_buf(),
            resumed: self.resumed,
            epoch: t.epoch(),
            epochs: t.config().epochs,
            steps_per_epoch: t.steps_per_epoch(),
            history: match self.resumed {
                true => super::read_metrics(self.dir()).unwrap_or_default(),
                false => Vec::new(),
            },
        }
    }

    /// Trains until the last epoch, a stop request, or `max_steps` steps, reporting through
    /// `on_event`: [`RunEvent::Started`] first, [`RunEvent::Done`] or [`RunEvent::Failed`] last.
    pub fn train(
        &mut self,
        control: &Control,
        max_steps: Option<usize>,
        on_event: &mut dyn FnMut(RunEvent),
    ) -> Result<Outcome> {
        let res = self.train_inner(control, max_steps, on_event);
        on_event(match &res {
            Ok(o) => RunEvent::Done(*o),
            Err(e) => RunEvent::Failed(e.to_string()),
        });
        res
    }

    /// Trains until the last epoch, a stop request, or `max_steps` steps. After each epoch: the
    /// checkpoint, kNN when due, the metrics line, then an `Epoch` event. A stop mid-epoch keeps
    /// the last checkpoint (resume repeats that epoch exactly: data randomness is seeded per epoch).
    fn train_inner(
        &mut self,
        control: &Control,
        max_steps: Option<usize>,
        on_event: &mut dyn FnMut(RunEvent),
    ) -> Result<Outcome> {
        let _lock = lock_run_dir(self.dir())?;
        self.start_dir()?;
        on_event(RunEvent::Started(self.info()));
        if let Some(rec) = self.pending.take() {
            let rec = self.evaluated(rec, on_event)?;
            append_metrics(self.dir(), &rec)?;
            on_event(RunEvent::Epoch(rec));
        }
        let mut steps = 0usize;
        while !self.is_finished() {
            let budget = max_steps.map(|m| m.saturating_sub(steps));
            if budget == Some(0) || control.wait() {
                return Ok(Outcome::Stopped { steps });
            }
            let before = self.session.trainer.step_count();
            let stats = fit_epoch(&mut self.session, budget, &mut |e| {
                on_event(RunEvent::Step(e.clone()));
                !control.wait()
            })
            .map_err(|e| self.interrupted(e))?;
            steps += self.session.trainer.step_count() - before;
            if !stats.complete {
                return Ok(Outcome::Stopped { steps });
            }
            let t = &self.session.trainer;
            let rec = EpochRecord {
                epoch: t.epoch(),
                loss: stats.loss,
                lr: stats.lr,
                ema_momentum: t.ema_momentum(),
                images_per_s: stats.images_per_s(),
                epoch_s: stats.seconds,
                step: t.step_count(),
                knn_top1: None,
                embedding_std: None,
            };
            // The checkpoint first (with the record): an evaluation that fails must not cost
            // the epoch.
            self.meta.history.push(rec.clone());
            checkpoint::save(self.dir(), &self.session.trainer, &self.meta)?;
            let rec = self.evaluated(rec, on_event)?;
            append_metrics(self.dir(), &rec)?;
            on_event(RunEvent::Epoch(rec));
        }
        Ok(Outcome::Finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_directory_has_one_trainer_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_run_dir(dir.path()).unwrap();
        let e = lock_run_dir(dir.path()).unwrap_err();
        let pid = std::process::id().to_string();
        assert!(matches!(&e, Error::Busy { pid: p, .. } if *p == pid), "{e}");
        assert!(e.to_string().contains(&format!("pid {pid}")), "{e}");
        drop(held);
        lock_run_dir(dir.path()).unwrap();
    }
}

//! A training run as a directory: the settings ([`RunSpec`]), a checkpoint after every epoch and a
//! `metrics.jsonl` log. Shared by `leoclr train` and the desktop app, so a run started in one can be
//! watched, stopped and resumed in the other. Reports through events, never prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use burn::tensor::Device;
use leoclr_data::{
    AugmentConfig, Dataset, DatasetFormat, DatasetSpec, Loader, LoaderConfig, Split,
};
use serde::{Deserialize, Serialize};

use crate::augment_device::{AugmentOn, DeviceImages};
use crate::checkpoint;
use crate::config::{Backbone, Method, ModelConfig, OriginalBranch, TrainConfig};
use crate::encoder::Encoder;
use crate::eval::{EvalOptions, Scores, embedding_std, evaluate};
use crate::fit::{Feed, StepEvent, fit_epoch};
use crate::trainer::Trainer;
use crate::{BackendKind, Error, Result};

pub const METRICS_FILE: &str = "metrics.jsonl";
pub const CONFIG_FILE: &str = "config.json";

/// Which data a run uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataSpec {
    /// Dataset directory (IDX, CIFAR-10/100 binary, STL-10 binary, or an image folder).
    pub data: PathBuf,
    /// Detected from the files when `None`.
    pub format: Option<DatasetFormat>,
    pub split: Split,
    pub limit: Option<usize>,
    /// Labelled evaluation data; defaults to the test split of `data` when it has one.
    pub test_data: Option<PathBuf>,
    pub test_limit: Option<usize>,
    /// Labelled kNN memory bank; defaults to the training data when labelled.
    pub bank_data: Option<PathBuf>,
    /// View side; defaults to the dataset's image side (image folders: 96).
    pub size: Option<usize>,
    pub workers: Option<usize>,
}

impl Default for DataSpec {
    fn default() -> Self {
        Self {
            data: PathBuf::from("assets/fashion-mnist-subset"),
            format: None,
            split: Split::Train,
            limit: None,
            test_data: None,
            test_limit: None,
            bank_data: None,
            size: None,
            workers: None,
        }
    }
}

/// Every setting of a run: what `leoclr train` takes on its command line and the app in its form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSpec {
    pub data: DataSpec,
    /// leoclr, mocov2 (symmetric) or mocov2-asym.
    pub method: String,
    pub original_branch: OriginalBranch,
    pub backbone: Backbone,
    /// Default: on for views up to 64 px.
    pub small_stem: Option<bool>,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub warmup_epochs: f64,
    pub weight_decay: f64,
    pub queue: usize,
    pub temperature: f64,
    pub momentum: f64,
    pub momentum_cosine: bool,
    pub head_dim: usize,
    /// "small" or "aug+"; default by view size.
    pub aug: Option<String>,
    pub seed: u64,
    pub backend: BackendKind,
    pub out: PathBuf,
    /// kNN every N epochs (0: only after the last).
    pub eval_every: usize,
    /// Where the training views are made: the CPU loader, or the training device.
    pub augment_on: AugmentOn,
}

impl Default for RunSpec {
    fn default() -> Self {
        Self {
            data: DataSpec::default(),
            method: "leoclr".into(),
            original_branch: OriginalBranch::Key,
            backbone: Backbone::Tiny,
            small_stem: None,
            epochs: 10,
            batch: 256,
            lr: 0.06,
            warmup_epochs: 0.0,
            weight_decay: 5e-4,
            queue: 4096,
            temperature: 0.1,
            momentum: 0.99,
            momentum_cosine: false,
            head_dim: 128,
            aug: None,
            seed: 0,
            backend: BackendKind::Cpu,
            out: PathBuf::from("runs/leoclr"),
            eval_every: 0,
            augment_on: AugmentOn::Cpu,
        }
    }
}

/// The datasets of a run: what it trains on, the labelled kNN bank, and the labelled test set.
pub struct Sets {
    pub train: Arc<Dataset>,
    pub bank: Option<Arc<Dataset>>,
    pub test: Option<Arc<Dataset>>,
}

fn open(spec: DatasetSpec) -> Result<Arc<Dataset>> {
    Ok(Arc::new(Dataset::open(&spec)?))
}

pub fn open_sets(d: &DataSpec) -> Result<Sets> {
    let train = open(DatasetSpec {
        path: d.data.clone(),
        format: d.format,
        split: d.split,
        limit: d.limit,
    })?;
    let bank = match &d.bank_data {
        Some(p) => Some(open(DatasetSpec {
            path: p.clone(),
            format: None,
            split: Split::Train,
            limit: d.limit,
        })?),
        None if train.has_labels() => Some(train.clone()),
        None => None,
    };
    let test_spec = |path: &Path, fmt: DatasetFormat| DatasetSpec {
        path: path.to_path_buf(),
        format: Some(fmt),
        split: if fmt == DatasetFormat::Folder {
            Split::Train
        } else {
            Split::Test
        },
        limit: d.test_limit,
    };
    let test = match &d.test_data {
        Some(p) => Some(open(test_spec(p, leoclr_data::source::detect_format(p)?))?),
        None => {
            let fmt = match d.format {
                Some(f) => f,
                None => leoclr_data::source::detect_format(&d.data)?,
            };
            // An image folder has no test split of its own.
            if fmt == DatasetFormat::Folder {
                None
            } else {
                Some(open(test_spec(&d.data, fmt))?)
            }
        }
    };
    let test = test.filter(|t| t.has_labels());
    Ok(Sets { train, bank, test })
}

/// Default view side: the dataset's own image side (96 for image folders), at most 224.
pub fn view_size(ds: &Dataset, size: Option<usize>) -> Result<usize> {
    if let Some(s) = size {
        return Ok(s);
    }
    let img = ds.get(0)?;
    Ok(if ds.name.is_empty() || img.width != img.height {
        96
    } else {
        img.width.min(224)
    })
}

/// The augmentation preset by name; by default "small" (aug+ without blur) up to 64 px.
pub fn augment(channels: usize, size: usize, preset: Option<&str>) -> Result<AugmentConfig> {
    let aug = match preset {
        Some("aug+") => AugmentConfig::aug_plus(size, channels),
        Some("small") => AugmentConfig::small(size, channels),
        None if size <= 64 => AugmentConfig::small(size, channels),
        None => AugmentConfig::aug_plus(size, channels),
        Some(other) => {
            return Err(Error::Config(format!(
                "unknown augmentation preset '{other}' (small, aug+)"
            )));
        }
    };
    aug.validate(channels).map_err(Error::Config)?;
    Ok(aug)
}

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
        Err(e) => return Err(leoclr_data::DataError::io(&path, e).into()),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::Checkpoint {
                path: path.clone(),
                message: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
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

/// What a run reports while it trains.
#[derive(Clone, Debug)]
pub enum RunEvent {
    Step(StepEvent),
    /// Embedding bank/test for kNN: (which, done, total).
    Evaluating(&'static str, usize, usize),
    /// An epoch ended and its checkpoint and metrics line are on disk.
    Epoch(EpochRecord),
}

/// How `train` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every epoch done.
    Finished,
    /// Stopped by `Control::stop` or `max_steps`; the last epoch's checkpoint is kept.
    Stopped { steps: usize },
}

/// A run ready to train: its datasets, augmentation, trainer and directory.
pub struct Run {
    pub spec: RunSpec,
    pub sets: Sets,
    pub aug: Arc<AugmentConfig>,
    pub view_size: usize,
    pub trainer: Trainer,
    pub loader: LoaderConfig,
    pub device: Device,
    /// How views reach the trainer (`augment_on`).
    pub feed: Feed,
    pub resumed: bool,
    extra: serde_json::Value,
}

impl Run {
    /// Prepares a new run (nothing is written until the first epoch ends). `argv` is recorded in
    /// the checkpoint for provenance.
    pub fn create(spec: RunSpec, argv: Option<Vec<String>>) -> Result<Self> {
        Self::prepare(spec, argv, None)
    }

    /// Opens the run in `dir` to continue it from its last checkpoint, with the settings it was
    /// started with.
    pub fn resume(dir: &Path) -> Result<Self> {
        let (_, meta) = checkpoint::load_encoder(dir, &Device::flex())?;
        let bad = |m: &str| Error::Checkpoint {
            path: dir.join(checkpoint::FILE_NAME),
            message: m.into(),
        };
        let mut spec: RunSpec = serde_json::from_value(
            meta.extra
                .get("spec")
                .cloned()
                .ok_or_else(|| bad("does not record its run settings"))?,
        )
        .map_err(|e| bad(&format!("run settings: {e}")))?;
        spec.out = dir.to_path_buf();
        let argv = serde_json::from_value(meta.extra["argv"].clone()).ok();
        Self::prepare(spec, argv, Some(dir))
    }

    fn prepare(spec: RunSpec, argv: Option<Vec<String>>, resume: Option<&Path>) -> Result<Self> {
        spec.backend.available().map_err(Error::Config)?;
        let sets = open_sets(&spec.data)?;
        let train = sets.train.clone();
        let size = view_size(&train, spec.data.size)?;
        let aug = augment(train.channels, size, spec.aug.as_deref())?;
        let method = Method::parse(&spec.method, spec.original_branch).map_err(Error::Config)?;
        let mut model = ModelConfig::new(
            spec.backbone,
            train.channels,
            spec.small_stem.unwrap_or(size <= 64),
        );
        model.head_out = spec.head_dim;
        let config = TrainConfig {
            model,
            method,
            epochs: spec.epochs,
            batch_size: spec.batch,
            lr: spec.lr,
            warmup_epochs: spec.warmup_epochs,
            weight_decay: spec.weight_decay,
            sgd_momentum: 0.9,
            temperature: spec.temperature,
            queue_size: spec.queue,
            ema_momentum: spec.momentum,
            ema_cosine: spec.momentum_cosine,
            seed: spec.seed,
        };
        config.validate()?;
        let mut loader = LoaderConfig::train(spec.batch, spec.seed);
        if let Some(w) = spec.data.workers {
            loader.workers = w.max(1);
        }
        let steps_per_epoch = Loader::num_batches(train.len(), &loader);
        if steps_per_epoch == 0 {
            return Err(Error::Config(format!(
                "{}: {} images are fewer than one batch of {}",
                spec.data.data.display(),
                train.len(),
                spec.batch
            )));
        }
        let device = spec.backend.device();
        let trainer = match resume {
            Some(dir) => checkpoint::load_trainer(dir, &device)?.0,
            None => Trainer::new(config, &device, steps_per_epoch)?,
        };
        if trainer.steps_per_epoch != steps_per_epoch {
            return Err(Error::Config(format!(
                "the dataset changed since the checkpoint ({} steps an epoch, now {steps_per_epoch})",
                trainer.steps_per_epoch
            )));
        }
        let feed = match spec.augment_on {
            AugmentOn::Cpu => Feed::Host,
            AugmentOn::Device => {
                Feed::Device(Arc::new(DeviceImages::upload(&train, &trainer.device)?))
            }
        };
        let extra = serde_json::json!({
            "spec": spec,
            "argv": argv,
            "augment": aug,
            "view_size": size,
            "backend": spec.backend,
            "dataset": train.name,
        });
        Ok(Self {
            spec,
            sets,
            aug: Arc::new(aug),
            view_size: size,
            trainer,
            loader,
            device,
            feed,
            resumed: resume.is_some(),
            extra,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.spec.out
    }

    pub fn is_finished(&self) -> bool {
        self.trainer.epoch >= self.trainer.config.epochs
    }

    /// kNN (k=200, T=0.1) of an encoder on this run's bank and test sets, if it has them.
    pub fn knn(
        &self,
        encoder: &Encoder,
        progress: &mut dyn FnMut(&'static str, usize, usize),
    ) -> Result<Option<Scores>> {
        let (Some(bank), Some(test)) = (&self.sets.bank, &self.sets.test) else {
            return Ok(None);
        };
        evaluate(
            encoder,
            bank,
            test,
            &self.aug,
            &self.device,
            EvalOptions::knn_only(),
            progress,
        )
        .map(Some)
    }

    fn start_dir(&self) -> Result<()> {
        let dir = self.dir();
        let io = |e| Error::Data(leoclr_data::DataError::io(dir, e));
        std::fs::create_dir_all(dir).map_err(io)?;
        if !self.resumed && self.trainer.step == 0 {
            let cfg = serde_json::json!({
                "spec": self.spec,
                "train": self.trainer.config,
                "augment": *self.aug,
            });
            let cfg = serde_json::to_vec_pretty(&cfg).expect("config serialises");
            checkpoint::write_atomic(&dir.join(CONFIG_FILE), &cfg)?;
            // A new run starts a new metrics log.
            let _ = std::fs::remove_file(dir.join(METRICS_FILE));
        }
        Ok(())
    }

    /// Trains until the last epoch, a stop request, or `max_steps` steps. After each epoch: kNN
    /// when due, checkpoint, metrics line, then an `Epoch` event. A stop mid-epoch keeps the last
    /// checkpoint (resume repeats that epoch exactly: data randomness is seeded per epoch).
    pub fn train(
        &mut self,
        control: &Control,
        max_steps: Option<usize>,
        on_event: &mut dyn FnMut(RunEvent),
    ) -> Result<Outcome> {
        self.start_dir()?;
        let mut steps = 0usize;
        while !self.is_finished() {
            let budget = max_steps.map(|m| m.saturating_sub(steps));
            if budget == Some(0) || control.wait() {
                return Ok(Outcome::Stopped { steps });
            }
            let before = self.trainer.step;
            let train = self.sets.train.clone();
            let stats = fit_epoch(
                &mut self.trainer,
                &train,
                &self.aug,
                &self.loader,
                &self.feed,
                budget,
                10,
                &mut |e| {
                    on_event(RunEvent::Step(e.clone()));
                    !control.wait()
                },
            )
            .map_err(|e| {
                Error::Config(format!(
                    "{e}; the last checkpoint in {} is kept",
                    self.spec.out.display()
                ))
            })?;
            steps += self.trainer.step - before;
            if !stats.complete {
                return Ok(Outcome::Stopped { steps });
            }
            let t = &self.trainer;
            let mut rec = EpochRecord {
                epoch: t.epoch,
                loss: stats.loss,
                lr: stats.lr,
                ema_momentum: t.ema_momentum(),
                images_per_s: stats.images_per_s(),
                epoch_s: stats.seconds,
                step: t.step,
                knn_top1: None,
                embedding_std: None,
            };
            let every = self.spec.eval_every;
            if self.is_finished() || (every > 0 && t.epoch.is_multiple_of(every)) {
                let online = self.trainer.online.clone();
                if let Some(s) = self.knn(&online, &mut |w, d, n| {
                    on_event(RunEvent::Evaluating(w, d, n))
                })? {
                    rec.knn_top1 = Some(s.knn_top1);
                    rec.embedding_std = Some(embedding_std(&s.test_features));
                }
            }
            checkpoint::save(self.dir(), &self.trainer, self.extra.clone())?;
            let path = self.dir().join(METRICS_FILE);
            let line = serde_json::to_string(&rec).expect("record serialises");
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| writeln!(f, "{line}"))
                .map_err(|e| leoclr_data::DataError::io(&path, e))?;
            on_event(RunEvent::Epoch(rec));
        }
        Ok(Outcome::Finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_and_fills_defaults() {
        let spec = RunSpec {
            epochs: 3,
            data: DataSpec {
                split: Split::TrainUnlabeled,
                format: Some(DatasetFormat::Stl10),
                ..DataSpec::default()
            },
            ..RunSpec::default()
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["data"]["split"], "train+unlabeled");
        assert_eq!(serde_json::from_value::<RunSpec>(json).unwrap(), spec);
        let partial: RunSpec = serde_json::from_str(r#"{"epochs": 2}"#).unwrap();
        assert_eq!(partial.epochs, 2);
        assert_eq!(partial.lr, RunSpec::default().lr);
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

//! A run assembled from its [`RunSpec`]: datasets, view size, augmentation, model, training and
//! loader settings. The only place these are derived, for `train`, `compare` (one plan per
//! method), `bench` and the browser's Train here.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::Device;
use leoclr_data::{
    AugmentConfig, Dataset, DatasetFormat, DatasetSpec, Loader, LoaderConfig, Split,
};

use super::meta::RunMeta;
use super::spec::{RunSpec, augment};
use crate::augment_device::{AugmentOn, DeviceImages};
use crate::config::{Method, ModelConfig, TrainConfig};
use crate::parallel::{GradReduce, Replicas};
use crate::session::{Feed, Session};
use crate::trainer::Trainer;
use crate::{Error, Result};

/// Most loader threads a run may ask for.
pub const MAX_WORKERS: usize = 256;

/// The datasets of a run: what it trains on, the labelled kNN bank, and the labelled test set.
#[derive(Clone)]
pub struct Sets {
    pub train: Arc<Dataset>,
    pub bank: Option<Arc<Dataset>>,
    pub test: Option<Arc<Dataset>>,
}

impl Sets {
    /// Training data only (no evaluation): the browser's gallery, the benchmark's batches.
    pub fn train_only(train: Arc<Dataset>) -> Self {
        Self {
            train,
            bank: None,
            test: None,
        }
    }
}

fn open(spec: DatasetSpec) -> Result<Arc<Dataset>> {
    Ok(Arc::new(Dataset::open(&spec)?))
}

/// Opens the training data and, where there are labels, the kNN bank and test set.
pub fn open_sets(d: &super::DataSpec) -> Result<Sets> {
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
        Some(p) => Some(open(test_spec(p, leoclr_data::detect_format(p)?))?),
        None => {
            let fmt = match d.format {
                Some(f) => f,
                None => leoclr_data::detect_format(&d.data)?,
            };
            // An image folder has no test split of its own; a dataset may lack one (only kNN
            // needs it, and training goes on without it).
            if fmt == DatasetFormat::Folder {
                None
            } else {
                match open(test_spec(&d.data, fmt)) {
                    Ok(t) => Some(t),
                    Err(Error::Data(e)) if e.is_missing() => None,
                    Err(e) => return Err(e),
                }
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
    Ok(view_of(ds, &img))
}

fn view_of(ds: &Dataset, img: &leoclr_data::ImageU8) -> usize {
    if ds.name.is_empty() || img.width != img.height {
        96
    } else {
        img.width.min(224)
    }
}

/// [`view_size`] from the first image that decodes (for a command told to skip bad files); an
/// error naming the data (`root`) when none does.
pub fn view_size_skipping(ds: &Dataset, size: Option<usize>, root: &Path) -> Result<usize> {
    if let Some(s) = size {
        return Ok(s);
    }
    let mut first_error = None;
    for i in 0..ds.len() {
        match ds.get(i) {
            Ok(img) => return Ok(view_of(ds, &img)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let message = match first_error {
        Some(e) => format!("no readable images (the first error: {e})"),
        None => "no images".into(),
    };
    Err(Error::Data(leoclr_data::DataError::Missing {
        path: root.to_path_buf(),
        message,
    }))
}

/// Settings of a data-parallel run that cannot work, refused before anything starts.
fn check_devices(spec: &RunSpec) -> Result<()> {
    let n = spec.devices;
    let why = if n == 0 || n > 64 {
        format!("--devices {n}: between 1 and 64")
    } else if n == 1 {
        return Ok(());
    } else if spec.batch < 2 * n {
        format!(
            "--devices {n} needs a batch of at least {} (two images a device for BatchNorm), not {}",
            2 * n,
            spec.batch
        )
    } else if spec.augment_on == AugmentOn::Device {
        format!("--devices {n} makes its views on the CPU: use --augment-on cpu")
    } else if spec.bn_splits != 1 && spec.bn_splits != n {
        format!(
            "--devices {n} shuffles BatchNorm across the devices: --bn-splits must be 1 or {n}, \
             not {}",
            spec.bn_splits
        )
    } else {
        return Ok(());
    };
    Err(Error::Config(why))
}

/// Everything a run needs before its first step, derived from a [`RunSpec`].
#[derive(Clone)]
pub struct Plan {
    pub spec: RunSpec,
    pub sets: Sets,
    pub view_size: usize,
    pub aug: Arc<AugmentConfig>,
    pub config: TrainConfig,
    pub loader: LoaderConfig,
    pub steps_per_epoch: usize,
}

impl Plan {
    /// Opens the spec's datasets and derives the rest.
    pub fn new(spec: RunSpec) -> Result<Self> {
        spec.check_paths()?;
        spec.backend.available()?;
        let sets = open_sets(&spec.data)?;
        Self::with_sets(spec, sets)
    }

    /// A plan over datasets already open (in memory, or shared between the plans of a comparison).
    pub fn with_sets(spec: RunSpec, sets: Sets) -> Result<Self> {
        spec.check_paths()?;
        let train = &sets.train;
        let size = view_size(train, spec.data.size)?;
        let mut aug = augment(train.channels, size, spec.aug)?;
        aug.original_aug = spec.model.original_aug();
        let mut model = ModelConfig::new(
            spec.model.backbone,
            train.channels,
            spec.model.small_stem.unwrap_or(size <= 64),
        );
        model.head_out = spec.head_dim;
        let config = spec.train_config(model);
        config.validate()?;
        check_devices(&spec)?;
        let mut loader = LoaderConfig::train(spec.batch, spec.seed);
        if let Some(w) = spec.data.workers {
            // A thread each: more than this is a typo (100,000 used to start that many).
            if w > MAX_WORKERS {
                return Err(Error::Config(format!(
                    "--workers {w}: between 1 and {MAX_WORKERS} loader threads"
                )));
            }
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
        Ok(Self {
            spec,
            view_size: size,
            aug: Arc::new(aug),
            config,
            loader,
            steps_per_epoch,
            sets,
        })
    }

    /// The same plan with another objective (a row of a comparison).
    pub fn with_method(&self, method: Method) -> Self {
        let mut plan = self.clone();
        plan.spec.model.set_method(method);
        plan.config.method = method;
        plan
    }

    /// The plan of another spec over the same open datasets (a row or seed of a comparison).
    pub fn with_spec(&self, spec: RunSpec) -> Result<Self> {
        Self::with_sets(spec, self.sets.clone())
    }

    /// The plain (inference) device of the spec's backend (the first of a data-parallel run).
    pub fn device(&self) -> Device {
        self.devices().swap_remove(0)
    }

    /// Every device the run trains on.
    pub fn devices(&self) -> Vec<Device> {
        self.spec.backend.devices(self.spec.devices)
    }

    /// A fresh trainer (seeded weights, random queue) on `device`, ready to step.
    pub fn session(&self, device: &Device) -> Result<Session> {
        let trainer = Trainer::new(self.config.clone(), device, self.steps_per_epoch)?;
        self.session_with(trainer)
    }

    /// A session around an existing trainer (a resumed one): checks that it fits the data.
    pub fn session_with(&self, trainer: Trainer) -> Result<Session> {
        if trainer.steps_per_epoch() != self.steps_per_epoch {
            return Err(Error::Config(format!(
                "the dataset changed since the checkpoint ({} steps an epoch, now {})",
                trainer.steps_per_epoch(),
                self.steps_per_epoch
            )));
        }
        let feed = match self.spec.augment_on {
            AugmentOn::Cpu => Feed::Host,
            AugmentOn::Device => Feed::Device(Arc::new(DeviceImages::upload(
                &self.sets.train,
                trainer.device(),
            )?)),
        };
        let replicas = match self.spec.devices {
            0 | 1 => None,
            _ => {
                let others = self.devices()[1..]
                    .iter()
                    .map(|d| super::checkpoint::replicate(&trainer, d))
                    .collect::<Result<Vec<_>>>()?;
                let reduce = GradReduce::for_backend(self.spec.backend);
                Some(Replicas::new(&trainer, others, reduce)?)
            }
        };
        let session = Session::new(
            trainer,
            self.sets.train.clone(),
            self.aug.clone(),
            self.loader.clone(),
            feed,
        );
        match replicas {
            Some(r) => session.with_replicas(r),
            None => Ok(session),
        }
    }

    /// What a checkpoint of this plan records besides the tensors.
    pub fn meta(&self, argv: Option<Vec<String>>) -> RunMeta {
        RunMeta {
            spec: Some(self.spec.clone()),
            argv,
            augment: Some((*self.aug).clone()),
            view_size: Some(self.view_size),
            backend: Some(self.spec.backend),
            dataset: Some(self.sets.train.name.clone()),
            ..RunMeta::default()
        }
    }
}

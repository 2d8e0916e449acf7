//! Every setting of a run, typed, with its default in one place: what `leoclr train` takes on its
//! command line (clap flattens these structs with the `clap` feature), what the app's form edits,
//! and what a checkpoint records so that a resumed run keeps its settings.

use std::path::PathBuf;

use leoclr_data::{AugmentConfig, DatasetFormat, OriginalAug, Split};
use serde::{Deserialize, Serialize};

use crate::augment_device::AugmentOn;
use crate::config::{Backbone, Method, OriginalBranch};
use crate::{BackendKind, Error, Result};

/// The bundled 10,000-image Fashion-MNIST subset (relative to the repository root).
pub const BUNDLED_DATA: &str = "assets/fashion-mnist-subset";
/// Where Debian's `dataset-fashion-mnist` puts the full dataset.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Which data a run uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(default)]
pub struct DataSpec {
    /// Dataset directory (IDX, CIFAR-10/100 binary, STL-10 binary, or an image folder).
    #[cfg_attr(feature = "clap", arg(long = "data", default_value_os_t = DataSpec::default().data))]
    pub data: PathBuf,
    /// Dataset format; detected from the files when omitted.
    #[cfg_attr(feature = "clap", arg(long))]
    pub format: Option<DatasetFormat>,
    /// Split to train on (train, test, unlabeled, train+unlabeled).
    #[cfg_attr(feature = "clap", arg(long, default_value = "train"))]
    pub split: Split,
    /// Use only the first N training images.
    #[cfg_attr(feature = "clap", arg(long))]
    pub limit: Option<usize>,
    /// Labelled evaluation data; defaults to the test split of --data when it has one.
    #[cfg_attr(feature = "clap", arg(long))]
    pub test_data: Option<PathBuf>,
    /// Use only the first N test images.
    #[cfg_attr(feature = "clap", arg(long))]
    pub test_limit: Option<usize>,
    /// Labelled kNN memory bank / probe training data; defaults to the training data when labelled.
    #[cfg_attr(feature = "clap", arg(long))]
    pub bank_data: Option<PathBuf>,
    /// View side in pixels; defaults to the dataset's image side (folders: 96).
    #[cfg_attr(feature = "clap", arg(long))]
    pub size: Option<usize>,
    /// Loader threads (decoding and augmentation).
    #[cfg_attr(feature = "clap", arg(long))]
    pub workers: Option<usize>,
}

impl DataSpec {
    /// Makes the data paths absolute (against the working directory), leaving them as they are
    /// where that fails.
    pub fn make_absolute(&mut self) {
        let abs = |p: &mut PathBuf| {
            if let Ok(a) = std::path::absolute(&*p) {
                *p = a;
            }
        };
        abs(&mut self.data);
        self.test_data.iter_mut().for_each(abs);
        self.bank_data.iter_mut().for_each(abs);
    }
}

impl Default for DataSpec {
    fn default() -> Self {
        Self {
            data: PathBuf::from(BUNDLED_DATA),
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

/// The training objective by name, as the command line and run files spell it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MethodName {
    /// LeOCLR: each crop attracted to the original (`--original-branch` picks the encoder).
    #[default]
    #[serde(rename = "leoclr")]
    Leoclr,
    /// MoCo-v2, symmetric loss.
    #[serde(rename = "mocov2", alias = "mocov2-sym", alias = "mocov2_sym")]
    Mocov2,
    /// MoCo-v2, asymmetric loss (half the encoder passes).
    #[serde(rename = "mocov2-asym", alias = "mocov2_asym")]
    Mocov2Asym,
    /// LeOCLR as the paper's Algorithm 1 has it: the original through the query encoder, the
    /// crops through the momentum encoder, every view augmented (original branch `query`,
    /// original augmentation `aug`; either stays overridable).
    #[serde(rename = "leoclr-paper", alias = "leoclr_paper")]
    LeoclrPaper,
}

impl MethodName {
    pub fn method(self, original_branch: OriginalBranch) -> Method {
        match self {
            Self::Leoclr | Self::LeoclrPaper => Method::Leoclr { original_branch },
            Self::Mocov2 => Method::Mocov2 { symmetric: true },
            Self::Mocov2Asym => Method::Mocov2 { symmetric: false },
        }
    }
}

impl std::str::FromStr for MethodName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "leoclr" => Ok(Self::Leoclr),
            "mocov2" | "mocov2-sym" | "mocov2_sym" => Ok(Self::Mocov2),
            "mocov2-asym" | "mocov2_asym" => Ok(Self::Mocov2Asym),
            "leoclr-paper" | "leoclr_paper" => Ok(Self::LeoclrPaper),
            _ => Err(Error::Config(format!(
                "unknown method '{s}' (leoclr, leoclr-paper, mocov2, mocov2-asym)"
            ))),
        }
    }
}

impl std::fmt::Display for MethodName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Leoclr => "leoclr",
            Self::Mocov2 => "mocov2",
            Self::Mocov2Asym => "mocov2-asym",
            Self::LeoclrPaper => "leoclr-paper",
        })
    }
}

/// A named augmentation recipe; by default chosen by the view size (see [`super::augment`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AugPreset {
    /// MoCo-v2 "aug+" without the Gaussian blur: for images up to 64 px.
    #[serde(rename = "small")]
    Small,
    /// MoCo-v2 "aug+": crop, colour jitter, grayscale, blur, flip.
    #[serde(rename = "aug+")]
    AugPlus,
}

impl std::str::FromStr for AugPreset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "small" => Ok(Self::Small),
            "aug+" | "aug-plus" => Ok(Self::AugPlus),
            other => Err(Error::Config(format!(
                "unknown augmentation preset '{other}' (small, aug+)"
            ))),
        }
    }
}

impl std::fmt::Display for AugPreset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Small => "small",
            Self::AugPlus => "aug+",
        })
    }
}

/// The augmentation preset; by default "small" (aug+ without blur) up to 64 px.
pub fn augment(channels: usize, size: usize, preset: Option<AugPreset>) -> Result<AugmentConfig> {
    let aug = match preset {
        Some(AugPreset::AugPlus) => AugmentConfig::aug_plus(size, channels),
        Some(AugPreset::Small) => AugmentConfig::small(size, channels),
        None if size <= 64 => AugmentConfig::small(size, channels),
        None => AugmentConfig::aug_plus(size, channels),
    };
    aug.validate(channels)?;
    Ok(aug)
}

/// Method and network: shared by `train` and `bench`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(default)]
pub struct ModelSpec {
    /// leoclr, leoclr-paper (the paper's Algorithm 1: original branch query, original
    /// augmentation aug), mocov2 (symmetric) or mocov2-asym.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = ModelSpec::default().method))]
    pub method: MethodName,
    /// LeOCLR: which encoder sees the uncropped original, key or query; default: the method's
    /// (key; query for leoclr-paper).
    #[cfg_attr(feature = "clap", arg(long))]
    pub original_branch: Option<OriginalBranch>,
    /// LeOCLR: the original view's augmentation, flip (resize + flip) or aug (the crops' colour
    /// pipeline too); default: the method's (flip; aug for leoclr-paper).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub original_aug: Option<OriginalAug>,
    /// tiny, resnet18 or resnet50.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = ModelSpec::default().backbone))]
    pub backbone: Backbone,
    /// Small-image stem (3x3 stride 1, no max-pool); default: on for views up to 64 px.
    #[cfg_attr(feature = "clap", arg(long))]
    pub small_stem: Option<bool>,
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            method: MethodName::Leoclr,
            original_branch: None,
            original_aug: None,
            backbone: Backbone::Tiny,
            small_stem: None,
        }
    }
}

impl ModelSpec {
    pub fn method(&self) -> Method {
        self.method.method(self.original_branch())
    }

    /// The original branch given, else the method's.
    pub fn original_branch(&self) -> OriginalBranch {
        self.original_branch.unwrap_or(match self.method {
            MethodName::LeoclrPaper => OriginalBranch::Query,
            _ => OriginalBranch::Key,
        })
    }

    /// The original view's augmentation given, else the method's. MoCo-v2 never encodes the
    /// original, so the setting does not change it.
    pub fn original_aug(&self) -> OriginalAug {
        self.original_aug.unwrap_or(match self.method {
            MethodName::LeoclrPaper => OriginalAug::Aug,
            _ => OriginalAug::Flip,
        })
    }

    /// The settings that select `method` (the inverse of [`ModelSpec::method`]); the original
    /// view's augmentation stays as set.
    pub fn set_method(&mut self, method: Method) {
        (self.method, self.original_branch) = match method {
            Method::Leoclr { original_branch } => (MethodName::Leoclr, Some(original_branch)),
            Method::Mocov2 { symmetric: true } => (MethodName::Mocov2, None),
            Method::Mocov2 { symmetric: false } => (MethodName::Mocov2Asym, None),
        };
    }

    /// A short stable name for result tables: `leoclr_key`, `leoclr_query`, `mocov2_sym`, ...,
    /// with `_aug` where a LeOCLR original is augmented (`leoclr_paper` for query + aug).
    pub fn label(&self) -> String {
        let m = self.method();
        match (m, self.original_aug()) {
            (
                Method::Leoclr {
                    original_branch: OriginalBranch::Query,
                },
                OriginalAug::Aug,
            ) => "leoclr_paper".into(),
            (Method::Leoclr { .. }, OriginalAug::Aug) => format!("{}_aug", m.label()),
            _ => m.label().into(),
        }
    }
}

/// Every setting of a run: what `leoclr train` takes on its command line and the app in its form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(default)]
pub struct RunSpec {
    #[cfg_attr(feature = "clap", command(flatten))]
    pub data: DataSpec,
    #[cfg_attr(feature = "clap", command(flatten))]
    #[serde(flatten)]
    pub model: ModelSpec,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().epochs))]
    pub epochs: usize,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().batch))]
    pub batch: usize,
    /// Peak learning rate (SGD, cosine schedule).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().lr))]
    pub lr: f64,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().warmup_epochs))]
    pub warmup_epochs: f64,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().weight_decay))]
    pub weight_decay: f64,
    /// Negatives queue length K.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().queue))]
    pub queue: usize,
    /// InfoNCE temperature T.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().temperature))]
    pub temperature: f64,
    /// Key encoder EMA momentum m.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().momentum))]
    pub momentum: f64,
    /// Ramp m to 1 with a cosine over training.
    #[cfg_attr(feature = "clap", arg(long))]
    pub momentum_cosine: bool,
    /// Projection head output width.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().head_dim))]
    pub head_dim: usize,
    /// Augmentation preset: "small" (aug+ without blur, for <= 64 px) or "aug+"; default by view
    /// size.
    #[cfg_attr(feature = "clap", arg(long))]
    pub aug: Option<AugPreset>,
    /// Shuffle-BN on one device: the key encoder sees each batch shuffled, in N sub-batches with
    /// their own BatchNorm statistics (MoCo's single-GPU emulation); 1: off.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().bn_splits))]
    pub bn_splits: usize,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().seed))]
    pub seed: u64,
    /// Data-parallel training on this many devices of the backend (one replica and worker
    /// thread each, a shard of every batch; keys gathered, shuffle-BN across devices). On the
    /// CPU backend the replicas share the one CPU device. See docs/scaling.md.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().devices))]
    pub devices: usize,
    /// cpu (burn flex) or wgpu (Vulkan/Metal/DX12); vulkan and cuda in builds with those features.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().backend))]
    pub backend: BackendKind,
    /// Run directory: checkpoint.leoclr, metrics.jsonl, config.json.
    #[cfg_attr(feature = "clap", arg(long, default_value_os_t = RunSpec::default().out))]
    pub out: PathBuf,
    /// Evaluate kNN every N epochs (0: only after the last).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().eval_every))]
    pub eval_every: usize,
    /// Where views are made: "cpu" (loader threads, any data) or "device" (on the training
    /// backend from a resident copy of the dataset; images of one size).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RunSpec::default().augment_on))]
    pub augment_on: AugmentOn,
}

impl RunSpec {
    /// A run records its settings as JSON (run directory, checkpoint), which holds UTF-8 text
    /// only: a path that is not UTF-8 is refused up front instead of failing half-way.
    pub fn check_paths(&self) -> Result<()> {
        let d = &self.data;
        let paths = [
            Some(&d.data),
            d.test_data.as_ref(),
            d.bank_data.as_ref(),
            Some(&self.out),
        ];
        match paths.into_iter().flatten().find(|p| p.to_str().is_none()) {
            Some(p) => Err(Error::Config(format!(
                "{}: a run records its paths as text and needs them in UTF-8",
                p.display()
            ))),
            None => Ok(()),
        }
    }
}

impl Default for RunSpec {
    fn default() -> Self {
        Self {
            data: DataSpec::default(),
            model: ModelSpec::default(),
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
            bn_splits: 1,
            seed: 0,
            devices: 1,
            backend: BackendKind::Cpu,
            out: PathBuf::from("runs/leoclr"),
            eval_every: 0,
            augment_on: AugmentOn::Cpu,
        }
    }
}

/// The `leoclr compare` budgets: a whole comparison's settings by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Tiny backbone with the standard stem (8x cheaper than the small stem at 28 px on a CPU),
    /// a fixed 10,000-image subset of Fashion-MNIST train (the full dataset where Debian's package
    /// is installed, else the bundled subset), 8 epochs: about 20 minutes on 2 cores.
    Cpu,
    /// ResNet-18 small stem, full Fashion-MNIST, batch 512, 20 epochs, wgpu.
    Gpu,
}

impl Preset {
    /// The run settings of the preset (every method of a comparison starts from these).
    pub fn spec(self) -> RunSpec {
        let base = RunSpec::default();
        match self {
            Self::Cpu => RunSpec {
                data: DataSpec {
                    data: if std::path::Path::new(DEBIAN_FASHION_MNIST).exists() {
                        PathBuf::from(DEBIAN_FASHION_MNIST)
                    } else {
                        PathBuf::from(BUNDLED_DATA)
                    },
                    limit: Some(10_000),
                    ..DataSpec::default()
                },
                model: ModelSpec {
                    backbone: Backbone::Tiny,
                    small_stem: Some(false),
                    ..ModelSpec::default()
                },
                epochs: 8,
                batch: 256,
                queue: 4096,
                backend: BackendKind::Cpu,
                ..base
            },
            Self::Gpu => RunSpec {
                data: DataSpec {
                    data: PathBuf::from(DEBIAN_FASHION_MNIST),
                    ..DataSpec::default()
                },
                model: ModelSpec {
                    backbone: Backbone::ResNet18,
                    small_stem: Some(true),
                    ..ModelSpec::default()
                },
                epochs: 20,
                batch: 512,
                queue: 4096,
                backend: BackendKind::Wgpu,
                ..base
            },
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            other => Err(Error::Config(format!(
                "unknown preset '{other}' (cpu, gpu)"
            ))),
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_preset_resolves_to_algorithm_1_and_every_part_stays_overridable() {
        let paper = ModelSpec {
            method: "leoclr-paper".parse().unwrap(),
            ..ModelSpec::default()
        };
        assert_eq!(
            paper.method(),
            Method::Leoclr {
                original_branch: OriginalBranch::Query
            }
        );
        assert_eq!(paper.original_aug(), OriginalAug::Aug);
        assert_eq!(paper.label(), "leoclr_paper");
        let ours = ModelSpec::default();
        assert_eq!(
            ours.method(),
            Method::Leoclr {
                original_branch: OriginalBranch::Key
            }
        );
        assert_eq!(ours.original_aug(), OriginalAug::Flip);
        assert_eq!(ours.label(), "leoclr_key");
        // Overrides win over the preset's choices.
        let flip = ModelSpec {
            original_aug: Some(OriginalAug::Flip),
            ..paper.clone()
        };
        assert_eq!(flip.label(), "leoclr_query");
        let key = ModelSpec {
            original_branch: Some(OriginalBranch::Key),
            ..paper
        };
        assert_eq!(key.label(), "leoclr_key_aug");
        // MoCo-v2 does not encode the original: its label ignores the original's settings.
        let moco = ModelSpec {
            method: MethodName::Mocov2Asym,
            original_aug: Some(OriginalAug::Aug),
            ..ModelSpec::default()
        };
        assert_eq!(moco.label(), "mocov2_asym");
        // And the augmentation a plan derives carries the choice.
        let spec = RunSpec {
            model: ModelSpec {
                method: MethodName::LeoclrPaper,
                ..ModelSpec::default()
            },
            ..RunSpec::default()
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains(r#""method":"leoclr-paper""#), "{json}");
        assert_eq!(serde_json::from_str::<RunSpec>(&json).unwrap(), spec);
    }

    #[test]
    fn spec_round_trips_and_fills_defaults() {
        let spec = RunSpec {
            epochs: 3,
            data: DataSpec {
                split: Split::TrainUnlabeled,
                format: Some(DatasetFormat::Stl10),
                ..DataSpec::default()
            },
            aug: Some(AugPreset::AugPlus),
            ..RunSpec::default()
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["data"]["split"], "train+unlabeled");
        // The model settings stay flat in the JSON, as run files have always written them.
        assert_eq!(json["method"], "leoclr");
        // Unset: the method's own (key for leoclr).
        assert_eq!(json["original_branch"], serde_json::Value::Null);
        assert_eq!(spec.model.original_branch(), OriginalBranch::Key);
        assert_eq!(json["aug"], "aug+");
        assert_eq!(serde_json::from_value::<RunSpec>(json).unwrap(), spec);
        let partial: RunSpec = serde_json::from_str(r#"{"epochs": 2}"#).unwrap();
        assert_eq!(partial.epochs, 2);
        assert_eq!(partial.lr, RunSpec::default().lr);
    }

    #[test]
    fn method_names_of_old_run_files_still_read() {
        for (name, method) in [
            ("leoclr", MethodName::Leoclr),
            ("mocov2", MethodName::Mocov2),
            ("mocov2_sym", MethodName::Mocov2),
            ("mocov2-asym", MethodName::Mocov2Asym),
            ("mocov2_asym", MethodName::Mocov2Asym),
        ] {
            let spec: RunSpec =
                serde_json::from_str(&format!(r#"{{"method": "{name}"}}"#)).unwrap();
            assert_eq!(spec.model.method, method);
            assert_eq!(name.parse::<MethodName>().unwrap(), method);
        }
        assert!(serde_json::from_str::<RunSpec>(r#"{"method": "simclr"}"#).is_err());
        assert!(matches!(
            "simclr".parse::<MethodName>(),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn set_method_inverts_method() {
        let mut m = ModelSpec::default();
        for method in Method::ALL {
            m.set_method(method);
            assert_eq!(m.method(), method);
        }
    }
}

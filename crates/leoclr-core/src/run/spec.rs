//! Every setting of a run, typed, with its default in one place: what `leoclr train` takes on its
//! command line (clap flattens these structs with the `clap` feature), what the app's form edits,
//! and what a checkpoint records so that a resumed run keeps its settings.

use std::path::PathBuf;

use leoclr_data::{AugmentConfig, DatasetFormat, OriginalAug, Split};
use serde::{Deserialize, Serialize};

use crate::augment_device::AugmentOn;
use crate::config::{Backbone, ModelConfig, TrainConfig};
use crate::method::{Method, OriginalBranch, Recipe, default_recipe, recipe};
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

/// A method by its recipe's name, as the command line and run files spell it (any name, alias
/// or table label of [`RECIPES`](crate::method::RECIPES)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MethodRef(pub &'static Recipe);

impl MethodRef {
    pub fn recipe(self) -> &'static Recipe {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name
    }
}

impl Default for MethodRef {
    fn default() -> Self {
        Self(default_recipe())
    }
}

impl std::str::FromStr for MethodRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        recipe(s)
            .map(Self)
            .ok_or_else(|| Error::Config(format!("unknown method '{s}' ({})", Recipe::names())))
    }
}

impl std::fmt::Display for MethodRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

impl Serialize for MethodRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name)
    }
}

impl<'de> Deserialize<'de> for MethodRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Every recipe as a command-line choice (clap lists them with their summaries).
#[cfg(feature = "clap")]
static METHOD_CHOICES: std::sync::LazyLock<Vec<MethodRef>> =
    std::sync::LazyLock::new(|| crate::method::RECIPES.iter().map(MethodRef).collect());

#[cfg(feature = "clap")]
impl clap::ValueEnum for MethodRef {
    fn value_variants<'a>() -> &'a [Self] {
        &METHOD_CHOICES
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let r = self.0;
        Some(
            clap::builder::PossibleValue::new(r.name)
                .aliases(r.aliases.iter().copied().chain([r.label]))
                .help(r.summary),
        )
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
    /// The method, by recipe (each listed with what it trains).
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = ModelSpec::default().method))]
    pub method: MethodRef,
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
            method: MethodRef::default(),
            original_branch: None,
            original_aug: None,
            backbone: Backbone::Tiny,
            small_stem: None,
        }
    }
}

impl ModelSpec {
    /// The method trained: the recipe's, with `--original-branch` where given (LeOCLR).
    pub fn method(&self) -> Method {
        match self.method.0.method {
            Method::Leoclr { .. } => Method::Leoclr {
                original_branch: self.original_branch(),
            },
            m => m,
        }
    }

    /// The original branch given, else the recipe's (key where the recipe has none).
    pub fn original_branch(&self) -> OriginalBranch {
        self.original_branch.unwrap_or(match self.method.0.method {
            Method::Leoclr { original_branch } => original_branch,
            Method::Mocov2 { .. } => OriginalBranch::Key,
        })
    }

    /// The original view's augmentation given, else the recipe's. MoCo-v2 never encodes the
    /// original, so the setting does not change it.
    pub fn original_aug(&self) -> OriginalAug {
        self.original_aug.unwrap_or(self.method.0.original_aug)
    }

    /// Selects a recipe with its own settings (overrides cleared).
    pub fn set_recipe(&mut self, recipe: &'static Recipe) {
        self.method = MethodRef(recipe);
        self.original_branch = None;
        self.original_aug = None;
    }

    /// The settings that select `method` (the inverse of [`ModelSpec::method`]); the original
    /// view's augmentation stays as set.
    pub fn set_method(&mut self, method: Method) {
        let base = Recipe::of(method, OriginalAug::Flip).unwrap_or(default_recipe());
        self.method = MethodRef(base);
        self.original_branch = match method {
            Method::Leoclr { original_branch } => Some(original_branch),
            Method::Mocov2 { .. } => None,
        };
    }

    /// The recipe these settings amount to (overrides included).
    pub fn recipe(&self) -> &'static Recipe {
        Recipe::of(self.method(), self.original_aug()).unwrap_or(self.method.0)
    }

    /// A short stable name for result tables: `leoclr_key`, `leoclr_query`, `mocov2_sym`,
    /// `leoclr_paper` (query + aug), `leoclr_key_aug`: the label of [`Self::recipe`].
    pub fn label(&self) -> String {
        self.recipe().label.into()
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
    /// With --bn-splits N: the query encoder's BatchNorm in N contiguous sub-batches too, as
    /// MoCo's SplitBatchNorm and `--devices N` do (false: the keys alone, as before).
    #[cfg_attr(feature = "clap", arg(long, action = clap::ArgAction::Set, default_value_t = RunSpec::default().bn_split_queries))]
    // Run files from before the setting: false (what they trained with), not today's default.
    #[serde(default)]
    pub bn_split_queries: bool,
    /// Leave a batch's own images' queued keys (stale keys from the previous epoch) out of its
    /// negatives.
    #[cfg_attr(feature = "clap", arg(long, action = clap::ArgAction::Set, default_value_t = RunSpec::default().mask_same_image))]
    #[serde(default)]
    pub mask_same_image: bool,
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

impl RunSpec {
    /// The training settings these run settings give a model (the one derivation of
    /// [`TrainConfig`] from the defaults and flags).
    pub fn train_config(&self, model: ModelConfig) -> TrainConfig {
        TrainConfig {
            model,
            method: self.model.method(),
            epochs: self.epochs,
            batch_size: self.batch,
            lr: self.lr,
            warmup_epochs: self.warmup_epochs,
            weight_decay: self.weight_decay,
            sgd_momentum: SGD_MOMENTUM,
            temperature: self.temperature,
            queue_size: self.queue,
            ema_momentum: self.momentum,
            ema_cosine: self.momentum_cosine,
            seed: self.seed,
            bn_splits: self.bn_splits,
            bn_split_queries: self.bn_split_queries,
            mask_same_image: self.mask_same_image,
        }
    }

    /// The desktop app's Training form: 5 epochs of batch 128, kNN after every epoch, in
    /// `runs/app`; everything else `leoclr train`'s defaults.
    pub fn interactive() -> Self {
        Self {
            epochs: 5,
            batch: 128,
            eval_every: 1,
            out: PathBuf::from("runs/app"),
            ..Self::default()
        }
    }

    /// Train here (the app and the browser, a step a frame): a tiny LeOCLR with the plain stem
    /// on views of `size` px, a queue of 256 for a small gallery, open-ended epochs.
    pub fn train_here(batch: usize, size: usize) -> Self {
        Self {
            data: DataSpec {
                size: Some(size),
                ..DataSpec::default()
            },
            model: ModelSpec {
                backbone: Backbone::Tiny,
                small_stem: Some(false),
                ..ModelSpec::default()
            },
            batch,
            queue: 256,
            epochs: 1000,
            ..Self::default()
        }
    }
}

/// SGD's momentum, MoCo's 0.9 (not a setting).
pub const SGD_MOMENTUM: f64 = 0.9;

impl TrainConfig {
    /// `leoclr train`'s defaults for `model` (small images: T 0.1, m 0.99, queue 4096).
    pub fn small(model: ModelConfig) -> Self {
        RunSpec::default().train_config(model)
    }

    /// A few-thousand-parameter setup (tiny backbone with the small stem, 16-wide head, queue of
    /// 16, batch 4, 2 epochs) for tests and smoke runs.
    pub fn tiny_test(in_channels: usize, method: Method) -> Self {
        let mut model = ModelConfig::new(Backbone::Tiny, in_channels, true);
        model.head_hidden = vec![32];
        model.head_out = 16;
        Self {
            method,
            queue_size: 16,
            epochs: 2,
            batch_size: 4,
            ..Self::small(model)
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
            bn_split_queries: true,
            mask_same_image: true,
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
            method: "mocov2-asym".parse().unwrap(),
            original_aug: Some(OriginalAug::Aug),
            ..ModelSpec::default()
        };
        assert_eq!(moco.label(), "mocov2_asym");
        // And the augmentation a plan derives carries the choice.
        let spec = RunSpec {
            model: ModelSpec {
                method: "leoclr-paper".parse().unwrap(),
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
        for (name, recipe) in [
            ("leoclr", "leoclr"),
            ("mocov2", "mocov2"),
            ("mocov2_sym", "mocov2"),
            ("mocov2-asym", "mocov2-asym"),
            ("mocov2_asym", "mocov2-asym"),
            ("leoclr_paper", "leoclr-paper"),
        ] {
            let spec: RunSpec =
                serde_json::from_str(&format!(r#"{{"method": "{name}"}}"#)).unwrap();
            assert_eq!(spec.model.method.name(), recipe);
            assert_eq!(name.parse::<MethodRef>().unwrap().name(), recipe);
        }
        assert!(serde_json::from_str::<RunSpec>(r#"{"method": "simclr"}"#).is_err());
        assert!(matches!(
            "simclr".parse::<MethodRef>(),
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

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backbone {
    /// Narrow, shallow ResNet (widths 16-32-64-128, one BasicBlock a stage) for CPU runs and tests.
    Tiny,
    ResNet18,
    ResNet50,
}

impl std::str::FromStr for Backbone {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "tiny" => Ok(Self::Tiny),
            "resnet18" | "r18" => Ok(Self::ResNet18),
            "resnet50" | "r50" => Ok(Self::ResNet50),
            _ => Err(Error::Config(format!(
                "unknown backbone '{s}' (tiny, resnet18, resnet50)"
            ))),
        }
    }
}

impl std::fmt::Display for Backbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tiny => "tiny",
            Self::ResNet18 => "resnet18",
            Self::ResNet50 => "resnet50",
        })
    }
}

impl Backbone {
    /// (blocks per stage, stage widths, bottleneck?)
    pub fn layout(self) -> ([usize; 4], [usize; 4], bool) {
        match self {
            Self::Tiny => ([1, 1, 1, 1], [16, 32, 64, 128], false),
            Self::ResNet18 => ([2, 2, 2, 2], [64, 128, 256, 512], false),
            Self::ResNet50 => ([3, 4, 6, 3], [64, 128, 256, 512], true),
        }
    }

    /// Width of the pooled backbone features.
    pub fn feature_dim(self) -> usize {
        let (_, widths, bottleneck) = self.layout();
        widths[3] * if bottleneck { 4 } else { 1 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub backbone: Backbone,
    pub in_channels: usize,
    /// CIFAR stem: 3x3 conv stride 1 and no max-pool, for small images.
    pub small_stem: bool,
    /// Hidden widths of the projection MLP (each followed by ReLU).
    pub head_hidden: Vec<usize>,
    pub head_out: usize,
}

impl ModelConfig {
    /// MoCo-v2's head: one hidden layer as wide as the features, 128 out.
    pub fn new(backbone: Backbone, in_channels: usize, small_stem: bool) -> Self {
        Self {
            backbone,
            in_channels,
            small_stem,
            head_hidden: vec![backbone.feature_dim()],
            head_out: 128,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !matches!(self.in_channels, 1 | 3) {
            return Err(Error::Config(format!(
                "in_channels {}: a model takes 1 (gray) or 3 (RGB) channels, what the readers produce",
                self.in_channels
            )));
        }
        if self.head_out == 0 || self.head_hidden.contains(&0) {
            return Err(Error::Config(
                "projection head widths must be positive".into(),
            ));
        }
        Ok(())
    }
}

// The objective and its settings live with the objectives (`method/`); re-exported here where
// callers have always found them.
pub use crate::method::{Method, OriginalBranch};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: ModelConfig,
    pub method: Method,
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate (after warm-up).
    pub lr: f64,
    pub warmup_epochs: f64,
    pub weight_decay: f64,
    pub sgd_momentum: f64,
    pub temperature: f64,
    pub queue_size: usize,
    /// Key encoder EMA momentum m.
    pub ema_momentum: f64,
    /// Ramp m towards 1 with a cosine over training (BYOL-style).
    pub ema_cosine: bool,
    pub seed: u64,
    /// Shuffle-BN on one device: the key encoder sees the batch shuffled and in this many
    /// sub-batches, each with its own BatchNorm statistics (MoCo's single-GPU emulation); 1: off.
    #[serde(default = "one")]
    pub bn_splits: usize,
    /// With `bn_splits` > 1, the query encoder's BatchNorm in as many contiguous sub-batches too
    /// (MoCo's SplitBatchNorm on one device, as `--devices N` splits them); false in run files
    /// written before it existed (they split the keys alone).
    #[serde(default)]
    pub bn_split_queries: bool,
    /// Leave the queued keys of a batch's own images (stale keys from an earlier step) out of
    /// its negatives; false in run files written before it existed.
    #[serde(default)]
    pub mask_same_image: bool,
}

fn one() -> usize {
    1
}

// The defaults live in one place, `RunSpec::default()` (run/spec.rs), with the derivation
// `RunSpec::train_config`; `TrainConfig::small` and `TrainConfig::tiny_test` are defined there.
impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        let bad = |m: String| Err(Error::Config(m));
        if self.epochs == 0 || self.epochs > 100_000 {
            return bad(format!("epochs {} outside 1..=100000", self.epochs));
        }
        if self.batch_size < 2 || self.batch_size > 65536 {
            return bad(format!(
                "batch size {} outside 2..=65536 (BatchNorm needs 2)",
                self.batch_size
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr < 100.0) {
            return bad(format!("learning rate {} must be in (0, 100)", self.lr));
        }
        if !(self.warmup_epochs >= 0.0 && self.warmup_epochs <= self.epochs as f64) {
            return bad(format!(
                "warm-up {} epochs must be within 0..=epochs",
                self.warmup_epochs
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay < 1.0) {
            return bad(format!("weight decay {} outside [0, 1)", self.weight_decay));
        }
        if !(0.0..1.0).contains(&self.sgd_momentum) {
            return bad(format!("SGD momentum {} outside [0, 1)", self.sgd_momentum));
        }
        if !(self.temperature > 1e-3 && self.temperature <= 10.0) {
            return bad(format!(
                "temperature {} outside (0.001, 10]",
                self.temperature
            ));
        }
        if self.queue_size == 0 || self.queue_size > 1 << 20 {
            return bad(format!(
                "queue size {} outside 1..=1048576",
                self.queue_size
            ));
        }
        if !(0.0..=1.0).contains(&self.ema_momentum) {
            return bad(format!("EMA momentum {} outside [0, 1]", self.ema_momentum));
        }
        if self.bn_splits == 0 || self.bn_splits > self.batch_size / 2 {
            return bad(format!(
                "BatchNorm splits {} outside 1..={} (sub-batches of at least 2 images of the \
                 batch of {})",
                self.bn_splits,
                self.batch_size / 2,
                self.batch_size
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_absurd_values_do_not() {
        let c = TrainConfig::small(ModelConfig::new(Backbone::Tiny, 1, true));
        c.validate().unwrap();
        for f in [
            |c: &mut TrainConfig| c.temperature = 0.0,
            |c: &mut TrainConfig| c.batch_size = 1,
            |c: &mut TrainConfig| c.lr = f64::NAN,
            |c: &mut TrainConfig| c.queue_size = 0,
            |c: &mut TrainConfig| c.ema_momentum = 1.5,
            |c: &mut TrainConfig| c.bn_splits = 0,
            // A crafted checkpoint's channel count no image converts to (it used to panic later).
            |c: &mut TrainConfig| c.model.in_channels = 2,
            |c: &mut TrainConfig| c.bn_splits = 129,
        ] {
            let mut bad = c.clone();
            f(&mut bad);
            assert!(bad.validate().is_err());
        }
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), c);
    }
}

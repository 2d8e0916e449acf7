use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::config::ModelConfig;
use crate::head::{ProjectionHead, l2_normalize};
use crate::resnet::ResNet;

/// Backbone plus projection head; the query encoder and the momentum key encoder are two of these.
#[derive(Module, Debug)]
pub struct Encoder {
    pub backbone: ResNet,
    pub head: ProjectionHead,
}

impl Encoder {
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        Self {
            backbone: ResNet::new(cfg, device),
            head: ProjectionHead::new(cfg.backbone.feature_dim(), &cfg.head_hidden, cfg.head_out, device),
        }
    }

    /// Seeded initialisation. Always drawn on the CPU backend and then moved, so the same seed gives
    /// the same weights on every backend (CPU and GPU runs start from one point).
    pub fn init_seeded(cfg: &ModelConfig, seed: u64, device: &Device) -> Self {
        let cpu = Device::flex();
        cpu.seed(seed);
        let model = Self::new(cfg, &cpu);
        let record = model.into_record();
        Self::new(cfg, device).load_record(record)
    }

    /// L2-normalised projections `[N, out]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        l2_normalize(self.head.forward(self.backbone.forward(x)))
    }

    /// Backbone features `[N, feature_dim]` (what kNN and the linear probe evaluate).
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        self.backbone.forward(x)
    }
}

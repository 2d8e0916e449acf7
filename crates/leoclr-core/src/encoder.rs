use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor, TensorData};
use leoclr_data::Rng;

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
            head: ProjectionHead::new(
                cfg.backbone.feature_dim(),
                &cfg.head_hidden,
                cfg.head_out,
                device,
            ),
        }
    }

    /// Seeded initialisation from our own RNG rather than burn's device RNG, which is global and
    /// shared by every thread: the same seed gives the same weights on every backend and whatever
    /// else the process is doing (CPU and GPU runs start from one point).
    pub fn init_seeded(cfg: &ModelConfig, seed: u64, device: &Device) -> Self {
        let mut init = SeededInit {
            rng: Rng::derive(seed, &[0x1_A17]),
            path: Vec::new(),
            fan_in: 1,
        };
        Self::new(cfg, device).map(&mut init).set_require_grad(true)
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

/// torchvision's initialisation: convs Kaiming-normal (fan-out, ReLU gain), linear layers uniform
/// within 1/sqrt(fan_in) (weights and biases, PyTorch's default), BatchNorm gamma 1 and beta 0.
struct SeededInit {
    rng: Rng,
    path: Vec<String>,
    fan_in: usize,
}

impl ModuleMapper for SeededInit {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.last().map(String::as_str).unwrap_or("");
        let in_bn = self
            .path
            .iter()
            .rev()
            .nth(1)
            .is_some_and(|p| p.starts_with("bn"));
        let shape = param.lazy_shape();
        let dims = shape.to_vec();
        let n = shape.num_elements();
        let values: Option<Vec<f32>> = match (name, D) {
            ("weight", 4) => {
                let std = (2.0 / (dims[0] * dims[2] * dims[3]) as f64).sqrt();
                Some((0..n).map(|_| (self.rng.normal() * std) as f32).collect())
            }
            ("weight", 2) => {
                // burn's Linear weight is [d_input, d_output].
                self.fan_in = dims[0];
                let b = 1.0 / (dims[0] as f64).sqrt();
                Some((0..n).map(|_| self.rng.uniform(-b, b) as f32).collect())
            }
            ("bias", 1) if !in_bn => {
                let b = 1.0 / (self.fan_in as f64).sqrt();
                Some((0..n).map(|_| self.rng.uniform(-b, b) as f32).collect())
            }
            _ => None,
        };
        match values {
            Some(v) => {
                let device = param.lazy_device();
                param.map(|_| Tensor::from_data(TensorData::new(v, shape.clone()), &device))
            }
            None => param,
        }
    }
}

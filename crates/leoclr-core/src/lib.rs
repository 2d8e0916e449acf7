//! The LeOCLR core: ResNet backbones, projection heads, the momentum key encoder, the negatives
//! queue, the InfoNCE losses of LeOCLR and MoCo-v2, the training step, checkpoints and evaluation.
//!
//! One code path for every burn runtime: models live on a runtime [`burn::tensor::Device`]
//! (`flex` on the CPU, `wgpu` on Vulkan/Metal/DX12/WebGPU). Knows nothing of the CLI or any UI.

// Bad input is an error, never a panic: library code does not unwrap. The few invariants that
// cannot fail (and cannot return an error) say why where they are allowed.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(not(target_arch = "wasm32"))]
pub mod ann;
#[cfg(not(target_arch = "wasm32"))]
mod ann_dump;
pub mod augment_device;
pub mod backend;
pub mod config;
pub mod destination;
pub mod ema;
pub mod encoder;
pub mod error;
pub mod eval;
pub mod files;
pub mod head;
pub mod index;
pub mod infer;
pub mod method;
pub mod onnx;
pub mod parallel;
pub mod queue;
#[cfg(not(target_arch = "wasm32"))]
pub mod quiet;
pub mod resnet;
pub mod run;
pub mod schedule;
pub mod session;
#[cfg(not(target_arch = "wasm32"))]
pub mod torchvision;
pub mod trainer;
pub mod tsne;

pub use backend::{BackendKind, Precision, default_device_on_cpu};
pub use config::{Backbone, ModelConfig, TrainConfig};
pub use encoder::Encoder;
pub use method::{Method, OriginalBranch, Recipe, ViewKind, Views};
/// Checkpoints belong to runs; this path is the one callers have always used.
pub use run::checkpoint;
pub use trainer::Trainer;

pub use error::{Error, Result};

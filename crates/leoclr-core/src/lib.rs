//! The LeOCLR core: ResNet backbones, projection heads, the momentum key encoder, the negatives
//! queue, the InfoNCE losses of LeOCLR and MoCo-v2, the training step, checkpoints and evaluation.
//!
//! One code path for every burn runtime: models live on a runtime [`burn::tensor::Device`]
//! (`flex` on the CPU, `wgpu` on Vulkan/Metal/DX12/WebGPU). Knows nothing of the CLI or any UI.

pub mod augment_device;
pub mod backend;
pub mod checkpoint;
pub mod config;
pub mod ema;
pub mod encoder;
pub mod eval;
pub mod fit;
pub mod head;
pub mod infer;
pub mod loss;
pub mod queue;
pub mod resnet;
pub mod run;
pub mod schedule;
pub mod trainer;

pub use backend::{BackendKind, Precision};
pub use config::{Backbone, Method, ModelConfig, OriginalBranch, TrainConfig};
pub use encoder::Encoder;
pub use trainer::Trainer;

/// Errors a user can cause: bad configs, unreadable checkpoints, bad data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{path}: {message}")]
    Checkpoint {
        path: std::path::PathBuf,
        message: String,
    },
    #[error(transparent)]
    Data(#[from] leoclr_data::DataError),
    #[error("{0}")]
    Backend(String),
}

pub type Result<T> = std::result::Result<T, Error>;

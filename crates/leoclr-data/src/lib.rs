//! Datasets, MoCo-v2 "aug+" augmentation and a threaded, deterministic loader.
//!
//! This crate knows nothing of burn: it hands out plain `f32` buffers in NCHW order, so it
//! compiles fast, runs on any thread and is reused unchanged by the CLI, the app and the web build.

pub mod augment;
pub mod cifar;
pub mod error;
pub mod folder;
pub mod idx;
pub mod image;
pub mod loader;
pub mod rng;
pub mod source;
pub mod stl10;

pub use augment::{AugmentConfig, CropBox, View, ViewParams};
pub use error::DataError;
pub use image::ImageU8;
pub use loader::{Batch, Loader, LoaderConfig};
pub use rng::Rng;
pub use source::{Dataset, DatasetFormat, DatasetSpec, Split};

//! Datasets, MoCo-v2 "aug+" augmentation and a threaded, deterministic loader.
//!
//! This crate knows nothing of burn: it hands out plain `f32` buffers in NCHW order, so it
//! compiles fast, runs on any thread and is reused unchanged by the CLI, the app and the web build.

// Bad input is an error, never a panic: library code does not unwrap. The few invariants that
// cannot fail (and cannot return an error) say why where they are allowed.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod augment;
pub mod dataset;
pub mod error;
pub mod formats;
pub mod image;
pub mod loader;
pub mod rng;
pub mod scenes;
pub mod views;

pub use augment::{AugmentConfig, CropBox, OriginalAug, View, ViewParams};
pub use dataset::{Dataset, Split};
pub use error::DataError;
pub use formats::{DatasetFormat, DatasetSpec, cifar, detect_format, folder, idx, stl10};
pub use image::ImageU8;
pub use loader::{Batch, Loader, LoaderConfig};
pub use rng::Rng;
pub use views::{ViewKind, Views};

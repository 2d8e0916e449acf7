//! The LeOCLR desktop app: a thin egui layer over `leoclr-core`. Four panels: Views (crops versus
//! the original), Training (start/pause/stop a run, live curves), Retrieval (nearest neighbours of a
//! dataset image or a dropped file) and Map (2-D PCA of the embeddings).
//!
//! Everything slow (training, embedding a dataset) runs on worker threads that stream messages to
//! the UI, which only polls them; the UI thread never waits on burn.

pub mod app;
pub mod gallery;
pub mod jobs;
pub mod map;
pub mod model;
pub mod retrieval;
pub mod thumbs;
pub mod train_here;
#[cfg(not(target_arch = "wasm32"))]
pub mod training;
pub mod views;

pub use app::{LeoclrApp, Tab};
pub use jobs::Progress;

//! The LeOCLR desktop app: a thin egui layer over `leoclr-core`. Four panels: Views (crops versus
//! the original), Training (start/pause/stop a run, live curves), Retrieval (nearest neighbours of a
//! dataset image or a dropped file) and Map (2-D PCA of the embeddings).
//!
//! Everything slow (training, embedding a dataset, a view or a dropped file) runs on worker threads
//! that stream messages to the UI, which only polls them; the UI thread never waits on burn.
//!
//! Layout: `app` is the shell; each panel (`views`, `training` or `train_here`, `retrieval`,
//! `map`) implements [`panel::Panel`] over the [`shared::Shared`] state (`workspace`: device,
//! dataset, model, embeddings; `status`; thumbnails) and draws with `widgets`.

pub mod app;
pub mod error;
pub mod gallery;
pub mod jobs;
pub mod map;
pub mod model;
pub mod panel;
pub mod retrieval;
pub mod shared;
pub mod status;
pub mod thumbs;
pub mod train_here;
#[cfg(not(target_arch = "wasm32"))]
pub mod training;
pub mod tsne_map;
pub mod views;
pub mod watch;
pub mod widgets;
pub mod workspace;

pub use app::{LeoclrApp, Tab};
pub use error::AppError;
pub use jobs::Progress;

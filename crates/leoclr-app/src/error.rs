//! The app's one error type: what went wrong, in words the status line can show.

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Core(#[from] leoclr_core::Error),
    #[error(transparent)]
    Data(#[from] leoclr_data::DataError),
    #[error("open a dataset first")]
    NoDataset,
    #[error("{0}: no images")]
    EmptyDataset(String),
    #[error("the model takes {model}-channel images, the dataset has {data} channels")]
    Channels { model: usize, data: usize },
    /// Precomputed embeddings that do not fit their images.
    #[error("{values} embedding values do not fit {images} images of dimension {dim}")]
    Embeddings {
        values: usize,
        images: usize,
        dim: usize,
    },
    /// A file the user handed over (dropped, uploaded) that is not a usable image.
    #[error("{index}: row of image {row}, but its dataset has {images} images (changed since?)")]
    IndexData {
        index: String,
        row: usize,
        images: usize,
    },
    #[error("cannot use dropped file {name}: {reason}")]
    Dropped { name: String, reason: String },
    #[error("{0} failed unexpectedly (panic)")]
    Panic(&'static str),
}

pub type Result<T> = std::result::Result<T, AppError>;

/// Decodes a file a user dropped or uploaded; the error names it.
pub fn decode_dropped(name: &str, bytes: &[u8]) -> Result<leoclr_data::ImageU8> {
    leoclr_data::folder::decode_bytes(std::path::Path::new(name), bytes).map_err(|e| {
        let reason = match e {
            leoclr_data::DataError::Decode { message, .. } => message,
            other => other.to_string(),
        };
        AppError::Dropped {
            name: name.into(),
            reason,
        }
    })
}

use std::path::{Path, PathBuf};

/// Every data error names the file it came from, so a user with a thousand files knows which one.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: cannot decode image: {message}")]
    Decode { path: PathBuf, message: String },
    /// A file the format needs is not there.
    #[error("{path}: {message}")]
    Missing { path: PathBuf, message: String },
    #[error("{0}")]
    Config(String),
}

impl DataError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether a file the format needs is absent (rather than unreadable or malformed): what an
    /// optional split, such as the test split kNN uses, may lack.
    pub fn is_missing(&self) -> bool {
        match self {
            Self::Missing { .. } => true,
            Self::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }

    pub fn format(path: &Path, message: impl Into<String>) -> Self {
        Self::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, DataError>;

/// Reads a whole file, transparently gunzipping it when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    maybe_gunzip(path, raw)
}

/// Largest decompressed size accepted: far above any IDX dataset (full Fashion-MNIST is 47 MB),
/// far below what a gzip bomb of a few megabytes would expand to.
const MAX_GUNZIPPED: u64 = 4 << 30;

/// Gunzips bytes that start with the gzip magic; `path` only names them in errors.
pub fn maybe_gunzip(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>> {
    gunzip_at_most(path, raw, MAX_GUNZIPPED)
}

fn gunzip_at_most(path: &Path, raw: Vec<u8>, limit: u64) -> Result<Vec<u8>> {
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        use std::io::Read;
        let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit as usize));
        flate2::read::MultiGzDecoder::new(&raw[..])
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| {
                DataError::format(path, format!("corrupt or truncated gzip stream: {e}"))
            })?;
        if out.len() as u64 > limit {
            return Err(DataError::format(
                path,
                format!("decompresses to more than {limit} bytes (a gzip bomb?)"),
            ));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gunzip_stops_at_its_limit() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&[0u8; 5000]).unwrap();
        let bomb = gz.finish().unwrap();
        let p = Path::new("x.gz");
        let e = gunzip_at_most(p, bomb.clone(), 4000)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.gz") && e.contains("more than 4000 bytes"),
            "{e}"
        );
        assert_eq!(gunzip_at_most(p, bomb, 5000).unwrap().len(), 5000);
    }
}

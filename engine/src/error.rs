//! The engine's error type: every variant names the file it is about.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {}", path.display())]
    Invalid { path: PathBuf, what: String },
    #[error("{source}: {}", path.display())]
    Model {
        path: PathBuf,
        source: autoencoder::Error,
    },
    #[error(transparent)]
    Compute(#[from] autoencoder::Error),
}

impl Error {
    pub(crate) fn invalid(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            what: what.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Reads a whole file that is known to be small (configs, weights, fixtures), refusing
/// anything larger than `max_bytes` before allocating for it.
pub(crate) fn read_bounded(path: &std::path::Path, max_bytes: u64) -> Result<Vec<u8>> {
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > max_bytes {
        return Err(Error::invalid(
            path,
            format!("file is {len} bytes, more than the {max_bytes} this reader accepts"),
        ));
    }
    std::fs::read(path).map_err(read_err)
}

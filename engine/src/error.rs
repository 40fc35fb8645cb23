//! The engine's error type: every variant names the file it is about.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The causes are part of each message, not error sources, so that a report that
    // walks the source chain (anyhow's `{:#}`) does not print them twice.
    #[error("cannot read ({error}): {}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot write ({error}): {}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{what}: {}", path.display())]
    Invalid { path: PathBuf, what: String },
    #[error("{error}: {}", path.display())]
    Model {
        path: PathBuf,
        error: autoencoder::Error,
    },
    #[error(transparent)]
    Compute(autoencoder::Error),
    /// A job stopped because it was asked to.
    #[error("cancelled")]
    Cancelled,
    /// An output that is already there and may not be replaced.
    #[error("already exists: {}", .0.display())]
    Exists(PathBuf),
    /// A training run's folder already holds a model (continue it or start over).
    #[error("a model is already there: {}", .0.display())]
    ModelExists(PathBuf),
    /// An output that names one of the job's inputs: refused even where outputs may be
    /// replaced, so a job never writes over what it reads.
    #[error("the output is one of the inputs ({}): {}", input.display(), output.display())]
    OutputIsInput { output: PathBuf, input: PathBuf },
    /// A folder Timbrel would clear or remove that it did not make (no marker or plan of
    /// its own there): left as it is.
    #[error("not made by Timbrel ({what}), left as it is: {}", path.display())]
    NotCreatedByTimbrel { path: PathBuf, what: String },
    /// Training options that cannot make a run.
    #[error(transparent)]
    TrainOptions(#[from] OptionsError),
    /// A device that cannot be used.
    #[error("{0}")]
    Device(String),
    /// Audio that cannot be resampled or rendered at the rate asked for.
    #[error("{0}")]
    Audio(String),
    /// Embeddings that cannot be blended, or weights that do not make a blend.
    #[error("{0}")]
    Blend(String),
    /// A note length that cannot be rendered.
    #[error("{0}")]
    Length(String),
    /// A pitch the model cannot play: out of range, or a model without an excitation.
    #[error("{0}")]
    Pitch(String),
    /// A checkpoint whose dilation cycle (stages) the weights cannot tell: it must be
    /// given.
    #[error(
        "the {part}'s dilation cycle cannot be read from the weights ({layers} layers is not a multiple of Magenta's 10): {}",
        path.display()
    )]
    StagesUnknown {
        path: PathBuf,
        /// "decoder" or "encoder".
        part: &'static str,
        layers: usize,
    },
}

impl From<autoencoder::Error> for Error {
    fn from(error: autoencoder::Error) -> Self {
        match error {
            autoencoder::Error::Cancelled => Self::Cancelled,
            other => Self::Compute(other),
        }
    }
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

/// Training options that cannot make a run (the CLI words them with its flags).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptionsError {
    #[error("no training data given")]
    NoData,
    #[error(
        "the crop length {crop} must be a positive multiple of the hop {hop} and at most {max}"
    )]
    Crop { crop: usize, hop: usize, max: usize },
    #[error("the batch size and the number of steps must be at least 1")]
    BatchOrSteps,
    #[error("the learning rate {0} must be a positive number")]
    LearningRate(f64),
    #[error("the input noise {0} must be between 0 and 1")]
    InputNoise(f64),
    #[error("the unpitched share {0} must be between 0 and 1")]
    UnpitchedShare(f64),
    #[error("the sub-octave share {0} must be between 0 and 1")]
    SubOctaveShare(f64),
    #[error("the bank match weight {0} must be a number from 0 up")]
    BankWeight(f64),
    #[error("free-running checks need 1 or more notes of up to 4 s")]
    FreeRun,
}

/// Reads a whole file that is known to be small (configs, weights, fixtures), refusing
/// anything larger than `max_bytes` before allocating for it.
pub(crate) fn read_bounded(path: &std::path::Path, max_bytes: u64) -> Result<Vec<u8>> {
    let read_err = |error| Error::Read {
        path: path.to_path_buf(),
        error,
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

/// Checks that `bytes` are a safetensors file before candle sees them, so that garbage
/// is reported as such rather than as candle's "header too large".
pub(crate) fn check_safetensors(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    safetensors::SafeTensors::deserialize(bytes)
        .map(|_| ())
        .map_err(|e| Error::invalid(path, format!("not a safetensors file ({e})")))
}

//! The one error type of this crate.

/// Everything that can go wrong inside the model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration that cannot describe a working model.
    #[error("invalid model config: {0}")]
    Config(String),
    /// A config that is not valid JSON or has unknown or missing keys.
    #[error("model config is not valid JSON of the expected shape: {0}")]
    ConfigJson(#[from] serde_json::Error),
    /// Input of a shape the model cannot take (wrong rank, length not a multiple of the hop...).
    #[error("{0}")]
    Shape(String),
    /// This CPU cannot run the code path asked for (e.g. AVX2 and FMA kernels).
    #[error("this CPU lacks {0}")]
    UnsupportedCpu(&'static str),
    /// A worker thread of the named part panicked (a bug, reported instead of crashing).
    #[error("{0} failed unexpectedly (a worker thread panicked)")]
    Panicked(&'static str),
    /// Training diverged: the gradient norm is not finite.
    #[error("the gradient norm is {0}: training diverged (lower the learning rate)")]
    Diverged(f64),
    /// A generation was cancelled through its [`crate::generate::Control`].
    #[error("cancelled")]
    Cancelled,
    /// A tensor operation failed (including a missing or mis-shaped weight).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Shorthand used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

use thiserror::Error;

/// Everything that can go wrong when building, running, saving or loading an RBE layer or a
/// hyperbolic layer: the one error type of this crate.
#[derive(Debug, Error)]
pub enum RbeError {
    /// A seed, layout or kernel buffer is invalid (non-finite float, wrong byte length,
    /// zero or oversized dimension, a block the format cannot take).
    #[error(transparent)]
    Seed(#[from] rbe_kernels::KernelError),
    /// A configuration value is out of its domain.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A tensor does not have the shape the layer needs.
    #[error("{what}: expected shape {expected:?}, found {actual:?}")]
    Shape {
        /// Which tensor.
        what: String,
        /// The shape required.
        expected: Vec<usize>,
        /// The shape found.
        actual: Vec<usize>,
    },
    /// An input is larger than the kernels can index.
    #[error("{what} is {value}, above the limit of {max}")]
    TooLarge {
        /// Which size.
        what: String,
        /// The rejected value.
        value: usize,
        /// The largest accepted value.
        max: usize,
    },
    /// A tensor holds NaN or infinity where a finite value is required.
    #[error("{0} holds NaN or infinity")]
    NonFinite(String),
    /// Tensor data could not be read back in the expected element type.
    #[error("tensor data: {0}")]
    Data(String),
    /// The recorder could not read or write the record.
    #[error("record: {0}")]
    Recorder(#[from] burn::record::RecorderError),
    /// A checksummed record file failed its integrity check.
    #[error("record file {path} is corrupted or truncated: {reason}")]
    Corrupted {
        /// The file.
        path: String,
        /// What did not match.
        reason: String,
    },
    /// A record was saved from a layer of another structure than the model it is loaded
    /// into (block layout, residual, bias, seed count): loading it would silently change `W`.
    #[error("the record does not fit the model: {what}: saved {saved}, model {model}")]
    RecordMismatch {
        /// What differs.
        what: String,
        /// The saved value.
        saved: String,
        /// The model's value.
        model: String,
    },
    /// A point of the Poincaré ball has norm `norm` at or beyond the ball radius
    /// `limit = 1/sqrt(c)`.
    #[error("point outside the Poincaré ball: norm {norm} >= radius {limit}")]
    OutsideManifold {
        /// The largest row norm found.
        norm: f64,
        /// The ball radius `1/sqrt(c)`.
        limit: f64,
    },
    /// A point given to a Lorentz layer is not on the upper sheet of the hyperboloid
    /// `<x, x>_L = -1/c`.
    #[error("point off the hyperboloid: <x, x>_L = {inner}, expected {expected} (x_0 = {time})")]
    OffHyperboloid {
        /// `<x, x>_L` of the worst row.
        inner: f64,
        /// `-1/c`.
        expected: f64,
        /// The time coordinate of that row (must be positive).
        time: f64,
    },
    /// The curvature magnitude `c` of a hyperbolic layer is not a positive finite number.
    #[error("the curvature magnitude c must be positive and finite, got {0}")]
    NonPositiveCurvature(f64),
    /// Encoding the layer `name` of a model failed ([`crate::Compressor::linear`]).
    #[error("layer {name}: {source}")]
    Layer {
        /// The name the layer was given.
        name: String,
        /// Why its encode failed.
        source: Box<RbeError>,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl RbeError {
    pub(crate) fn data(err: impl std::fmt::Debug) -> Self {
        Self::Data(format!("{err:?}"))
    }

    pub(crate) fn shape(what: impl Into<String>, expected: &[usize], actual: &[usize]) -> Self {
        Self::Shape {
            what: what.into(),
            expected: expected.to_vec(),
            actual: actual.to_vec(),
        }
    }
}

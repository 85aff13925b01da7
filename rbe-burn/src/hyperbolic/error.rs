//! [`HyperbolicError`]: what can go wrong when building or running a hyperbolic layer.

use thiserror::Error;

use crate::RbeError;

/// Everything that can go wrong when building or running a hyperbolic layer.
#[derive(Debug, Error)]
pub enum HyperbolicError {
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
    /// The curvature magnitude `c` is not a positive finite number.
    #[error("the curvature magnitude c must be positive and finite, got {0}")]
    NonPositiveCurvature(f64),
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
    /// An input holds NaN or infinity.
    #[error("{0} holds NaN or infinity")]
    NonFinite(String),
    /// A configuration value is out of its domain (e.g. a zero dimension).
    #[error("invalid hyperbolic layer configuration: {0}")]
    Config(String),
    /// The RBE matrix could not be built.
    #[error(transparent)]
    Rbe(#[from] RbeError),
}

impl HyperbolicError {
    pub(crate) fn shape(what: impl Into<String>, expected: &[usize], actual: &[usize]) -> Self {
        Self::Shape {
            what: what.into(),
            expected: expected.to_vec(),
            actual: actual.to_vec(),
        }
    }
}

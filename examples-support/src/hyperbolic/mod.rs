//! The hyperbolic examples: a tree embedded in the Poincaré ball and in Euclidean space
//! (`cargo run --example tree_embedding`), and a classifier on a generated taxonomy with
//! hyperbolic layers (`cargo run --example hyperbolic_classifier`).
//!
//! The geometry itself (distances, exponential maps, projection, layers) is
//! `rbe_burn::hyperbolic`; this module holds what only the examples need:
//!
//! - [`tree`]: a generated tree and its shortest-path distances.
//! - [`metrics`]: mean average precision of edge reconstruction and average distortion.
//! - [`embedding`]: training embeddings of a tree's nodes (Nickel & Kiela's loss, Riemannian
//!   SGD) in either geometry.
//! - [`taxonomy`]: a generated class hierarchy and its samples.
//! - [`classifier`]: Euclidean and Poincaré-ball classifiers of the same widths, dense or
//!   RBE, and their training.
//! - [`report`]: the rows each example prints and the README tables they rewrite.

pub mod classifier;
pub mod embedding;
pub mod metrics;
pub mod report;
pub mod taxonomy;
pub mod tree;

/// A bad argument to one of the examples' generators, trainers or metrics, or a run that
/// diverged.
#[derive(Debug, Clone, PartialEq)]
pub enum HypError {
    /// A size, count or rate out of range.
    Config(String),
    /// Training produced a NaN or infinite loss.
    Diverged {
        /// The epoch (from 1) whose loss was not finite.
        epoch: usize,
        /// The loss read back.
        loss: f64,
    },
}

impl std::fmt::Display for HypError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(what) => write!(f, "invalid configuration: {what}"),
            Self::Diverged { epoch, loss } => {
                write!(f, "training diverged at epoch {epoch} (loss {loss})")
            }
        }
    }
}

impl std::error::Error for HypError {}

//! The code the examples and the integration tests share.
//!
//! The examples (`cargo run --example mnist`, `transformer`, `mnist_table`, `backend_check`)
//! keep their command lines and reports; what they have in common, and what the integration
//! tests exercise, lives here as an ordinary library:
//!
//! - [`backend`]: the `--backend` choice and the dispatch of a job generic over the backend.
//! - [`layer`]: one fully connected layer, dense, RBE, low-rank ([`low_rank`]) or
//!   Burn-quantized ([`quantized_linear`]), and its stored bytes ([`bytes`]).
//! - [`bench_schema`]: the format of the bench result files, written by `benches/` and read
//!   by the `bench_report` example.
//! - [`saved_pair`]: a model file and its JSON metadata, written and read as one unit.
//! - [`mnist`]: the MNIST classifier, its data, training through burn-train's `Learner`,
//!   and the run report.
//! - [`transformer`]: the character-level GPT, its corpus, training loop and checkpoints.
//!
//! Its cargo features are the root package's: `wgpu`, `flex`, `ndarray` (default) and
//! `cuda` choose the backends [`backend::dispatch`] can run on.

pub mod backend;
pub mod bench_schema;
pub mod bytes;
pub mod hyperbolic;
pub mod layer;
pub mod low_rank;
pub mod mnist;
pub mod parallel;
pub mod quantized_linear;
pub mod saved_pair;
pub mod transformer;

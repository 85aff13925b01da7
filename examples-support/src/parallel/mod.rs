//! Data-parallel training under burn-train's `Learner`, with one replica per device.
//!
//! [`DataParallel`] is a custom `SupervisedLearningStrategy`: each replica (a model and its
//! own optimizer) trains on its own thread and share of the data, the replicas' gradients
//! are summed every step, and every replica applies the sum itself. After every step the
//! replicas' parameters are compared bit for bit ([`Fingerprint`]); a replica that differs
//! stops training and is reported as a [`ParallelError`] through [`ParallelOutcome`].
//!
//! Burn's own distributed data parallel (its `ddp` feature) is not used: it needs a backend
//! with collective operations (Flex and NdArray have none, and WGPU's are unimplemented),
//! turning it on makes `Autodiff<Flex>` and `Autodiff<NdArray>` stop being autodiff
//! backends for the whole build, and it all-reduces only the gradients of the float
//! parameters it marked, which an RBE layer's update (coords rebuilt under their
//! constraint, transition counts on a probe) would leave unsynchronised. Here the replicas
//! are threads of one process that exchange host values, which any backend can produce.
//!
//! - [`ddp`]: the strategy and how it runs the replicas.
//! - `replica`, `round`, `exchange`, `grads`, `snapshot`, `validation`: one replica's
//!   epoch, what the replicas decide together each step, where their threads meet, the
//!   gradients on the host where they are summed, the starting parameters each replica
//!   rebuilds its own copy from, and the main replica's validation epoch.
//! - [`fingerprint`]: the per-step comparison of the replicas' parameters.
//! - [`fault`]: a deliberate divergence, for tests of that comparison.

pub mod ddp;
mod error;
mod exchange;
pub mod fault;
pub mod fingerprint;
mod grads;
mod outcome;
mod replica;
mod round;
mod snapshot;
mod validation;

pub use ddp::DataParallel;
pub use error::ParallelError;
pub use fault::FaultInjection;
pub use fingerprint::Fingerprint;
pub use outcome::ParallelOutcome;

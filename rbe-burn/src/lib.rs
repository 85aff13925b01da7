//! Burn integration for Riemannian Basis Encoding (RBE).
//!
//! - [`RbeLinearConfig`] / [`RbeLinear`]: the drop-in replacement for `LinearConfig` /
//!   `Linear`.
//! - [`RbeBackend`]: the backend extension with the forward and backward primitives; fused
//!   CubeCL kernels on WGPU and CUDA (with or without Burn's fusion), native CPU kernels on
//!   Flex and NdArray, and a custom autodiff step.
//! - [`apply_state_transitions`] / [`RbeOptimizer`]: the paper's state transitions.
#![warn(missing_docs)]

mod backend;
mod backends;
mod config;
mod encode;
mod error;
mod fallback;
mod finite;
pub mod hyperbolic;
mod init;
mod linear;
mod probe;
mod record;
mod record_precheck;
mod residual;
mod seeds;
mod seeds_record;
mod sign;
mod spec;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod transitions;
#[cfg(any(test, feature = "testing"))]
mod verify;

pub use backend::{RbeAutodiffBackend, RbeBackend};
pub use config::RbeLinearConfig;
pub use encode::EncodeReport;
pub use error::RbeError;
pub use finite::check_finite;
pub use init::RbeInitializer;
pub use linear::{RbeLinear, SEED_BYTES, StorageReport};
pub use rbe_cubecl::sign_blueprint::BopConfig;
pub use record::{RbeRecorder, load_checked};
pub use residual::LowRankResidual;
pub use seeds::RbeSeeds;
pub use seeds_record::{RbeLayerHeader, RbeSeedsItem, RbeSeedsRecord};
pub use spec::{BitTraining, RbeGrads, RbeKernel, RbeSpec, SeedFormat};
pub use transitions::{
    BitFlips, RbeOptimizer, apply_state_transitions, apply_state_transitions_multi,
    apply_state_transitions_multi_with, apply_state_transitions_with,
};

pub use rbe_cubecl::{BlockLayout, Packed128};

#[cfg(test)]
mod tests;

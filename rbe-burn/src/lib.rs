//! Burn integration for Riemannian Basis Encoding (RBE). `docs/architecture.md` maps the
//! tree.
//!
//! - [`RbeLinearConfig`] / [`RbeLinear`]: the drop-in replacement for `LinearConfig` /
//!   `Linear` (`module/`).
//! - [`SeedFormat`]: what the seeds' bits mean, one folder per format (`formats/`):
//!   [`PaperFormat`] (the paper's CORDIC seed, default) and [`SignFormat`] (the sign
//!   blueprint), each implementing [`Format`].
//! - [`RbeBackend`]: the backend extension with the forward and backward primitives; the
//!   formats' CubeCL kernels on WGPU and CUDA (with or without Burn's fusion), their native
//!   CPU kernels on Flex and NdArray, and a custom autodiff step (`backend/`).
//! - [`RbeOptimizer`] / [`apply_state_transitions`]: moving the bits by each format's rule
//!   (`training/`).
//! - [`RbeRecorder`] / [`load_checked`]: records that keep seeds exact and refuse damaged or
//!   mismatched files (`record/`).
//! - [`hyperbolic`]: hyperbolic layers whose linear maps can be RBE layers.
#![warn(missing_docs)]

mod backend;
mod error;
pub mod formats;
mod halves;
pub mod hyperbolic;
mod module;
mod primitive;
mod record;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod trainable;
mod training;

pub use backend::{RbeAutodiffBackend, RbeBackend, RbeGrads, RbeSpec};
pub use error::RbeError;
pub use formats::{
    BitFlips, BitTraining, Format, FormatId, PaperFormat, RbeInitializer, RbeKernel, SeedFormat,
    SignFormat, TernaryFormat,
};
pub use module::{
    BlockShape, CompressionReport, Compressor, EncodeReport, LayerEncode, LowRankResidual,
    RbeLinear, RbeLinearConfig, RbeSeeds, SEED_BYTES, StorageReport,
};
pub use rbe_kernels::formats::sign::BopConfig;
pub use rbe_kernels::{BlockLayout, DecodeCache, Grads, Packed128};
pub use record::{RbeLayerHeader, RbeRecorder, RbeSeedsItem, RbeSeedsRecord, load_checked};
pub use trainable::trainable_param;
pub use training::{
    RbeOptimizer, apply_state_transitions, apply_state_transitions_multi,
    apply_state_transitions_multi_with, apply_state_transitions_with, check_finite,
};

#[cfg(test)]
mod tests;

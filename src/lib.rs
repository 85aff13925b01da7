//! `rbe`: Riemannian Basis Encoding for Burn.
//!
//! Swap `LinearConfig` for [`RbeLinearConfig`] and every `B x B` block of the weight
//! becomes one 128-bit seed ([`Packed128`]) from which a fused kernel regenerates the
//! weights while it multiplies. Train on NdArray, WGPU or CUDA; wrap the optimizer in
//! [`RbeOptimizer`] so the paper's state transitions apply; save with any full-precision
//! Burn recorder or the checksummed [`RbeRecorder`].
//!
//! ```
//! use burn::backend::{Autodiff, NdArray};
//! use burn::prelude::*;
//! use rbe::RbeLinearConfig;
//!
//! let device = Default::default();
//! let layer = RbeLinearConfig::new(1024, 1024)
//!     .with_bias(false)
//!     .init::<Autodiff<NdArray>>(&device);
//! assert_eq!(layer.compression_ratio(), 256.0); // 4 MiB of f32 -> 1024 seeds of 16 B
//! let y = layer.forward(Tensor::zeros([2, 1024], &device));
//! assert_eq!(y.dims(), [2, 1024]);
//! ```
//!
//! A seed carries two real degrees of freedom per block: the weight formula reduces exactly
//! to `w = A(r) cos(psi + theta + c)`. The README measures what that costs in accuracy.
//!
//! This crate re-exports [`rbe_burn`] (module, backend op, encoder, records) and
//! [`rbe_kernels`] (seeds and seed formats: f64 references, CPU and CubeCL kernels), and hosts the examples,
//! integration tests and benches.
pub use rbe_burn::*;
pub use rbe_kernels;

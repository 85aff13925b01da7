//! Native CPU kernels for the RBE layer (feature `cpu`): what Burn's CPU backends (Flex,
//! NdArray) run instead of chains of tensor ops.
//!
//! Plain f32 slices in and out, no Burn types. Seeds come as Burn stores them: `coords`
//! `[n_blocks, 2]` = `(r, θ)` and `bits` `[n_blocks, 2]` = `(hi[63:32], hi[31:0])` as i32
//! bit patterns. Every product is a strided `gemm::gemm` call (the engine of Flex's own
//! matmul) on per-thread pieces of the work split with rayon; no buffer of
//! `d_output × d_input` floats is ever allocated (except by [`decode`], whose purpose it
//! is), and outputs are written in the caller's row-major layout.
//!
//! - [`Coefficients`]: seeds to `(a, b)` and `∂(a, b)/∂r` in one f32 pass (docs/math.md
//!   §3, §4); [`cache`] keeps recent decodes so unchanged seeds are decoded once.
//! - [`forward`]: `y = x Wᵀ` as projection onto the basis plus combination (§3).
//! - [`backward`]: `dL/dx`, `dL/d(r, θ)` and, with a threshold, the transition counts (§4,
//!   §5).
//! - [`transition_counts`], [`apply_transitions`]: docs/math.md §5.
//! - [`decode`]: the dense weight, for inspection.
//! - [`sign_forward`], [`sign_backward`]: the same layer for the sign-blueprint seed format
//!   (docs/math.md §9), streaming one sign bit per weight at small batch.

mod backward;
mod basis;
pub mod cache;
mod coefficients;
mod decode;
mod forward;
mod gemm;
mod sign_backward;
mod sign_forward;
mod transitions;

pub use backward::{Grads, backward};
pub use basis::Basis;
pub use coefficients::Coefficients;
pub use decode::decode;
pub use forward::{forward, forward_with};
pub use sign_backward::{SignGrads32, sign_backward};
pub use sign_forward::sign_forward;
pub use transitions::{apply_transitions, transition_counts};

#[cfg(test)]
mod sign_tests;
#[cfg(test)]
mod tests;

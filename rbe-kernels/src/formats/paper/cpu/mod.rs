//! The paper format's native CPU kernels (feature `cpu`): what Burn's CPU backends (Flex,
//! NdArray) run instead of chains of tensor ops.
//!
//! Plain f32 slices in and out, no Burn types. Seeds come as Burn stores them: `coords`
//! `[n_blocks, 2]` = `(r, θ)` and `bits` `[n_blocks, 2]` = `(hi[63:32], hi[31:0])` as i32
//! bit patterns. Every product is a strided `gemm::gemm` call ([`crate::cpu`]) on
//! per-thread pieces of the work split with rayon; no buffer of `d_output × d_input` floats
//! is ever allocated (except by [`decode`], whose purpose it is), and outputs are written in
//! the caller's row-major layout.
//!
//! - [`Coefficients`]: seeds to `(a, b)` and `∂(a, b)/∂r` in one f32 pass (docs/math.md
//!   §3, §4); the layer's [`crate::DecodeCache`] keeps them while its seeds stay the same.
//! - [`forward`]: `y = x Wᵀ` as projection onto the basis plus combination (§3).
//! - [`backward`]: `dL/dx`, `dL/d(r, θ)` and, with a threshold, the transition counts (§4,
//!   §5).
//! - [`transition_counts`]: the net state-transition counts alone (docs/math.md §5); the
//!   bits are moved by the caller ([`super::reference::apply_transition_counts`] is the
//!   rule).
//! - [`decode`]: the dense weight, for inspection.

mod backward;
mod basis;
mod coefficients;
mod decode;
mod fast_math;
mod forward;
mod transitions;

pub use backward::backward;
pub use basis::Basis;
pub use coefficients::Coefficients;
pub use decode::decode;
pub use forward::{forward, forward_with};
pub use transitions::transition_counts;

#[cfg(test)]
mod tests;

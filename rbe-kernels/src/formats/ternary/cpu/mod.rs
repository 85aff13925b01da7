//! The ternary format's native CPU kernels (feature `cpu`, docs/math.md §10): at small
//! batch the forward streams the 2-bit codes, at large batch it unpacks panels of `W` that
//! feed the shared GEMM ([`crate::cpu`]); the backward forms `dW` and decoded panels of `W`
//! one tile at a time on the same GEMM, never the whole matrix. [`decode`] gives the dense
//! `W` of a whole layer, for Burn's `decode`.
//!
//! Seeds come as Burn stores them: `coords` `[n_blocks, 2]` = `(alpha, 0)` and `bits`
//! `[n_blocks, 4]`, 2-bit codes, cell `k` at bits `2 (k % 16)` of word `k / 16`.

mod backward;
mod forward;
mod latent_bits;

pub use backward::backward;
pub use forward::{Decoded, decode, forward};
pub use latent_bits::latent_bits;

#[cfg(test)]
mod tests;

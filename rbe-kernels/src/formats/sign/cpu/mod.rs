//! The sign blueprint's native CPU kernels (feature `cpu`, docs/math.md §9): at small
//! batch they stream one sign bit per weight; at large batch they unpack panels of `W`
//! that feed the shared GEMM ([`crate::cpu`]).
//!
//! Seeds come as Burn stores them: `coords` `[n_blocks, 2]` = `(alpha, mu)` and `bits`
//! `[n_blocks, 2]` = `(hi[63:32], hi[31:0])` as i32 bit patterns.

mod backward;
mod forward;
mod latent_bits;

pub use backward::backward;
pub use forward::forward;
pub use latent_bits::latent_bits;

#[cfg(test)]
mod tests;

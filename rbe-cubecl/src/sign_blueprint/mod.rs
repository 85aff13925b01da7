//! The sign-blueprint seed format: one sign bit per cell in `hi`, a scale `alpha` and an
//! offset `mu` in `lo`, `w_ij = mu + alpha * (2 * bit_ij - 1)` (docs/math.md §9).
//!
//! An opt-in alternative to the paper's CORDIC seed for blocks of at most 64 cells (8×8,
//! 4×16, ...): the same 16 bytes per block, so an 8×8 block costs what RBE's `B = 8` costs,
//! but every weight has its own degree of freedom (its sign). Everything here is the f64
//! reference, written for clarity; kernels are to be tested against it.
//!
//! - [`SignBlueprint`]: the bit fields on [`Packed128`](crate::Packed128); [`SignParams`] the
//!   f64 form; [`check_block`] and [`valid_mask`] the layout rules.
//! - [`decode_dense`], [`forward`], [`backward`]: the layer and its exact gradients in
//!   `alpha` and `mu`, plus the per-cell signal for the bits.
//! - [`encode_dense`]: the closed-form fit of a dense matrix.
//! - [`latent_to_seeds`], [`bop_step`]: the two rules that train the bits.

mod encode;
mod layer;
mod seed;
mod training;

pub use encode::{SignEncodeReport, SignFit, encode_dense};
pub use layer::{SignGrads, backward, decode_dense, forward};
pub use seed::{SIGN_CELLS, SignBlueprint, SignParams, check_block, valid_mask};
pub use training::{
    BopConfig, bop_block, bop_step, latent_from_seeds, latent_to_seed, latent_to_seeds,
};

#[cfg(test)]
mod tests;

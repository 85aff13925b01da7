//! The sign-blueprint seed format: one sign bit per cell in `hi`, a scale `alpha` and an
//! offset `mu` in `lo`, `w_ij = mu + alpha * (2 * bit_ij - 1)` (docs/math.md §9).
//!
//! An opt-in alternative to the paper's CORDIC seed for blocks of at most 64 cells (8×8,
//! 4×16, ...): the same 16 bytes per block, so an 8×8 block costs what RBE's `B = 8` costs,
//! but every weight has its own degree of freedom (its sign).
//!
//! - [`SignBlueprint`]: the bit fields on [`Packed128`](crate::Packed128); [`SignParams`] the
//!   f64 form; [`check_block`] and [`valid_mask`] the layout rules.
//! - [`reference`](mod@reference): the f64 oracle of the layer ([`decode_dense`], `forward`, `backward`)
//!   and its exact gradients in `alpha` and `mu`, plus the per-cell signal for the bits;
//!   every kernel is tested against it.
//! - [`encode_dense`]: the closed-form fit of a dense matrix.
//! - [`latent_to_seeds`], [`bop_step`]: the two rules that train the bits.
//! - `cpu` (feature `cpu`) and `kernels` (feature `kernels`): the native CPU and CubeCL
//!   kernels.

mod encode;
pub mod reference;
mod seed;
mod training;

#[cfg(feature = "cpu")]
pub mod cpu;
#[cfg(feature = "kernels")]
pub mod kernels;

pub use encode::{SignEncodeReport, SignFit, encode_dense};
pub use reference::decode_dense;
pub use seed::{SIGN_CELLS, SignBlueprint, SignParams, check_block, valid_mask};
pub use training::{
    BopConfig, bop_block, bop_step, latent_from_seeds, latent_to_seed, latent_to_seeds,
};

#[cfg(test)]
mod tests;

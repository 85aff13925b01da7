//! The ternary seed format: a level `t ∈ {-1, 0, +1}` per cell of a block of at most 64
//! cells and an f16 scale, `w_ij = alpha * t_ij` (docs/math.md §10).
//!
//! 64 ternary cells need 102 bits (`3^64 < 2^102`), more than `hi` holds, so the seed is
//! one 128-bit value `(hi << 64) | lo`:
//!
//! ```text
//! [101:0]    the 64 levels as one base-3 integer, cell k the digit of 3^k
//!            (digit 0: level 0, 1: +1, 2: -1); cells beyond the block are 0
//! [117:102]  alpha, an IEEE f16, finite and non-negative
//! [127:118]  reserved, zero
//! ```
//!
//! On the device (what kernels read and optimizers train) a seed is `coords = (alpha, 0)`
//! (the second float is unused and kept at 0) and four i32 words of 2-bit codes, cell `k`
//! at bits `2 (k % 16)` of word `k / 16` (`00` 0, `01` +1, `10` -1, `11` rejected), so
//! kernels decode with shifts and masks and never divide by 3.
//!
//! - [`pack`], [`unpack`], [`to_device`], [`from_device`], [`validate`]: the two forms and
//!   their checks; [`round_alpha`] the f16 grid a trained `alpha` lives on; [`check_block`]
//!   the layout rule.
//! - [`reference`](mod@reference): the f64 oracle (decode, forward, backward).
//! - [`encode_dense`]: the exact least-squares fit of a dense matrix; [`compare_fits`] the
//!   sign-against-ternary error the format was chosen on.
//! - `cpu` (feature `cpu`) and `kernels` (feature `kernels`): the native CPU and CubeCL
//!   kernels.

mod encode;
pub mod reference;
mod seed;

#[cfg(feature = "cpu")]
pub mod cpu;
#[cfg(feature = "kernels")]
pub mod kernels;

pub use encode::{TernaryEncodeReport, compare_fits, encode_dense, fit_block, nearest_level};
pub use reference::decode_dense;
pub use seed::{
    ALPHA_MAX, ALPHA_MIN, TERNARY_BIT_WORDS, TERNARY_CELLS, THREE_POW_64, TernaryParams,
    check_block, codes_to_words, from_device, pack, round_alpha, to_device, unpack, validate,
    words_to_codes,
};

#[cfg(test)]
mod tests;

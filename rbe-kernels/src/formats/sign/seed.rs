//! The bit layout of a sign-blueprint seed and its f64 form (docs/math.md §9).

use crate::{BlockLayout, KernelError, Packed128};

/// The most cells a sign-blueprint block may hold: one bit of `hi` per cell.
pub const SIGN_CELLS: usize = 64;

/// Reads and writes a [`Packed128`] as a sign blueprint (docs/math.md §9).
///
/// ```text
/// hi  [63:0]  one sign bit per cell, cell (i, j) at bit i*block_cols + j
/// lo  [63:32] alpha (f32 bits, the slot of r)   [31:0] mu (f32 bits, the slot of theta)
/// ```
///
/// The weight of cell `(i, j)` is `mu + alpha * (2*bit - 1)`. The format reuses the paper's
/// container, so the 16-byte form, serde and [`Packed128::validate`] apply unchanged; a
/// non-finite `alpha` is reported as [`KernelError::NonFiniteRadius`] and a non-finite `mu` as
/// [`KernelError::NonFiniteTheta`], after the slot each occupies.
///
/// It is an extension trait because `Packed128` lives in another module and the paper's
/// reading of the same bits stays the inherent one.
pub trait SignBlueprint: Sized {
    /// A sign-blueprint seed from its 64 bits, scale and offset; NaN and infinities are
    /// typed errors. Bits beyond the block's cells are kept but never read.
    fn from_sign_parts(bits: u64, alpha: f32, mu: f32) -> Result<Self, KernelError>;

    /// All 64 sign bits (`hi`).
    fn sign_bits(&self) -> u64;

    /// The bit of cell `(i, j)` in a block `block_cols` wide.
    ///
    /// # Panics
    /// When `i * block_cols + j >= 64`: such a block is rejected by [`check_block`], so the
    /// index is a caller bug, not data.
    fn sign_bit(&self, i: usize, j: usize, block_cols: usize) -> bool;

    /// The seed with the bit of cell `(i, j)` set to `bit`; every other field unchanged.
    ///
    /// # Panics
    /// As [`SignBlueprint::sign_bit`].
    fn with_sign_bit(self, i: usize, j: usize, block_cols: usize, bit: bool) -> Self;

    /// The scale, `lo[63:32]` as f32 (the slot of `r`).
    fn alpha(&self) -> f32;

    /// The offset, `lo[31:0]` as f32 (the slot of `theta`).
    fn mu(&self) -> f32;
}

/// The bit index of cell `(i, j)`, checked against the 64 bits of `hi`.
fn bit_index(i: usize, j: usize, block_cols: usize) -> usize {
    let k = i * block_cols + j;
    assert!(
        j < block_cols && k < SIGN_CELLS,
        "cell ({i}, {j}) of a block {block_cols} wide is outside the 64 sign bits"
    );
    k
}

impl SignBlueprint for Packed128 {
    fn from_sign_parts(bits: u64, alpha: f32, mu: f32) -> Result<Self, KernelError> {
        let seed = Packed128::from_parts_unchecked(bits, alpha, mu);
        seed.validate()?;
        Ok(seed)
    }

    fn sign_bits(&self) -> u64 {
        self.hi
    }

    fn sign_bit(&self, i: usize, j: usize, block_cols: usize) -> bool {
        self.hi >> bit_index(i, j, block_cols) & 1 == 1
    }

    fn with_sign_bit(mut self, i: usize, j: usize, block_cols: usize, bit: bool) -> Self {
        let mask = 1u64 << bit_index(i, j, block_cols);
        self.hi = if bit { self.hi | mask } else { self.hi & !mask };
        self
    }

    fn alpha(&self) -> f32 {
        self.r()
    }

    fn mu(&self) -> f32 {
        self.theta()
    }
}

/// A sign-blueprint seed in f64, the form the reference computes with, so that
/// finite-difference checks can move `alpha` and `mu` by less than an f32 ulp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignParams {
    /// Sign bits, cell `(i, j)` at bit `i*block_cols + j`.
    pub bits: u64,
    /// Scale.
    pub alpha: f64,
    /// Offset.
    pub mu: f64,
}

impl SignParams {
    /// `±1`: the sign the bit at index `k` gives its cell.
    pub fn sign(&self, k: usize) -> f64 {
        if self.bits >> k & 1 == 1 { 1.0 } else { -1.0 }
    }

    /// The weight of the cell at bit index `k`: `mu + alpha * (2*bit - 1)`.
    pub fn weight(&self, k: usize) -> f64 {
        self.mu + self.alpha * self.sign(k)
    }

    /// The stored seed; `alpha` and `mu` are rounded to f32, and a value that is non-finite
    /// (or overflows f32) is a typed error.
    pub fn to_seed(&self) -> Result<Packed128, KernelError> {
        Packed128::from_sign_parts(self.bits, self.alpha as f32, self.mu as f32)
    }

    /// Typed errors for a non-finite `alpha` or `mu` (same variants as [`Packed128::validate`]).
    pub fn validate(&self) -> Result<(), KernelError> {
        if !self.alpha.is_finite() {
            return Err(KernelError::NonFiniteRadius(self.alpha as f32));
        }
        if !self.mu.is_finite() {
            return Err(KernelError::NonFiniteTheta(self.mu as f32));
        }
        Ok(())
    }
}

impl From<Packed128> for SignParams {
    fn from(seed: Packed128) -> Self {
        Self {
            bits: seed.sign_bits(),
            alpha: seed.alpha().into(),
            mu: seed.mu().into(),
        }
    }
}

impl From<&Packed128> for SignParams {
    fn from(seed: &Packed128) -> Self {
        Self::from(*seed)
    }
}

/// `Ok` when the layout's blocks fit the 64 sign bits; [`KernelError::TooLarge`] otherwise.
///
/// The blocks need not be square: 8×8, 4×16, 2×32 and 1×64 all fit, as does anything
/// smaller (the unused high bits are then never read).
pub fn check_block(layout: &BlockLayout) -> Result<(), KernelError> {
    let cells = layout.block_rows * layout.block_cols;
    if cells > SIGN_CELLS {
        return Err(KernelError::TooLarge {
            what: "sign-blueprint block_rows * block_cols",
            value: cells,
            max: SIGN_CELLS,
        });
    }
    Ok(())
}

/// The bits of block `block` (block-row-major) whose cells lie inside the matrix: all
/// `block_rows * block_cols` low bits for an interior block, fewer for a cropped edge block.
/// Encoders leave every other bit zero so that equal blocks are equal seeds.
///
/// Expects a layout that passed [`check_block`].
pub fn valid_mask(layout: &BlockLayout, block: usize) -> u64 {
    let (br, bc) = (layout.block_rows, layout.block_cols);
    let (row0, col0) = (
        (block / layout.col_blocks()) * br,
        (block % layout.col_blocks()) * bc,
    );
    let (rows, cols) = (
        br.min(layout.rows.saturating_sub(row0)),
        bc.min(layout.cols.saturating_sub(col0)),
    );
    let row_bits = if cols == 64 {
        u64::MAX
    } else {
        (1u64 << cols) - 1
    };
    (0..rows).fold(0, |mask, i| mask | row_bits << (i * bc))
}

/// Checks a seed slice against a layout: blocks of at most 64 cells, one seed per block,
/// finite `alpha` and `mu`. Returns the seeds in f64.
pub(super) fn check_seeds<S: Copy + Into<SignParams>>(
    seeds: &[S],
    layout: &BlockLayout,
) -> Result<Vec<SignParams>, KernelError> {
    check_block(layout)?;
    KernelError::check_len("seeds", seeds.len(), layout.num_blocks())?;
    seeds
        .iter()
        .map(|&s| {
            let p: SignParams = s.into();
            p.validate().map(|()| p)
        })
        .collect()
}

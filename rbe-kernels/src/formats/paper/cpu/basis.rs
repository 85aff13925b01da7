//! The basis `(C, S) = (cos ψ, sin ψ)` shared by all blocks of one shape (docs/math.md §3).

use std::sync::{Arc, Mutex, PoisonError};

use crate::formats::paper::reference;

/// The two basis matrices of a `block_rows × block_cols` block, in f32.
///
/// # Shapes
/// - [`Basis::cos`], [`Basis::sin`]: `[block_rows, block_cols]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Basis {
    block_rows: usize,
    block_cols: usize,
    /// `[2, block_rows, block_cols]`: `C` then `S`.
    values: Vec<f32>,
}

impl Basis {
    /// Evaluates the basis in f64 (the reference's `basis`) and rounds it once.
    pub fn new(block_rows: usize, block_cols: usize) -> Self {
        let cells = block_rows * block_cols;
        let mut values = vec![0.0; 2 * cells];
        for i in 0..block_rows {
            for j in 0..block_cols {
                let (c, s) = reference::basis(i, j, block_rows, block_cols);
                values[i * block_cols + j] = c as f32;
                values[cells + i * block_cols + j] = s as f32;
            }
        }
        Self {
            block_rows,
            block_cols,
            values,
        }
    }

    /// `C` for `cs == 0`, `S` for `cs == 1`.
    pub fn part(&self, cs: usize) -> &[f32] {
        let cells = self.block_rows * self.block_cols;
        &self.values[cs * cells..(cs + 1) * cells]
    }

    /// `[C; S]`, `[2 block_rows, block_cols]`: row `(cs, i)` is `basis_cs(i, ·)`.
    pub fn stacked(&self) -> &[f32] {
        &self.values
    }

    /// `C(i, j) = cos ψ(i, j)`.
    pub fn cos(&self) -> &[f32] {
        self.part(0)
    }

    /// `S(i, j) = sin ψ(i, j)`.
    pub fn sin(&self) -> &[f32] {
        self.part(1)
    }
}

/// Block shapes whose basis is kept.
const CAPACITY: usize = 8;

static BASES: Mutex<Vec<Arc<Basis>>> = Mutex::new(Vec::new());

/// The basis of a block shape, built once: it costs an `atan2`, a `cos` and a `sin` per
/// cell, as much as a whole small product at batch 1.
///
/// The one process-wide memo of this crate, and a safe one: a basis is a constant function
/// of the block shape, holds no layer's data, and a few shapes (at most [`CAPACITY`]) are
/// kept. Decoded seeds, which are layer data, live in each layer's `DecodeCache` instead.
pub fn basis(block_rows: usize, block_cols: usize) -> Arc<Basis> {
    let mut bases = BASES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(b) = bases
        .iter()
        .find(|b| (b.block_rows, b.block_cols) == (block_rows, block_cols))
    {
        return Arc::clone(b);
    }
    let b = Arc::new(Basis::new(block_rows, block_cols));
    bases.insert(0, Arc::clone(&b));
    bases.truncate(CAPACITY);
    b
}

use crate::KernelError;

/// How a `[rows, cols]` weight matrix (rows = `d_output`, cols = `d_input`) is tiled into
/// `block_rows x block_cols` seeds.
///
/// Seeds are stored row-major over blocks: seed `I * col_blocks() + J` generates rows
/// `I*block_rows ..` and columns `J*block_cols ..`. Every seed generates a full block; the
/// blocks on the right and bottom edges are cropped to the matrix (docs/math.md §2 uses the
/// full block shape for the in-block coordinates, so all blocks share one basis).
///
/// Deserialisation goes through [`BlockLayout::new`], so a saved layout with a zero size is an
/// error rather than a division by zero later.
///
/// The struct is `#[non_exhaustive]`: other crates read its fields but build it only through
/// the validating constructors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RawBlockLayout")]
#[non_exhaustive]
pub struct BlockLayout {
    /// Rows of the weight matrix (`d_output`).
    pub rows: usize,
    /// Columns of the weight matrix (`d_input`).
    pub cols: usize,
    /// Rows per block.
    pub block_rows: usize,
    /// Columns per block.
    pub block_cols: usize,
}

/// The serde shape of [`BlockLayout`], validated on the way in.
#[derive(serde::Deserialize)]
struct RawBlockLayout {
    rows: usize,
    cols: usize,
    block_rows: usize,
    block_cols: usize,
}

impl TryFrom<RawBlockLayout> for BlockLayout {
    type Error = KernelError;

    fn try_from(raw: RawBlockLayout) -> Result<Self, Self::Error> {
        Self::new(raw.rows, raw.cols, raw.block_rows, raw.block_cols)
    }
}

impl std::fmt::Display for BlockLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}x{} in {}x{} blocks",
            self.rows, self.cols, self.block_rows, self.block_cols
        )
    }
}

impl BlockLayout {
    /// The largest `rows` or `cols`: kernels index rows and columns with u32 and launch
    /// sizes derive from them.
    pub const MAX_DIM: usize = 1 << 24;
    /// The largest `block_rows * block_cols`: every backend holds a `2 x block` basis table,
    /// and the GPU kernels loop over a block per thread.
    pub const MAX_BLOCK_CELLS: usize = 1 << 20;
    /// The largest number of seeds: launch grids and seed indices are u32.
    pub const MAX_SEEDS: usize = 1 << 31;

    /// A layout, rejecting zero sizes and sizes above [`BlockLayout::MAX_DIM`],
    /// [`BlockLayout::MAX_BLOCK_CELLS`] and [`BlockLayout::MAX_SEEDS`].
    pub fn new(
        rows: usize,
        cols: usize,
        block_rows: usize,
        block_cols: usize,
    ) -> Result<Self, KernelError> {
        for (what, v) in [
            ("rows", rows),
            ("cols", cols),
            ("block_rows", block_rows),
            ("block_cols", block_cols),
        ] {
            if v == 0 {
                return Err(KernelError::ZeroDimension { what });
            }
            if v > Self::MAX_DIM {
                return Err(KernelError::TooLarge {
                    what,
                    value: v,
                    max: Self::MAX_DIM,
                });
            }
        }
        let cells = block_rows.saturating_mul(block_cols);
        if cells > Self::MAX_BLOCK_CELLS {
            return Err(KernelError::TooLarge {
                what: "block_rows * block_cols",
                value: cells,
                max: Self::MAX_BLOCK_CELLS,
            });
        }
        let layout = Self {
            rows,
            cols,
            block_rows,
            block_cols,
        };
        if layout.num_blocks() > Self::MAX_SEEDS {
            return Err(KernelError::TooLarge {
                what: "number of seeds",
                value: layout.num_blocks(),
                max: Self::MAX_SEEDS,
            });
        }
        Ok(layout)
    }

    /// A layout with square `block x block` blocks.
    pub fn square(rows: usize, cols: usize, block: usize) -> Result<Self, KernelError> {
        Self::new(rows, cols, block, block)
    }

    /// Number of block rows, `ceil(rows / block_rows)`.
    pub fn row_blocks(&self) -> usize {
        self.rows.div_ceil(self.block_rows)
    }

    /// Number of block columns, `ceil(cols / block_cols)`.
    pub fn col_blocks(&self) -> usize {
        self.cols.div_ceil(self.block_cols)
    }

    /// Number of seeds.
    pub fn num_blocks(&self) -> usize {
        self.row_blocks() * self.col_blocks()
    }

    /// Index of the seed that generates weight `(row, col)`, and the in-block position.
    pub fn locate(&self, row: usize, col: usize) -> (usize, usize, usize) {
        let seed = (row / self.block_rows) * self.col_blocks() + col / self.block_cols;
        (seed, row % self.block_rows, col % self.block_cols)
    }

    /// Weights the padded block grid would hold, including the cropped parts of edge blocks.
    pub fn padded_elements(&self) -> usize {
        self.num_blocks() * self.block_rows * self.block_cols
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_bounded() {
        assert!(matches!(
            BlockLayout::new(10, BlockLayout::MAX_DIM + 1, 4, 4),
            Err(KernelError::TooLarge { what: "cols", .. })
        ));
        assert!(matches!(
            BlockLayout::square(256, 256, 100_000),
            Err(KernelError::TooLarge { .. })
        ));
        assert!(matches!(
            BlockLayout::new(1 << 24, 1 << 24, 1, 1),
            Err(KernelError::TooLarge {
                what: "number of seeds",
                ..
            })
        ));
        assert!(BlockLayout::square(4096, 11008, 32).is_ok());
        assert!(BlockLayout::square(1024, 1024, 1024).is_ok());
    }

    #[test]
    fn deserialisation_validates() {
        let ok = BlockLayout::new(16, 12, 8, 4).unwrap();
        let json = serde_json::to_string(&ok).unwrap();
        assert_eq!(serde_json::from_str::<BlockLayout>(&json).unwrap(), ok);
        for bad in [
            r#"{"rows":16,"cols":12,"block_rows":0,"block_cols":4}"#,
            r#"{"rows":0,"cols":12,"block_rows":8,"block_cols":4}"#,
            r#"{"rows":16,"cols":12,"block_rows":8,"block_cols":100000000}"#,
        ] {
            assert!(serde_json::from_str::<BlockLayout>(bad).is_err(), "{bad}");
        }
    }
}

use crate::RbeError;

/// How a `[rows, cols]` weight matrix (rows = `d_output`, cols = `d_input`) is tiled into
/// `block_rows x block_cols` seeds.
///
/// Seeds are stored row-major over blocks: seed `I * col_blocks() + J` generates rows
/// `I*block_rows ..` and columns `J*block_cols ..`. Every seed generates a full block; the
/// blocks on the right and bottom edges are cropped to the matrix (contract section 2 uses the
/// full block shape for the in-block coordinates, so all blocks share one basis).
///
/// Deserialisation goes through [`BlockLayout::new`], so a saved layout with a zero size is an
/// error rather than a division by zero later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RawBlockLayout")]
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
    type Error = RbeError;

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
    /// A layout, rejecting zero sizes.
    pub fn new(
        rows: usize,
        cols: usize,
        block_rows: usize,
        block_cols: usize,
    ) -> Result<Self, RbeError> {
        for (what, v) in [
            ("rows", rows),
            ("cols", cols),
            ("block_rows", block_rows),
            ("block_cols", block_cols),
        ] {
            if v == 0 {
                return Err(RbeError::ZeroDimension { what });
            }
        }
        Ok(Self {
            rows,
            cols,
            block_rows,
            block_cols,
        })
    }

    /// A layout with square `block x block` blocks.
    pub fn square(rows: usize, cols: usize, block: usize) -> Result<Self, RbeError> {
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

//! The crop of an edge block against the matrix edge, as a device function.

use cubecl::prelude::*;

/// How much of a block lies inside the matrix along one axis: `block` cells, or fewer for
/// the last block row or column, which the matrix edge crops (`BlockLayout` pads the block
/// grid, so the last block may reach past the edge).
///
/// `start` is the block's first cell on the axis (`row0` or `col0`) and must be below `len`,
/// the matrix extent on that axis (`rows` or `cols`); every block of the grid satisfies this.
#[cube]
pub(crate) fn held_extent(start: usize, block: usize, len: usize) -> usize {
    let mut held = len - start;
    if held > block {
        held = block;
    }
    held
}

//! The sign-blueprint seed format: one sign bit per cell in `hi`, a scale `alpha` and an
//! offset `mu` in `lo`, `w_ij = mu + alpha * (2 * bit_ij - 1)` (docs/math.md §9).

//! The closed-form encoder of docs/math.md §7: a least-squares fit of `a*C + b*S` per
//! block, then `A = hypot(a, b)` gives `r` and `atan2(-b, a)` gives `theta + c`.

use super::{SeedParams, amplitude, amplitude_inverse, basis, phase};
use crate::{BlockLayout, KernelError};

/// One fitted block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncodedBlock {
    /// The seed: the given CORDIC bits, with `r` and `theta` fitted.
    pub seed: SeedParams,
    /// The least-squares coefficient of `C` before the amplitude cap.
    pub a: f64,
    /// The least-squares coefficient of `S` before the amplitude cap.
    pub b: f64,
}

/// Fits one `rows x cols` block to `target(i, j)`; positions where `target` returns `None`
/// (cropped edges) do not take part. The amplitude is capped at `A(r_max)`.
pub fn encode_block(
    rows: usize,
    cols: usize,
    rotations: u32,
    r_max: f64,
    target: impl Fn(usize, usize) -> Option<f64>,
) -> EncodedBlock {
    let (mut cc, mut cs, mut ss, mut ct, mut st) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..rows {
        for j in 0..cols {
            if let Some(t) = target(i, j) {
                let (c, s) = basis(i, j, rows, cols);
                cc += c * c;
                cs += c * s;
                ss += s * s;
                ct += c * t;
                st += s * t;
            }
        }
    }
    let det = cc * ss - cs * cs;
    // Blocks cropped to one element, or to a line through the centre, span a single
    // direction; there the Gram matrix has rank one and the minimum-norm solution is the
    // right-hand side over its trace.
    let (a, b) = if det > 1e-12 * (cc * ss).max(f64::MIN_POSITIVE) {
        ((ct * ss - st * cs) / det, (st * cc - ct * cs) / det)
    } else {
        (ct / (cc + ss), st / (cc + ss))
    };
    let amp = a.hypot(b).min(amplitude(r_max));
    let r = amplitude_inverse(amp, r_max);
    let theta = wrap_angle((-b).atan2(a) - phase(rotations));
    EncodedBlock {
        seed: SeedParams {
            r,
            theta,
            rotations,
        },
        a,
        b,
    }
}

/// Fits every block of a dense `[rows, cols]` row-major matrix.
///
/// # Shapes
/// - `w`: `[layout.rows * layout.cols]`
/// - `rotations`: `[layout.num_blocks()]`, the CORDIC bits each seed keeps.
pub fn encode_dense(
    w: &[f64],
    layout: &BlockLayout,
    rotations: &[u32],
    r_max: f64,
) -> Result<Vec<EncodedBlock>, KernelError> {
    KernelError::check_len("w", w.len(), layout.rows * layout.cols)?;
    KernelError::check_len("rotations", rotations.len(), layout.num_blocks())?;
    let (br, bc) = (layout.block_rows, layout.block_cols);
    Ok(rotations
        .iter()
        .enumerate()
        .map(|(s, &rot)| {
            let (row0, col0) = (
                (s / layout.col_blocks()) * br,
                (s % layout.col_blocks()) * bc,
            );
            encode_block(br, bc, rot, r_max, |i, j| {
                let (row, col) = (row0 + i, col0 + j);
                (row < layout.rows && col < layout.cols).then(|| w[row * layout.cols + col])
            })
        })
        .collect())
}

fn wrap_angle(x: f64) -> f64 {
    use std::f64::consts::{PI, TAU};
    (x + PI).rem_euclid(TAU) - PI
}

use super::{CORDIC_GAIN, CORDIC_STEPS, SeedParams, TANH_EVERY};

/// In-block coordinates in `[-1, 1]`: `(x_norm, y_norm)` for column `j` and row `i`.
///
/// A block with one column (row) uses 0 on that axis; the paper's formula divides by zero
/// there (docs/math.md §2). A degenerate block of zero columns (rows) does the same.
pub fn normalized_coords(i: usize, j: usize, rows: usize, cols: usize) -> (f64, f64) {
    let norm = |k: usize, n: usize| {
        if n <= 1 {
            0.0
        } else {
            k as f64 / (n - 1) as f64 * 2.0 - 1.0
        }
    };
    (norm(j, cols), norm(i, rows))
}

/// The polar angle `psi(i, j) = atan2(y_norm, x_norm)` of an in-block position.
pub fn psi(i: usize, j: usize, rows: usize, cols: usize) -> f64 {
    let (x, y) = normalized_coords(i, j, rows, cols);
    y.atan2(x)
}

/// The paper's weight, by the 20-step CORDIC loop of docs/math.md §2, in f64.
pub fn cordic_weight(seed: SeedParams, i: usize, j: usize, rows: usize, cols: usize) -> f64 {
    let angle = psi(i, j, rows, cols) + seed.theta;
    let mut x = seed.r * angle.cos();
    let mut y = seed.r * angle.sin();
    for k in 0..CORDIC_STEPS {
        let s = if (seed.rotations >> k) & 1 == 1 {
            1.0
        } else {
            -1.0
        };
        let p = (-(k as f64)).exp2();
        (x, y) = (x - s * y * p, y + s * x * p);
        if k % TANH_EVERY == 0 {
            let rho = (x * x + y * y).sqrt();
            if rho > 1e-9 {
                let scale = rho.tanh() / rho;
                x *= scale;
                y *= scale;
            }
        }
    }
    x / CORDIC_GAIN
}

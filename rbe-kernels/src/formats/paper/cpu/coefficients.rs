//! Decoding seeds into the per-seed coefficients of the closed form (docs/math.md §3, §4),
//! in one f32 pass over the seeds.

use std::sync::LazyLock;

use rayon::prelude::*;

use crate::KernelError;
use crate::formats::paper::reference::{PHASE_TABLE_BITS, folded_gains, phase_table};

/// The phase tables for bits 0..10 and 10..20, built once per process.
static PHASE_TABLES: LazyLock<[Vec<f64>; 2]> =
    LazyLock::new(|| [phase_table(0), phase_table(PHASE_TABLE_BITS)]);

/// The radius map of docs/math.md §3 with the gains `sqrt(1 + 4^-k)` between two squashes
/// folded into one factor each (in f64, then rounded once).
struct RadiusMap {
    /// The factor applied right before each `tanh`.
    squash_gains: Vec<f32>,
    /// The gains after the last `tanh`, divided by the CORDIC gain.
    tail: f32,
}

static RADIUS_MAP: LazyLock<RadiusMap> = LazyLock::new(|| {
    let gains = folded_gains();
    RadiusMap {
        squash_gains: gains.before_squash.iter().map(|&g| g as f32).collect(),
        tail: gains.tail as f32,
    }
});

/// `(tanh z, 1 - tanh² z)`. Both come from `expm1(-2|z|)`: `1 - t*t` would cancel
/// catastrophically where `tanh` saturates, and `A'` multiplies five such factors.
fn tanh_sech2(z: f32) -> (f32, f32) {
    let em = (-2.0 * z.abs()).exp_m1();
    let d = 2.0 + em;
    ((-em / d).copysign(z), 4.0 * (1.0 + em) / (d * d))
}

/// `(A(r), A'(r))`.
fn amplitude(r: f32, map: &RadiusMap) -> (f32, f32) {
    let (mut rho, mut slope) = (r, 1.0f32);
    for &g in &map.squash_gains {
        let (t, sech2) = tanh_sech2(rho * g);
        slope *= g * sech2;
        rho = t;
    }
    (rho * map.tail, slope * map.tail)
}

/// One seed's `(coords, bits)` rows and its two output rows, as the zipped iterators yield
/// them.
type SeedSlices<'a> = (((&'a [f32], &'a [i32]), &'a mut [f32]), &'a mut [f32]);

/// Seeds below which decoding stays on the calling thread.
const PARALLEL_SEEDS: usize = 2048;

/// The closed-form coefficients of every seed of a layer.
///
/// # Shapes
/// - [`Coefficients::ab`]: `[n_blocks, 2]`, `(a, b) = (A cos(θ + c), -A sin(θ + c))`;
///   row-major over blocks it is the `[nI, 2 nJ]` matrix the products use.
/// - [`Coefficients::ab_dr`]: `[n_blocks, 2]`, `(∂a/∂r, ∂b/∂r) = (A' cos, -A' sin)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Coefficients {
    ab: Vec<f32>,
    ab_dr: Vec<f32>,
}

impl Coefficients {
    /// Decodes seeds given as Burn stores them on the device.
    ///
    /// # Shapes
    /// - `coords`: `[n_blocks, 2]`, `(r, θ)`
    /// - `bits`: `[n_blocks, 2]`, `(hi[63:32], hi[31:0])` as i32 bit patterns; only the
    ///   CORDIC bits of column 1 are read.
    pub fn decode(coords: &[f32], bits: &[i32]) -> Result<Self, KernelError> {
        let n = coords.len() / 2;
        KernelError::check_len("coords", coords.len(), 2 * n)?;
        KernelError::check_len("bits", bits.len(), 2 * n)?;
        let (tables, map) = (&*PHASE_TABLES, &*RADIUS_MAP);
        let mask = (1u32 << PHASE_TABLE_BITS) - 1;
        let seed = |(((rt, hi), ab), ab_dr): SeedSlices<'_>| {
            let (amp, amp_d) = amplitude(rt[0], map);
            let low = hi[1] as u32;
            let phase = tables[0][(low & mask) as usize]
                + tables[1][((low >> PHASE_TABLE_BITS) & mask) as usize];
            // The angle is summed in f64 and rounded once, then turned in f32.
            let (sin, cos) = ((f64::from(rt[1]) + phase) as f32).sin_cos();
            ab.copy_from_slice(&[amp * cos, -amp * sin]);
            ab_dr.copy_from_slice(&[amp_d * cos, -amp_d * sin]);
        };
        let mut ab = vec![0.0; 2 * n];
        let mut ab_dr = vec![0.0; 2 * n];
        if n < PARALLEL_SEEDS {
            coords
                .chunks_exact(2)
                .zip(bits.chunks_exact(2))
                .zip(ab.chunks_exact_mut(2))
                .zip(ab_dr.chunks_exact_mut(2))
                .for_each(seed);
        } else {
            coords
                .par_chunks_exact(2)
                .zip(bits.par_chunks_exact(2))
                .zip(ab.par_chunks_exact_mut(2))
                .zip(ab_dr.par_chunks_exact_mut(2))
                .with_min_len(PARALLEL_SEEDS / 4)
                .for_each(seed);
        }
        Ok(Self { ab, ab_dr })
    }

    /// Number of seeds.
    pub fn len(&self) -> usize {
        self.ab.len() / 2
    }

    /// Whether there are no seeds.
    pub fn is_empty(&self) -> bool {
        self.ab.is_empty()
    }

    /// `(a, b)` per seed, `[n_blocks, 2]`.
    pub fn ab(&self) -> &[f32] {
        &self.ab
    }

    /// `(∂a/∂r, ∂b/∂r)` per seed, `[n_blocks, 2]`.
    pub fn ab_dr(&self) -> &[f32] {
        &self.ab_dr
    }
}

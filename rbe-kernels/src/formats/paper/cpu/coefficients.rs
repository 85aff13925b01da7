//! Decoding seeds into the per-seed coefficients of the closed form (docs/math.md §3, §4),
//! in one f32 pass over the seeds.

use std::sync::LazyLock;

use rayon::prelude::*;

use super::fast_math::{sin_cos, tanh_sech2};
use crate::KernelError;
#[cfg(target_arch = "x86_64")]
use crate::cpu::lanes::has_avx2;
use crate::formats::paper::reference::{
    CORDIC_STEPS, PHASE_TABLE_BITS, TANH_EVERY, folded_gains, phase_table,
};

/// Entries of one phase table.
const TABLE_LEN: usize = 1 << PHASE_TABLE_BITS;

/// One phase table, sized so that a masked index needs no bounds check.
type PhaseTable = [f64; TABLE_LEN];

/// The phase tables for bits 0..10 and 10..20, built once per process.
static PHASE_TABLES: LazyLock<[Box<PhaseTable>; 2]> = LazyLock::new(|| {
    [0, PHASE_TABLE_BITS].map(|first| {
        phase_table(first)
            .into_boxed_slice()
            .try_into()
            .expect("a phase table has 2^PHASE_TABLE_BITS entries")
    })
});

/// The `tanh` squashes of the radius map: one every [`TANH_EVERY`] CORDIC steps, from step 0.
const SQUASHES: usize = CORDIC_STEPS.div_ceil(TANH_EVERY) as usize;

/// The radius map of docs/math.md §3 with the gains `sqrt(1 + 4^-k)` between two squashes
/// folded into one factor each (in f64, then rounded once).
struct RadiusMap {
    /// The factor applied right before each `tanh`, one per squash.
    squash_gains: [f32; SQUASHES],
    /// The gains after the last `tanh`, divided by the CORDIC gain.
    tail: f32,
}

static RADIUS_MAP: LazyLock<RadiusMap> = LazyLock::new(|| {
    let gains = folded_gains();
    let squash_gains: Vec<f32> = gains.before_squash.iter().map(|&g| g as f32).collect();
    RadiusMap {
        squash_gains: squash_gains.try_into().expect("one folded gain per squash"),
        tail: gains.tail as f32,
    }
});

/// Seeds decoded together: two AVX2 vectors of f32 per quantity, enough independent work to
/// hide the latency of the five dependent squashes.
const CHUNK: usize = 16;

/// Seeds per rayon task above [`PARALLEL_SEEDS`]: whole chunks.
const TASK_SEEDS: usize = PARALLEL_SEEDS / 4;
const _: () = assert!(TASK_SEEDS.is_multiple_of(CHUNK));

/// Seeds below which decoding stays on the calling thread.
const PARALLEL_SEEDS: usize = 2048;

/// Which build of the decoding loop runs. Both compute the same f32 operations in the same
/// order (no fused multiply-adds), so their results are bit-identical; the choice is speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kernel {
    /// The AVX2 build where the CPU has AVX2 and FMA, else the portable one.
    Detected,
    /// The build for the crate's baseline target, whatever the CPU (for the tests, which
    /// compare the two).
    #[cfg(test)]
    Portable,
}

/// The inputs and outputs of one chunk of seeds, `[CHUNK, 2]` each.
struct Chunk<'a> {
    coords: &'a [[f32; 2]; CHUNK],
    bits: &'a [[i32; 2]; CHUNK],
    ab: &'a mut [[f32; 2]; CHUNK],
    ab_dr: &'a mut [[f32; 2]; CHUNK],
}

/// Decodes one chunk: the table lookups first (scalar loads), then the arithmetic over
/// lanes, branch-free, with every function inlined, so that each loop vectorises.
#[inline(always)]
fn decode_chunk(tables: &[Box<PhaseTable>; 2], map: &RadiusMap, chunk: Chunk<'_>) {
    let mask = (1u32 << PHASE_TABLE_BITS) - 1;
    let mut rho = [0.0f32; CHUNK];
    let mut angle = [0.0f32; CHUNK];
    for (((rho, angle), &[r, theta]), &[_, low]) in rho
        .iter_mut()
        .zip(&mut angle)
        .zip(chunk.coords)
        .zip(chunk.bits)
    {
        let low = low as u32;
        let phase = tables[0][(low & mask) as usize]
            + tables[1][((low >> PHASE_TABLE_BITS) & mask) as usize];
        *rho = r;
        // The angle is summed in f64 and rounded once, then turned in f32.
        *angle = (f64::from(theta) + phase) as f32;
    }

    // (A(r), A'(r)): five squashes, each also scaling the slope by `g sech²`.
    let mut slope = [1.0f32; CHUNK];
    for g in map.squash_gains {
        for (rho, slope) in rho.iter_mut().zip(&mut slope) {
            let (t, sech2) = tanh_sech2(*rho * g);
            *slope *= g * sech2;
            *rho = t;
        }
    }

    for ((((ab, ab_dr), &angle), &rho), &slope) in chunk
        .ab
        .iter_mut()
        .zip(chunk.ab_dr.iter_mut())
        .zip(&angle)
        .zip(&rho)
        .zip(&slope)
    {
        let (amp, amp_d) = (rho * map.tail, slope * map.tail);
        let (sin, cos) = sin_cos(angle);
        *ab = [amp * cos, -amp * sin];
        *ab_dr = [amp_d * cos, -amp_d * sin];
    }
}

/// Decodes a run of seeds, `[n, 2]` each, chunk by chunk; a last partial chunk is padded
/// with zeros and goes through the same lanes, so no seed's result depends on its position.
#[inline(always)]
fn decode_run_inlined(coords: &[f32], bits: &[i32], ab: &mut [f32], ab_dr: &mut [f32]) {
    let (tables, map) = (&*PHASE_TABLES, &*RADIUS_MAP);
    let (coords, _) = coords.as_chunks::<2>();
    let (bits, _) = bits.as_chunks::<2>();
    let (ab, _) = ab.as_chunks_mut::<2>();
    let (ab_dr, _) = ab_dr.as_chunks_mut::<2>();
    let (coords, coords_tail) = coords.as_chunks::<CHUNK>();
    let (bits, bits_tail) = bits.as_chunks::<CHUNK>();
    let (ab, ab_tail) = ab.as_chunks_mut::<CHUNK>();
    let (ab_dr, ab_dr_tail) = ab_dr.as_chunks_mut::<CHUNK>();
    for (((coords, bits), ab), ab_dr) in coords.iter().zip(bits).zip(ab).zip(ab_dr) {
        decode_chunk(
            tables,
            map,
            Chunk {
                coords,
                bits,
                ab,
                ab_dr,
            },
        );
    }
    let rest = coords_tail.len();
    if rest > 0 {
        let mut coords = [[0.0; 2]; CHUNK];
        let mut bits = [[0; 2]; CHUNK];
        let (mut ab, mut ab_dr) = ([[0.0; 2]; CHUNK], [[0.0; 2]; CHUNK]);
        coords[..rest].copy_from_slice(coords_tail);
        bits[..rest].copy_from_slice(bits_tail);
        decode_chunk(
            tables,
            map,
            Chunk {
                coords: &coords,
                bits: &bits,
                ab: &mut ab,
                ab_dr: &mut ab_dr,
            },
        );
        ab_tail.copy_from_slice(&ab[..rest]);
        ab_dr_tail.copy_from_slice(&ab_dr[..rest]);
    }
}

/// [`decode_run_inlined`] for the crate's baseline target.
fn decode_run_portable(coords: &[f32], bits: &[i32], ab: &mut [f32], ab_dr: &mut [f32]) {
    decode_run_inlined(coords, bits, ab, ab_dr);
}

/// [`decode_run_inlined`] compiled for AVX2 and FMA: the same operations on 8 lanes a
/// vector.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn decode_run_avx2(coords: &[f32], bits: &[i32], ab: &mut [f32], ab_dr: &mut [f32]) {
    decode_run_inlined(coords, bits, ab, ab_dr);
}

/// Decodes a run of seeds with `kernel`.
fn decode_run(kernel: Kernel, coords: &[f32], bits: &[i32], ab: &mut [f32], ab_dr: &mut [f32]) {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Detected if has_avx2() => {
            // SAFETY: the CPU has AVX2 and FMA (checked at run time just above), the only
            // requirement of the target features; the function is otherwise safe code.
            unsafe { decode_run_avx2(coords, bits, ab, ab_dr) }
        }
        _ => decode_run_portable(coords, bits, ab, ab_dr),
    }
}

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
        Self::decode_with(coords, bits, Kernel::Detected)
    }

    /// [`Coefficients::decode`] with the given build of the decoding loop.
    pub(super) fn decode_with(
        coords: &[f32],
        bits: &[i32],
        kernel: Kernel,
    ) -> Result<Self, KernelError> {
        let n = coords.len() / 2;
        KernelError::check_len("coords", coords.len(), 2 * n)?;
        KernelError::check_len("bits", bits.len(), 2 * n)?;
        let mut ab = vec![0.0; 2 * n];
        let mut ab_dr = vec![0.0; 2 * n];
        if n < PARALLEL_SEEDS {
            decode_run(kernel, coords, bits, &mut ab, &mut ab_dr);
        } else {
            coords
                .par_chunks(2 * TASK_SEEDS)
                .zip(bits.par_chunks(2 * TASK_SEEDS))
                .zip(ab.par_chunks_mut(2 * TASK_SEEDS))
                .zip(ab_dr.par_chunks_mut(2 * TASK_SEEDS))
                .for_each(|(((coords, bits), ab), ab_dr)| {
                    decode_run(kernel, coords, bits, ab, ab_dr);
                });
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

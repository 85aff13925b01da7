//! Test machinery shared by the tests of every crate (feature `testing`; also compiled for
//! this crate's own tests): random seeds of each format in every form a test needs, random
//! inputs, the shape cases with odd sizes and partial blocks, and the normwise error
//! measure the kernels are held to.
//!
//! Everything random is drawn from the caller's [`StdRng`], so a test is reproducible from
//! its seed ([`rng`]). Floats are drawn in f32 and widened, so the f32 kernels and the f64
//! reference see exactly the same values and any difference is the kernels' own.
//!
//! Not user API: what a GPU test needs on top (a runtime client, uploads and read-backs)
//! stays with the kernels' tests.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::formats::paper::reference::SeedParams;
use crate::formats::sign::{SIGN_CELLS, SignParams};
use crate::formats::ternary::{self, TERNARY_CELLS, TernaryParams};
use crate::{BlockLayout, Packed128};

/// The generator every helper here draws from, seeded for a reproducible test.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Paper-format seeds (docs/math.md §1) in every form a test needs: stored, as the layers'
/// tensors hold them, and in the reference's f64 form. Entry `s` of each is the same seed.
#[derive(Debug, Clone, PartialEq)]
pub struct PaperSeeds {
    /// The stored seeds.
    pub packed: Vec<Packed128>,
    /// `[n, 2]`: `(r, theta)` per seed.
    pub coords: Vec<f32>,
    /// `[n, 2]`: `(hi[63:32], hi[31:0])` per seed, as i32 bit patterns.
    pub bits: Vec<i32>,
    /// The reference's form; `rotations` is `hi[31:0]`.
    pub params: Vec<SeedParams>,
}

impl PaperSeeds {
    /// `n` random seeds: `r` in `[0.1, 2)` (the paper's clamp range), `theta` in
    /// `[-3.2, 3.2)`, and all 64 bits of `hi` random, the 32 that no formula reads included,
    /// so a kernel that reads them fails.
    pub fn random(rng: &mut StdRng, n: usize) -> Self {
        let mut seeds = Self {
            packed: Vec::with_capacity(n),
            coords: Vec::with_capacity(2 * n),
            bits: Vec::with_capacity(2 * n),
            params: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let r: f32 = rng.random_range(0.1..2.0);
            let theta: f32 = rng.random_range(-3.2..3.2);
            let hi: u64 = rng.random();
            seeds
                .packed
                .push(Packed128::from_parts_unchecked(hi, r, theta));
            seeds.coords.extend([r, theta]);
            seeds.bits.extend(split_hi(hi));
            seeds.params.push(SeedParams {
                r: r.into(),
                theta: theta.into(),
                rotations: hi as u32,
            });
        }
        seeds
    }

    /// The number of seeds.
    pub fn len(&self) -> usize {
        self.packed.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }
}

/// Sign-blueprint seeds (docs/math.md §9) in every form a test needs, as [`PaperSeeds`]:
/// `coords` holds `(alpha, mu)` and `bits` the 64 sign bits.
#[derive(Debug, Clone, PartialEq)]
pub struct SignSeeds {
    /// The stored seeds.
    pub packed: Vec<Packed128>,
    /// `[n, 2]`: `(alpha, mu)` per seed.
    pub coords: Vec<f32>,
    /// `[n, 2]`: `(hi[63:32], hi[31:0])` per seed, as i32 bit patterns.
    pub bits: Vec<i32>,
    /// The reference's form.
    pub params: Vec<SignParams>,
}

impl SignSeeds {
    /// One random seed per block of `layout`: all 64 bits random (bits beyond a block's
    /// cells too, so a kernel that reads them fails), `alpha` in `[-2, 2)` (either sign, so
    /// either bit may be the upper level) and `mu` in `[-1, 1)`.
    pub fn random(rng: &mut StdRng, layout: &BlockLayout) -> Self {
        Self::random_with_alpha(rng, layout, -2.0, 2.0)
    }

    /// As [`SignSeeds::random`] with `alpha` in `[0.1, 1)`: bit 1 is always the upper level
    /// and the two levels are at least 0.2 apart, for tests of the encoders and the
    /// bit-training rules, whose canonical seeds have `alpha >= 0`.
    pub fn random_positive(rng: &mut StdRng, layout: &BlockLayout) -> Self {
        Self::random_with_alpha(rng, layout, 0.1, 1.0)
    }

    fn random_with_alpha(rng: &mut StdRng, layout: &BlockLayout, low: f32, high: f32) -> Self {
        let n = layout.num_blocks();
        let mut seeds = Self {
            packed: Vec::with_capacity(n),
            coords: Vec::with_capacity(2 * n),
            bits: Vec::with_capacity(2 * n),
            params: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let hi: u64 = rng.random();
            let alpha: f32 = rng.random_range(low..high);
            let mu: f32 = rng.random_range(-1.0..1.0);
            seeds
                .packed
                .push(Packed128::from_parts_unchecked(hi, alpha, mu));
            seeds.coords.extend([alpha, mu]);
            seeds.bits.extend(split_hi(hi));
            seeds.params.push(SignParams {
                bits: hi,
                alpha: alpha.into(),
                mu: mu.into(),
            });
        }
        seeds
    }

    /// The number of seeds.
    pub fn len(&self) -> usize {
        self.packed.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }
}

/// Ternary seeds (docs/math.md §10) in every form a test needs, as [`PaperSeeds`]:
/// `coords` holds `(alpha, 0)` and `bits` four words of 2-bit codes per seed.
#[derive(Debug, Clone, PartialEq)]
pub struct TernarySeeds {
    /// The stored seeds.
    pub packed: Vec<Packed128>,
    /// `[n, 2]`: `(alpha, 0)` per seed.
    pub coords: Vec<f32>,
    /// `[n, 4]`: the 2-bit codes, cell `k` at bits `2 (k % 16)` of word `k / 16`.
    pub bits: Vec<i32>,
    /// The reference's form.
    pub params: Vec<TernaryParams>,
}

impl TernarySeeds {
    /// One random seed per block of `layout`: every one of the 64 cells a random level (the
    /// cells beyond a block's cells too, so a kernel that reads them fails), `alpha` in
    /// `[0.1, 2)` rounded to f16.
    pub fn random(rng: &mut StdRng, layout: &BlockLayout) -> Self {
        let n = layout.num_blocks();
        let mut seeds = Self {
            packed: Vec::with_capacity(n),
            coords: Vec::with_capacity(2 * n),
            bits: Vec::with_capacity(ternary::TERNARY_BIT_WORDS * n),
            params: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let mut codes = [0u8; TERNARY_CELLS];
            for c in &mut codes {
                *c = rng.random_range(0..3);
            }
            let alpha = ternary::round_alpha(rng.random_range(0.1f32..2.0));
            let seed = ternary::pack(&codes, alpha).expect("a valid ternary seed");
            seeds.packed.push(seed);
            seeds.coords.extend([alpha, 0.0]);
            seeds.bits.extend(ternary::codes_to_words(&codes));
            seeds
                .params
                .push(TernaryParams::try_from(&seed).expect("a valid ternary seed"));
        }
        seeds
    }

    /// The number of seeds.
    pub fn len(&self) -> usize {
        self.packed.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }
}

/// Seeds' floats and latent weights for the straight-through bit derivations, with the exact
/// expected bits of each format: `alpha >= 0` (a tenth of the blocks exactly 0), `mu`
/// random; a third of the latent weights sit exactly on a threshold (`mu`, `±alpha / 2`)
/// or one f32 step beside it, where a `>` written for a `>=` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentCase {
    /// `[n, 2]`: `(alpha, mu)` per block (the ternary format ignores `mu`).
    pub coords: Vec<f32>,
    /// `[n, 64]`: the latent weight of every cell, those beyond a block's cells included.
    pub latent: Vec<f32>,
}

impl LatentCase {
    /// One block of random floats and 64 latent weights per block of `layout`.
    pub fn random(rng: &mut StdRng, layout: &BlockLayout) -> Self {
        let n = layout.num_blocks();
        let mut case = Self {
            coords: Vec::with_capacity(2 * n),
            latent: Vec::with_capacity(SIGN_CELLS * n),
        };
        for _ in 0..n {
            let alpha = if rng.random_bool(0.1) {
                0.0
            } else {
                rng.random_range(0.0f32..2.0)
            };
            let mu = rng.random_range(-0.5f32..0.5);
            case.coords.extend([alpha, mu]);
            for _ in 0..SIGN_CELLS {
                let on = match rng.random_range(0..3) {
                    0 => mu,
                    1 => alpha * 0.5,
                    _ => -(alpha * 0.5),
                };
                let latent = match rng.random_range(0..6) {
                    0 => on,
                    1 => on.next_up(),
                    2 => on.next_down(),
                    _ => rng.random_range(-2.0f32..2.0),
                };
                case.latent.push(latent);
            }
        }
        case
    }

    /// The sign blueprint's device bits by its reference rule,
    /// [`crate::formats::sign::latent_to_seed`].
    pub fn sign_bits(&self, layout: &BlockLayout) -> Vec<i32> {
        (0..layout.num_blocks())
            .flat_map(|s| {
                let cells: [f64; SIGN_CELLS] =
                    std::array::from_fn(|k| f64::from(self.latent[SIGN_CELLS * s + k]));
                let (alpha, mu) = (self.coords[2 * s], self.coords[2 * s + 1]);
                let mask = crate::formats::sign::valid_mask(layout, s);
                let seed = crate::formats::sign::latent_to_seed(&cells, mask, alpha, mu)
                    .expect("finite alpha and mu");
                split_hi(seed.hi)
            })
            .collect()
    }

    /// The ternary format's device codes by its reference rule,
    /// [`crate::formats::ternary::nearest_level`] per cell inside the matrix.
    pub fn ternary_bits(&self, layout: &BlockLayout) -> Vec<i32> {
        (0..layout.num_blocks())
            .flat_map(|s| {
                let alpha = f64::from(self.coords[2 * s]);
                let mask = crate::formats::sign::valid_mask(layout, s);
                let codes: [u8; TERNARY_CELLS] = std::array::from_fn(|k| {
                    let latent = f64::from(self.latent[TERNARY_CELLS * s + k]);
                    match (mask >> k & 1, ternary::nearest_level(latent, alpha)) {
                        (1, 1) => 1,
                        (1, -1) => 2,
                        _ => 0,
                    }
                });
                ternary::codes_to_words(&codes)
            })
            .collect()
    }
}

/// `hi` as the layers' bits tensor holds it: `(hi[63:32], hi[31:0])` as i32 bit patterns.
fn split_hi(hi: u64) -> [i32; 2] {
    [(hi >> 32) as u32 as i32, hi as u32 as i32]
}

/// `n` values in `[-1, 1)`, exact in f32.
pub fn random_vec(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| f64::from(rng.random_range(-1.0f32..1.0)))
        .collect()
}

/// `n` values in `[-1, 1)`, as f32 for a kernel and the same values as f64 for the
/// reference.
pub fn random_values(rng: &mut StdRng, n: usize) -> (Vec<f32>, Vec<f64>) {
    widened(random_vec(rng, n))
}

/// `n` multiples of 1/8 in `[-1, 1)`, as f32 and f64. Every `dW = G^T x` of such inputs is
/// a multiple of 1/64 that f32 sums exactly in any order, and none equals the transition
/// threshold 0.1: the transition counts of any correct kernel equal the reference's
/// exactly.
pub fn grid_values(rng: &mut StdRng, n: usize) -> (Vec<f32>, Vec<f64>) {
    widened(
        (0..n)
            .map(|_| f64::from(rng.random_range(-8i32..8)) / 8.0)
            .collect(),
    )
}

/// f64 values exact in f32, paired with their f32 form.
fn widened(values: Vec<f64>) -> (Vec<f32>, Vec<f64>) {
    (values.iter().map(|&v| v as f32).collect(), values)
}

/// Which block shapes a format accepts, and so which shape cases it is tested on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocks {
    /// Any block (the paper's format): random blocks up to 16 x 16, mostly square.
    Any,
    /// Blocks of at most 64 cells (the sign blueprint): 8 x 8, 4 x 16, 1 x 64, 64 x 1, 3 x 5,
    /// ...
    AtMost64,
}

/// `(rows, cols, block_rows, block_cols, batch)` of the named cases for [`Blocks::Any`]:
/// odd sizes, 1 x N and N x 1 matrices, cropped edge blocks, rectangular blocks, blocks
/// larger than the matrix, and batches from 1 to 40.
const ANY: [(usize, usize, usize, usize, usize); 14] = [
    (1, 37, 8, 8, 3),
    (29, 1, 8, 8, 2),
    (1, 1, 4, 4, 1),
    (1, 1, 1, 1, 20),
    (64, 64, 32, 32, 5),
    (33, 17, 5, 3, 4),
    (1, 100, 1, 7, 2),
    (100, 1, 7, 1, 19),
    (70, 45, 16, 16, 17),
    (5, 6, 40, 3, 9),
    (3, 70, 2, 64, 33),
    (130, 97, 16, 8, 40),
    (256, 192, 32, 32, 24),
    (300, 260, 32, 32, 1),
];

/// As [`ANY`] for [`Blocks::AtMost64`]: full and cropped 8 x 8, 4 x 16, 2 x 32, 1 x 64,
/// 64 x 1, 3 x 5, 7 x 9, 8 x 3 and 1 x 13 blocks, single rows and columns, and batches past
/// one 16-row staging round.
const AT_MOST_64: [(usize, usize, usize, usize, usize); 23] = [
    (8, 8, 8, 8, 1),
    (16, 16, 8, 8, 2),
    (64, 64, 8, 8, 4),
    (70, 130, 8, 8, 9),
    (37, 29, 8, 8, 5),
    (37, 53, 4, 16, 3),
    (13, 70, 4, 16, 6),
    (19, 70, 2, 32, 5),
    (9, 100, 2, 32, 3),
    (5, 130, 1, 64, 2),
    (9, 65, 1, 64, 1),
    (70, 3, 64, 1, 2),
    (33, 17, 3, 5, 7),
    (23, 41, 3, 5, 4),
    (50, 61, 7, 9, 6),
    (31, 17, 7, 9, 8),
    (40, 24, 8, 3, 5),
    (6, 90, 1, 13, 3),
    (1, 1, 8, 8, 1),
    (1, 37, 8, 8, 3),
    (29, 1, 4, 16, 2),
    (20, 30, 8, 8, 33),
    (17, 23, 3, 5, 40),
];

/// The named `(layout, batch)` cases of a block family, edge cases first.
pub fn named_cases(blocks: Blocks) -> Vec<(BlockLayout, usize)> {
    let named: &[_] = match blocks {
        Blocks::Any => &ANY,
        Blocks::AtMost64 => &AT_MOST_64,
    };
    named
        .iter()
        .map(|&(rows, cols, br, bc, batch)| {
            let layout = BlockLayout::new(rows, cols, br, bc).expect("non-zero sizes");
            (layout, batch)
        })
        .collect()
}

/// One random `(layout, batch)` of a block family: a matrix with sides from 1 to 70
/// ([`Blocks::Any`]) or 80 ([`Blocks::AtMost64`]), so most shapes crop their edge blocks
/// and some blocks exceed the matrix, and a batch in `1..=max_batch`.
pub fn random_case(rng: &mut StdRng, blocks: Blocks, max_batch: usize) -> (BlockLayout, usize) {
    let (br, bc, side) = match blocks {
        Blocks::Any => {
            let br = rng.random_range(1..=16);
            let bc = if rng.random_bool(0.6) {
                br
            } else {
                rng.random_range(1..=16)
            };
            (br, bc, 70)
        }
        // Half the draws start from the width, so wide blocks up to 1 x 64 are as likely as
        // tall ones.
        Blocks::AtMost64 if rng.random_bool(0.5) => {
            let bc = rng.random_range(1..=SIGN_CELLS);
            (rng.random_range(1..=SIGN_CELLS / bc), bc, 80)
        }
        Blocks::AtMost64 => {
            let br = rng.random_range(1..=16);
            (br, rng.random_range(1..=SIGN_CELLS / br), 80)
        }
    };
    let (rows, cols) = (rng.random_range(1..=side), rng.random_range(1..=side));
    let layout = BlockLayout::new(rows, cols, br, bc).expect("non-zero sizes");
    (layout, rng.random_range(1..=max_batch.max(1)))
}

/// The [`named_cases`] of a block family, then `random` [`random_case`]s.
pub fn cases(
    rng: &mut StdRng,
    blocks: Blocks,
    random: usize,
    max_batch: usize,
) -> Vec<(BlockLayout, usize)> {
    let mut out = named_cases(blocks);
    out.extend((0..random).map(|_| random_case(rng, blocks, max_batch)));
    out
}

/// The normwise relative error `max |got - want| / max |want|` (`max |want|` floored at
/// 1e-30), of f32 or f64 results against the f64 reference. Normwise, because single
/// outputs that cancel to near zero would make an elementwise relative error meaningless.
///
/// # Panics
/// When the lengths differ.
pub fn rel_err<G: Copy + Into<f64>>(got: &[G], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths of got and want");
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    got.iter()
        .zip(want)
        .fold(0f64, |m, (&g, w)| m.max((g.into() - w).abs()))
        / scale
}

/// Asserts `rel_err(got, want) <= tol`, naming `what` on failure. With the environment
/// variable `RBE_PRINT_ERRORS` set it prints every error, to see how much room a tolerance
/// leaves.
///
/// # Panics
/// When the lengths differ or the error exceeds `tol`.
#[track_caller]
pub fn assert_close<G: Copy + Into<f64>>(got: &[G], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let err = rel_err(got, want);
    if std::env::var_os("RBE_PRINT_ERRORS").is_some() {
        eprintln!("{what}: relative error {err:e}");
    }
    assert!(err <= tol, "{what}: relative error {err:e} > {tol:e}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::sign::{SignBlueprint, check_block};

    #[test]
    fn seed_forms_agree() {
        let mut rng = rng(1);
        let paper = PaperSeeds::random(&mut rng, 50);
        assert_eq!(
            (paper.len(), paper.coords.len(), paper.bits.len()),
            (50, 100, 100)
        );
        for (s, seed) in paper.packed.iter().enumerate() {
            assert_eq!(SeedParams::from(seed), paper.params[s]);
            assert_eq!(
                seed.floats(),
                [paper.coords[2 * s], paper.coords[2 * s + 1]]
            );
            assert_eq!(
                split_hi(seed.hi),
                [paper.bits[2 * s], paper.bits[2 * s + 1]]
            );
            assert!((0.1..2.0).contains(&paper.params[s].r));
        }
        // The word no formula reads is populated.
        assert!(paper.packed.iter().any(|p| p.hi >> 32 != 0));

        let layout = BlockLayout::new(13, 21, 4, 16).unwrap();
        let sign = SignSeeds::random(&mut rng, &layout);
        assert_eq!(sign.len(), layout.num_blocks());
        for (s, seed) in sign.packed.iter().enumerate() {
            assert_eq!(SignParams::from(seed), sign.params[s]);
            assert_eq!(seed.floats(), [sign.coords[2 * s], sign.coords[2 * s + 1]]);
            assert_eq!(
                split_hi(seed.sign_bits()),
                [sign.bits[2 * s], sign.bits[2 * s + 1]]
            );
        }
        assert!(sign.params.iter().any(|p| p.alpha < 0.0));
        let positive = SignSeeds::random_positive(&mut rng, &layout);
        assert!(
            positive
                .params
                .iter()
                .all(|p| (0.1..1.0).contains(&p.alpha))
        );
    }

    #[test]
    fn values_are_exact_in_f32() {
        let mut rng = rng(2);
        for (f, d) in [random_values(&mut rng, 100), grid_values(&mut rng, 100)] {
            assert!(
                f.iter()
                    .zip(&d)
                    .all(|(&f, &d)| f64::from(f) == d && d.abs() <= 1.0)
            );
        }
        let (_, grid) = grid_values(&mut rng, 100);
        assert!(grid.iter().all(|v| (v * 8.0).fract() == 0.0));
    }

    #[test]
    fn cases_cover_the_edge_shapes() {
        let mut rng = rng(3);
        for blocks in [Blocks::Any, Blocks::AtMost64] {
            let all = cases(&mut rng, blocks, 200, 7);
            assert_eq!(all.len(), named_cases(blocks).len() + 200);
            let any = |f: &dyn Fn(&BlockLayout) -> bool| all.iter().any(|(l, _)| f(l));
            assert!(
                any(&|l| l.rows == 1) && any(&|l| l.cols == 1),
                "{blocks:?}: 1 x N, N x 1"
            );
            assert!(any(
                &|l| l.rows % l.block_rows != 0 && l.cols % l.block_cols != 0
            ));
            assert!(
                any(&|l| l.block_rows != l.block_cols),
                "{blocks:?}: rectangular"
            );
            assert!(any(&|l| l.block_rows > l.rows || l.block_cols > l.cols));
            assert!(
                all[named_cases(blocks).len()..]
                    .iter()
                    .all(|&(_, b)| (1..=7).contains(&b))
            );
            if blocks == Blocks::AtMost64 {
                assert!(all.iter().all(|(l, _)| check_block(l).is_ok()));
                assert!(
                    any(&|l| l.block_cols == SIGN_CELLS) && any(&|l| l.block_rows == SIGN_CELLS)
                );
            }
        }
    }

    #[test]
    fn rel_err_is_normwise() {
        let want = [2.0, -4.0, 0.0];
        assert_eq!(rel_err(&[2.0f32, -4.0, 0.0], &want), 0.0);
        assert_eq!(rel_err(&[2.0f64, -3.0, 1.0], &want), 0.25);
        assert_eq!(rel_err::<f64>(&[], &[]), 0.0);
        assert_close(&[2.0f32, -4.0, 0.5], &want, 0.125, "at the tolerance");
    }

    #[test]
    #[should_panic(expected = "relative error")]
    fn assert_close_fails_past_the_tolerance() {
        assert_close(&[2.0, -4.0, 0.6], &[2.0, -4.0, 0.0], 0.125, "past it");
    }
}

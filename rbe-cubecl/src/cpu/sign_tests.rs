//! The sign-blueprint CPU kernels against the f64 reference (`sign_blueprint::{forward,
//! backward}`) on random seeds (all 64 bits random, negative `alpha` included) and shapes:
//! odd sizes, cropped edge blocks, non-square blocks (8×8, 4×16, 2×32, 1×64, 3×5, ...),
//! batch 1, small and from `LARGE_BATCH` / `LARGE_BATCH_BACKWARD` up (the bit-streaming
//! and the `gemm` paths), and
//! matrices wide or tall enough to span several tiles and panels.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::sign_forward::{LARGE_BATCH, LARGE_BATCH_BACKWARD, sign_forward_portable};
use super::*;
use crate::sign_blueprint::{self, SIGN_CELLS, SignParams};
use crate::{BlockLayout, RbeError};

const TOLERANCE: f64 = 2e-5;

/// `max |got - want| / max |want|`, as in `tests.rs`.
fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    got.iter()
        .zip(want)
        .fold(0f64, |m, (g, w)| m.max((f64::from(*g) - w).abs()))
        / scale
}

/// Seeds as Burn stores them, and the same seeds for the reference.
struct Seeds {
    coords: Vec<f32>,
    bits: Vec<i32>,
    params: Vec<SignParams>,
}

fn random_seeds(rng: &mut StdRng, n: usize) -> Seeds {
    let mut seeds = Seeds {
        coords: Vec::new(),
        bits: Vec::new(),
        params: Vec::new(),
    };
    for _ in 0..n {
        let (alpha, mu): (f32, f32) = (rng.random_range(-2.0..2.0), rng.random_range(-1.0..1.0));
        let hi: u64 = rng.random();
        seeds.coords.extend([alpha, mu]);
        seeds
            .bits
            .extend([(hi >> 32) as u32 as i32, hi as u32 as i32]);
        seeds.params.push(SignParams {
            bits: hi,
            alpha: alpha.into(),
            mu: mu.into(),
        });
    }
    seeds
}

fn random_values(rng: &mut StdRng, n: usize) -> (Vec<f32>, Vec<f64>) {
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let v64 = v.iter().map(|&v| v.into()).collect();
    (v, v64)
}

/// `(layout, batch)`: the named shapes at batch 1, a small batch and a large one, then
/// random ones.
fn cases(rng: &mut StdRng, random: usize) -> Vec<(BlockLayout, usize)> {
    let fixed = [
        (16, 16, 8, 8),
        (37, 29, 8, 8),
        (1, 1, 8, 8),
        (13, 70, 4, 16),
        (9, 100, 2, 32),
        (5, 130, 1, 64),
        (70, 3, 64, 1),
        (23, 41, 3, 5),
        (31, 17, 7, 9),
        (40, 24, 8, 3),
        (6, 90, 1, 13),
    ];
    let mut out = Vec::new();
    for (r, c, br, bc) in fixed {
        let layout = BlockLayout::new(r, c, br, bc).unwrap();
        for batch in [1, 3, LARGE_BATCH + 3, LARGE_BATCH_BACKWARD + 1] {
            out.push((layout, batch));
        }
    }
    for _ in 0..random {
        let bc = rng.random_range(1..=64);
        let br = rng.random_range(1..=64 / bc);
        let layout =
            BlockLayout::new(rng.random_range(1..=80), rng.random_range(1..=80), br, bc).unwrap();
        out.push((layout, rng.random_range(1..=LARGE_BATCH_BACKWARD + 8)));
    }
    out
}

fn check_forward(rng: &mut StdRng, layout: BlockLayout, batch: usize) {
    let seeds = random_seeds(rng, layout.num_blocks());
    let (x, x64) = random_values(rng, batch * layout.cols);
    let mut y = vec![f32::NAN; batch * layout.rows];
    sign_forward(&layout, &seeds.coords, &seeds.bits, &x, batch, &mut y).unwrap();
    let want = sign_blueprint::forward(&seeds.params, &layout, &x64, batch).unwrap();
    let err = rel_err(&y, &want);
    assert!(err <= TOLERANCE, "{layout} batch {batch}: {err:e}");
}

fn check_backward(rng: &mut StdRng, layout: BlockLayout, batch: usize) {
    let seeds = random_seeds(rng, layout.num_blocks());
    let (x, x64) = random_values(rng, batch * layout.cols);
    let (g, g64) = random_values(rng, batch * layout.rows);
    let want = sign_blueprint::backward(&seeds.params, &layout, &x64, &g64, batch).unwrap();
    let want_coords: Vec<f64> = want
        .grad_alpha
        .iter()
        .zip(&want.grad_mu)
        .flat_map(|(a, m)| [*a, *m])
        .collect();
    let want_signal: Vec<f64> = want.cell_signal.iter().flatten().copied().collect();

    // Every combination of outputs: the signal switches the seed gradients to the dW
    // tiles, so both routes are checked at every batch.
    for (want_x, want_sig) in [(true, true), (true, false), (false, true), (false, false)] {
        let got = sign_backward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &x,
            &g,
            batch,
            want_x,
            want_sig,
        )
        .unwrap();
        let what = format!("{layout} batch {batch} grad_x {want_x} signal {want_sig}");
        assert_eq!(got.x.is_some(), want_x, "{what}");
        assert_eq!(got.cell_signal.is_some(), want_sig, "{what}");
        if let Some(gx) = &got.x {
            let err = rel_err(gx, &want.grad_x);
            assert!(err <= TOLERANCE, "grad_x {what}: {err:e}");
        }
        let err = rel_err(&got.coords, &want_coords);
        assert!(err <= TOLERANCE, "(alpha, mu) {what}: {err:e}");
        if let Some(signal) = &got.cell_signal {
            assert_eq!(signal.len(), layout.num_blocks() * SIGN_CELLS);
            let err = rel_err(signal, &want_signal);
            assert!(err <= TOLERANCE, "signal {what}: {err:e}");
            // Cropped cells and bits beyond the block are exactly zero.
            for (got, want) in signal.iter().zip(&want_signal) {
                if *want == 0.0 {
                    assert_eq!(*got, 0.0, "{what}");
                }
            }
        }
    }
}

#[test]
fn sign_forward_matches_reference() {
    let mut rng = StdRng::seed_from_u64(11);
    for (layout, batch) in cases(&mut rng, 40) {
        check_forward(&mut rng, layout, batch);
    }
}

/// The portable streaming kernel on every shape, including those whole bytes wide that
/// [`sign_forward`] hands to the AVX2 kernel where the CPU has it.
#[test]
fn sign_forward_portable_matches_reference() {
    let mut rng = StdRng::seed_from_u64(15);
    for (layout, batch) in cases(&mut rng, 20) {
        let seeds = random_seeds(&mut rng, layout.num_blocks());
        let (x, x64) = random_values(&mut rng, batch * layout.cols);
        let mut y = vec![f32::NAN; batch * layout.rows];
        sign_forward_portable(&layout, &seeds.coords, &seeds.bits, &x, batch, &mut y);
        let want = sign_blueprint::forward(&seeds.params, &layout, &x64, batch).unwrap();
        let err = rel_err(&y, &want);
        assert!(err <= TOLERANCE, "{layout} batch {batch}: {err:e}");
    }
}

#[test]
fn sign_backward_matches_reference() {
    let mut rng = StdRng::seed_from_u64(12);
    for (layout, batch) in cases(&mut rng, 40) {
        check_backward(&mut rng, layout, batch);
    }
}

/// Shapes that span several decoded panels (forward, large batch) and several `dW` tiles
/// per task (backward), with cropped blocks at both ends.
#[test]
fn sign_kernels_across_tiles_and_panels() {
    let mut rng = StdRng::seed_from_u64(13);
    for (r, c, br, bc, batch) in [
        (300, 1001, 8, 8, LARGE_BATCH_BACKWARD),
        (300, 1001, 8, 8, 2),
        (3, 33_000, 1, 64, 2),
        (5, 11_000, 3, 5, 1),
        (9, 4_200, 8, 8, LARGE_BATCH + 1),
        (9, 4_200, 4, 16, LARGE_BATCH_BACKWARD + 1),
    ] {
        let layout = BlockLayout::new(r, c, br, bc).unwrap();
        check_forward(&mut rng, layout, batch);
        check_backward(&mut rng, layout, batch);
    }
}

#[test]
fn sign_kernels_check_their_inputs() {
    let layout = BlockLayout::new(8, 8, 4, 4).unwrap();
    let mut rng = StdRng::seed_from_u64(14);
    let seeds = random_seeds(&mut rng, 4);
    let (c, b) = (&seeds.coords[..], &seeds.bits[..]);
    let mut y = vec![0.0; 8];
    let mismatch = |r: Result<(), RbeError>| matches!(r, Err(RbeError::LengthMismatch { .. }));
    assert!(mismatch(sign_forward(&layout, c, b, &[0.0; 7], 1, &mut y)));
    assert!(mismatch(sign_forward(
        &layout,
        &c[2..],
        b,
        &[0.0; 8],
        1,
        &mut y
    )));
    assert!(mismatch(sign_forward(
        &layout,
        c,
        &b[2..],
        &[0.0; 8],
        1,
        &mut y
    )));
    assert!(mismatch(sign_forward(
        &layout,
        c,
        b,
        &[0.0; 8],
        1,
        &mut y[1..]
    )));
    assert!(sign_forward(&layout, c, b, &[], 0, &mut []).is_ok());
    let backward =
        |x: &[f32], g: &[f32], batch| sign_backward(&layout, c, b, x, g, batch, true, true);
    assert!(matches!(
        backward(&[0.0; 8], &[0.0; 7], 1),
        Err(RbeError::LengthMismatch { .. })
    ));
    assert!(matches!(
        backward(&[0.0; 9], &[0.0; 8], 1),
        Err(RbeError::LengthMismatch { .. })
    ));
    let empty = backward(&[], &[], 0).unwrap();
    assert_eq!(empty.coords, vec![0.0; 8]);
    assert_eq!(empty.x, Some(Vec::new()));

    // 9×8 = 72 cells do not fit the 64 sign bits.
    let big = BlockLayout::new(18, 16, 9, 8).unwrap();
    let seeds = random_seeds(&mut rng, big.num_blocks());
    let too_large = sign_blueprint::check_block(&big).unwrap_err();
    assert!(matches!(too_large, RbeError::TooLarge { .. }));
    let mut y = vec![0.0; 18];
    assert_eq!(
        sign_forward(&big, &seeds.coords, &seeds.bits, &[0.0; 16], 1, &mut y),
        Err(too_large.clone())
    );
    assert_eq!(
        sign_backward(
            &big,
            &seeds.coords,
            &seeds.bits,
            &[0.0; 16],
            &[0.0; 18],
            1,
            true,
            false
        ),
        Err(too_large)
    );
}

//! The sign-blueprint CPU kernels against the f64 reference (`sign_blueprint::{forward,
//! backward}`) on random seeds (all 64 bits random, negative `alpha` included) and shapes:
//! odd sizes, cropped edge blocks, non-square blocks (8×8, 4×16, 2×32, 1×64, 3×5, ...),
//! batch 1, small and from `LARGE_BATCH` / `LARGE_BATCH_BACKWARD` up (the bit-streaming
//! and the `gemm` paths), and matrices wide or tall enough to span several tiles and
//! panels; the forward by each of its routes (the portable, AVX2 and AVX-512 bit-streaming
//! kernels, the decoded panels) on every shape, whatever the batch.

use rand::rngs::StdRng;

use super::forward::{LARGE_BATCH, LARGE_BATCH_BACKWARD, Route, forward_by, has_avx2, has_avx512};
use super::*;
use crate::formats::sign::{SIGN_CELLS, reference as sign_blueprint};
use crate::testing::{
    Blocks, SignSeeds, assert_close, named_cases, random_case, random_values, rng,
};
use crate::{BlockLayout, KernelError};

const TOLERANCE: f64 = 2e-5;

/// `(layout, batch)`: the named shapes at batch 1, a small batch and on both sides of the
/// kernels' switches to the `gemm` paths, then `random` random ones.
fn cases(rng: &mut StdRng, random: usize) -> Vec<(BlockLayout, usize)> {
    let mut out = Vec::new();
    for (layout, _) in named_cases(Blocks::AtMost64) {
        for batch in [1, 3, LARGE_BATCH + 3, LARGE_BATCH_BACKWARD + 1] {
            out.push((layout, batch));
        }
    }
    out.extend((0..random).map(|_| random_case(rng, Blocks::AtMost64, LARGE_BATCH_BACKWARD + 8)));
    out
}

/// Every route the forward can take on this CPU.
fn routes() -> Vec<Route> {
    let mut out = vec![Route::Streaming { fast: false }, Route::Panels];
    if has_avx2() {
        out.push(Route::Streaming { fast: true });
    }
    if has_avx512() {
        out.push(Route::Avx512);
    }
    out
}

fn check_forward(rng: &mut StdRng, layout: BlockLayout, batch: usize) {
    let seeds = SignSeeds::random(rng, &layout);
    let (x, x64) = random_values(rng, batch * layout.cols);
    let mut y = vec![f32::NAN; batch * layout.rows];
    forward(&layout, &seeds.coords, &seeds.bits, &x, batch, &mut y).unwrap();
    let want = sign_blueprint::forward(&seeds.params, &layout, &x64, batch).unwrap();
    assert_close(&y, &want, TOLERANCE, &format!("{layout} batch {batch}"));
    for route in routes() {
        let mut by = vec![f32::NAN; batch * layout.rows];
        forward_by(
            route,
            &layout,
            &seeds.coords,
            &seeds.bits,
            &x,
            batch,
            &mut by,
        )
        .unwrap();
        assert_close(
            &by,
            &want,
            TOLERANCE,
            &format!("{route:?} {layout} batch {batch}"),
        );
    }
}

fn check_backward(rng: &mut StdRng, layout: BlockLayout, batch: usize) {
    let seeds = SignSeeds::random(rng, &layout);
    let (x, x64) = random_values(rng, batch * layout.cols);
    let (g, g64) = random_values(rng, batch * layout.rows);
    let want = sign_blueprint::backward(&seeds.params, &layout, &x64, &g64, batch).unwrap();
    let want_dx = want.x.expect("dL/dx");
    let want_signal = want.signal.expect("cell signal");

    // Every combination of outputs: the signal switches the seed gradients to the dW
    // tiles, so both routes are checked at every batch.
    for (want_x, want_sig) in [(true, true), (true, false), (false, true), (false, false)] {
        let got = backward(
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
        assert_eq!(got.signal.is_some(), want_sig, "{what}");
        if let Some(gx) = &got.x {
            assert_close(gx, &want_dx, TOLERANCE, &format!("grad_x {what}"));
        }
        assert_close(
            &got.coords,
            &want.coords,
            TOLERANCE,
            &format!("(alpha, mu) {what}"),
        );
        if let Some(signal) = &got.signal {
            assert_eq!(signal.len(), layout.num_blocks() * SIGN_CELLS);
            assert_close(signal, &want_signal, TOLERANCE, &format!("signal {what}"));
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
    let mut rng = rng(11);
    for (layout, batch) in cases(&mut rng, 40) {
        check_forward(&mut rng, layout, batch);
    }
}

/// Blocks eight columns wide, the shape the AVX-512 kernel takes, on random shapes: every
/// block height, odd sizes, cropped edge blocks and batches on both sides of the switch to
/// the panels.
#[test]
fn sign_forward_eight_wide_blocks() {
    use rand::Rng;
    let mut rng = rng(15);
    for br in 1..=8 {
        for _ in 0..5 {
            let (rows, cols) = (rng.random_range(1..=90), rng.random_range(1..=90));
            let batch = rng.random_range(1..=LARGE_BATCH + 8);
            let layout = BlockLayout::new(rows, cols, br, 8).unwrap();
            check_forward(&mut rng, layout, batch);
        }
    }
}

#[test]
fn sign_backward_matches_reference() {
    let mut rng = rng(12);
    for (layout, batch) in cases(&mut rng, 40) {
        check_backward(&mut rng, layout, batch);
    }
}

/// Shapes that span several decoded panels (forward, large batch) and several `dW` tiles
/// per task (backward), with cropped blocks at both ends.
#[test]
fn sign_kernels_across_tiles_and_panels() {
    let mut rng = rng(13);
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
    let mut rng = rng(14);
    let seeds = SignSeeds::random(&mut rng, &layout);
    assert_eq!(seeds.len(), 4);
    let (c, b) = (&seeds.coords[..], &seeds.bits[..]);
    let mut y = vec![0.0; 8];
    let mismatch =
        |r: Result<(), KernelError>| matches!(r, Err(KernelError::LengthMismatch { .. }));
    assert!(mismatch(forward(&layout, c, b, &[0.0; 7], 1, &mut y)));
    assert!(mismatch(forward(&layout, &c[2..], b, &[0.0; 8], 1, &mut y)));
    assert!(mismatch(forward(&layout, c, &b[2..], &[0.0; 8], 1, &mut y)));
    assert!(mismatch(forward(&layout, c, b, &[0.0; 8], 1, &mut y[1..])));
    assert!(forward(&layout, c, b, &[], 0, &mut []).is_ok());
    let checked = |x: &[f32], g: &[f32], batch| backward(&layout, c, b, x, g, batch, true, true);
    assert!(matches!(
        checked(&[0.0; 8], &[0.0; 7], 1),
        Err(KernelError::LengthMismatch { .. })
    ));
    assert!(matches!(
        checked(&[0.0; 9], &[0.0; 8], 1),
        Err(KernelError::LengthMismatch { .. })
    ));
    let empty = checked(&[], &[], 0).unwrap();
    assert_eq!(empty.coords, vec![0.0; 8]);
    assert_eq!(empty.x, Some(Vec::new()));

    // 9×8 = 72 cells do not fit the 64 sign bits.
    let big = BlockLayout::new(18, 16, 9, 8).unwrap();
    let seeds = SignSeeds::random(&mut rng, &big);
    let too_large = crate::formats::sign::check_block(&big).unwrap_err();
    assert!(matches!(too_large, KernelError::TooLarge { .. }));
    let mut y = vec![0.0; 18];
    assert_eq!(
        forward(&big, &seeds.coords, &seeds.bits, &[0.0; 16], 1, &mut y),
        Err(too_large.clone())
    );
    assert_eq!(
        backward(
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

/// The straight-through bits against the reference rule on random shapes with cropped edge
/// blocks, latent weights on and beside the threshold included, serial and parallel.
#[test]
fn latent_bits_match_reference() {
    use crate::testing::LatentCase;
    let mut rng = rng(311);
    let mut layouts: Vec<BlockLayout> = named_cases(Blocks::AtMost64)
        .into_iter()
        .map(|(layout, _)| layout)
        .collect();
    layouts.extend((0..40).map(|_| random_case(&mut rng, Blocks::AtMost64, 1).0));
    // Past the parallel split, with a cropped last block row and column.
    layouts.push(BlockLayout::new(8 * 70 + 3, 8 * 70 + 5, 8, 8).unwrap());
    for layout in layouts {
        let case = LatentCase::random(&mut rng, &layout);
        let got = latent_bits(&layout, &case.coords, &case.latent).unwrap();
        assert_eq!(got, case.sign_bits(&layout), "{layout}");
    }
}

/// A NaN latent weight reads as "below `mu`" (a 0 bit), as the tensor-op rule's comparison
/// does; wrong lengths and oversized blocks are errors.
#[test]
fn latent_bits_edge_inputs() {
    let layout = BlockLayout::new(8, 8, 8, 8).unwrap();
    let mut latent = vec![1.0f32; SIGN_CELLS];
    latent[5] = f32::NAN;
    let got = latent_bits(&layout, &[1.0, 0.0], &latent).unwrap();
    assert_eq!(got, vec![-1, !(1i32 << 5)]);
    assert!(matches!(
        latent_bits(&layout, &[1.0], &latent),
        Err(KernelError::LengthMismatch { .. })
    ));
    assert!(matches!(
        latent_bits(&layout, &[1.0, 0.0], &latent[1..]),
        Err(KernelError::LengthMismatch { .. })
    ));
    let big = BlockLayout::new(16, 16, 16, 8).unwrap();
    assert!(latent_bits(&big, &[1.0, 0.0, 1.0, 0.0], &[0.0; 128]).is_err());
}

//! The ternary CPU kernels against the f64 reference on random seeds (every cell's code
//! random, beyond the block too) and shapes: odd sizes, cropped edge blocks, non-square
//! blocks, batch 1, small batches and batches from `LARGE_BATCH` up; the forward by each of
//! its routes (the portable and the AVX2 code-streaming kernels, the decoded panels) on
//! every shape, whatever the batch.

use rand::rngs::StdRng;

use super::forward::{LARGE_BATCH, Route, forward_by, has_avx512, has_fast};
use super::*;
use crate::formats::ternary::{TERNARY_CELLS, reference};
use crate::testing::{
    Blocks, TernarySeeds, assert_close, named_cases, random_case, random_values, rng,
};
use crate::{BlockLayout, DecodeCache, KernelError};

const TOLERANCE: f64 = 2e-5;

/// `(layout, batch)`: the named shapes at batch 1, a small batch and on both sides of the
/// forward's switch to the panels, then `random` random ones.
fn cases(rng: &mut StdRng, random: usize) -> Vec<(BlockLayout, usize)> {
    let mut out = Vec::new();
    for (layout, _) in named_cases(Blocks::AtMost64) {
        for batch in [1, 3, LARGE_BATCH - 1, LARGE_BATCH + 2] {
            out.push((layout, batch));
        }
    }
    out.extend((0..random).map(|_| random_case(rng, Blocks::AtMost64, LARGE_BATCH + 20)));
    out
}

/// Every route the forward can take on this CPU.
fn routes() -> Vec<Route> {
    let mut out = vec![Route::Streaming { fast: false }, Route::Panels];
    if has_fast() {
        out.push(Route::Streaming { fast: true });
    }
    if has_avx512() {
        out.push(Route::Avx512);
    }
    out
}

fn check_forward(rng: &mut StdRng, layout: BlockLayout, batch: usize) {
    let seeds = TernarySeeds::random(rng, &layout);
    let (x, x64) = random_values(rng, batch * layout.cols);
    let want = reference::forward(&seeds.packed, &layout, &x64, batch).unwrap();
    let mut y = vec![f32::NAN; batch * layout.rows];
    let cache = DecodeCache::default();
    forward(
        &layout,
        &seeds.coords,
        &seeds.bits,
        &x,
        batch,
        &mut y,
        &cache,
    )
    .unwrap();
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

#[test]
fn forward_matches_reference() {
    let mut rng = rng(301);
    for (layout, batch) in cases(&mut rng, 40) {
        check_forward(&mut rng, layout, batch);
    }
}

/// Blocks eight columns wide, the shape the AVX-512 kernel takes, on random shapes: every
/// block height, odd sizes and cropped edge blocks.
#[test]
fn forward_eight_wide_blocks() {
    use rand::Rng;
    let mut rng = rng(307);
    for _ in 0..40 {
        let br = rng.random_range(1..=8);
        let (rows, cols) = (rng.random_range(1..=90), rng.random_range(1..=90));
        let batch = rng.random_range(1..=LARGE_BATCH + 20);
        check_forward(
            &mut rng,
            BlockLayout::new(rows, cols, br, 8).unwrap(),
            batch,
        );
    }
}

/// Shapes that span several decoded panels per task and runs of many column blocks, with
/// cropped blocks at both ends.
#[test]
fn forward_across_panels() {
    let mut rng = rng(305);
    for (r, c, br, bc, batch) in [
        (300, 1001, 8, 8, LARGE_BATCH),
        (300, 1001, 8, 8, 2),
        (3, 33_000, 1, 64, 2),
        (5, 11_000, 3, 5, 1),
        (9, 4_200, 8, 8, LARGE_BATCH + 1),
        (70, 2_100, 4, 16, LARGE_BATCH + 1),
    ] {
        check_forward(&mut rng, BlockLayout::new(r, c, br, bc).unwrap(), batch);
    }
}

/// The backward against the reference for every combination of `want_grad_x` and
/// `want_signal`, with cells beyond the block and cropped by the edge 0 in the signal; the
/// layer's cache holds no whole-layer decode afterwards.
fn check_backward(rng: &mut StdRng, layout: BlockLayout, batch: usize) {
    let seeds = TernarySeeds::random(rng, &layout);
    let (x, x64) = random_values(rng, batch * layout.cols);
    let (g, g64) = random_values(rng, batch * layout.rows);
    let want = reference::backward(&seeds.packed, &layout, &x64, &g64, batch).unwrap();
    let want_dx = want.x.expect("dL/dx");
    let want_signal = want.signal.expect("cell signal");
    let cache = DecodeCache::default();
    for (want_x, want_sig) in [(true, true), (false, false), (true, false), (false, true)] {
        let got = backward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &x,
            &g,
            batch,
            want_x,
            want_sig,
            &cache,
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
            &format!("alpha {what}"),
        );
        assert!(got.coords.iter().skip(1).step_by(2).all(|&v| v == 0.0));
        if let Some(signal) = &got.signal {
            assert_eq!(signal.len(), layout.num_blocks() * TERNARY_CELLS);
            assert_close(signal, &want_signal, TOLERANCE, &format!("signal {what}"));
            for (got, want) in signal.iter().zip(&want_signal) {
                if *want == 0.0 {
                    assert_eq!(*got, 0.0, "signal outside the block, {what}");
                }
            }
        }
    }
    let cached = cache.get_or_decode(&seeds.coords, &seeds.bits, || Err::<Decoded, _>(()));
    assert!(cached.is_err(), "a whole-layer decode was cached, {layout}");
}

#[test]
fn backward_matches_reference() {
    let mut rng = rng(302);
    for (layout, batch) in cases(&mut rng, 40) {
        check_backward(&mut rng, layout, batch);
    }
}

/// Shapes that span several `dW` tiles and decoded panels per task and several tasks (on a
/// pool of 7 threads, whatever the machine), with cropped blocks at both ends, at batch 1, 2
/// and 64; the result does not depend on the number of threads.
#[test]
fn backward_across_tiles() {
    let pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    let (one, seven) = (pool(1), pool(7));
    let mut rng = rng(308);
    for (r, c, br, bc) in [
        (300, 1001, 8, 8),
        (3, 33_000, 1, 64),
        (70, 2_100, 4, 16),
        (5, 11_000, 3, 5),
        (9, 4_200, 8, 8),
        (2, 70_001, 1, 1),
    ] {
        let layout = BlockLayout::new(r, c, br, bc).unwrap();
        for batch in [1, 2, 64] {
            seven.install(|| check_backward(&mut rng, layout, batch));
        }
        let seeds = TernarySeeds::random(&mut rng, &layout);
        let (x, _) = random_values(&mut rng, 2 * layout.cols);
        let (g, _) = random_values(&mut rng, 2 * layout.rows);
        let cache = DecodeCache::default();
        let run = || {
            backward(
                &layout,
                &seeds.coords,
                &seeds.bits,
                &x,
                &g,
                2,
                true,
                true,
                &cache,
            )
            .unwrap()
        };
        let (serial, parallel) = (one.install(run), seven.install(run));
        assert_eq!(serial.x, parallel.x, "{layout}");
        assert_eq!(serial.coords, parallel.coords, "{layout}");
        assert_eq!(serial.signal, parallel.signal, "{layout}");
    }
}

#[test]
fn decode_matches_reference() {
    let mut rng = rng(303);
    for (layout, _) in cases(&mut rng, 20) {
        let seeds = TernarySeeds::random(&mut rng, &layout);
        let got = decode(&layout, &seeds.coords, &seeds.bits).unwrap();
        let want = reference::decode_dense(&seeds.packed, &layout).unwrap();
        assert_close(&got.w, &want, 0.0, &format!("{layout}"));
    }
}

#[test]
fn bad_buffers_and_codes_are_typed_errors() {
    let layout = BlockLayout::new(8, 8, 8, 8).unwrap();
    let mut rng = rng(304);
    let seeds = TernarySeeds::random(&mut rng, &layout);
    let mut y = vec![0.0; 8];
    let cache = DecodeCache::default();
    let x = vec![0.0; 8];
    assert!(matches!(
        forward(
            &layout,
            &seeds.coords,
            &seeds.bits[..2],
            &x,
            1,
            &mut y,
            &cache
        ),
        Err(KernelError::LengthMismatch { .. })
    ));
    let mut bits = seeds.bits.clone();
    // Cell 17: word 1, bits 2..4.
    bits[1] |= 0b11 << 2;
    assert_eq!(
        forward(&layout, &seeds.coords, &bits, &x, 1, &mut y, &cache),
        Err(KernelError::InvalidCode { seed: 0, cell: 17 })
    );
    let big = BlockLayout::new(16, 16, 16, 16).unwrap();
    assert!(matches!(
        decode(&big, &[0.0; 2], &[0; 4]),
        Err(KernelError::TooLarge { .. })
    ));
}

/// A code `11` is an error on every route, in any seed, and beyond the block's cells too:
/// the first bad seed and its first bad cell, as `decode` reports it.
#[test]
fn invalid_codes_are_errors_on_every_route() {
    let mut rng = rng(306);
    // 3×5 blocks use cells 0..15 and 7×8 blocks 0..56: cell 60 lies beyond both.
    for layout in [
        BlockLayout::new(31, 47, 3, 5).unwrap(),
        BlockLayout::new(29, 61, 7, 8).unwrap(),
        // Wide enough for the backward to split its column blocks over several tasks.
        BlockLayout::new(20, 3_001, 8, 8).unwrap(),
    ] {
        let seeds = TernarySeeds::random(&mut rng, &layout);
        let n = layout.num_blocks();
        for (seed, cell) in [(0, 0), (n / 3, 14), (n / 2, 60), (n - 1, 63)] {
            let mut bits = seeds.bits.clone();
            bits[4 * seed + cell / 16] |= 0b11 << (2 * (cell % 16));
            // A second bad seed after the first: the first is reported.
            bits[4 * n - 1] |= 0b11 << 30;
            let want = KernelError::InvalidCode { seed, cell };
            assert_eq!(
                decode(&layout, &seeds.coords, &bits).map(|_| ()),
                Err(want.clone())
            );
            for batch in [1, 2, LARGE_BATCH] {
                let x = vec![1.0; batch * layout.cols];
                let mut y = vec![0.0; batch * layout.rows];
                let cache = DecodeCache::default();
                let got = forward(&layout, &seeds.coords, &bits, &x, batch, &mut y, &cache);
                assert_eq!(got, Err(want.clone()), "{layout} batch {batch}");
                for route in routes() {
                    let got = forward_by(route, &layout, &seeds.coords, &bits, &x, batch, &mut y);
                    assert_eq!(got, Err(want.clone()), "{route:?} {layout} batch {batch}");
                }
            }
            // The backward decodes whatever the batch, so a bad code is an error at 0 too.
            for batch in [0, 1, 2, LARGE_BATCH] {
                let x = vec![1.0; batch * layout.cols];
                let g = vec![1.0; batch * layout.rows];
                let cache = DecodeCache::default();
                for want_x in [false, true] {
                    let got = backward(
                        &layout,
                        &seeds.coords,
                        &bits,
                        &x,
                        &g,
                        batch,
                        want_x,
                        !want_x,
                        &cache,
                    );
                    assert_eq!(
                        got.map(|_| ()),
                        Err(want.clone()),
                        "backward {layout} batch {batch}"
                    );
                }
            }
        }
    }
}

/// The straight-through codes against the reference rule on random shapes with cropped edge
/// blocks, latent weights on and beside `±alpha / 2` included, `alpha = 0` included, serial
/// and parallel.
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
        assert_eq!(got, case.ternary_bits(&layout), "{layout}");
    }
}

/// A NaN latent weight or `alpha` gives level 0; wrong lengths are errors.
#[test]
fn latent_bits_edge_inputs() {
    let layout = BlockLayout::new(1, 16, 1, 16).unwrap();
    let mut latent = vec![0.0f32; TERNARY_CELLS];
    latent[..3].copy_from_slice(&[1.0, -1.0, f32::NAN]);
    let got = latent_bits(&layout, &[1.0, 0.0], &latent).unwrap();
    assert_eq!(got, vec![0b10_01, 0, 0, 0]);
    let got = latent_bits(&layout, &[f32::NAN, 0.0], &latent).unwrap();
    assert_eq!(got, vec![0; 4]);
    assert!(matches!(
        latent_bits(&layout, &[1.0, 0.0], &latent[1..]),
        Err(KernelError::LengthMismatch { .. })
    ));
}

//! The ternary CPU kernels against the f64 reference on random seeds (every cell's code
//! random, beyond the block too) and shapes: odd sizes, cropped edge blocks, non-square
//! blocks, batch 1 and larger batches.

use rand::rngs::StdRng;

use super::*;
use crate::formats::ternary::{TERNARY_CELLS, reference};
use crate::testing::{
    Blocks, TernarySeeds, assert_close, named_cases, random_case, random_values, rng,
};
use crate::{BlockLayout, DecodeCache, KernelError};

const TOLERANCE: f64 = 2e-5;

fn cases(rng: &mut StdRng, random: usize) -> Vec<(BlockLayout, usize)> {
    let mut out = Vec::new();
    for (layout, _) in named_cases(Blocks::AtMost64) {
        for batch in [1, 3, 50] {
            out.push((layout, batch));
        }
    }
    out.extend((0..random).map(|_| random_case(rng, Blocks::AtMost64, 70)));
    out
}

#[test]
fn forward_matches_reference() {
    let mut rng = rng(301);
    for (layout, batch) in cases(&mut rng, 40) {
        let seeds = TernarySeeds::random(&mut rng, &layout);
        let (x, x64) = random_values(&mut rng, batch * layout.cols);
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
        let want = reference::forward(&seeds.packed, &layout, &x64, batch).unwrap();
        assert_close(&y, &want, TOLERANCE, &format!("{layout} batch {batch}"));
        // A second call reads the cache and gives the same bits.
        let mut again = vec![f32::NAN; batch * layout.rows];
        forward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &x,
            batch,
            &mut again,
            &cache,
        )
        .unwrap();
        assert_eq!(y, again);
    }
}

#[test]
fn backward_matches_reference() {
    let mut rng = rng(302);
    for (layout, batch) in cases(&mut rng, 40) {
        let seeds = TernarySeeds::random(&mut rng, &layout);
        let (x, x64) = random_values(&mut rng, batch * layout.cols);
        let (g, g64) = random_values(&mut rng, batch * layout.rows);
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

//! The CPU kernels against the f64 reference on random seeds and the shapes of
//! [`crate::testing::cases`]: odd sizes, 1×N and N×1 matrices, cropped edge blocks,
//! rectangular blocks, blocks larger than the matrix, batch 1 to 40 (below and above the
//! thread count, where the kernels split their work differently).

use rand::Rng;

use super::*;
use crate::formats::paper::reference;
use crate::testing::{Blocks, PaperSeeds, assert_close, cases, grid_values, rng};
use crate::{BlockLayout, DecodeCache};

const TOLERANCE: f64 = 1e-5;
const THRESHOLD: f32 = 0.1;
/// Random batches reach past the thread count, where the kernels split their work
/// differently.
const MAX_BATCH: usize = 40;

#[test]
fn coefficients_match_reference() {
    let mut rng = rng(1);
    let seeds = PaperSeeds::random(&mut rng, 5000);
    let c = Coefficients::decode(&seeds.coords, &seeds.bits).unwrap();
    assert_eq!(c.len(), 5000);
    for (s, p) in seeds.params.iter().enumerate() {
        let (a, b) = reference::coefficients(*p);
        let angle = p.theta + reference::phase(p.rotations);
        let amp_d = reference::amplitude_derivative(p.r);
        let want = [a, b, amp_d * angle.cos(), -amp_d * angle.sin()];
        let got = [
            c.ab()[2 * s],
            c.ab()[2 * s + 1],
            c.ab_dr()[2 * s],
            c.ab_dr()[2 * s + 1],
        ];
        for (g, w) in got.iter().zip(want) {
            assert!(
                (f64::from(*g) - w).abs() < 2e-6,
                "seed {s}: {got:?} vs {want:?}"
            );
        }
    }
}

#[test]
fn forward_matches_reference() {
    let mut rng = rng(2);
    for (layout, batch) in cases(&mut rng, Blocks::Any, 46, MAX_BATCH) {
        let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
        let (x, x64) = grid_values(&mut rng, batch * layout.cols);
        let mut y = vec![f32::NAN; batch * layout.rows];
        forward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &x,
            batch,
            &mut y,
            &DecodeCache::default(),
        )
        .unwrap();
        let want = reference::layer_forward(&seeds.params, &layout, &x64, batch).unwrap();
        assert_close(&y, &want, TOLERANCE, &format!("{layout} batch {batch}"));
    }
}

#[test]
fn forward_on_continuous_inputs() {
    let mut rng = rng(3);
    for (layout, batch) in cases(&mut rng, Blocks::Any, 6, MAX_BATCH) {
        let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
        // Off the grid and past [-1, 1).
        let x: Vec<f32> = (0..batch * layout.cols)
            .map(|_| rng.random_range(-3.0..3.0))
            .collect();
        let x64: Vec<f64> = x.iter().map(|&v| v.into()).collect();
        let mut y = vec![0.0; batch * layout.rows];
        forward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &x,
            batch,
            &mut y,
            &DecodeCache::default(),
        )
        .unwrap();
        let want = reference::layer_forward(&seeds.params, &layout, &x64, batch).unwrap();
        assert_close(&y, &want, TOLERANCE, &format!("{layout} batch {batch}"));
    }
}

#[test]
fn backward_matches_reference() {
    let mut rng = rng(4);
    for (layout, batch) in cases(&mut rng, Blocks::Any, 46, MAX_BATCH) {
        let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
        let (x, x64) = grid_values(&mut rng, batch * layout.cols);
        let (g, g64) = grid_values(&mut rng, batch * layout.rows);
        let got = backward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &x,
            &g,
            batch,
            true,
            Some(THRESHOLD),
            &DecodeCache::default(),
        )
        .unwrap();
        let want = reference::layer_backward(
            &seeds.params,
            &layout,
            &x64,
            &g64,
            batch,
            f64::from(THRESHOLD),
        )
        .unwrap();
        let what = format!("{layout} batch {batch}");
        let got_x = got.x.as_deref().unwrap();
        assert_close(
            got_x,
            want.x.as_deref().unwrap(),
            TOLERANCE,
            &format!("grad_x {what}"),
        );
        assert_close(
            &got.coords,
            &want.coords,
            TOLERANCE,
            &format!("grad (r, θ) {what}"),
        );
        let want_counts: Vec<f32> = want
            .signal
            .expect("transition counts")
            .iter()
            .map(|&c| c as f32)
            .collect();
        assert_eq!(got.signal.unwrap(), want_counts, "{layout} batch {batch}");

        let alone = transition_counts(&layout, &x, &g, batch, THRESHOLD).unwrap();
        assert_eq!(alone, want_counts);
        let lean = backward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &x,
            &g,
            batch,
            false,
            None,
            &DecodeCache::default(),
        )
        .unwrap();
        assert!(lean.x.is_none() && lean.signal.is_none());
        assert_eq!(lean.coords, got.coords);
    }
}

#[test]
fn decode_matches_reference() {
    let mut rng = rng(6);
    for (layout, _) in cases(&mut rng, Blocks::Any, 16, MAX_BATCH) {
        let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
        let w = decode(&layout, &seeds.coords, &seeds.bits).unwrap();
        let want = reference::decode_dense(&seeds.params, &layout).unwrap();
        assert_close(&w, &want, TOLERANCE, &format!("{layout}"));
    }
}

#[test]
fn a_cache_decodes_its_seeds_once_and_again_after_clear() {
    let mut rng = rng(7);
    let mut seeds = PaperSeeds::random(&mut rng, 300);
    let cache = DecodeCache::default();
    let decode = |seeds: &PaperSeeds| {
        cache
            .get_or_decode(&seeds.coords, &seeds.bits, || {
                Coefficients::decode(&seeds.coords, &seeds.bits)
            })
            .unwrap()
    };
    let first = decode(&seeds);
    let again = decode(&seeds);
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "a hit, not a decode"
    );

    // Edited in place: the owner clears the cache (RbeSeeds gives new values a new one).
    seeds.coords[2 * 150] += 0.25;
    cache.clear();
    let moved = decode(&seeds);
    assert_eq!(
        *moved,
        Coefficients::decode(&seeds.coords, &seeds.bits).unwrap()
    );
    assert_ne!(moved.ab()[300..302], first.ab()[300..302]);
}

#[test]
fn lengths_are_checked() {
    let layout = BlockLayout::new(8, 8, 4, 4).unwrap();
    let mut rng = rng(8);
    let seeds = PaperSeeds::random(&mut rng, 4);
    let mut y = vec![0.0; 8];
    assert!(
        forward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &[0.0; 7],
            1,
            &mut y,
            &DecodeCache::default()
        )
        .is_err()
    );
    assert!(
        forward(
            &layout,
            &seeds.coords[2..],
            &seeds.bits[2..],
            &[0.0; 8],
            1,
            &mut y,
            &DecodeCache::default()
        )
        .is_err()
    );
    assert!(
        forward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &[0.0; 8],
            1,
            &mut y[1..],
            &DecodeCache::default()
        )
        .is_err()
    );
    assert!(
        forward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &[],
            0,
            &mut [],
            &DecodeCache::default()
        )
        .is_ok()
    );
}

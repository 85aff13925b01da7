//! The CPU kernels against the f64 reference on random seeds and shapes: odd sizes, 1×N
//! and N×1 matrices, cropped edge blocks, rectangular blocks, blocks larger than the
//! matrix, batch 1 to 40 (below and above the thread count, where the kernels split their
//! work differently).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::BlockLayout;
use crate::reference::{self, SeedParams};

const TOLERANCE: f64 = 1e-5;
const THRESHOLD: f32 = 0.1;

/// `max |got - want| / max |want|`, as `rbe_burn::verify::rel_err`.
fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    got.iter()
        .zip(want)
        .fold(0f64, |m, (g, w)| m.max((f64::from(*g) - w).abs()))
        / scale
}

/// Seeds as the device holds them, and the same seeds for the reference.
struct Seeds {
    coords: Vec<f32>,
    bits: Vec<i32>,
    params: Vec<SeedParams>,
}

fn random_seeds(rng: &mut StdRng, n: usize) -> Seeds {
    let mut seeds = Seeds {
        coords: Vec::new(),
        bits: Vec::new(),
        params: Vec::new(),
    };
    for _ in 0..n {
        let (r, theta): (f32, f32) = (rng.random_range(0.1..2.0), rng.random_range(-3.2..3.2));
        let rotations: u32 = rng.random();
        seeds.coords.extend([r, theta]);
        seeds.bits.extend([rng.random::<i32>(), rotations as i32]);
        seeds.params.push(SeedParams {
            r: r.into(),
            theta: theta.into(),
            rotations,
        });
    }
    seeds
}

/// Values on a 1/8 grid: every `dW` is then a multiple of 1/64 that f32 sums exactly, so
/// the transition counts must match the reference exactly.
fn grid(rng: &mut StdRng, n: usize) -> (Vec<f32>, Vec<f64>) {
    let v: Vec<f64> = (0..n)
        .map(|_| f64::from(rng.random_range(-8i32..8)) / 8.0)
        .collect();
    (v.iter().map(|&v| v as f32).collect(), v)
}

/// `(rows, cols, block_rows, block_cols, batch)`: the named edge cases, then random ones.
fn cases(rng: &mut StdRng, count: usize) -> Vec<(BlockLayout, usize)> {
    let fixed = [
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
    let mut out: Vec<_> = fixed
        .iter()
        .map(|&(r, c, br, bc, b)| (BlockLayout::new(r, c, br, bc).unwrap(), b))
        .collect();
    while out.len() < count {
        let br = rng.random_range(1..=16);
        let bc = if rng.random_bool(0.6) {
            br
        } else {
            rng.random_range(1..=16)
        };
        let layout =
            BlockLayout::new(rng.random_range(1..=70), rng.random_range(1..=70), br, bc).unwrap();
        out.push((layout, rng.random_range(1..=40)));
    }
    out
}

#[test]
fn coefficients_match_reference() {
    let mut rng = StdRng::seed_from_u64(1);
    let seeds = random_seeds(&mut rng, 5000);
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
    let mut rng = StdRng::seed_from_u64(2);
    for (layout, batch) in cases(&mut rng, 60) {
        let seeds = random_seeds(&mut rng, layout.num_blocks());
        let (x, x64) = grid(&mut rng, batch * layout.cols);
        let mut y = vec![f32::NAN; batch * layout.rows];
        forward(&layout, &seeds.coords, &seeds.bits, &x, batch, &mut y).unwrap();
        let want = reference::layer_forward(&seeds.params, &layout, &x64, batch).unwrap();
        let err = rel_err(&y, &want);
        assert!(err <= TOLERANCE, "{layout} batch {batch}: {err:e}");
    }
}

#[test]
fn forward_on_continuous_inputs() {
    let mut rng = StdRng::seed_from_u64(3);
    for (layout, batch) in cases(&mut rng, 20) {
        let seeds = random_seeds(&mut rng, layout.num_blocks());
        let x: Vec<f32> = (0..batch * layout.cols)
            .map(|_| rng.random_range(-3.0..3.0))
            .collect();
        let x64: Vec<f64> = x.iter().map(|&v| v.into()).collect();
        let mut y = vec![0.0; batch * layout.rows];
        forward(&layout, &seeds.coords, &seeds.bits, &x, batch, &mut y).unwrap();
        let want = reference::layer_forward(&seeds.params, &layout, &x64, batch).unwrap();
        let err = rel_err(&y, &want);
        assert!(err <= TOLERANCE, "{layout} batch {batch}: {err:e}");
    }
}

#[test]
fn backward_matches_reference() {
    let mut rng = StdRng::seed_from_u64(4);
    for (layout, batch) in cases(&mut rng, 60) {
        let seeds = random_seeds(&mut rng, layout.num_blocks());
        let (x, x64) = grid(&mut rng, batch * layout.cols);
        let (g, g64) = grid(&mut rng, batch * layout.rows);
        let got = backward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &x,
            &g,
            batch,
            true,
            Some(THRESHOLD),
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
        let err = rel_err(got.x.as_deref().unwrap(), &want.grad_x);
        assert!(err <= TOLERANCE, "grad_x {layout} batch {batch}: {err:e}");
        let want_seed: Vec<f64> = want
            .grad_r
            .iter()
            .zip(&want.grad_theta)
            .flat_map(|(r, t)| [*r, *t])
            .collect();
        let err = rel_err(&got.coords, &want_seed);
        assert!(
            err <= TOLERANCE,
            "grad (r, θ) {layout} batch {batch}: {err:e}"
        );
        let want_counts: Vec<f32> = want
            .transition_counts
            .iter()
            .flat_map(|c| c.map(|v| v as f32))
            .collect();
        assert_eq!(
            got.transitions.unwrap(),
            want_counts,
            "{layout} batch {batch}"
        );

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
        )
        .unwrap();
        assert!(lean.x.is_none() && lean.transitions.is_none());
        assert_eq!(lean.coords, got.coords);
    }
}

#[test]
fn apply_transitions_matches_reference() {
    let mut rng = StdRng::seed_from_u64(5);
    let n = 500;
    let mut bits: Vec<i32> = (0..2 * n).map(|_| rng.random()).collect();
    let counts: Vec<f32> = (0..4 * n)
        .map(|_| rng.random_range(-50i32..50) as f32)
        .collect();
    let before = bits.clone();
    apply_transitions(&mut bits, &counts).unwrap();
    for s in 0..n {
        let hi = (u64::from(before[2 * s] as u32) << 32) | u64::from(before[2 * s + 1] as u32);
        let c: [i32; 4] = std::array::from_fn(|k| counts[4 * s + k] as i32);
        let want = reference::apply_transition_counts(hi, c);
        assert_eq!(bits[2 * s], (want >> 32) as u32 as i32);
        assert_eq!(bits[2 * s + 1], want as u32 as i32);
    }
    assert!(apply_transitions(&mut bits, &counts[1..]).is_err());
}

#[test]
fn decode_matches_reference() {
    let mut rng = StdRng::seed_from_u64(6);
    for (layout, _) in cases(&mut rng, 30) {
        let seeds = random_seeds(&mut rng, layout.num_blocks());
        let w = decode(&layout, &seeds.coords, &seeds.bits).unwrap();
        let want = reference::decode_dense(&seeds.params, &layout).unwrap();
        let err = rel_err(&w, &want);
        assert!(err <= TOLERANCE, "{layout}: {err:e}");
    }
}

#[test]
fn cache_sees_seeds_edited_in_place() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut seeds = random_seeds(&mut rng, 300);
    let first = cache::coefficients(&seeds.coords, &seeds.bits).unwrap();
    let again = cache::coefficients(&seeds.coords, &seeds.bits).unwrap();
    assert_eq!(*first, *again);

    // Same buffers, same length, new contents: one radius, then one CORDIC bit.
    seeds.coords[2 * 150] += 0.25;
    let moved = cache::coefficients(&seeds.coords, &seeds.bits).unwrap();
    assert_eq!(
        *moved,
        Coefficients::decode(&seeds.coords, &seeds.bits).unwrap()
    );
    assert_ne!(moved.ab()[300..302], first.ab()[300..302]);
    seeds.bits[2 * 7 + 1] ^= 1;
    let flipped = cache::coefficients(&seeds.coords, &seeds.bits).unwrap();
    assert_eq!(
        *flipped,
        Coefficients::decode(&seeds.coords, &seeds.bits).unwrap()
    );
    assert_ne!(flipped.ab()[14..16], moved.ab()[14..16]);
}

#[test]
fn lengths_are_checked() {
    let layout = BlockLayout::new(8, 8, 4, 4).unwrap();
    let mut rng = StdRng::seed_from_u64(8);
    let seeds = random_seeds(&mut rng, 4);
    let mut y = vec![0.0; 8];
    assert!(forward(&layout, &seeds.coords, &seeds.bits, &[0.0; 7], 1, &mut y).is_err());
    assert!(
        forward(
            &layout,
            &seeds.coords[2..],
            &seeds.bits[2..],
            &[0.0; 8],
            1,
            &mut y
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
            &mut y[1..]
        )
        .is_err()
    );
    assert!(forward(&layout, &seeds.coords, &seeds.bits, &[], 0, &mut []).is_ok());
}

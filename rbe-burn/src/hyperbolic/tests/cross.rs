//! The Lorentz model's identities, and agreement of the three models through the
//! conversions.

use super::reference as r;
use super::*;
use crate::hyperbolic::{klein as k, lorentz as l, poincare as p};

const D: usize = 4;

/// Hyperbolic distances from the origin matching `RADII` (Poincaré radius r: `2 artanh(r)`),
/// in units of `1/sqrt(c)`.
fn lorentz_points<B: Backend>(
    rng: &mut StdRng,
    c: f64,
    device: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let pts = ball_points(rng, &RADII, D, c);
    let pt = rows::<B>(&pts, D, device);
    let lt = l::from_poincare(pt.clone(), curv::<B>(c, device));
    (pt, lt)
}

/// Points are on the hyperboloid: `|c<x,x>_L + 1|` small relative to `c x_0^2`.
fn assert_on_hyperboloid(x: &[f64], c: f64, what: &str) {
    for row in x.chunks(D + 1) {
        let inner = r::dot(&row[1..], &row[1..]) - row[0] * row[0];
        let scale = 1.0 + c * row[0] * row[0];
        assert!(row[0] > 0.0, "{what}: x_0 = {}", row[0]);
        assert!(
            (c * inner + 1.0).abs() < 1e-6 * scale,
            "{what}: c<x,x> = {}",
            c * inner
        );
    }
}

/// `exp_0 ∘ log_0`, `log_0 ∘ exp_0`, `exp_x ∘ log_x`, `log_x ∘ exp_x`, and
/// `d(x, exp_x(v)) = |v|_L`.
fn check_lorentz_identities<B: Backend>(device: &B::Device) {
    let mut rng = rng(11);
    let c = 0.6;
    let ct = curv::<B>(c, device);
    let (_, x) = lorentz_points::<B>(&mut rng, c, device);
    assert_on_hyperboloid(&host(x.clone()), c, "from_poincare");
    let x_host = host(x.clone());

    let back = l::expmap0(l::logmap0(x.clone(), ct.clone()), ct.clone());
    assert_on_hyperboloid(&host(back.clone()), c, "exp0(log0)");
    let d = host(l::distance(back, x.clone(), ct.clone()));
    for (e, radius) in d.iter().zip(RADII) {
        // Coordinates of size x_0 are known to 6e-8 x_0 in f32.
        let tol = 1e-5 + 1e-6 / (1.0 - radius);
        assert!(*e < tol, "exp0(log0(x)) r={radius}: {e}");
    }

    // log_x(exp_x(v)) = v for tangent vectors v at x of length up to 3.
    let y = x.clone().slice([0..RADII.len(), 0..D + 1]);
    let origin_tangent = l::logmap0(y, ct.clone()).mul_scalar(0.0);
    let dirs = ball_points(&mut rng, &[1.0; RADII.len()], D, 1.0);
    let lengths = [0.0, 1e-3, 0.1, 0.5, 1.0, 2.0, 3.0, 1.5, 2.5];
    let v0: Vec<f64> = dirs
        .chunks(D)
        .zip(lengths)
        .flat_map(|(dir, len)| std::iter::once(0.0).chain(r::scale(dir, len)))
        .collect();
    let v0 = rows::<B>(&v0, D + 1, device) + origin_tangent;
    // Moved to x by parallel transport: a tangent vector at x of the same length.
    let v = l::transport0(x.clone(), v0, ct.clone());
    let v_host = host(v.clone());
    let moved = l::expmap(x.clone(), v.clone(), ct.clone());
    assert_on_hyperboloid(&host(moved.clone()), c, "exp_x");
    let dist = host(l::distance(x.clone(), moved.clone(), ct.clone()));
    for ((dd, len), radius) in dist.iter().zip(lengths).zip(RADII) {
        let tol = 1e-4 * (1.0 + len) + 1e-6 / (1.0 - radius);
        assert!(
            (dd - len).abs() < tol,
            "d(x, exp_x(v)) = |v| r={radius}: {dd} vs {len}"
        );
    }
    let back = host(l::logmap(x.clone(), moved, ct.clone()));
    for (i, (b, want)) in back.chunks(D + 1).zip(v_host.chunks(D + 1)).enumerate() {
        // Compare in the ambient coordinates, relative to the coordinate size x_0; f32
        // resolves a tangent vector at x only to ~1e-7 x_0^2 (the last row, at distance
        // 12.2, is checked through d(x, exp_x(v)) above only).
        let x0 = x_host[i * (D + 1)] * c.sqrt();
        if RADII[i] > 0.9999 {
            continue;
        }
        let tol = 2e-4 * (1.0 + lengths[i]) * x0;
        let err = max_abs_diff(b, want);
        assert!(err < tol, "log_x(exp_x(v)) row {i}: {err} > {tol}");
    }

    // exp_x(log_x(y)) = y.
    let (_, y) = lorentz_points::<B>(&mut rng, c, device);
    let back = l::expmap(
        x.clone(),
        l::logmap(x.clone(), y.clone(), ct.clone()),
        ct.clone(),
    );
    let err = host(l::distance(back, y.clone(), ct.clone()));
    let d_xy = host(l::distance(x, y, ct));
    for (i, (e, d)) in err.iter().zip(&d_xy).enumerate() {
        // The intermediate tangent vector has coordinates e^d times those of the points:
        // f32 loses about 1e-7 e^d there.
        let tol = 1e-3 * (1.0 + d) + 2e-7 / (1.0 - RADII[i]) + 2e-6 * d.exp();
        assert!(*e < tol, "exp_x(log_x(y)) row {i}: {e} (d = {d})");
    }
}

backend_tests!(
    lorentz_identities,
    [ndarray, flex, wgpu_fusion],
    |B, device| { check_lorentz_identities::<B>(device) }
);

/// The distance agrees across the three models, at Poincaré radii up to `1 - 1e-5`
/// (Poincaré and Lorentz) and at Klein radii up to `1 - 1e-5` (all three).
fn check_distance_agreement<B: Backend>(device: &B::Device) {
    let mut rng = rng(12);
    for c in [1.0, 0.25, 4.0] {
        let ct = curv::<B>(c, device);
        let x = ball_points(&mut rng, &RADII, D, c);
        let mut radii = RADII;
        radii.rotate_left(3);
        let y = ball_points(&mut rng, &radii, D, c);
        let (xp, yp) = (rows::<B>(&x, D, device), rows::<B>(&y, D, device));
        let (x32, y32) = (host(xp.clone()), host(yp.clone()));
        let dp = host(p::distance(xp.clone(), yp.clone(), ct.clone()));
        let (xl, yl) = (
            l::from_poincare(xp.clone(), ct.clone()),
            l::from_poincare(yp.clone(), ct.clone()),
        );
        let dl = host(l::distance(xl.clone(), yl.clone(), ct.clone()));
        for (i, (xr, yr)) in x32.chunks(D).zip(y32.chunks(D)).enumerate() {
            let want = r::distance(xr, yr, c);
            let gap = (1.0 - c * r::dot(xr, xr)).min(1.0 - c * r::dot(yr, yr));
            let tol = 1e-4 * (1.0 + want) + 2e-7 / gap;
            assert!(
                (dp[i] - want).abs() < tol,
                "Poincaré c={c} row {i}: {} vs {want}",
                dp[i]
            );
            assert!(
                (dl[i] - want).abs() < tol,
                "Lorentz c={c} row {i}: {} vs {want}",
                dl[i]
            );
        }

        // Round trips Poincaré -> Lorentz -> Poincaré and Lorentz -> Klein -> Lorentz.
        let back = host(l::to_poincare(xl.clone(), ct.clone()));
        for (i, (b, want)) in back.chunks(D).zip(x32.chunks(D)).enumerate() {
            assert!(
                max_abs_diff(b, want) < 1e-6 / c.sqrt(),
                "P->L->P c={c} row {i}"
            );
        }

        // Klein points at Klein radii up to 1 - 1e-5 (f32 cannot go further, see klein.rs).
        let kx = ball_points(&mut rng, &RADII, D, c);
        let ky = ball_points(&mut rng, &radii, D, c);
        let (kxt, kyt) = (rows::<B>(&kx, D, device), rows::<B>(&ky, D, device));
        let (kx32, ky32) = (host(kxt.clone()), host(kyt.clone()));
        let via_p = host(p::distance(
            k::to_poincare(kxt.clone(), ct.clone()),
            k::to_poincare(kyt.clone(), ct.clone()),
            ct.clone(),
        ));
        let via_l = host(l::distance(
            k::to_lorentz(kxt.clone(), ct.clone()),
            k::to_lorentz(kyt.clone(), ct.clone()),
            ct.clone(),
        ));
        for (i, (a, b)) in kx32.chunks(D).zip(ky32.chunks(D)).enumerate() {
            // The Klein distance, f64: arcosh((1 - c<a,b>) / sqrt((1 - c|a|^2)(1 - c|b|^2))).
            let (ga, gb) = (1.0 - c * r::dot(a, a), 1.0 - c * r::dot(b, b));
            let want = ((1.0 - c * r::dot(a, b)) / (ga * gb).sqrt()).acosh() / c.sqrt();
            // Klein gaps are known to 6e-8 absolute, and enter through their square roots.
            let tol = 1e-4 * (1.0 + want) + 2e-7 / ga.min(gb);
            assert!(
                (via_p[i] - want).abs() < tol,
                "Klein->P c={c} row {i}: {} vs {want}",
                via_p[i]
            );
            assert!(
                (via_l[i] - want).abs() < tol,
                "Klein->L c={c} row {i}: {} vs {want}",
                via_l[i]
            );
        }

        // Conversion round trips through Klein.
        let kl = k::from_lorentz(k::to_lorentz(kxt.clone(), ct.clone()), ct.clone());
        let kp = k::from_poincare(k::to_poincare(kxt, ct.clone()), ct.clone());
        for (name, got) in [("K->L->K", host(kl)), ("K->P->K", host(kp))] {
            for (i, (g, want)) in got.chunks(D).zip(kx32.chunks(D)).enumerate() {
                let tol = 1e-6 / c.sqrt() / (1.0 - c.sqrt() * r::norm(want)).max(1e-5).sqrt();
                assert!(max_abs_diff(g, want) < tol, "{name} c={c} row {i}");
            }
        }
        // Lorentz -> Klein -> Poincaré equals Lorentz -> Poincaré (moderate radii).
        let moderate = xl.clone().slice([0..6, 0..D + 1]);
        let direct = host(l::to_poincare(moderate.clone(), ct.clone()));
        let via_k = host(k::to_poincare(
            k::from_lorentz(moderate, ct.clone()),
            ct.clone(),
        ));
        assert!(
            max_abs_diff(&direct, &via_k) < 1e-5 / c.sqrt(),
            "L->K->P c={c}"
        );
    }
}

backend_tests!(
    distance_agrees_across_models,
    [ndarray, flex, wgpu_fusion],
    |B, device| { check_distance_agreement::<B>(device) }
);

/// `lorentz::expmap0((0, 2u))` is `poincare::expmap0(u)` in hyperboloid coordinates (the
/// isometry doubles tangent vectors at the origin), and likewise for `logmap0`.
fn check_origin_maps_agree<B: Backend>(device: &B::Device) {
    let mut rng = rng(13);
    let c = 1.9;
    let ct = curv::<B>(c, device);
    let lengths = [0.0, 1e-5, 0.1, 1.0, 3.0, 6.0];
    let u: Vec<f64> = ball_points(&mut rng, &[1.0; 6], D, 1.0)
        .chunks(D)
        .zip(lengths)
        .flat_map(|(dir, len)| r::scale(dir, len / c.sqrt()))
        .collect();
    let ut = rows::<B>(&u, D, device);
    let via_p = l::from_poincare(p::expmap0(ut.clone(), ct.clone()), ct.clone());
    let v = Tensor::cat(
        vec![
            ut.clone().slice([0..6, 0..1]).zeros_like(),
            ut.clone().mul_scalar(2.0),
        ],
        1,
    );
    let direct = l::expmap0(v.clone(), ct.clone());
    let d = host(l::distance(via_p, direct.clone(), ct.clone()));
    for (e, len) in d.iter().zip(lengths) {
        // The Poincaré point at radius tanh(len) has 1 - c|p|^2 known to ~1e-7 absolute.
        let tol = 1e-5 + 3e-7 / (1.0 - len.tanh());
        assert!(*e < tol, "exp0 Lorentz vs Poincaré, |u| = {len}: {e}");
    }
    let logs = host(l::logmap0(direct, ct));
    let v_host = host(v);
    for (i, (g, want)) in logs.chunks(D + 1).zip(v_host.chunks(D + 1)).enumerate() {
        assert!(
            max_abs_diff(g, want) < 1e-4 * (1.0 + lengths[i]),
            "log0(exp0) row {i}"
        );
    }
}

backend_tests!(
    origin_maps_agree_across_models,
    [ndarray, flex, wgpu_fusion],
    |B, device| { check_origin_maps_agree::<B>(device) }
);

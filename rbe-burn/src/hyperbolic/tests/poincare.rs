//! Poincaré ball identities, at radii up to `1 - 1e-5` in f32, against the f64 reference.

use super::reference as r;
use super::*;
use crate::hyperbolic::poincare as p;

const D: usize = 5;

/// `exp_0(log_0(y)) = y` and `log_0(exp_0(v)) = v`.
fn check_exp0_log0<B: Backend>(device: &B::Device) {
    let mut rng = rng(1);
    for c in [1.0, 2.5, 0.3] {
        let y = ball_points(&mut rng, &RADII, D, c);
        let yt = rows::<B>(&y, D, device);
        let ct = curv::<B>(c, device);
        let y32 = host(yt.clone());
        let back = host(p::expmap0(p::logmap0(yt, ct.clone()), ct.clone()));
        // Euclidean: exp_0 contracts, so the round trip is as accurate as the input.
        let err = max_abs_diff(&back, &y32);
        assert!(err < 1e-6 / c.sqrt(), "exp0(log0(y)) c={c}: {err}");

        // Tangent vectors whose images lie at the radii: |v| = artanh(r)/sqrt(c).
        let v: Vec<f64> = y32
            .chunks(D)
            .flat_map(|row| {
                let n = r::norm(row) * c.sqrt();
                let s = if n == 0.0 {
                    1.0
                } else {
                    n.min(1.0 - 1e-5).atanh() / n
                };
                r::scale(row, s)
            })
            .collect();
        let vt = rows::<B>(&v, D, device);
        let v32 = host(vt.clone());
        let back = host(p::logmap0(p::expmap0(vt, ct.clone()), ct));
        for ((b, want), radius) in back.chunks(D).zip(v32.chunks(D)).zip(RADII) {
            // f32 knows 1 - r to ~6e-8, and artanh' = 1/(1 - r^2): the error grows like
            // 6e-8/(1 - r) (5e-3 of |v| = 6.1 at 1 - 1e-5).
            let tol = (2e-6 + 1e-7 / (1.0 - radius)) * (1.0 + r::norm(want) * c.sqrt());
            let err = max_abs_diff(b, want) * c.sqrt();
            assert!(
                err < tol,
                "log0(exp0(v)) c={c} r={radius}: {err} > {tol}: {b:?} vs {want:?}"
            );
        }
    }
}

backend_tests!(
    exp0_log0_roundtrip,
    [ndarray, flex, wgpu_fusion],
    |B, device| check_exp0_log0::<B>(device)
);

/// `exp_x(log_x(y)) = y` (measured as a hyperbolic distance) and `log_x(exp_x(v)) = v`
/// (measured in the Riemannian norm at `x`).
fn check_exp_log_at_point<B: Backend>(device: &B::Device) {
    let mut rng = rng(2);
    let c = 1.7;
    let ct = curv::<B>(c, device);
    for x_radius in [0.0, 0.5, 0.9, 0.99] {
        let x = ball_points(&mut rng, &[x_radius; RADII.len()], D, c);
        let y = ball_points(&mut rng, &RADII, D, c);
        let (xt, yt) = (rows::<B>(&x, D, device), rows::<B>(&y, D, device));
        let v = p::logmap(xt.clone(), yt.clone(), ct.clone());
        let back = p::expmap(xt.clone(), v, ct.clone());
        let dist = host(p::distance(back, yt.clone(), ct.clone()));
        let d_xy = host(p::distance(xt.clone(), yt, ct.clone()));
        for ((e, d), radius) in dist.iter().zip(&d_xy).zip(RADII) {
            // A Euclidean error of 1e-7 near radius r is 2e-7/(1 - r^2) hyperbolically.
            let tol = 1e-4 * (1.0 + d) + 1e-5 / (1.0 - radius);
            assert!(
                *e < tol,
                "exp_x(log_x(y)) |x|={x_radius} |y|={radius}: {e} > {tol}"
            );
        }

        // Tangent vectors at x of Riemannian length up to 5.
        let lam: Vec<f64> = host(p::lambda(xt.clone(), ct.clone()));
        let lengths = [0.0, 1e-4, 0.1, 1.0, 2.0, 3.0, 4.0, 5.0, 0.5];
        let dirs = ball_points(&mut rng, &[1.0; RADII.len()], D, 1.0);
        let v: Vec<f64> = dirs
            .chunks(D)
            .zip(&lengths)
            .zip(&lam)
            .flat_map(|((dir, len), l)| r::scale(dir, len / l))
            .collect();
        let vt = rows::<B>(&v, D, device);
        let v32 = host(vt.clone());
        let back = host(p::logmap(
            xt.clone(),
            p::expmap(xt, vt, ct.clone()),
            ct.clone(),
        ));
        for ((b, want), (len, l)) in back
            .chunks(D)
            .zip(v32.chunks(D))
            .zip(lengths.iter().zip(&lam))
        {
            let err = max_abs_diff(b, want) * l;
            let tol = 2e-3 * (1.0 + len);
            assert!(
                err < tol,
                "log_x(exp_x(v)) |x|={x_radius} |v|_x={len}: {err} > {tol}"
            );
        }
    }
}

backend_tests!(
    exp_log_at_point_roundtrip,
    [ndarray, flex, wgpu_fusion],
    |B, device| { check_exp_log_at_point::<B>(device) }
);

/// `x ⊕ 0 = 0 ⊕ x = x`, `(-x) ⊕ x = 0` at every radius, left cancellation
/// `(-x) ⊕ (x ⊕ y) = y`, and agreement with the textbook formula.
fn check_mobius<B: Backend>(device: &B::Device) {
    let mut rng = rng(3);
    let c = 0.8;
    let ct = curv::<B>(c, device);
    let x = ball_points(&mut rng, &RADII, D, c);
    let xt = rows::<B>(&x, D, device);
    let x32 = host(xt.clone());
    let zero = xt.zeros_like();
    let right = host(p::mobius_add(xt.clone(), zero.clone(), ct.clone()));
    let left = host(p::mobius_add(zero, xt.clone(), ct.clone()));
    assert!(max_abs_diff(&right, &x32) < 1e-6, "x + 0");
    assert!(max_abs_diff(&left, &x32) < 1e-6, "0 + x");
    let inverse = host(p::mobius_add(xt.clone().neg(), xt.clone(), ct.clone()));
    assert!(
        max_abs_diff(&inverse, &vec![0.0; x32.len()]) < 1e-6,
        "(-x) + x: {inverse:?}"
    );

    // Moderate radii: left cancellation and the textbook formula.
    let moderate = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.2, 0.6, 0.8];
    let x = ball_points(&mut rng, &moderate, D, c);
    let y = ball_points(&mut rng, &moderate.map(|r| 0.95 - r), D, c);
    let (xt, yt) = (rows::<B>(&x, D, device), rows::<B>(&y, D, device));
    let (x32, y32) = (host(xt.clone()), host(yt.clone()));
    let sum = p::mobius_add(xt.clone(), yt, ct.clone());
    let sum_host = host(sum.clone());
    let want: Vec<f64> = x32
        .chunks(D)
        .zip(y32.chunks(D))
        .flat_map(|(x, y)| r::mobius_add(x, y, c))
        .collect();
    assert!(max_abs_diff(&sum_host, &want) < 1e-5, "x + y vs reference");
    let back = host(p::mobius_add(xt.neg(), sum, ct));
    assert!(max_abs_diff(&back, &y32) < 1e-4, "(-x) + (x + y) = y");
}

backend_tests!(
    mobius_identities,
    [ndarray, flex, wgpu_fusion],
    |B, device| check_mobius::<B>(device)
);

/// The distance against `2/sqrt(c) artanh(sqrt(c)|(-x) ⊕ y|)` in f64, symmetry, `d(x, x) = 0`.
fn check_distance<B: Backend>(device: &B::Device) {
    let mut rng = rng(4);
    for c in [1.0, 3.0] {
        let ct = curv::<B>(c, device);
        let x = ball_points(&mut rng, &RADII, D, c);
        let mut radii_y = RADII;
        radii_y.reverse();
        let y = ball_points(&mut rng, &radii_y, D, c);
        let (xt, yt) = (rows::<B>(&x, D, device), rows::<B>(&y, D, device));
        let (x32, y32) = (host(xt.clone()), host(yt.clone()));
        let d = host(p::distance(xt.clone(), yt.clone(), ct.clone()));
        let d_swapped = host(p::distance(yt, xt.clone(), ct.clone()));
        let d_self = host(p::distance(xt.clone(), xt, ct));
        for (i, (xr, yr)) in x32.chunks(D).zip(y32.chunks(D)).enumerate() {
            let want = r::distance(xr, yr, c);
            // The conformal gaps 1 - c|x|^2 of f32 inputs are known to 6e-8 absolute; the
            // distance depends on their logarithms.
            let gap = (1.0 - c * r::dot(xr, xr)).min(1.0 - c * r::dot(yr, yr));
            let tol = 1e-5 * (1.0 + want) + 1e-7 / gap;
            assert!(
                (d[i] - want).abs() < tol,
                "d c={c} row {i}: {} vs {want}",
                d[i]
            );
            assert!((d[i] - d_swapped[i]).abs() < tol, "symmetry row {i}");
            assert!(d_self[i].abs() < 1e-6, "d(x, x) row {i}: {}", d_self[i]);
        }
    }
}

backend_tests!(
    distance_matches_artanh_form,
    [ndarray, flex, wgpu_fusion],
    |B, device| { check_distance::<B>(device) }
);

/// The Möbius matrix-vector product is Ganea's formula, and exactly 0 for `Mx = 0`.
fn check_matvec<B: Backend>(device: &B::Device) {
    let mut rng = rng(5);
    let c = 1.3;
    let ct = curv::<B>(c, device);
    let (d_in, d_out) = (D, 3);
    let m: Vec<Vec<f64>> = (0..d_out).map(|_| normals(&mut rng, d_in)).collect();
    let mt = rows::<B>(&m.concat(), d_in, device);
    let x = ball_points(&mut rng, &RADII, d_in, c);
    let xt = rows::<B>(&x, d_in, device);
    let x32 = host(xt.clone());
    let got = host(p::mobius_matvec(
        |t| t.matmul(mt.clone().transpose()),
        xt.clone(),
        ct.clone(),
    ));
    for (i, (g, xr)) in got.chunks(d_out).zip(x32.chunks(d_in)).enumerate() {
        let want = r::mobius_matvec(&m, xr, c);
        let tol = 1e-5 + 1e-7 / (1.0 - c.sqrt() * r::norm(xr)).max(1e-5);
        assert!(max_abs_diff(g, &want) < tol, "row {i}: {g:?} vs {want:?}");
    }
    let zero = host(p::mobius_matvec(|t| t.zeros_like(), xt, ct));
    assert!(zero.iter().all(|v| *v == 0.0));
}

backend_tests!(
    mobius_matvec_is_ganea,
    [ndarray, flex, wgpu_fusion],
    |B, device| check_matvec::<B>(device)
);

/// `project` leaves inner points alone and pulls outer ones to `(1 - 1e-5)/sqrt(c)`.
fn check_project<B: Backend>(device: &B::Device) {
    let c = 2.0;
    let ct = curv::<B>(c, device);
    let x = [0.0, 0.0, 0.3, 0.4, 3.0, 4.0, 1e20, -1e20];
    let got = host(p::project(rows::<B>(&x, 2, device), ct));
    let norms = row_norms(&got, 2);
    assert_eq!(&got[..4], &[0.0, 0.0, 0.3f32 as f64, 0.4f32 as f64]);
    for n in &norms[2..] {
        assert!(
            (n * c.sqrt() - (1.0 - 1e-5)).abs() < 1e-6,
            "projected norm {n}"
        );
    }
}

backend_tests!(
    project_onto_ball,
    [ndarray, flex, wgpu_fusion],
    |B, device| check_project::<B>(device)
);

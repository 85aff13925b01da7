//! Boundary safety: no NaN or infinity, in values or gradients, for points at the origin,
//! at radius `1 - 1e-5`, coinciding or opposite, and tangent vectors up to `1e30`.

use burn::backend::Autodiff;

use super::*;
use crate::hyperbolic::{klein as k, lorentz as l, poincare as p};

const D: usize = 4;

/// Points at every radius of [`RADII`] and more random ones up to `1 - 1e-5`; rows 9 and 10
/// of `y` repeat and negate a boundary row of `x`.
fn inputs(rng: &mut StdRng, c: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut radii_x = RADII.to_vec();
    radii_x.extend([1.0 - 1e-5, 1.0 - 1e-5, 0.0]);
    let mut radii_y = RADII.to_vec();
    radii_y.reverse();
    radii_y.extend([0.0, 0.0, 1.0 - 1e-5]);
    let x = ball_points(rng, &radii_x, D, c);
    let mut y = ball_points(rng, &radii_y, D, c);
    let n = radii_x.len();
    // y = x and y = -x at the boundary.
    y[9 * D..10 * D].copy_from_slice(&x[9 * D..10 * D]);
    let neg: Vec<f64> = x[10 * D..11 * D].iter().map(|v| -v).collect();
    y[10 * D..11 * D].copy_from_slice(&neg);
    let scales = [
        0.0, 1e-20, 1e-3, 1.0, 10.0, 1e3, 1e6, 1e12, 1e30, 1e-8, 50.0, 1e20,
    ];
    let v: Vec<f64> = normals(rng, n * D)
        .chunks(D)
        .zip(scales)
        .flat_map(|(row, s)| row.iter().map(move |v| v * s).collect::<Vec<_>>())
        .collect();
    (x, y, v)
}

/// Every operation of the three models on the inputs, weighted and summed into one loss.
fn all_ops<B: Backend>(
    x: Tensor<B, 2>,
    y: Tensor<B, 2>,
    v: Tensor<B, 2>,
    c: Tensor<B, 1>,
) -> Vec<(&'static str, Tensor<B, 2>)> {
    let mut out = vec![
        ("mobius_add", p::mobius_add(x.clone(), y.clone(), c.clone())),
        ("expmap0", p::expmap0(v.clone(), c.clone())),
        ("logmap0", p::logmap0(x.clone(), c.clone())),
        ("expmap", p::expmap(x.clone(), v.clone(), c.clone())),
        ("logmap", p::logmap(x.clone(), y.clone(), c.clone())),
        (
            "distance",
            p::distance(x.clone(), y.clone(), c.clone()).unsqueeze_dim(1),
        ),
        ("project", p::project(v.clone(), c.clone())),
        (
            "mobius_matvec",
            p::mobius_matvec(|t| t.mul_scalar(3.0), x.clone(), c.clone()),
        ),
        ("lambda", p::lambda(x.clone(), c.clone())),
    ];
    let xl = l::from_poincare(x.clone(), c.clone());
    let yl = l::from_poincare(y.clone(), c.clone());
    let [n, _] = v.dims();
    let v0 = Tensor::cat(
        vec![v.clone().slice([0..n, 0..1]).zeros_like(), v.clone()],
        1,
    );
    let vl = l::transport0(xl.clone(), v0.clone(), c.clone());
    out.extend([
        ("l::expmap", l::expmap(xl.clone(), vl.clone(), c.clone())),
        ("l::logmap", l::logmap(xl.clone(), yl.clone(), c.clone())),
        ("l::expmap0", l::expmap0(v0.clone(), c.clone())),
        ("l::logmap0", l::logmap0(xl.clone(), c.clone())),
        (
            "l::distance",
            l::distance(xl.clone(), yl.clone(), c.clone()).unsqueeze_dim(1),
        ),
        (
            "l::minkowski_dot",
            l::minkowski_dot(xl.clone(), yl.clone()).unsqueeze_dim(1),
        ),
        ("l::project", l::project(v0, c.clone())),
        ("l::to_poincare", l::to_poincare(yl.clone(), c.clone())),
        ("transport0", vl),
        ("k::from_poincare", k::from_poincare(x.clone(), c.clone())),
        (
            "k::to_poincare",
            k::to_poincare(k::from_poincare(y.clone(), c.clone()), c.clone()),
        ),
        ("k::from_lorentz", k::from_lorentz(xl.clone(), c.clone())),
        (
            "k::to_lorentz",
            k::to_lorentz(k::from_lorentz(yl, c.clone()), c.clone()),
        ),
        ("xl", xl),
    ]);
    out
}

fn check_values_finite<B: Backend>(device: &B::Device) {
    let mut rng = rng(21);
    for c in [1.0, 0.05, 20.0] {
        let (x, y, v) = inputs(&mut rng, c);
        let t = |a: &[f64]| rows::<B>(a, D, device);
        for (name, out) in all_ops(t(&x), t(&y), t(&v), curv::<B>(c, device)) {
            assert_finite(&host(out), &format!("{name} c={c}"));
        }
    }
}

backend_tests!(
    values_finite_at_boundary,
    [ndarray, flex, wgpu_fusion],
    |B, device| { check_values_finite::<B>(device) }
);

fn check_grads_finite<B: Backend>(device: &B::Device) {
    type A<B> = Autodiff<B>;
    let mut rng = rng(22);
    for c in [1.0, 20.0] {
        let (x, y, v) = inputs(&mut rng, c);
        let ops = all_ops(
            rows::<A<B>>(&x, D, device),
            rows::<A<B>>(&y, D, device),
            rows::<A<B>>(&v, D, device),
            curv::<A<B>>(c, device),
        )
        .len();
        // One backward per operation, so a failure names it.
        for i in 0..ops {
            let xt = rows::<A<B>>(&x, D, device).require_grad();
            let yt = rows::<A<B>>(&y, D, device).require_grad();
            let vt = rows::<A<B>>(&v, D, device).require_grad();
            let ct = curv::<A<B>>(c, device).require_grad();
            let (name, out) =
                all_ops(xt.clone(), yt.clone(), vt.clone(), ct.clone()).swap_remove(i);
            let weights = Tensor::<A<B>, 2>::from_data(
                TensorData::new(normals(&mut rng, out.dims().iter().product()), out.dims()),
                device,
            );
            let grads = (out * weights).sum().backward();
            for (what, g) in [
                ("x", xt.grad(&grads)),
                ("y", yt.grad(&grads)),
                ("v", vt.grad(&grads)),
                ("c", ct.grad(&grads).map(|g| g.unsqueeze())),
            ] {
                if let Some(g) = g {
                    assert_finite(&host(g), &format!("d {name} / d {what}, c={c}"));
                }
            }
        }
    }
}

backend_tests!(
    gradients_finite_at_boundary,
    [ndarray, flex, wgpu_fusion],
    |B, device| { check_grads_finite::<B>(device) }
);

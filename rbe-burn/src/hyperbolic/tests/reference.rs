//! An f64 host reference of the Poincaré operations, in the textbook forms (Ganea et al.
//! 2018), independent of the tensor code.

pub type Vector = Vec<f64>;

pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

pub fn norm(x: &[f64]) -> f64 {
    dot(x, x).sqrt()
}

pub fn scale(x: &[f64], s: f64) -> Vector {
    x.iter().map(|v| v * s).collect()
}

/// `x ⊕_c y`, textbook form.
pub fn mobius_add(x: &[f64], y: &[f64], c: f64) -> Vector {
    let xy = dot(x, y);
    let (xx, yy) = (dot(x, x), dot(y, y));
    let a = 1.0 + 2.0 * c * xy + c * yy;
    let b = 1.0 - c * xx;
    let den = 1.0 + 2.0 * c * xy + c * c * xx * yy;
    x.iter()
        .zip(y)
        .map(|(x, y)| (a * x + b * y) / den)
        .collect()
}

pub fn expmap0(v: &[f64], c: f64) -> Vector {
    let n = norm(v);
    if n == 0.0 {
        return v.to_vec();
    }
    scale(v, (c.sqrt() * n).tanh() / (c.sqrt() * n))
}

/// `2/sqrt(c) artanh(sqrt(c)|(-x) ⊕ y|)`.
pub fn distance(x: &[f64], y: &[f64], c: f64) -> f64 {
    let w = mobius_add(&scale(x, -1.0), y, c);
    2.0 / c.sqrt() * (c.sqrt() * norm(&w)).atanh()
}

/// Ganea's Möbius matrix-vector product for `m` given as rows `[d_out][d_in]`.
pub fn mobius_matvec(m: &[Vector], x: &[f64], c: f64) -> Vector {
    let mx: Vector = m.iter().map(|row| dot(row, x)).collect();
    let (xn, mxn) = (norm(x), norm(&mx));
    if xn == 0.0 || mxn == 0.0 {
        return vec![0.0; mx.len()];
    }
    let sc = c.sqrt();
    scale(&mx, (mxn / xn * (sc * xn).atanh()).tanh() / (sc * mxn))
}

/// Ganea's MLR logit for one class: offset point `p`, normal `a` at `p`.
pub fn mlr_logit(x: &[f64], p: &[f64], a: &[f64], c: f64) -> f64 {
    let z = mobius_add(&scale(p, -1.0), x, c);
    let sc = c.sqrt();
    let lambda_p = 2.0 / (1.0 - c * dot(p, p));
    let an = norm(a);
    lambda_p * an / sc * (2.0 * sc * dot(&z, a) / ((1.0 - c * dot(&z, &z)) * an)).asinh()
}

//! Node embeddings of a tree, trained on its edges with the loss of Nickel & Kiela (2017),
//! in the Poincaré ball or in Euclidean space.
//!
//! Every directed edge `(u, v)` (both directions of each tree edge) is scored against
//! `negatives` nodes `w` drawn uniformly from those that are neither `u` nor adjacent to
//! `u`: the loss is `-log( e^{-d(u,v)} / (e^{-d(u,v)} + sum_w e^{-d(u,w)}) )`, summed over
//! the batch so that the learning rate is per edge whatever the batch size.
//!
//! The optimizer is Riemannian SGD in both geometries, so the comparison changes nothing
//! but the metric: the Euclidean gradient `g` becomes the Riemannian one `g / lambda_x^2`
//! (`lambda_x = 2 / (1 - c |x|^2)`, the conformal factor of the ball) and the step is the
//! exponential map `x <- exp_x(-lr * g / lambda_x^2)`, then a projection back inside the
//! ball (float rounding can land a point on the boundary). In Euclidean space the same
//! rule is plain SGD. The first `burn_in_epochs` run at `lr * burn_in_lr_factor`, as in
//! the paper, so that the points find an angular layout before they spread out. Points
//! start uniform in `[-init_radius, init_radius]^dim`, near the origin.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::HypError;
use super::tree::Tree;
use rbe_burn::hyperbolic::poincare;

/// Where the embedding lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Geometry {
    /// `R^dim` with the Euclidean distance.
    Euclidean,
    /// The Poincaré ball of curvature `-1`.
    Poincare,
}

impl Geometry {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Euclidean => "euclidean",
            Self::Poincare => "poincare",
        }
    }

    /// The curvature magnitude of the ball, as the geometry functions take it.
    fn curvature<B: Backend>(device: &B::Device) -> Tensor<B, 1> {
        Tensor::from_floats([1.0], device)
    }

    /// Row-wise distances.
    ///
    /// # Shapes
    /// - `x`, `y`: `[n, dim]`
    /// - output: `[n]`
    pub fn distance<B: Backend>(self, x: Tensor<B, 2>, y: Tensor<B, 2>) -> Tensor<B, 1> {
        match self {
            Self::Euclidean => {
                let n = x.dims()[0];
                (x - y).square().sum_dim(1).sqrt().reshape([n])
            }
            Self::Poincare => {
                let c = Self::curvature(&x.device());
                poincare::distance(x, y, c)
            }
        }
    }

    /// One Riemannian SGD step of every point from its Euclidean gradient `grad`.
    ///
    /// # Shapes
    /// - `x`, `grad`, output: `[n, dim]`
    fn step<B: Backend>(self, x: Tensor<B, 2>, grad: Tensor<B, 2>, lr: f64) -> Tensor<B, 2> {
        match self {
            Self::Euclidean => x - grad * lr,
            Self::Poincare => {
                let c = Self::curvature(&x.device());
                // 1 / lambda_x^2: the inverse of the metric tensor `lambda_x^2 I`.
                let inv_metric = poincare::lambda(x.clone(), c.clone()).square().recip();
                let tangent = grad * inv_metric * (-lr);
                poincare::project(poincare::expmap(x, tangent, c.clone()), c)
            }
        }
    }
}

/// How to train an embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingConfig {
    /// Dimensions per point.
    pub dim: usize,
    /// Passes over all directed edges.
    pub epochs: usize,
    /// Directed edges per step.
    pub batch_size: usize,
    /// Negative nodes drawn per edge.
    pub negatives: usize,
    /// Learning rate per edge (the loss is summed over the batch).
    pub lr: f64,
    /// Epochs at the start that use `lr * burn_in_lr_factor`.
    pub burn_in_epochs: usize,
    /// The burn-in's factor on `lr`.
    pub burn_in_lr_factor: f64,
    /// Half-width of the uniform initialisation around the origin.
    pub init_radius: f64,
    /// Seeds the initialisation, the edge order and the negatives.
    pub seed: u64,
}

impl EmbeddingConfig {
    /// The defaults of the `tree_embedding` example for `dim` dimensions.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            epochs: 200,
            batch_size: 64,
            negatives: 50,
            lr: 0.3,
            burn_in_epochs: 10,
            burn_in_lr_factor: 0.1,
            init_radius: 1e-3,
            seed: 0,
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), HypError> {
        let bad = |what: String| Err(HypError::Config(what));
        if self.dim == 0 || self.batch_size == 0 || self.negatives == 0 {
            return bad(format!(
                "dim, batch_size and negatives must be > 0, got {}, {}, {}",
                self.dim, self.batch_size, self.negatives
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("lr must be finite and > 0, got {}", self.lr));
        }
        if !(self.burn_in_lr_factor.is_finite() && self.burn_in_lr_factor > 0.0) {
            return bad(format!(
                "burn_in_lr_factor must be finite and > 0, got {}",
                self.burn_in_lr_factor
            ));
        }
        // Inside the unit ball even for dim = 1000 (radius * sqrt(dim) < 1).
        if !(self.init_radius > 0.0 && self.init_radius < 0.03) {
            return bad(format!(
                "init_radius must be in (0, 0.03), got {}",
                self.init_radius
            ));
        }
        Ok(())
    }
}

/// A trained embedding, back on the host.
#[derive(Debug, Clone)]
pub struct TrainedEmbedding {
    /// Where it lives.
    pub geometry: Geometry,
    /// Dimensions per point.
    pub dim: usize,
    /// The points, row-major `[n, dim]`.
    pub points: Vec<f32>,
    /// Mean loss per directed edge over the last epoch.
    pub final_loss: f64,
    /// Seconds of training.
    pub train_s: f64,
}

/// Trains an embedding of `tree`'s nodes; `on_epoch(epoch, mean_loss)` runs after every
/// epoch (from 1).
pub fn train<B: AutodiffBackend>(
    tree: &Tree,
    geometry: Geometry,
    config: &EmbeddingConfig,
    device: &B::Device,
    mut on_epoch: impl FnMut(usize, f64),
) -> Result<TrainedEmbedding, HypError> {
    config.validate()?;
    let n = tree.len();
    // A node adjacent to all others (a star's centre) would have no negatives to draw.
    if (0..n).any(|u| tree.neighbors(u).count() + 1 >= n) {
        return Err(HypError::Config(
            "every node needs a non-neighbour to draw as a negative".into(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let init: Vec<f32> = (0..n * config.dim)
        .map(|_| rng.random_range(-config.init_radius..config.init_radius) as f32)
        .collect();
    let mut points: Tensor<B::InnerBackend, 2> =
        Tensor::from_data(TensorData::new(init, [n, config.dim]), device);
    let mut pairs: Vec<(usize, usize)> = tree
        .edges()
        .into_iter()
        .flat_map(|(p, c)| [(p, c), (c, p)])
        .collect();
    let adjacent = |u: usize, w: usize| tree.parent(u) == Some(w) || tree.parent(w) == Some(u);

    let start = Instant::now();
    let mut final_loss = f64::NAN;
    let k = config.negatives + 1;
    for epoch in 1..=config.epochs {
        let lr = if epoch <= config.burn_in_epochs {
            config.lr * config.burn_in_lr_factor
        } else {
            config.lr
        };
        pairs.shuffle(&mut rng);
        let mut epoch_loss = 0.0;
        for batch in pairs.chunks(config.batch_size) {
            let mut sources = Vec::with_capacity(batch.len() * k);
            let mut targets = Vec::with_capacity(batch.len() * k);
            for &(u, v) in batch {
                sources.extend(std::iter::repeat_n(u as i32, k));
                targets.push(v as i32);
                for _ in 0..config.negatives {
                    let w = loop {
                        let w = rng.random_range(0..n);
                        if w != u && !adjacent(u, w) {
                            break w;
                        }
                    };
                    targets.push(w as i32);
                }
            }
            let len = sources.len();
            let sources = Tensor::from_data(TensorData::new(sources, [len]), device);
            let targets = Tensor::from_data(TensorData::new(targets, [len]), device);

            let x: Tensor<B, 2> = Tensor::from_inner(points.clone()).require_grad();
            let d = geometry
                .distance(x.clone().select(0, sources), x.clone().select(0, targets))
                .reshape([batch.len(), k]);
            // Column 0 holds the true neighbour.
            let loss = log_softmax(d.neg(), 1).slice(s![.., 0..1]).sum().neg();
            let grads = loss.backward();
            epoch_loss += loss.into_scalar().elem::<f64>();
            let grad = x.grad(&grads).expect("the points require a gradient");
            points = geometry.step(points, grad, lr);
        }
        let mean = epoch_loss / pairs.len() as f64;
        if !mean.is_finite() {
            return Err(HypError::Diverged { epoch, loss: mean });
        }
        final_loss = mean;
        on_epoch(epoch, mean);
    }
    let train_s = start.elapsed().as_secs_f64();
    let points = points
        .into_data()
        .to_vec::<f32>()
        .expect("the points are f32");
    Ok(TrainedEmbedding {
        geometry,
        dim: config.dim,
        points,
        final_loss,
        train_s,
    })
}

/// All pairwise distances of `points` (row-major `[n, dim]`) in `geometry`, computed on
/// the backend `B` in blocks of rows.
///
/// # Shapes
/// - `points`: `[n, dim]`
/// - output: `[n, n]`, row-major
pub fn distance_matrix<B: Backend>(
    points: &[f32],
    dim: usize,
    geometry: Geometry,
    device: &B::Device,
) -> Result<Vec<f32>, HypError> {
    if dim == 0 || !points.len().is_multiple_of(dim) {
        return Err(HypError::Config(format!(
            "{} coordinates do not make points of dimension {dim}",
            points.len()
        )));
    }
    // Rows per block: keeps each block's pairs near 2^17 whatever n is.
    let n = points.len() / dim;
    let rows = (131_072 / n.max(1)).max(1);
    let all: Tensor<B, 2> = Tensor::from_data(TensorData::new(points.to_vec(), [n, dim]), device);
    let mut out = Vec::with_capacity(n * n);
    for first in (0..n).step_by(rows) {
        let last = (first + rows).min(n);
        let sources: Vec<i32> = (first..last)
            .flat_map(|u| std::iter::repeat_n(u as i32, n))
            .collect();
        let targets: Vec<i32> = (first..last).flat_map(|_| 0..n as i32).collect();
        let len = sources.len();
        let sources = Tensor::from_data(TensorData::new(sources, [len]), device);
        let targets = Tensor::from_data(TensorData::new(targets, [len]), device);
        let d = geometry.distance(
            all.clone().select(0, sources),
            all.clone().select(0, targets),
        );
        out.extend(d.into_data().to_vec::<f32>().expect("distances are f32"));
    }
    // The diagonal is 0 by definition; rounding in the ball's formula can leave a few ulps.
    for u in 0..n {
        out[u * n + u] = 0.0;
    }
    Ok(out)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use crate::hyperbolic::metrics::mean_average_precision;
    use burn::backend::{Autodiff, Flex};

    type B = Flex<f32, i32>;

    /// `arcosh(1 + 2|x - y|^2 / ((1 - |x|^2)(1 - |y|^2)))`, the ball's distance in f64.
    fn poincare_f64(x: &[f64], y: &[f64]) -> f64 {
        let sq = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>();
        let diff: Vec<f64> = x.iter().zip(y).map(|(a, b)| a - b).collect();
        (1.0 + 2.0 * sq(&diff) / ((1.0 - sq(x)) * (1.0 - sq(y)))).acosh()
    }

    #[test]
    fn distance_matrix_matches_f64_references() {
        let points = [0.0f32, 0.0, 0.5, 0.1, -0.3, 0.8, 0.9, -0.2];
        let p = |i: usize| [f64::from(points[2 * i]), f64::from(points[2 * i + 1])];
        let device = Default::default();
        let hyp = distance_matrix::<B>(&points, 2, Geometry::Poincare, &device).unwrap();
        let euc = distance_matrix::<B>(&points, 2, Geometry::Euclidean, &device).unwrap();
        for u in 0..4 {
            for v in 0..4 {
                let want = poincare_f64(&p(u), &p(v));
                let got = f64::from(hyp[u * 4 + v]);
                assert!(
                    (got - want).abs() < 1e-4 * (1.0 + want),
                    "({u}, {v}): {got} vs {want}"
                );
                let want = ((p(u)[0] - p(v)[0]).powi(2) + (p(u)[1] - p(v)[1]).powi(2)).sqrt();
                let got = f64::from(euc[u * 4 + v]);
                assert!((got - want).abs() < 1e-5, "({u}, {v}): {got} vs {want}");
            }
        }
        assert!(distance_matrix::<B>(&points, 3, Geometry::Euclidean, &device).is_err());
    }

    #[test]
    fn a_riemannian_step_follows_the_scaled_gradient_and_stays_in_the_ball() {
        let device = Default::default();
        let x = Tensor::<B, 2>::from_floats([[0.0, 0.0], [0.6, 0.0], [0.0, 0.99]], &device);
        // A small step at the origin moves by lr * g / lambda_0^2 = lr * g / 4 (to first
        // order; expmap at 0 is tanh, so 0.01 stays 0.01 to 1e-6).
        let g = Tensor::<B, 2>::from_floats([[-0.4, 0.0], [0.0, 0.0], [0.0, -1e6]], &device);
        let out = Geometry::Poincare
            .step(x, g, 0.1)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!(
            (out[0] - 0.01).abs() < 1e-6 && out[1].abs() < 1e-9,
            "{out:?}"
        );
        assert!((out[2] - 0.6).abs() < 1e-7 && out[3] == 0.0, "{out:?}");
        // A huge gradient towards the boundary ends just inside it.
        let r = (out[4].powi(2) + out[5].powi(2)).sqrt();
        assert!(r > 0.99 && r < 1.0, "{r}");
    }

    #[test]
    fn training_reconstructs_a_small_tree_in_both_geometries() {
        let tree = Tree::random(80, 2, 3, 5).unwrap();
        let device = Default::default();
        for geometry in [Geometry::Poincare, Geometry::Euclidean] {
            let config = EmbeddingConfig {
                epochs: 30,
                batch_size: 16,
                negatives: 10,
                lr: 0.3,
                burn_in_epochs: 3,
                ..EmbeddingConfig::new(2)
            };
            let mut losses = Vec::new();
            let trained =
                train::<Autodiff<B>>(&tree, geometry, &config, &device, |_, l| losses.push(l))
                    .unwrap();
            assert_eq!(losses.len(), 30);
            assert!(losses[29] < 0.7 * losses[0], "{geometry:?}: {losses:?}");
            let dist = distance_matrix::<B>(&trained.points, 2, geometry, &device).unwrap();
            let map = mean_average_precision(&tree, &dist).unwrap();
            // Random points score about degree / n = 0.03.
            assert!(map > 0.3, "{geometry:?}: MAP {map}");
            if geometry == Geometry::Poincare {
                let max = trained
                    .points
                    .chunks(2)
                    .map(|p| p[0].hypot(p[1]))
                    .fold(0.0f32, f32::max);
                assert!(max < 1.0, "{max}");
            }
        }
    }

    #[test]
    fn bad_configs_are_errors() {
        let tree = Tree::random(20, 2, 3, 5).unwrap();
        let device = Default::default();
        for config in [
            EmbeddingConfig {
                lr: 0.0,
                ..EmbeddingConfig::new(2)
            },
            EmbeddingConfig {
                negatives: 0,
                ..EmbeddingConfig::new(2)
            },
            EmbeddingConfig {
                init_radius: 0.5,
                ..EmbeddingConfig::new(2)
            },
        ] {
            let r = train::<Autodiff<B>>(&tree, Geometry::Euclidean, &config, &device, |_, _| {});
            assert!(r.is_err(), "{config:?}");
        }
        // A star: the centre has no non-neighbour to draw.
        let star = Tree::from_parents((0..6).map(|i| (i > 0).then_some(0)).collect());
        let r = train::<Autodiff<B>>(
            &star,
            Geometry::Euclidean,
            &EmbeddingConfig::new(2),
            &device,
            |_, _| {},
        );
        assert!(r.is_err());
    }
}

//! A generated taxonomy for the hyperbolic classifier: a balanced class tree whose nodes
//! have feature prototypes that drift from their parent's, less at every level, and
//! samples that are noisy copies of a leaf's prototype labelled by the leaf's ancestor at
//! a chosen depth.
//!
//! Every node's prototype is its parent's plus a Gaussian offset of standard deviation
//! `spread * decay^(depth - 1)`: siblings near the root are far apart, siblings near the
//! leaves close, so the classes form a hierarchy of clusters (the kind of data hyperbolic
//! space is said to suit). A sample is a uniformly drawn leaf's prototype plus Gaussian
//! noise of standard deviation `noise`; its label is the leaf's ancestor at `label_depth`.
//! Features are finally scaled by one constant so that the training samples have mean
//! squared norm 1 (the hyperbolic models map them into the ball with `expmap0`, which
//! saturates for long vectors).

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr_free::standard_normal;

use super::HypError;
use super::tree::Tree;

/// How to generate a [`Taxonomy`].
#[derive(Debug, Clone, PartialEq)]
pub struct TaxonomyConfig {
    /// Children of every internal node.
    pub branching: usize,
    /// Depth of the leaves (the root is depth 0).
    pub depth: usize,
    /// Depth of the nodes that are the classes, `1..=depth`.
    pub label_depth: usize,
    /// Features per sample.
    pub features: usize,
    /// Standard deviation of the root's children's offsets.
    pub spread: f64,
    /// Factor on the offsets' standard deviation per level below the first.
    pub decay: f64,
    /// Standard deviation of the per-sample noise.
    pub noise: f64,
    /// Training samples.
    pub train: usize,
    /// Test samples.
    pub test: usize,
    /// Seeds the prototypes and the samples.
    pub seed: u64,
}

impl Default for TaxonomyConfig {
    fn default() -> Self {
        Self {
            branching: 4,
            depth: 4,
            label_depth: 3,
            features: 32,
            spread: 1.0,
            decay: 0.6,
            noise: 0.35,
            train: 8192,
            test: 2048,
            seed: 0,
        }
    }
}

impl TaxonomyConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), HypError> {
        let bad = |what: String| Err(HypError::Config(what));
        if self.branching < 2 || self.depth == 0 {
            return bad(format!(
                "need branching >= 2 and depth >= 1, got {} and {}",
                self.branching, self.depth
            ));
        }
        if !(1..=self.depth).contains(&self.label_depth) {
            return bad(format!(
                "label_depth must be in 1..={}, got {}",
                self.depth, self.label_depth
            ));
        }
        let leaves = (self.branching as u128).checked_pow(self.depth as u32);
        if leaves.is_none_or(|l| l > 1 << 20) {
            return bad(format!(
                "{}^{} leaves is too many (at most 2^20)",
                self.branching, self.depth
            ));
        }
        if self.features == 0 || self.train == 0 || self.test == 0 {
            return bad("features, train and test must be > 0".into());
        }
        for (name, v) in [
            ("spread", self.spread),
            ("decay", self.decay),
            ("noise", self.noise),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} must be finite and >= 0, got {v}"));
            }
        }
        Ok(())
    }

    /// Classes: the nodes at `label_depth`.
    pub fn classes(&self) -> usize {
        self.branching.pow(self.label_depth as u32)
    }
}

/// Samples and their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Row-major `[len, features]`.
    pub x: Vec<f32>,
    /// The class of every sample, `0..classes`.
    pub labels: Vec<usize>,
}

impl Split {
    /// Samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// A generated taxonomy and its samples.
#[derive(Debug, Clone)]
pub struct Taxonomy {
    /// The class tree (balanced; nodes in breadth-first order).
    pub tree: Tree,
    /// Features per sample.
    pub features: usize,
    /// Classes: the nodes at the label depth, numbered in breadth-first order.
    pub classes: usize,
    /// The training samples.
    pub train: Split,
    /// The test samples, drawn from the same distribution.
    pub test: Split,
}

impl Taxonomy {
    /// Generates the taxonomy of `config`; the same config always gives the same data.
    pub fn generate(config: &TaxonomyConfig) -> Result<Self, HypError> {
        config.validate()?;
        let b = config.branching;
        let nodes = (0..=config.depth).map(|l| b.pow(l as u32)).sum::<usize>();
        let tree = Tree::from_parents(
            (0..nodes)
                .map(|i| i.checked_sub(1).map(|j| j / b))
                .collect(),
        );
        let mut rng = StdRng::seed_from_u64(config.seed);
        let f = config.features;
        // Prototypes, parents before children (breadth-first order).
        let mut proto = vec![0.0f64; nodes * f];
        for node in 1..nodes {
            let parent = tree.parent(node).expect("only the root has no parent");
            let sd = config.spread * config.decay.powi(tree.depth(node) as i32 - 1);
            for k in 0..f {
                proto[node * f + k] = proto[parent * f + k] + sd * standard_normal(&mut rng);
            }
        }
        let first_leaf = nodes - b.pow(config.depth as u32);
        let first_class = (0..config.label_depth)
            .map(|l| b.pow(l as u32))
            .sum::<usize>();
        let class_of = |mut leaf: usize| {
            while tree.depth(leaf) > config.label_depth {
                leaf = tree.parent(leaf).expect("below the root");
            }
            leaf - first_class
        };
        let mut draw = |len: usize| {
            let mut x = Vec::with_capacity(len * f);
            let mut labels = Vec::with_capacity(len);
            for _ in 0..len {
                let leaf = rand::Rng::random_range(&mut rng, first_leaf..nodes);
                labels.push(class_of(leaf));
                for k in 0..f {
                    x.push(proto[leaf * f + k] + config.noise * standard_normal(&mut rng));
                }
            }
            (x, labels)
        };
        let (train_x, train_labels) = draw(config.train);
        let (test_x, test_labels) = draw(config.test);
        let mean_sq = train_x.iter().map(|v| v * v).sum::<f64>() / config.train as f64;
        let scale = if mean_sq > 0.0 {
            mean_sq.sqrt().recip()
        } else {
            1.0
        };
        let split = |x: Vec<f64>, labels| Split {
            x: x.into_iter().map(|v| (v * scale) as f32).collect(),
            labels,
        };
        Ok(Self {
            tree,
            features: f,
            classes: config.classes(),
            train: split(train_x, train_labels),
            test: split(test_x, test_labels),
        })
    }
}

/// A standard normal draw without `rand_distr` (not a dependency): Box-Muller.
mod rand_distr_free {
    use rand::Rng;

    pub fn standard_normal(rng: &mut impl Rng) -> f64 {
        // 1 - u is in (0, 1], so its log is finite.
        let u: f64 = 1.0 - rng.random::<f64>();
        let v: f64 = rng.random::<f64>();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> TaxonomyConfig {
        TaxonomyConfig {
            branching: 3,
            depth: 3,
            label_depth: 2,
            features: 8,
            train: 600,
            test: 200,
            ..TaxonomyConfig::default()
        }
    }

    #[test]
    fn generation_is_deterministic_and_shaped() {
        let a = Taxonomy::generate(&small()).unwrap();
        let b = Taxonomy::generate(&small()).unwrap();
        assert_eq!(a.train, b.train);
        assert_eq!(a.test, b.test);
        assert_eq!(a.classes, 9);
        assert_eq!(a.tree.len(), 1 + 3 + 9 + 27);
        assert_eq!(a.train.x.len(), 600 * 8);
        assert_eq!(a.test.len(), 200);
        assert!(a.train.labels.iter().chain(&a.test.labels).all(|&l| l < 9));
        // Every class is drawn (600 samples over 9 classes).
        for class in 0..9 {
            assert!(a.train.labels.contains(&class), "class {class}");
        }
        let other = Taxonomy::generate(&TaxonomyConfig { seed: 1, ..small() }).unwrap();
        assert_ne!(a.train, other.train);
        let mean_sq = a.train.x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / 600.0;
        assert!((mean_sq - 1.0).abs() < 1e-4, "{mean_sq}");
    }

    #[test]
    fn without_noise_a_class_is_nearer_its_own_samples() {
        // With no noise and no decay below the classes, every sample of a class is the same
        // point, and different classes are different points.
        let config = TaxonomyConfig {
            noise: 0.0,
            decay: 0.0,
            label_depth: 1,
            ..small()
        };
        let t = Taxonomy::generate(&config).unwrap();
        let row = |i: usize| &t.train.x[i * 8..(i + 1) * 8];
        for i in 0..50 {
            for j in 0..50 {
                let same = t.train.labels[i] == t.train.labels[j];
                assert_eq!(row(i) == row(j), same, "samples {i}, {j}");
            }
        }
    }

    #[test]
    fn bad_configs_are_errors() {
        for bad in [
            TaxonomyConfig {
                branching: 1,
                ..small()
            },
            TaxonomyConfig {
                label_depth: 0,
                ..small()
            },
            TaxonomyConfig {
                label_depth: 4,
                ..small()
            },
            TaxonomyConfig {
                noise: f64::NAN,
                ..small()
            },
            TaxonomyConfig {
                train: 0,
                ..small()
            },
            TaxonomyConfig {
                branching: 1000,
                depth: 5,
                ..small()
            },
        ] {
            assert!(Taxonomy::generate(&bad).is_err(), "{bad:?}");
        }
    }
}

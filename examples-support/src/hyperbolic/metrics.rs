//! How well an embedding reproduces a graph: mean average precision of edge
//! reconstruction and average distortion.
//!
//! Both read a dense `[n, n]` matrix of embedding distances, row-major, computed by the
//! caller in whatever geometry the embedding lives in.

use super::HypError;
use super::tree::Tree;

/// Mean average precision of edge reconstruction (Nickel & Kiela 2017, §4.1).
///
/// For every node `u`, all other nodes are ranked by their embedding distance to `u`; each
/// neighbour `v` of `u` scores the precision of the ranking cut at `v` (neighbours at
/// distance `<= d(u, v)` over all nodes at distance `<= d(u, v)`; ties count against the
/// embedding). `AP(u)` averages these, and the result averages `AP(u)` over all nodes.
/// 1 means every node's neighbours are its nearest nodes.
///
/// # Shapes
/// - `dist`: `[n, n]` with `n = tree.len()`
pub fn mean_average_precision(tree: &Tree, dist: &[f32]) -> Result<f64, HypError> {
    let n = tree.len();
    check_square(dist.len(), n)?;
    let mut total = 0.0;
    for u in 0..n {
        let row = &dist[u * n..(u + 1) * n];
        let neighbors: Vec<usize> = tree.neighbors(u).collect();
        let mut ap = 0.0;
        for &v in &neighbors {
            let cut = row[v];
            let ranked = (0..n).filter(|&w| w != u && row[w] <= cut).count();
            let hits = neighbors.iter().filter(|&&w| row[w] <= cut).count();
            ap += hits as f64 / ranked as f64;
        }
        total += ap / neighbors.len() as f64;
    }
    Ok(total / n as f64)
}

/// Average distortion over all pairs, after the best global rescaling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Distortion {
    /// `mean |s * d_emb(u, v) / d_graph(u, v) - 1|` over all pairs `u < v`.
    pub average: f64,
    /// The scale `s` that minimises it: an embedding trained with a ranking loss has no
    /// fixed unit, so the distortion is reported in the unit that favours it most.
    pub scale: f64,
}

/// The average distortion of `emb` against the graph distances `graph` over all pairs
/// `u < v` (Sala et al. 2018, with the scale chosen as in [`Distortion::scale`]).
///
/// The scale is exact: with `r = d_emb / d_graph`, `sum |s r - 1| = sum r |s - 1/r|` is
/// minimised by the median of `1/r` weighted by `r`. Pairs at embedding distance 0 add 1
/// whatever the scale.
///
/// # Shapes
/// - `graph`, `emb`: `[n, n]`
pub fn average_distortion(graph: &[u32], emb: &[f32], n: usize) -> Result<Distortion, HypError> {
    check_square(graph.len(), n)?;
    check_square(emb.len(), n)?;
    if n < 2 {
        return Err(HypError::Config("distortion needs >= 2 nodes".into()));
    }
    let mut ratios = Vec::with_capacity(n * (n - 1) / 2);
    for u in 0..n {
        for v in u + 1..n {
            let g = graph[u * n + v];
            if g == 0 || g == u32::MAX {
                return Err(HypError::Config(format!(
                    "graph distance ({u}, {v}) = {g}: the graph must be connected and simple"
                )));
            }
            ratios.push(f64::from(emb[u * n + v]) / f64::from(g));
        }
    }
    let scale = weighted_median_inverse(&ratios);
    let average = ratios.iter().map(|r| (scale * r - 1.0).abs()).sum::<f64>() / ratios.len() as f64;
    Ok(Distortion { average, scale })
}

/// The median of `1 / r` weighted by `r`, over the positive `r` (1 if there are none).
fn weighted_median_inverse(ratios: &[f64]) -> f64 {
    let mut points: Vec<(f64, f64)> = ratios
        .iter()
        .filter(|r| **r > 0.0 && r.is_finite())
        .map(|&r| (1.0 / r, r))
        .collect();
    if points.is_empty() {
        return 1.0;
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let half = points.iter().map(|p| p.1).sum::<f64>() / 2.0;
    let mut acc = 0.0;
    for (x, w) in &points {
        acc += w;
        if acc >= half {
            return *x;
        }
    }
    points[points.len() - 1].0
}

fn check_square(len: usize, n: usize) -> Result<(), HypError> {
    if len == n * n {
        Ok(())
    } else {
        Err(HypError::Config(format!(
            "distance matrix has {len} entries, expected {n} x {n}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(n: usize) -> Tree {
        Tree::from_parents((0..n).map(|i| i.checked_sub(1)).collect())
    }

    #[test]
    fn graph_distances_are_a_perfect_embedding_at_any_scale() {
        let t = Tree::random(120, 1, 3, 1).unwrap();
        let graph = t.all_pairs_distances();
        let emb: Vec<f32> = graph.iter().map(|&d| 2.5 * d as f32).collect();
        assert_eq!(mean_average_precision(&t, &emb).unwrap(), 1.0);
        let d = average_distortion(&graph, &emb, t.len()).unwrap();
        assert!(d.average < 1e-6, "{d:?}");
        assert!((d.scale - 0.4).abs() < 1e-6, "{d:?}");
    }

    #[test]
    fn average_precision_by_hand() {
        // Path 0-1-2-3; node 1's neighbours are 0 and 2. Ranking from 1: 2 (0.1), 3 (0.2),
        // 0 (0.3), so AP(1) = (1/1 + 2/3) / 2. All other nodes rank their neighbours first.
        let t = path(4);
        let mut emb = vec![0.0f32; 16];
        let mut set = |u: usize, v: usize, d: f32| {
            emb[u * 4 + v] = d;
            emb[v * 4 + u] = d;
        };
        set(1, 2, 0.1);
        set(1, 3, 0.2);
        set(1, 0, 0.3);
        set(0, 2, 0.5);
        set(0, 3, 0.6);
        set(2, 3, 0.05);
        // Node 0: neighbour 1 at 0.3, others 0.5, 0.6: AP 1. Node 2: neighbours 1 (0.1), 3
        // (0.05): AP 1. Node 3: neighbour 2 at 0.05: AP 1.
        let expected = (3.0 + (1.0 + 2.0 / 3.0) / 2.0) / 4.0;
        let map = mean_average_precision(&t, &emb).unwrap();
        assert!((map - expected).abs() < 1e-12, "{map} vs {expected}");
    }

    #[test]
    fn distortion_by_hand_and_the_scale_is_optimal() {
        // Path 0-1-2: graph distances 1, 2, 1; embedding distances 1, 1, 1.
        let graph = path(3).all_pairs_distances();
        let emb = [0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0];
        let d = average_distortion(&graph, &emb, 3).unwrap();
        let at = |s: f64| ((s - 1.0).abs() * 2.0 + (s / 2.0 - 1.0).abs()) / 3.0;
        assert!((d.average - at(d.scale)).abs() < 1e-12);
        for s in [0.5, 0.9, 1.0, 1.1, 1.5, 2.0, 3.0] {
            assert!(
                d.average <= at(s) + 1e-12,
                "s = {s}: {} > {}",
                d.average,
                at(s)
            );
        }
        // The optimum is s = 1: two pairs exact, one off by one half.
        assert!((d.average - 1.0 / 6.0).abs() < 1e-12, "{d:?}");
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let t = path(3);
        assert!(mean_average_precision(&t, &[0.0; 8]).is_err());
        assert!(average_distortion(&t.all_pairs_distances(), &[0.0; 8], 3).is_err());
    }
}

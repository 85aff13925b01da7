//! Embeds a generated tree in the Poincaré ball and in Euclidean space, in 2 and 10
//! dimensions, by training on its edges, and reports how well each embedding reconstructs
//! the tree: mean average precision (MAP) of edge reconstruction and average distortion.
//!
//! ```text
//! cargo run --release --example tree_embedding -- --readme README.md \
//!     --plot docs/img/tree_poincare_2d.png
//! cargo run --release --example tree_embedding -- --nodes 500 --epochs 20 --dims 2
//! ```
//!
//! Prints one JSON line per run (`rbe_examples::hyperbolic::report::TreeRun`). The loss is
//! Nickel & Kiela's (2017) softmax over sampled negatives, the optimizer Riemannian SGD in
//! both geometries (plain SGD in Euclidean space); see `rbe_examples::hyperbolic::embedding`.
//! `--plot` draws the 2-D Poincaré embedding (unit circle, edges, nodes coloured by depth)
//! as a PNG; `--readme` rewrites the table between `<!-- tree-table:start -->` and
//! `<!-- tree-table:end -->`.

use std::path::PathBuf;
use std::process::ExitCode;

use burn::backend::Autodiff;
use clap::Parser;
use plotters::prelude::*;

use rbe_burn::RbeBackend;
use rbe_examples::backend::{BackendJob, BackendKind, dispatch};
use rbe_examples::hyperbolic::HypError;
use rbe_examples::hyperbolic::embedding::{self, EmbeddingConfig, Geometry, TrainedEmbedding};
use rbe_examples::hyperbolic::metrics;
use rbe_examples::hyperbolic::report::{self, TREE_MARKERS, TreeRun};
use rbe_examples::hyperbolic::tree::Tree;

/// Embed a tree in the Poincaré ball and in Euclidean space; report MAP and distortion.
#[derive(Parser, Debug, Clone)]
struct Cli {
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = BackendKind::Flex)]
    backend: BackendKind,
    /// Nodes of the generated tree.
    #[arg(long, default_value_t = 2000)]
    nodes: usize,
    /// Fewest children of an internal node.
    #[arg(long, default_value_t = 2)]
    min_children: usize,
    /// Most children of an internal node.
    #[arg(long, default_value_t = 4)]
    max_children: usize,
    /// Embedding dimensions; every one runs in both geometries.
    #[arg(long, value_delimiter = ',', default_value = "2,10")]
    dims: Vec<usize>,
    /// Passes over all edges (both directions).
    #[arg(long, default_value_t = 200)]
    epochs: usize,
    /// Edges per step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Negatives drawn per edge.
    #[arg(long, default_value_t = 50)]
    negatives: usize,
    /// Learning rate per edge.
    #[arg(long, default_value_t = 0.3)]
    lr: f64,
    /// Epochs at a tenth of the learning rate at the start.
    #[arg(long, default_value_t = 10)]
    burn_in_epochs: usize,
    /// Seeds the tree and the training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the 2-D Poincaré embedding here as a PNG (needs 2 in `--dims`).
    #[arg(long, value_name = "PNG")]
    plot: Option<PathBuf>,
    /// Rewrite the table between the tree-table markers of this README.
    #[arg(long, value_name = "FILE")]
    readme: Option<PathBuf>,
}

impl Cli {
    /// The command that reproduces this run, every training option spelled out.
    fn command(&self) -> String {
        let dims: Vec<String> = self.dims.iter().map(usize::to_string).collect();
        let mut cmd = format!(
            "cargo run --release --example tree_embedding -- --nodes {} --min-children {} \
             --max-children {} --dims {} --epochs {} --batch-size {} --negatives {} --lr {} \
             --burn-in-epochs {} --seed {}",
            self.nodes,
            self.min_children,
            self.max_children,
            dims.join(","),
            self.epochs,
            self.batch_size,
            self.negatives,
            self.lr,
            self.burn_in_epochs,
            self.seed
        );
        if self.backend != BackendKind::Flex {
            cmd += &format!(" --backend {}", self.backend.name());
        }
        if let Some(plot) = &self.plot {
            cmd += &format!(" --plot {}", plot.display());
        }
        if let Some(readme) = &self.readme {
            cmd += &format!(" --readme {}", readme.display());
        }
        cmd
    }

    fn config(&self, dim: usize) -> EmbeddingConfig {
        EmbeddingConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            negatives: self.negatives,
            lr: self.lr,
            burn_in_epochs: self.burn_in_epochs,
            seed: self.seed,
            ..EmbeddingConfig::new(dim)
        }
    }
}

/// Every run on one backend.
struct Job {
    cli: Cli,
    tree: Tree,
}

/// The runs' rows and the 2-D Poincaré embedding, if one was trained.
type Output = (Vec<TreeRun>, Option<TrainedEmbedding>);

impl BackendJob for Job {
    type Output = Result<Output, HypError>;

    fn run<B: RbeBackend>(self, device: B::Device, kind: BackendKind) -> Self::Output {
        let Self { cli, tree } = self;
        let graph = tree.all_pairs_distances();
        let mut runs = Vec::new();
        let mut plotted = None;
        for &dim in &cli.dims {
            for geometry in [Geometry::Poincare, Geometry::Euclidean] {
                let config = cli.config(dim);
                let every = (config.epochs / 10).max(1);
                let trained = embedding::train::<Autodiff<B>>(
                    &tree,
                    geometry,
                    &config,
                    &device,
                    |epoch, loss| {
                        if epoch % every == 0 {
                            eprintln!(
                                "{} dim {dim}: epoch {epoch} loss {loss:.4}",
                                geometry.name()
                            );
                        }
                    },
                )?;
                let dist =
                    embedding::distance_matrix::<B>(&trained.points, dim, geometry, &device)?;
                let map = metrics::mean_average_precision(&tree, &dist)?;
                let distortion = metrics::average_distortion(&graph, &dist, tree.len())?;
                let run = TreeRun {
                    geometry: geometry.name().into(),
                    dim,
                    nodes: tree.len(),
                    height: tree.height(),
                    epochs: config.epochs,
                    map,
                    distortion: distortion.average,
                    distortion_scale: distortion.scale,
                    final_loss: trained.final_loss,
                    train_s: trained.train_s,
                    backend: kind.name().into(),
                    seed: cli.seed,
                };
                println!("{}", serde_json::to_string(&run).expect("a run serialises"));
                runs.push(run);
                if geometry == Geometry::Poincare && dim == 2 {
                    plotted = Some(trained);
                }
            }
        }
        Ok((runs, plotted))
    }
}

/// Dark-to-light colours by depth: root dark blue, leaves orange.
fn depth_color(depth: usize, height: usize) -> RGBColor {
    let t = depth as f64 / height.max(1) as f64;
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(20.0, 240.0), lerp(40.0, 130.0), lerp(140.0, 20.0))
}

/// Draws the 2-D Poincaré embedding: the unit circle, every edge as a straight segment
/// (the geodesics are arcs; segments keep the picture light), nodes coloured by depth.
fn plot(tree: &Tree, trained: &TrainedEmbedding, path: &std::path::Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
    }
    let p = |i: usize| {
        (
            f64::from(trained.points[2 * i]),
            f64::from(trained.points[2 * i + 1]),
        )
    };
    let root = BitMapBackend::new(path, (640, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .margin(10)
        .build_cartesian_2d(-1.02f64..1.02, -1.02f64..1.02)
        .map_err(|e| err(&e))?;
    let circle = (0..=720).map(|i| {
        let a = i as f64 / 720.0 * std::f64::consts::TAU;
        (a.cos(), a.sin())
    });
    chart
        .draw_series(LineSeries::new(circle, BLACK.stroke_width(2)))
        .map_err(|e| err(&e))?;
    // Opaque colours: translucent overlaps make the PNG several times larger.
    let edge_style = RGBColor(185, 185, 185);
    chart
        .draw_series(
            tree.edges()
                .into_iter()
                .map(|(a, b)| PathElement::new(vec![p(a), p(b)], edge_style)),
        )
        .map_err(|e| err(&e))?;
    let height = tree.height();
    chart
        .draw_series((0..tree.len()).map(|i| {
            let size = if i == 0 { 6 } else { 2 };
            Circle::new(p(i), size, depth_color(tree.depth(i), height).filled())
        }))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.plot.is_some() && !cli.dims.contains(&2) {
        eprintln!("--plot needs 2 in --dims");
        return ExitCode::FAILURE;
    }
    let tree = match Tree::random(cli.nodes, cli.min_children, cli.max_children, cli.seed) {
        Ok(tree) => tree,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "tree: {} nodes, height {}, seed {}",
        tree.len(),
        tree.height(),
        cli.seed
    );
    let job = Job {
        cli: cli.clone(),
        tree: tree.clone(),
    };
    let (runs, plotted) = match dispatch(cli.backend, job) {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let (Some(path), Some(trained)) = (&cli.plot, &plotted) {
        if let Err(e) = plot(&tree, trained, path) {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &cli.readme {
        let table = report::tree_table(&runs, &cli.command());
        let result = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| report::splice(&text, TREE_MARKERS, &table).map_err(|e| e.to_string()))
            .and_then(|text| std::fs::write(path, text).map_err(|e| e.to_string()));
        if let Err(e) = result {
            eprintln!("{}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("rewrote the tree table in {}", path.display());
    }
    ExitCode::SUCCESS
}

//! Classifies samples of a generated taxonomy with Euclidean MLPs and Poincaré-ball
//! networks of the same widths, with dense or `RbeLinear` matrices, at fixed and learned
//! curvature, and reports test accuracy, parameter bytes and the curvatures reached.
//!
//! ```text
//! cargo run --release --example hyperbolic_classifier -- --readme README.md
//! cargo run --release --example hyperbolic_classifier -- --epochs 2 --train 1024
//! ```
//!
//! Prints one JSON line per model (`rbe_examples::hyperbolic::report::ClassifierRun`);
//! `--readme` rewrites the table between `<!-- hyp-classifier-table:start -->` and
//! `<!-- hyp-classifier-table:end -->`. The data and the models are described in
//! `rbe_examples::hyperbolic::{taxonomy, classifier}`.

use std::path::PathBuf;
use std::process::ExitCode;

use burn::backend::Autodiff;
use clap::Parser;

use rbe_burn::RbeBackend;
use rbe_examples::backend::{BackendJob, BackendKind, dispatch};
use rbe_examples::hyperbolic::HypError;
use rbe_examples::hyperbolic::classifier::{
    self, Classifier, ClassifierConfig, ModelKind, TrainConfig,
};
use rbe_examples::hyperbolic::report::{self, CLASSIFIER_MARKERS, ClassifierRun};
use rbe_examples::hyperbolic::taxonomy::{Taxonomy, TaxonomyConfig};

/// Euclidean vs hyperbolic classifiers, dense vs RBE, on a generated taxonomy.
#[derive(Parser, Debug, Clone)]
struct Cli {
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = BackendKind::Flex)]
    backend: BackendKind,
    /// Children of every node of the class tree.
    #[arg(long, default_value_t = 4)]
    branching: usize,
    /// Depth of the leaves.
    #[arg(long, default_value_t = 4)]
    depth: usize,
    /// Depth of the nodes that are the classes.
    #[arg(long, default_value_t = 3)]
    label_depth: usize,
    /// Features per sample.
    #[arg(long, default_value_t = 32)]
    features: usize,
    /// Standard deviation of the per-sample noise (prototype offsets start at 1 and shrink
    /// by `--decay` per level).
    #[arg(long, default_value_t = 0.35)]
    noise: f64,
    /// Factor on the prototype offsets per level.
    #[arg(long, default_value_t = 0.6)]
    decay: f64,
    /// Training samples.
    #[arg(long, default_value_t = 8192)]
    train: usize,
    /// Test samples.
    #[arg(long, default_value_t = 2048)]
    test: usize,
    /// Width of both hidden layers.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Side of the RBE blocks.
    #[arg(long, default_value_t = 8)]
    block_size: usize,
    /// Passes over the training samples.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Samples per step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Seeds the data, the initialisation and the sample order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Rewrite the table between the hyp-classifier-table markers of this README.
    #[arg(long, value_name = "FILE")]
    readme: Option<PathBuf>,
}

impl Cli {
    /// The command that reproduces this run, every option spelled out.
    fn command(&self) -> String {
        let mut cmd = format!(
            "cargo run --release --example hyperbolic_classifier -- --branching {} --depth {} \
             --label-depth {} --features {} --noise {} --decay {} --train {} --test {} \
             --hidden {} --block-size {} --epochs {} --batch-size {} --lr {} --seed {}",
            self.branching,
            self.depth,
            self.label_depth,
            self.features,
            self.noise,
            self.decay,
            self.train,
            self.test,
            self.hidden,
            self.block_size,
            self.epochs,
            self.batch_size,
            self.lr,
            self.seed
        );
        if self.backend != BackendKind::Flex {
            cmd += &format!(" --backend {}", self.backend.name());
        }
        if let Some(readme) = &self.readme {
            cmd += &format!(" --readme {}", readme.display());
        }
        cmd
    }

    fn taxonomy(&self) -> TaxonomyConfig {
        TaxonomyConfig {
            branching: self.branching,
            depth: self.depth,
            label_depth: self.label_depth,
            features: self.features,
            noise: self.noise,
            decay: self.decay,
            train: self.train,
            test: self.test,
            seed: self.seed,
            ..TaxonomyConfig::default()
        }
    }
}

/// Every model on one backend.
struct Job {
    cli: Cli,
    data: Taxonomy,
}

impl BackendJob for Job {
    type Output = Result<Vec<ClassifierRun>, HypError>;

    fn run<B: RbeBackend>(self, device: B::Device, kind: BackendKind) -> Self::Output {
        let Self { cli, data } = self;
        let config = ClassifierConfig {
            d_input: data.features,
            hidden: cli.hidden,
            classes: data.classes,
            block_size: cli.block_size,
            curvature: 1.0,
        };
        let train = TrainConfig {
            epochs: cli.epochs,
            batch_size: cli.batch_size,
            lr: cli.lr,
            seed: cli.seed,
        };
        let mut runs = Vec::new();
        for model_kind in ModelKind::ALL {
            // The same initialisation seed for every model.
            <Autodiff<B> as burn::tensor::backend::Backend>::seed(&device, cli.seed);
            let model = Classifier::<Autodiff<B>>::new(model_kind, &config, &device)?;
            let (model, scores) = classifier::train(model, &data, &train, &device)?;
            let run = ClassifierRun {
                model: model_kind.name().into(),
                test_accuracy: scores.test_accuracy,
                train_accuracy: scores.train_accuracy,
                param_bytes: model.param_bytes(),
                curvatures: model.curvatures(),
                curvature_learned: model_kind.learns_curvature(),
                final_loss: scores.final_loss,
                epochs: cli.epochs,
                train_s: scores.train_s,
                backend: kind.name().into(),
                seed: cli.seed,
            };
            println!("{}", serde_json::to_string(&run).expect("a run serialises"));
            runs.push(run);
        }
        Ok(runs)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let data = match Taxonomy::generate(&cli.taxonomy()) {
        Ok(data) => data,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let described = format!(
        "Data: class tree of branching {}, depth {}; {} classes (the nodes at depth {}), {} \
         features, {} training and {} test samples. Models: {} -> {} -> {} -> {}, RBE blocks \
         {}x{}; {} epochs of Adam at lr {}, batch {}, on {}, seed {}.",
        cli.branching,
        cli.depth,
        data.classes,
        cli.label_depth,
        data.features,
        data.train.len(),
        data.test.len(),
        data.features,
        cli.hidden,
        cli.hidden,
        data.classes,
        cli.block_size,
        cli.block_size,
        cli.epochs,
        cli.lr,
        cli.batch_size,
        cli.backend.name(),
        cli.seed
    );
    eprintln!("{described}");
    let runs = match dispatch(
        cli.backend,
        Job {
            cli: cli.clone(),
            data,
        },
    ) {
        Ok(Ok(runs)) => runs,
        Ok(Err(e)) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &cli.readme {
        let table = report::classifier_table(&runs, &cli.command(), &described);
        let result = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                report::splice(&text, CLASSIFIER_MARKERS, &table).map_err(|e| e.to_string())
            })
            .and_then(|text| std::fs::write(path, text).map_err(|e| e.to_string()));
        if let Err(e) = result {
            eprintln!("{}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("rewrote the classifier table in {}", path.display());
    }
    ExitCode::SUCCESS
}

//! Prints the paper's three experiments with their baselines.
//!
//! ```text
//! cargo run --release --example paper_experiments
//! cargo run --release --example paper_experiments -- --gravity-epochs 2000 --gravity-lr 0.1,1
//! ```
//!
//! The numbers come from `paper.rs` beside this file, which runs the f64 reference
//! (`fit_step`); nothing here touches a GPU.

use std::process::ExitCode;
use std::thread;

mod fit_step;
mod paper;

use paper::{
    Baselines, FitExperiment, FitReport, GRAVITY_BLOCK, GRAVITY_EPOCHS, GRAVITY_LR, GRAVITY_SIZE,
    LEARNING_TEST_EPOCHS, LEARNING_TEST_LR,
};

const USAGE: &str = "\
usage: paper_experiments [--gravity-epochs N] [--gravity-lr LR[,LR...]]

  --gravity-epochs N   training steps of the 64x64 gravity fit (default 25000)
  --gravity-lr LIST    comma-separated learning rates for the gravity fit, one row each
                       (default 0.1,1,5)";

/// Learning rates the gravity table shows by default: the paper's rate from (b), then two
/// larger ones, because the paper names none for this run and the rate decides how close
/// 25,000 steps get to the best seed grid.
const DEFAULT_GRAVITY_LRS: [f64; 3] = [GRAVITY_LR, 1.0, 5.0];

struct Args {
    gravity_epochs: usize,
    gravity_lrs: Vec<f64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        gravity_epochs: GRAVITY_EPOCHS,
        gravity_lrs: DEFAULT_GRAVITY_LRS.to_vec(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--gravity-epochs" => {
                let v = value("--gravity-epochs")?;
                args.gravity_epochs = v
                    .parse()
                    .map_err(|e| format!("--gravity-epochs {v}: {e}"))?;
            }
            "--gravity-lr" => {
                let v = value("--gravity-lr")?;
                args.gravity_lrs = v
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse::<f64>()
                            .map_err(|e| format!("--gravity-lr {s}: {e}"))
                    })
                    .collect::<Result<_, _>>()?;
                if args.gravity_lrs.iter().any(|lr| !lr.is_finite()) {
                    return Err("--gravity-lr values must be finite".into());
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            eprintln!("{USAGE}");
            return if msg.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), rbe::rbe_kernels::KernelError> {
    println!(
        "RBE paper experiments (f64 reference: rbe_kernels::formats::paper::reference, fit_step)"
    );
    println!();
    print_compression();
    println!();
    print_learning_test(&paper::learning_test(LEARNING_TEST_EPOCHS)?);
    println!();
    // The fits for different rates are independent; run them side by side.
    let gravity: Vec<_> = thread::scope(|s| {
        let handles: Vec<_> = args
            .gravity_lrs
            .iter()
            .map(|&lr| s.spawn(move || paper::gravity_experiment_with_lr(args.gravity_epochs, lr)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("gravity fit thread panicked"))
            .collect::<Result<_, _>>()
    })?;
    print_gravity(args.gravity_epochs, &gravity);
    Ok(())
}

fn print_compression() {
    println!("(a) Compression: dense f32 (4 B/weight) vs one 16-byte seed per block");
    println!(
        "{:<11} {:>6} {:>6} {:>13} {:>12} {:>6} {:>7}",
        "matrix", "block", "seeds", "dense", "seeds", "ratio", "saved"
    );
    for row in paper::compression_table() {
        let l = row.layout;
        println!(
            "{:<11} {:>6} {:>6} {:>13} {:>12} {:>5}x {:>6.2}%",
            format!("{}x{}", l.rows, l.cols),
            format!("{}x{}", l.block_rows, l.block_cols),
            l.num_blocks(),
            bytes(row.dense_bytes),
            bytes(row.seed_bytes),
            row.ratio(),
            100.0 * row.saved_fraction()
        );
    }
}

/// `1024 B`, `16 KiB`, `4 MiB`: the largest binary unit that divides the count exactly.
fn bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

fn print_baselines(exp: &FitExperiment) {
    let b: &Baselines = &exp.baselines;
    println!("{:<44} {:>10} {:>10}", "baseline", "MSE", "RMSE");
    let rows = [
        ("predict zero".to_string(), b.zero_mse),
        (format!("predict the mean ({:.4})", b.mean), b.mean_mse),
        (
            "best possible seeds, r in [0.1, 2]".to_string(),
            exp.best_seed_mse,
        ),
        (
            "best possible seeds, r in [0, 2]".to_string(),
            exp.best_seed_mse_unclamped,
        ),
    ];
    for (name, mse) in rows {
        println!("{name:<44} {mse:>10.6} {:>10.6}", mse.sqrt());
    }
}

fn print_learning_test(exp: &FitExperiment) {
    let on = &exp.with_transitions;
    let off = &exp.without_transitions;
    println!(
        "(b) 8x8 learning test: W[i][j] = i/7, one seed from r=0.5, theta=0, bits 0; lr {}, {} epochs",
        LEARNING_TEST_LR,
        on.losses.len() - 1
    );
    print_baselines(exp);
    println!();
    println!(
        "{:<44} {:>10} {:>10} {:>13}",
        "fit", "MSE", "RMSE", "slots changed"
    );
    println!(
        "{:<44} {:>10.6} {:>10.6} {:>13}",
        "start",
        on.initial_mse(),
        on.initial_mse().sqrt(),
        "-"
    );
    fit_row("end, transitions on (threshold 0.1)", on);
    fit_row("end, transitions off", off);
    println!();
    println!("loss (MSE) per epoch, every 5th:");
    println!(
        "{:>6} {:>16} {:>16}",
        "epoch", "transitions on", "transitions off"
    );
    for (epoch, (a, b)) in on.losses.iter().zip(&off.losses).enumerate() {
        if epoch % 5 == 0 || epoch + 1 == on.losses.len() {
            println!("{epoch:>6} {a:>16.6} {b:>16.6}");
        }
    }
}

fn fit_row(name: &str, run: &FitReport) {
    println!(
        "{:<44} {:>10.6} {:>10.6} {:>13}",
        name,
        run.final_mse(),
        run.final_rmse(),
        run.slots_changed
    );
}

fn print_gravity(epochs: usize, runs: &[FitExperiment]) {
    println!(
        "(c) {GRAVITY_SIZE}x{GRAVITY_SIZE} gravity 1/max(sqrt(x^2+y^2), 1e-6), normalised by its max; \
         {} seeds ({GRAVITY_BLOCK}x{GRAVITY_BLOCK} blocks) from r=0.5, theta=0, bits 0; {epochs} epochs",
        (GRAVITY_SIZE / GRAVITY_BLOCK).pow(2)
    );
    let Some(first) = runs.first() else {
        println!("(no learning rates given)");
        return;
    };
    print_baselines(first);
    println!();
    println!(
        "{:>6} {:>12} {:>11} {:>11} {:>11} {:>14}",
        "lr", "transitions", "start RMSE", "end RMSE", "best RMSE", "slots changed"
    );
    for exp in runs {
        for (label, run) in [
            ("on", &exp.with_transitions),
            ("off", &exp.without_transitions),
        ] {
            println!(
                "{:>6} {:>12} {:>11.6} {:>11.6} {:>11.6} {:>14}",
                exp.config.lr,
                label,
                run.initial_mse().sqrt(),
                run.final_rmse(),
                run.best_mse().sqrt(),
                run.slots_changed
            );
        }
    }
    println!("(best RMSE: the lowest loss seen at any epoch; transitions use threshold 0.1)");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole program, every table printed, with a short gravity fit: `cargo test` runs
    /// it in the same build as the other tests instead of a separate `cargo run`.
    #[test]
    fn the_program_runs_end_to_end_with_a_short_gravity_fit() {
        let args = Args {
            gravity_epochs: 200,
            gravity_lrs: DEFAULT_GRAVITY_LRS.to_vec(),
        };
        run(&args).unwrap();
    }
}

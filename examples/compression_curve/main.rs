//! Draws the quality-versus-bytes curve of compressing a trained model from the JSON lines
//! `scripts/compression_curve.sh` collects: a markdown table (with the curve's targets) and a
//! PNG with one panel per model.
//!
//! ```text
//! cargo run --release --example compression_curve -- \
//!     --input benches/results/compression_curve.jsonl --out benches/results/compression_curve
//! ```
//!
//! Each line is one run of the `transformer` or `mnist` example, tagged by the script with
//! `curve_key` = `tf/<method>/<variant>` or `mnist/<method>/e<epochs>/s<seed>` (dense runs:
//! `tf/dense`, `mnist/dense/s<seed>`). The PNG needs a TTF font at run time, found as
//! `bench_report` finds it (`RBE_REPORT_FONT` overrides).

mod plot;
mod points;
#[path = "../shared/style.rs"]
mod style;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Table and plot of quality against stored bytes, from the curve's JSON lines.
#[derive(Parser, Debug)]
struct Cli {
    /// The JSON lines written by scripts/compression_curve.sh.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Output stem: writes STEM.md and STEM.png.
    #[arg(long, value_name = "STEM")]
    out: PathBuf,
    /// The machine, for the table's header [default: the CPU model and core count read
    /// from /proc].
    #[arg(long)]
    machine: Option<String>,
}

fn run(cli: Cli) -> Result<(), String> {
    let text =
        std::fs::read_to_string(&cli.input).map_err(|e| format!("{}: {e}", cli.input.display()))?;
    let runs = points::parse(&text).map_err(|e| format!("{}: {e}", cli.input.display()))?;
    let machine = cli.machine.unwrap_or_else(points::machine);
    let md = cli.out.with_extension("md");
    let command = format!(
        "cargo run --release --example compression_curve -- --input {} --out {}",
        cli.input.display(),
        cli.out.display()
    );
    std::fs::write(&md, table::markdown(&runs, &machine, &command))
        .map_err(|e| format!("{}: {e}", md.display()))?;
    println!("wrote {}", md.display());
    let png = cli.out.with_extension("png");
    plot::png(&runs, &png)?;
    println!("wrote {}", png.display());
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compression_curve: {e}");
            ExitCode::FAILURE
        }
    }
}

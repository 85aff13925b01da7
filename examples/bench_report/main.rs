//! Turns the bench results under `benches/results/*.json` into the README's speed table
//! (`speed_table.md`) and chart (`speedup.png`), next to the results.
//!
//! ```text
//! cargo run --release --example bench_report
//! cargo run --release --example bench_report -- --dir path/to/results
//! ```
//!
//! The chart needs a TTF font at run time (fonts-dejavu-core on Debian, or set
//! `RBE_REPORT_FONT`); without one the table is still written and the command fails.

use std::path::PathBuf;
use std::process::ExitCode;

mod chart;
mod load;
#[allow(dead_code)] // Shared with the benches; the report reads only some fields.
#[path = "../../benches/common/schema.rs"]
mod schema;
mod table;

const USAGE: &str = "usage: bench_report [--dir RESULTS_DIR]";

fn results_dir() -> Result<PathBuf, String> {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => dir = args.next().ok_or("--dir needs a value")?.into(),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(dir)
}

fn run() -> Result<(), String> {
    let dir = results_dir()?;
    let runs = load::runs(&dir)?;
    if runs.is_empty() {
        return Err(format!(
            "no results in {}; run e.g. `cargo bench --bench linear_forward -- --quick`",
            dir.display()
        ));
    }
    let md = dir.join("speed_table.md");
    std::fs::write(&md, table::markdown(&runs)).map_err(|e| format!("{}: {e}", md.display()))?;
    println!("wrote {} from {} result files", md.display(), runs.len());

    let font = chart::register_font_from_system()?;
    let png = dir.join("speedup.png");
    let refs: Vec<&schema::RunFile> = runs.iter().map(|(_, r)| r).collect();
    let panels = chart::speedup_png(&refs, &png)?;
    println!("wrote {} ({panels} panels, font {font})", png.display());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_report: {e}");
            ExitCode::FAILURE
        }
    }
}

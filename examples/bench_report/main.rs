//! Turns the bench results under `benches/results/*.json` into the speed tables with the
//! project's speed targets (`speed_table.md`) and the chart (`speedup.png`), and the
//! model-level results into `model_inference.md` and `model_inference.png`, next to the
//! results; optionally also the README's speed and model sections.
//!
//! ```text
//! cargo run --release --example bench_report
//! cargo run --release --example bench_report -- --dir path/to/results
//! cargo run --release --example bench_report -- --readme README.md
//! cargo run --release --example bench_report -- --section speed_section.md
//! ```
//!
//! `--readme FILE` replaces what lies between the lines `<!-- speed-table:start -->` and
//! `<!-- speed-table:end -->` of FILE with the targets table and the Flex summaries, and
//! between `<!-- model-table:start -->` and `<!-- model-table:end -->` (where present) with
//! the model tables, and between `<!-- bit-forward-table:start -->` /
//! `<!-- bit-training-table:start -->` and their `:end -->` lines (where present) with the
//! bit formats' forward and training tables;
//! `--section FILE` writes that section alone.
//!
//! The chart needs a TTF font at run time (fonts-dejavu-core on Debian, or set
//! `RBE_REPORT_FONT`); without one the table is still written and the command fails.

use std::path::PathBuf;
use std::process::ExitCode;

mod bits;
mod chart;
mod load;
mod model;
mod readme;
mod runs;
#[path = "../shared/style.rs"]
mod style;
mod table;
mod targets;

use rbe_examples::bench_schema as schema;

const USAGE: &str =
    "usage: bench_report [--dir RESULTS_DIR] [--readme README.md] [--section SECTION.md]";

/// The command line.
struct Args {
    dir: PathBuf,
    readme: Option<PathBuf>,
    section: Option<PathBuf>,
}

fn args() -> Result<Args, String> {
    let mut out = Args {
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/results"),
        readme: None,
        section: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--dir" => out.dir = value()?.into(),
            "--readme" => out.readme = Some(value()?.into()),
            "--section" => out.section = Some(value()?.into()),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(out)
}

fn run() -> Result<(), String> {
    let Args {
        dir,
        readme,
        section,
    } = args()?;
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

    let text = targets::readme_section(&runs);
    if let Some(path) = section {
        std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &readme {
        if !readme::update(path, targets::START, targets::END, &text)? {
            return Err(format!(
                "{}: no `{}` marker",
                path.display(),
                targets::START
            ));
        }
        println!("updated the speed section of {}", path.display());
        for (start, end, text, what) in [
            (
                bits::FORWARD_START,
                bits::FORWARD_END,
                bits::forward_section(&runs),
                "bit formats' forward",
            ),
            (
                bits::TRAINING_START,
                bits::TRAINING_END,
                bits::training_section(&runs),
                "bit formats' training",
            ),
        ] {
            if readme::update(path, start, end, &text)? {
                println!("updated the {what} table of {}", path.display());
            }
        }
    }

    let font = style::register_font_from_system()?;
    let png = dir.join("speedup.png");
    let refs: Vec<&schema::RunFile> = runs.iter().map(|(_, r)| r).collect();
    let panels = chart::speedup_png(&refs, &png)?;
    println!("wrote {} ({panels} panels, font {font})", png.display());

    let models = model::runs(&dir)?;
    if models.is_empty() {
        println!("no model_inference results: model table skipped");
        return Ok(());
    }
    let text = model::markdown(&models);
    let md = dir.join("model_inference.md");
    std::fs::write(&md, &text).map_err(|e| format!("{}: {e}", md.display()))?;
    println!("wrote {}", md.display());
    if let Some(path) = &readme
        && readme::update(path, model::START, model::END, &text)?
    {
        println!("updated the model section of {}", path.display());
    }
    let png = dir.join("model_inference.png");
    let panels = model::png(&models, &png)?;
    println!("wrote {} ({panels} panels)", png.display());
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

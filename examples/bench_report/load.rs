//! Reading every result file under the results folder.

use std::path::{Path, PathBuf};

use crate::schema::{RunFile, SCHEMA_VERSION};

/// Every parsable result file of the current schema, sorted by name for a stable report.
/// Other JSON files are reported and skipped rather than failing the whole report.
pub fn runs(dir: &Path) -> Result<Vec<(PathBuf, RunFile)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        // The model-level results have their own schema and reader.
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(crate::model::PREFIX))
        })
        .collect();
    paths.sort();
    let mut runs = Vec::new();
    for path in paths {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        match serde_json::from_str::<RunFile>(&text) {
            Ok(run) if run.schema == SCHEMA_VERSION => runs.push((path, run)),
            Ok(run) => eprintln!(
                "skipping {}: schema {} (this report reads {SCHEMA_VERSION})",
                path.display(),
                run.schema
            ),
            Err(e) => eprintln!("skipping {}: not a bench result ({e})", path.display()),
        }
    }
    Ok(runs)
}

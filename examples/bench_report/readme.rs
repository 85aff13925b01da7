//! Replacing a generated section of the README, between two marker lines.

/// Replaces what lies between the lines `start` and `end` of `readme` with `section`.
pub fn splice(readme: &str, start: &str, end: &str, section: &str) -> Result<String, String> {
    let at = readme
        .find(start)
        .ok_or_else(|| format!("no `{start}` marker"))?;
    let body = at + start.len();
    let stop = readme[body..]
        .find(end)
        .map(|i| body + i)
        .ok_or_else(|| format!("no `{end}` marker after `{start}`"))?;
    Ok(format!(
        "{}\n{}{}",
        &readme[..body],
        section,
        &readme[stop..]
    ))
}

/// Replaces the section between `start` and `end` of the file at `path` with `section`.
/// Returns false, leaving the file alone, when the file has no `start` marker: the optional
/// sections are generated only into READMEs that ask for them.
pub fn update(
    path: &std::path::Path,
    start: &str,
    end: &str,
    section: &str,
) -> Result<bool, String> {
    let old = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !old.contains(start) {
        return Ok(false);
    }
    let new = splice(&old, start, end, section).map_err(|e| format!("{}: {e}", path.display()))?;
    if new != old {
        std::fs::write(path, new).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(true)
}

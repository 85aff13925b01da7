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

//! The process's peak resident memory (Linux), which a run resets when training starts and
//! reads into its report.

/// Resets the process's peak resident memory to its current size (Linux: writing 5 to
/// `/proc/self/clear_refs`), so that runs sharing a process report their own peaks.
/// Elsewhere, or without permission, it does nothing and the peak covers the process.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// `VmHWM` of `/proc/self/status` in MiB.
pub(super) fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

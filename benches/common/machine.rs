//! Which machine produced a result: numbers without it cannot be compared.

use std::process::Command;

use super::schema::Machine;

/// Overrides the machine label (and so the result file names).
pub const MACHINE_ENV: &str = "RBE_BENCH_MACHINE";

/// Reads the host description from the environment and /proc (Linux); other systems get
/// `unknown` fields rather than an error, since the numbers are still worth keeping.
pub fn detect() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = proc_field(&cpuinfo, "model name").unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = proc_field(&meminfo, "MemTotal")
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into());
    // Container hostnames change every session; the CPU and core count do not, so re-runs
    // on the same kind of machine update the same files.
    let label = std::env::var(MACHINE_ENV)
        .ok()
        .filter(|l| !l.trim().is_empty())
        .map_or_else(|| format!("{}-{cores}c", slug(&cpu)), |l| slug(&l));
    Machine {
        label,
        hostname,
        cpu,
        cores,
        memory_gib,
        os,
    }
}

/// `git describe --always --dirty`, so a result names the code it measured.
pub fn git_rev() -> String {
    Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The 1-minute load average (Linux), to flag results taken on a busy machine.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn proc_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// Lower-case ASCII alphanumerics separated by single dashes: safe in any file name.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

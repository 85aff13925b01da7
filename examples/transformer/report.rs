//! The machine and its load, for the table; the run report itself is
//! [`rbe_examples::transformer::report`].

pub use rbe_examples::transformer::report::{RunSummary, bit_training_name};

/// The CPU model (with family and model numbers, since virtual machines often report only
/// a brand) and the cores available, from `/proc/cpuinfo`.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    let mut cpu = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string());
    if let (Some(family), Some(model)) = (field("cpu family"), field("model")) {
        cpu.push_str(&format!(" (family {family}, model {model})"));
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores available")
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`: other work on the machine
/// slows the throughput figures, so the table records it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

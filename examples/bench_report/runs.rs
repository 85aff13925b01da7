//! What the tables, the targets and the chart all say about a run: its order, its
//! backend's label, the dense rate its compute bounds used.

use crate::schema::RunFile;

/// Flex (the CPU baseline) first and NdArray (legacy) last, then by machine.
pub fn run_order(run: &RunFile) -> (usize, String, String) {
    let rank = match run.backend.name.as_str() {
        "flex" => 0,
        "cuda" => 1,
        "wgpu" => 2,
        "ndarray" => 4,
        _ => 3,
    };
    (rank, run.machine.label.clone(), run.backend.name.clone())
}

/// The backend's name as a heading shows it: NdArray is marked legacy (Burn 0.21 recommends
/// Flex on the CPU).
pub fn backend_label(name: &str) -> String {
    match name {
        "flex" => "flex (CPU baseline)".into(),
        "ndarray" => "ndarray (legacy CPU backend)".into(),
        other => other.into(),
    }
}

/// Which dense rate(s) the bounds of `run` used.
pub fn rate_note(run: &RunFile) -> String {
    let mut rates: Vec<(String, f64)> = Vec::new();
    for b in run.records.iter().filter_map(|r| r.compute_bound.as_ref()) {
        if !rates
            .iter()
            .any(|(c, v)| *c == b.dense_rate_case && *v == b.dense_macs_per_second)
        {
            rates.push((b.dense_rate_case.clone(), b.dense_macs_per_second));
        }
    }
    if rates.is_empty() {
        return String::new();
    }
    let list: Vec<String> = rates
        .iter()
        .map(|(case, rate)| format!("{:.2} G multiply-adds/s (`{case}`)", rate / 1e9))
        .collect();
    format!(
        "\nCompute bound from the best dense rate of the run: {}.\n",
        list.join("; ")
    )
}

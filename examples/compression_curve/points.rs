//! The curve's runs, read from the JSON lines the examples print.

use serde_json::Value;

/// Which trained model a run compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Model {
    /// The character-level transformer; quality is validation bits per character (lower is
    /// better).
    Transformer,
    /// The 784-256-10 MNIST classifier; quality is test accuracy (higher is better).
    Mnist,
}

impl Model {
    /// Whether a larger quality figure is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Self::Mnist)
    }

    /// The quality figure's name.
    pub fn metric(self) -> &'static str {
        match self {
            Self::Transformer => "val bpc",
            Self::Mnist => "test accuracy",
        }
    }
}

/// What was done after encoding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variant {
    /// The dense model itself.
    Dense,
    /// Encoded, no step taken.
    Encode,
    /// Encoded, then fine-tuned for `steps` optimizer steps (transformer) or epochs (MNIST),
    /// with or without distillation from the dense model.
    FineTune {
        /// Steps (transformer) or epochs (MNIST).
        length: usize,
        /// Whether a KL term to the dense model's logits was added.
        distill: bool,
    },
}

impl Variant {
    /// A column title.
    pub fn title(&self, model: Model) -> String {
        match self {
            Self::Dense => "dense".into(),
            Self::Encode => "encode only".into(),
            Self::FineTune { length, distill } => {
                let unit = match model {
                    Model::Transformer => "steps",
                    Model::Mnist if *length == 1 => "epoch",
                    Model::Mnist => "epochs",
                };
                format!(
                    "+{length} {unit}{}",
                    if *distill { " + distill" } else { "" }
                )
            }
        }
    }
}

/// One run.
#[derive(Debug, Clone)]
pub struct Point {
    /// The trained model.
    pub model: Model,
    /// The method and size, e.g. `sign-b8`, `paper-b16-r8`, `lowrank-k8`, `burn-q4`.
    pub method: String,
    /// What was done after encoding.
    pub variant: Variant,
    /// Stored bytes of the compressed layers' weights.
    pub bytes: f64,
    /// Bytes the same layers store dense.
    pub dense_bytes: f64,
    /// Validation bpc or test accuracy after the variant.
    pub quality: f64,
    /// The same figure right after encoding (no step).
    pub after_encode: Option<f64>,
    /// Relative Frobenius error of all compressed weights, where reported.
    pub encode_rel_error: Option<f64>,
}

impl Point {
    /// The family the plot draws as one line: the format (paper split by residual rank),
    /// low rank, or Burn's quantization.
    pub fn family(&self) -> String {
        let m = self.method.as_str();
        if let Some(rest) = m.strip_prefix("paper-b") {
            let rank = rest.split("-r").nth(1).unwrap_or("0");
            return format!("paper, residual rank {rank}");
        }
        match m.split('-').next().unwrap_or(m) {
            "sign" => "sign blueprint".into(),
            "ternary" => "ternary".into(),
            "lowrank" => "low rank".into(),
            "burn" => "Burn PTQ (block 32)".into(),
            other => other.into(),
        }
    }

    /// Whether the method is one of this crate's seed formats.
    pub fn is_ours(&self) -> bool {
        ["paper-", "sign-", "ternary-"]
            .iter()
            .any(|p| self.method.starts_with(p))
    }
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64).filter(|x| x.is_finite())
}

/// Reads every line; blank lines are skipped, anything else unreadable is an error.
pub fn parse(text: &str) -> Result<Vec<Point>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        let point = point(&v).map_err(|e| format!("line {}: {e}", i + 1))?;
        out.push(point);
    }
    // The dense run's own bytes are the reference, counted as the other rows count theirs
    // (MNIST: weights without biases, which its `projection_compression` includes).
    for model in [Model::Transformer, Model::Mnist] {
        let dense = out
            .iter()
            .find(|p| p.model == model && p.variant == Variant::Dense && p.bytes.is_finite())
            .map(|p| p.bytes);
        if let Some(dense) = dense {
            for p in out.iter_mut().filter(|p| p.model == model) {
                p.dense_bytes = dense;
            }
        }
    }
    Ok(out)
}

fn point(v: &Value) -> Result<Point, String> {
    let key = v
        .get("curve_key")
        .and_then(Value::as_str)
        .ok_or("no curve_key")?;
    let parts: Vec<&str> = key.split('/').collect();
    let need = |k: &str| number(v, k).ok_or(format!("{key}: no finite `{k}`"));
    match parts.as_slice() {
        ["tf", "dense"] => Ok(Point {
            model: Model::Transformer,
            method: "dense".into(),
            variant: Variant::Dense,
            // Runs from scratch do not report it; the table takes the dense bytes from the
            // compressed runs.
            bytes: number(v, "projection_bytes").unwrap_or(f64::NAN),
            dense_bytes: number(v, "projection_bytes").unwrap_or(f64::NAN),
            quality: need("val_bpc")?,
            after_encode: None,
            encode_rel_error: None,
        }),
        ["tf", method, variant] => {
            let bytes = need("projection_bytes")?;
            Ok(Point {
                model: Model::Transformer,
                method: (*method).into(),
                variant: tf_variant(variant)?,
                bytes,
                dense_bytes: bytes * need("projection_compression")?,
                quality: need("val_bpc")?,
                after_encode: number(v, "val_bpc_after_encode"),
                encode_rel_error: rel_error(v),
            })
        }
        ["mnist", "dense", seed] => {
            seed_of(seed)?;
            let bytes = need("weight_bytes")?;
            Ok(Point {
                model: Model::Mnist,
                method: "dense".into(),
                variant: Variant::Dense,
                bytes,
                dense_bytes: bytes,
                quality: need("test_accuracy")?,
                after_encode: None,
                encode_rel_error: None,
            })
        }
        ["mnist", method, epochs, seed] => {
            seed_of(seed)?;
            let epochs: usize = epochs
                .strip_prefix('e')
                .and_then(|e| e.parse().ok())
                .ok_or(format!("{key}: no epoch count"))?;
            let bytes = need("weight_bytes")?;
            Ok(Point {
                model: Model::Mnist,
                method: (*method).into(),
                variant: if epochs == 0 {
                    Variant::Encode
                } else {
                    Variant::FineTune {
                        length: epochs,
                        distill: v.get("distill").is_some_and(|d| !d.is_null()),
                    }
                },
                bytes,
                dense_bytes: bytes * need("projection_compression")?,
                quality: need("test_accuracy")?,
                after_encode: number(v, "test_accuracy_after_encode"),
                encode_rel_error: rel_error(v),
            })
        }
        _ => Err(format!("unknown curve_key `{key}`")),
    }
}

fn tf_variant(s: &str) -> Result<Variant, String> {
    if s == "encode" {
        return Ok(Variant::Encode);
    }
    let (steps, distill) = match s.strip_suffix("-distill") {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    let length = steps
        .strip_prefix("ft")
        .and_then(|n| n.parse().ok())
        .ok_or(format!("unknown variant `{s}`"))?;
    Ok(Variant::FineTune { length, distill })
}

/// Checks the seed part of a key; the table averages over seeds without naming them.
fn seed_of(s: &str) -> Result<u64, String> {
    s.strip_prefix('s')
        .and_then(|n| n.parse().ok())
        .ok_or(format!("unknown seed `{s}`"))
}

fn rel_error(v: &Value) -> Option<f64> {
    let e = v.get("encode_rel_error")?;
    e.as_f64().or_else(|| number(e, "overall"))
}

/// The CPU model and the cores this process may use, from /proc and the scheduler.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cpu}, {cores} cores")
}

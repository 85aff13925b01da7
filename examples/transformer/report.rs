//! What one run measured, as text for people and as the one-line JSON record.

use std::f64::consts::LN_2;

use rbe_burn::BitTraining;
use rbe_examples::transformer::model::{ModelBytes, ProjectionKind};

/// The results of one training run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// How the block projections were stored.
    pub projections: ProjectionKind,
    /// Whether the LM head was RBE too.
    pub compressed_head: bool,
    /// Optimizer steps.
    pub steps: usize,
    /// Mean training loss over the last progress interval, nats per character.
    pub train_loss: f64,
    /// Mean validation cross-entropy, nats per character.
    pub val_loss: f64,
    /// Validation characters the loss was measured on.
    pub val_chars: usize,
    /// Add-one-smoothed unigram model of the training split on validation, bits/char.
    pub unigram_bpc: f64,
    /// Add-one-smoothed bigram model of the training split on validation, bits/char.
    pub bigram_bpc: f64,
    /// `log2(vocab)`, the uniform model, bits/char.
    pub uniform_bpc: f64,
    /// Stored bytes.
    pub bytes: ModelBytes,
    /// Training throughput.
    pub tokens_per_s: f64,
    /// Seconds of training.
    pub train_s: f64,
    /// Backend name.
    pub backend: &'static str,
}

impl RunSummary {
    /// Validation bits per character, `val_loss / ln 2`.
    pub fn val_bpc(&self) -> f64 {
        self.val_loss / LN_2
    }

    /// Whole-model dense bytes over stored bytes.
    pub fn compression_vs_dense(&self) -> f64 {
        self.bytes.dense_total as f64 / self.bytes.total as f64
    }

    /// Dense over stored bytes of the block projections alone (the layers RBE replaces).
    pub fn projection_compression(&self) -> f64 {
        self.bytes.dense_projections as f64 / self.bytes.projections as f64
    }

    /// `"dense"`, `"rbe"` or `"sign"`.
    pub fn model_name(&self) -> &'static str {
        match self.projections {
            ProjectionKind::Dense => "dense",
            ProjectionKind::Rbe { .. } => "rbe",
            ProjectionKind::SignBlueprint { .. } => "sign",
        }
    }

    /// A short label, e.g. `rbe B=16 r=8` or `sign 8x8 ste`.
    pub fn label(&self) -> String {
        match self.projections {
            ProjectionKind::Dense => "dense".into(),
            ProjectionKind::Rbe {
                block_size,
                residual_rank,
                transitions,
            } => format!(
                "rbe B={block_size} r={residual_rank}{}{}",
                if transitions { "" } else { " no-transitions" },
                if self.compressed_head { " +head" } else { "" }
            ),
            ProjectionKind::SignBlueprint {
                block_size,
                bit_training,
            } => format!(
                "sign {block_size}x{block_size} {}{}",
                bit_training_name(bit_training),
                if self.compressed_head { " +head" } else { "" }
            ),
        }
    }

    /// The one-line JSON record; `block_size` and `residual_rank` are null for dense,
    /// `bit_training` is null except for the sign blueprint.
    pub fn json(&self) -> serde_json::Value {
        let (block_size, residual_rank, bit_training) = match self.projections {
            ProjectionKind::Dense => (None, None, None),
            ProjectionKind::Rbe {
                block_size,
                residual_rank,
                ..
            } => (Some(block_size), Some(residual_rank), None),
            ProjectionKind::SignBlueprint {
                block_size,
                bit_training,
            } => (
                Some(block_size),
                Some(0),
                Some(bit_training_name(bit_training)),
            ),
        };
        serde_json::json!({
            "model": self.model_name(),
            "block_size": block_size,
            "residual_rank": residual_rank,
            "bit_training": bit_training,
            "steps": self.steps,
            "val_loss": round(self.val_loss, 4),
            "val_bpc": round(self.val_bpc(), 4),
            "unigram_bpc": round(self.unigram_bpc, 4),
            "param_bytes": self.bytes.total,
            "projection_bytes": self.bytes.projections,
            "projection_compression": round(self.projection_compression(), 3),
            "compression_vs_dense": round(self.compression_vs_dense(), 3),
            "tokens_per_s": round(self.tokens_per_s, 1),
            "backend": self.backend,
        })
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let b = &self.bytes;
        format!(
            "model            {label}\n\
             training         loss {train:.4} nats/char over the last progress interval\n\
             validation       loss {loss:.4} nats/char = {bpc:.4} bits/char \
             ({val_chars} characters)\n\
             baselines        unigram {uni:.4} bpc, bigram {bi:.4} bpc (train-split counts, \
             add-one), uniform log2(vocab) {unif:.4} bpc\n\
             bytes            {total} stored vs {dense} dense: {ratio:.2}x \
             (block projections {proj} vs {dproj}: {pratio:.1}x)\n\
             throughput       {tps:.0} training tokens/s ({secs:.1} s for {steps} steps)",
            label = self.label(),
            train = self.train_loss,
            loss = self.val_loss,
            val_chars = self.val_chars,
            bpc = self.val_bpc(),
            uni = self.unigram_bpc,
            bi = self.bigram_bpc,
            unif = self.uniform_bpc,
            total = b.total,
            dense = b.dense_total,
            ratio = self.compression_vs_dense(),
            proj = b.projections,
            dproj = b.dense_projections,
            pratio = self.projection_compression(),
            tps = self.tokens_per_s,
            secs = self.train_s,
            steps = self.steps,
        )
    }
}

/// The `--bit-training` spelling of a bit rule: `ste` or `flip`.
pub fn bit_training_name(rule: BitTraining) -> &'static str {
    match rule {
        BitTraining::StraightThrough => "ste",
        BitTraining::Flip => "flip",
        BitTraining::Frozen => "frozen",
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

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

//! What one run measured, as text for people and as the one-line JSON record the
//! transformer example prints.

use std::f64::consts::LN_2;
use std::path::PathBuf;

use rbe_burn::BitTraining;

use super::method::{CompressMethod, EncodeErrors};
use super::model::{ModelBytes, ProjectionKind};
use super::training::Distillation;

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
    /// For a model compressed from a trained dense checkpoint, how and from what.
    pub init: Option<InitFrom>,
}

/// How a model compressed from a trained dense checkpoint ([`super::finetune`]) was made,
/// and what it measured before fine-tuning.
#[derive(Debug, Clone)]
pub struct InitFrom {
    /// The dense checkpoint's stem.
    pub checkpoint: PathBuf,
    /// How its layers were compressed.
    pub method: CompressMethod,
    /// Validation loss right after compression, before any step, nats per character.
    pub val_loss_after_encode: f64,
    /// Validation loss of the dense checkpoint itself, nats per character.
    pub dense_val_loss: f64,
    /// How far each compressed weight is from its dense original.
    pub encode_errors: Option<EncodeErrors>,
    /// The distillation settings of the fine-tuning, if it distilled.
    pub distill: Option<Distillation>,
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

    /// `"dense"`, `"rbe"` or `"sign"`; for a model compressed from a dense checkpoint the
    /// method's family (`"rbe"`, `"sign"`, `"lowrank"`, `"burn-q4"`, `"burn-q2"`).
    pub fn model_name(&self) -> &'static str {
        if let Some(init) = &self.init {
            return init.method.family();
        }
        match self.projections {
            ProjectionKind::Dense => "dense",
            ProjectionKind::Rbe { .. } => "rbe",
            ProjectionKind::SignBlueprint { .. } => "sign",
            ProjectionKind::Ternary { .. } => "ternary",
        }
    }

    /// A short label, e.g. `rbe B=16 r=8`, `sign 8x8 ste` or `lowrank-k4 from dense`.
    pub fn label(&self) -> String {
        if let Some(init) = &self.init {
            return format!(
                "{} from dense{}",
                init.method.name(),
                if self.compressed_head { " +head" } else { "" }
            );
        }
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
            ProjectionKind::Ternary {
                block_size,
                bit_training,
            } => format!(
                "ternary {block_size}x{block_size} {}{}",
                bit_training_name(bit_training),
                if self.compressed_head { " +head" } else { "" }
            ),
        }
    }

    /// The one-line JSON record; `block_size` and `residual_rank` are null for dense (and
    /// the low-rank and quantized methods), `bit_training` is null except for the sign
    /// blueprint. A run from a dense checkpoint adds `method`, `init_from`,
    /// `val_bpc_after_encode`, `dense_val_bpc`, `encode_rel_error` (`overall` and one entry
    /// per layer) and `distill` (null or `{temperature, weight}`).
    pub fn json(&self) -> serde_json::Value {
        let projections = match &self.init {
            Some(init) => match &init.method {
                CompressMethod::Rbe(kind) => kind.clone(),
                CompressMethod::LowRank { .. } | CompressMethod::BurnQuant(_) => {
                    ProjectionKind::Dense
                }
            },
            None => self.projections.clone(),
        };
        let (block_size, residual_rank, bit_training) = match projections {
            ProjectionKind::Dense => (None, None, None),
            ProjectionKind::Rbe {
                block_size,
                residual_rank,
                ..
            } => (Some(block_size), Some(residual_rank), None),
            ProjectionKind::SignBlueprint {
                block_size,
                bit_training,
            }
            | ProjectionKind::Ternary {
                block_size,
                bit_training,
            } => (
                Some(block_size),
                Some(0),
                Some(bit_training_name(bit_training)),
            ),
        };
        let mut json = serde_json::json!({
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
        });
        if let (Some(init), Some(fields)) = (&self.init, json.as_object_mut()) {
            let encode_rel_error = init.encode_errors.as_ref().map(|errors| {
                let mut map = serde_json::Map::new();
                map.insert("overall".into(), round(errors.overall(), 6).into());
                for layer in &errors.layers {
                    map.insert(layer.name.clone(), round(layer.rel_error, 6).into());
                }
                map
            });
            let extra = serde_json::json!({
                "method": init.method.name(),
                "init_from": init.checkpoint.display().to_string(),
                "val_bpc_after_encode": round(init.val_loss_after_encode / LN_2, 4),
                "dense_val_bpc": round(init.dense_val_loss / LN_2, 4),
                "encode_rel_error": encode_rel_error,
                "distill": init.distill,
            });
            if let Some(extra) = extra.as_object() {
                fields.extend(extra.clone());
            }
        }
        json
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let b = &self.bytes;
        format!(
            "model            {label}\n\
             training         {train}\n\
             validation       loss {loss:.4} nats/char = {bpc:.4} bits/char \
             ({val_chars} characters)\n\
             baselines        unigram {uni:.4} bpc, bigram {bi:.4} bpc (train-split counts, \
             add-one), uniform log2(vocab) {unif:.4} bpc\n\
             bytes            {total} stored vs {dense} dense: {ratio:.2}x \
             (block projections {proj} vs {dproj}: {pratio:.1}x)\n\
             throughput       {tps:.0} training tokens/s ({secs:.1} s for {steps} steps){init}",
            label = self.label(),
            train = if self.steps == 0 {
                "none (evaluated right after compression)".to_string()
            } else {
                format!(
                    "loss {:.4} nats/char over the last progress interval",
                    self.train_loss
                )
            },
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
            init = self.init.as_ref().map_or_else(String::new, |init| format!(
                "\nfrom dense       {} ({:.4} bpc): {:.4} bpc right after compression \
                 (relative weight error {})",
                init.checkpoint.display(),
                init.dense_val_loss / LN_2,
                init.val_loss_after_encode / LN_2,
                init.encode_errors
                    .as_ref()
                    .map_or_else(|| "n/a".into(), |e| format!("{:.4}", e.overall())),
            )),
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

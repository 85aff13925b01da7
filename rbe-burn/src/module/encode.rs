//! Encoding a trained dense `Linear` as an [`RbeLinear`]: the format's fit per block
//! ([`crate::formats::Format::encode`]), then the top-`residual_rank` SVD of what the seeds
//! miss.

use burn::module::ParamId;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use nalgebra::DMatrix;

use super::{LowRankResidual, RbeLinear, RbeLinearConfig, RbeSeeds, StorageReport};
use crate::RbeError;
use crate::trainable_param;

/// How well [`RbeLinear::from_linear`] reproduced the dense layer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EncodeReport {
    /// `||W - W_rbe - U V||_F / ||W||_F`: the whole encoded weight.
    pub rel_frobenius_error: f64,
    /// `||W - W_rbe||_F / ||W||_F`: the seeds alone.
    pub seeds_rel_frobenius_error: f64,
    /// Seeds whose best fit lay below what the format's constraint allows and were raised to
    /// it (paper format: amplitudes below `A(radius_min)`; lower `radius_min` to allow them).
    pub seeds_at_radius_min: usize,
    /// Seeds whose best fit exceeded what the format's constraint allows and were capped
    /// (paper format: amplitudes above `A(radius_max)`).
    pub seeds_at_radius_max: usize,
    /// Every byte the encoded layer stores.
    pub storage: StorageReport,
}

fn frobenius(values: impl Iterator<Item = f64>) -> f64 {
    values.map(|v| v * v).sum::<f64>().sqrt()
}

impl<B: Backend> RbeLinear<B> {
    /// Encodes `linear` with `config` (whose `d_input`, `d_output` and `bias` must match it).
    ///
    /// The seeds are the format's fit. Paper format (docs/math.md §7): the CORDIC bits come
    /// from `config.initializer`; `r` and `theta` are fitted per block and kept inside the
    /// radius range. Sign blueprint (§9): per block `mu` is the mean, `alpha` the mean
    /// absolute deviation from it and each bit the sign of `w - mu`. Ternary (§10): the exact
    /// least-squares levels and scale per block, the scale rounded to f16 and the levels
    /// re-chosen for it. The residual, if any, is
    /// the best rank-`k` approximation of `W - W_rbe` (`U = U_k Sigma_k`, `V = V_k^T`).
    pub fn from_linear(
        linear: &Linear<B>,
        config: &RbeLinearConfig,
    ) -> Result<(Self, EncodeReport), RbeError> {
        config.validate()?;
        let layout = config.layout()?;
        let weight = linear.weight.val();
        let device = weight.device();
        let [d_in, d_out] = weight.dims();
        if (d_in, d_out) != (config.d_input, config.d_output) {
            return Err(RbeError::shape(
                "Linear weight [d_input, d_output]",
                &[config.d_input, config.d_output],
                &[d_in, d_out],
            ));
        }
        if linear.bias.is_some() != config.bias {
            return Err(RbeError::Config(format!(
                "the Linear layer {} a bias but the config says bias = {}",
                if linear.bias.is_some() {
                    "has"
                } else {
                    "has no"
                },
                config.bias
            )));
        }

        // Host copy of W as [d_output, d_input], row-major, in f64.
        let wt = weight.transpose().into_data().convert::<f32>();
        let w: Vec<f64> = wt
            .as_slice::<f32>()
            .map_err(RbeError::data)?
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        if w.iter().any(|v| !v.is_finite()) {
            return Err(RbeError::NonFinite("Linear weight".into()));
        }

        let encoded = config
            .format
            .encode::<B>(&w, &layout, &config.initializer, &device)?;
        let generated = encoded.generated;
        let mut rest: Vec<f64> = w.iter().zip(&generated).map(|(w, g)| w - g).collect();
        let norm = frobenius(w.iter().copied()).max(f64::MIN_POSITIVE);
        let seeds_err = frobenius(rest.iter().copied()) / norm;

        let rank = config.residual_rank;
        let residual = (rank > 0).then(|| {
            let (u, v, left) = truncated_svd(&rest, d_out, d_in, rank);
            rest = left;
            LowRankResidual::from_factors(
                Tensor::from_data(TensorData::new(u, [d_out, rank]), &device),
                Tensor::from_data(TensorData::new(v, [rank, d_in]), &device),
            )
        });
        let bias = linear
            .bias
            .as_ref()
            .map(|b| trainable_param(ParamId::new(), b.val().detach()));
        let seeds = RbeSeeds::from_packed(&encoded.seeds, &layout, config.format, &device)?;
        let layer = RbeLinear::from_parts(seeds, residual, bias);
        let report = EncodeReport {
            rel_frobenius_error: frobenius(rest.into_iter()) / norm,
            seeds_rel_frobenius_error: seeds_err,
            seeds_at_radius_min: encoded.clamped_low,
            seeds_at_radius_max: encoded.clamped_high,
            storage: layer.storage(),
        };
        Ok((layer, report))
    }
}

/// The top-`rank` factors of a row-major `[rows, cols]` matrix as f32 `U Sigma` (`[rows,
/// rank]`) and `V^T` (`[rank, cols]`), and what remains after subtracting their f32 product.
fn truncated_svd(
    m: &[f64],
    rows: usize,
    cols: usize,
    rank: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f64>) {
    let matrix = DMatrix::from_row_slice(rows, cols, m);
    let svd = matrix.svd(true, true);
    let (u, vt) = (svd.u.expect("requested U"), svd.v_t.expect("requested V^T"));
    // nalgebra does not promise sorted singular values: take the largest explicitly.
    let mut order: Vec<usize> = (0..svd.singular_values.len()).collect();
    order.sort_by(|&a, &b| svd.singular_values[b].total_cmp(&svd.singular_values[a]));
    let mut uf = vec![0f32; rows * rank];
    let mut vf = vec![0f32; rank * cols];
    for (k, &idx) in order.iter().take(rank).enumerate() {
        let sigma = svd.singular_values[idx];
        for r in 0..rows {
            uf[r * rank + k] = (u[(r, idx)] * sigma) as f32;
        }
        for c in 0..cols {
            vf[k * cols + c] = vt[(idx, c)] as f32;
        }
    }
    let mut left = m.to_vec();
    for r in 0..rows {
        for c in 0..cols {
            let approx: f64 = (0..rank)
                .map(|k| f64::from(uf[r * rank + k]) * f64::from(vf[k * cols + c]))
                .sum();
            left[r * cols + c] -= approx;
        }
    }
    (uf, vf, left)
}

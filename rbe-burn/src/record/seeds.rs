//! [`RbeSeedsRecord`]: how the seeds of a layer are saved.
//!
//! Burn's recorders convert every float parameter to the recorder's float precision and every
//! int parameter to its int precision (`CompactRecorder`: f16 and i16). Seeds cannot survive
//! that: a 16-bit `r` is a different weight block, and the `hi` bits do not fit 16 bits. So
//! the seeds are saved as what they are, one [`Packed128`] (`hi`, `lo` as two u64) per block,
//! whatever the precision settings. Residual and bias are ordinary `Param`s and follow the
//! recorder's precision as they do in `Linear`.
//!
//! The record also carries the [`RbeLayerHeader`] of the layer it came from, so that loading
//! it into a layer of another block layout, or with or without a residual or bias that the
//! saved layer lacked, is refused instead of silently computing another `W`.

use burn::module::{Param, ParamId};
use burn::record::{PrecisionSettings, Record};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rbe_kernels::Packed128;
use serde::{Deserialize, Serialize};

use super::RbeLayerHeader;
use crate::formats::FormatId;
use crate::halves::{halves_to_hi, hi_to_halves};

/// The saved part of [`crate::RbeSeeds`].
#[derive(Debug, Clone)]
pub struct RbeSeedsRecord<B: Backend> {
    /// `(r, theta)` per seed, `[n_blocks, 2]`.
    pub coords: Param<Tensor<B, 2>>,
    /// `hi` per seed as two i32 bit patterns, `[n_blocks, 2]`.
    pub bits: Param<Tensor<B, 2, Int>>,
    /// The layer the seeds belong to; `None` for seeds built on their own.
    pub header: Option<RbeLayerHeader>,
}

/// The serialised form of [`RbeSeedsRecord`], the same under every precision setting.
///
/// It carries a CRC-32 of the header and seeds, checked when it is deserialised: Burn's
/// recorders have no checksum of their own, and a flipped bit in a seed would otherwise load
/// as another weight block.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "UncheckedItem")]
pub struct RbeSeedsItem {
    /// Parameter id of `coords`, so optimizer state saved beside the model still matches.
    pub coords_id: String,
    /// Parameter id of `bits`.
    pub bits_id: String,
    /// The layer the seeds belong to.
    pub header: Option<RbeLayerHeader>,
    /// One seed per block, block-row-major. Serialising fails on a non-finite `r` or `theta`,
    /// so a diverged model is never written; deserialising validates every seed.
    #[serde(serialize_with = "serialize_finite")]
    pub seeds: Vec<Packed128>,
    /// [`RbeSeedsItem::checksum_of`] the header and seeds.
    pub checksum: u32,
}

/// [`RbeSeedsItem`] as read, before its checksum is verified.
#[derive(Deserialize)]
struct UncheckedItem {
    coords_id: String,
    bits_id: String,
    header: Option<RbeLayerHeader>,
    seeds: Vec<Packed128>,
    checksum: u32,
}

impl TryFrom<UncheckedItem> for RbeSeedsItem {
    type Error = String;

    fn try_from(item: UncheckedItem) -> Result<Self, String> {
        let expected = Self::checksum_of(item.header.as_ref(), &item.seeds);
        if item.checksum != expected {
            return Err(format!(
                "RBE seed checksum mismatch (stored {:#010x}, computed {expected:#010x}): the seeds were altered",
                item.checksum
            ));
        }
        Ok(Self {
            coords_id: item.coords_id,
            bits_id: item.bits_id,
            header: item.header,
            seeds: item.seeds,
            checksum: item.checksum,
        })
    }
}

impl RbeSeedsItem {
    /// CRC-32 of the header's sizes and every seed's 16-byte little-endian form.
    pub fn checksum_of(header: Option<&RbeLayerHeader>, seeds: &[Packed128]) -> u32 {
        let mut crc = crc32fast::Hasher::new();
        if let Some(h) = header {
            let l = h.layout;
            for v in [l.rows, l.cols, l.block_rows, l.block_cols, h.residual_rank] {
                crc.update(&(v as u64).to_le_bytes());
            }
            crc.update(&[u8::from(h.bias)]);
            // The paper format adds nothing, so records saved before formats existed verify;
            // every other format adds its name.
            if h.format != FormatId::Paper {
                crc.update(h.format.name().as_bytes());
            }
        }
        for seed in seeds {
            crc.update(&seed.to_le_bytes());
        }
        crc.finalize()
    }
}

fn serialize_finite<S: serde::Serializer>(seeds: &[Packed128], s: S) -> Result<S::Ok, S::Error> {
    if let Some((index, err)) = seeds
        .iter()
        .enumerate()
        .find_map(|(i, seed)| seed.validate().err().map(|e| (i, e)))
    {
        return Err(serde::ser::Error::custom(format!(
            "refusing to save seed {index}: {err}"
        )));
    }
    seeds.serialize(s)
}

impl<B: Backend> RbeSeedsRecord<B> {
    /// The seeds on the host, as stored; `r` and `theta` may be non-finite.
    pub(crate) fn packed(coords: Tensor<B, 2>, bits: Tensor<B, 2, Int>) -> Vec<Packed128> {
        let coords = coords.into_data().convert::<f32>();
        let bits = bits.into_data().convert::<i64>();
        // `convert` has just produced exactly these element types.
        let coords = coords.as_slice::<f32>().expect("f32 after convert");
        let bits = bits.as_slice::<i64>().expect("i64 after convert");
        coords
            .chunks_exact(2)
            .zip(bits.chunks_exact(2))
            .map(|(c, b)| Packed128::from_parts_unchecked(halves_to_hi(b[0], b[1]), c[0], c[1]))
            .collect()
    }

    /// The device tensors `(coords, bits)` of `seeds`.
    pub(crate) fn upload(
        seeds: &[Packed128],
        device: &B::Device,
    ) -> (Tensor<B, 2>, Tensor<B, 2, Int>) {
        let n = seeds.len();
        let coords: Vec<f32> = seeds.iter().flat_map(|s| [s.r(), s.theta()]).collect();
        let bits: Vec<i32> = seeds.iter().flat_map(|s| hi_to_halves(s.hi)).collect();
        (
            Tensor::from_data(TensorData::new(coords, [n, 2]), device),
            Tensor::from_data(TensorData::new(bits, [n, 2]), device),
        )
    }
}

impl<B: Backend> Record<B> for RbeSeedsRecord<B> {
    type Item<S: PrecisionSettings> = RbeSeedsItem;

    fn into_item<S: PrecisionSettings>(self) -> RbeSeedsItem {
        let (coords_id, coords, coords_mapper) = self.coords.consume();
        let (bits_id, bits, bits_mapper) = self.bits.consume();
        let seeds = Self::packed(coords_mapper.on_save(coords), bits_mapper.on_save(bits));
        RbeSeedsItem {
            coords_id: coords_id.serialize(),
            bits_id: bits_id.serialize(),
            header: self.header,
            checksum: RbeSeedsItem::checksum_of(self.header.as_ref(), &seeds),
            seeds,
        }
    }

    fn from_item<S: PrecisionSettings>(item: RbeSeedsItem, device: &B::Device) -> Self {
        let (coords, bits) = Self::upload(&item.seeds, device);
        Self {
            coords: crate::trainable_param(ParamId::deserialize(&item.coords_id), coords),
            bits: Param::initialized(ParamId::deserialize(&item.bits_id), bits),
            header: item.header,
        }
    }
}

//! How a seed's `hi` is stored on the device: two i32 bit patterns, `[hi[63:32], hi[31:0]]`.
//! i32 survives every Burn recorder and int dtype bit for bit; the kernels read the halves
//! as they are.

/// `hi` as the two i32 bit patterns stored on the device.
pub(crate) fn hi_to_halves(hi: u64) -> [i32; 2] {
    [(hi >> 32) as u32 as i32, hi as u32 as i32]
}

/// Inverse of [`hi_to_halves`]; accepts the values widened to i64 by 64-bit int backends.
pub(crate) fn halves_to_hi(high: i64, low: i64) -> u64 {
    (u64::from(high as u32) << 32) | u64::from(low as u32)
}

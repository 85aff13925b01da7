//! Peak memory of one call, per backend family.
//!
//! Neither Burn nor CubeCL 0.10 records a high-water mark, so each probe bounds the peak
//! from what it can see; the bound is what the JSON calls `forward_peak_bytes`.

use burn_cubecl::CubeRuntime;

use super::heap_meter;

/// How the CPU numbers (Flex, NdArray) are obtained.
pub const HEAP_PROBE: &str = "the CPU backends (Flex, NdArray) expose no memory counters; peak \
     of live Rust-heap bytes above the level before the call (counting global allocator)";

/// How the CubeCL numbers are obtained.
pub const CUBE_PROBE: &str = "CubeCL client memory_usage() (no peak counter exists): after an \
     explicit memory_cleanup, bytes_reserved after the call minus bytes_in_use before it; pages \
     are not returned mid-call, so every byte live at the peak is inside that difference";

/// Live heap bytes (Flex and NdArray tensors live on the Rust heap).
pub fn heap_in_use() -> u64 {
    heap_meter::live_bytes() as u64
}

/// Runs `f` and bounds its heap peak.
pub fn heap_peak<O>(f: impl FnOnce() -> O) -> (O, u64) {
    let (out, peak) = heap_meter::peak_during(f);
    (out, peak as u64)
}

/// Bytes in live allocations of the CubeCL client of `device`.
pub fn cube_in_use<R: CubeRuntime>(device: &R::Device, sync: impl Fn()) -> u64 {
    sync();
    R::client(device)
        .memory_usage()
        .map_or(0, |usage| usage.bytes_in_use)
}

/// The largest buffer CubeCL hands one kernel binding on `device` (lavapipe: 128 MiB).
pub fn cube_max_binding<R: CubeRuntime>(device: &R::Device) -> u64 {
    R::client(device).properties().memory.max_page_size
}

/// Runs `f` and bounds the extra device memory it needed at its peak.
pub fn cube_peak<R: CubeRuntime, O>(
    device: &R::Device,
    sync: impl Fn(),
    f: impl FnOnce() -> O,
) -> (O, u64) {
    let client = R::client(device);
    sync();
    // Freed pages would otherwise hide new allocations inside the old reservation.
    client.memory_cleanup();
    sync();
    let before = client.memory_usage().map_or(0, |usage| usage.bytes_in_use);
    let out = f();
    sync();
    let after = client
        .memory_usage()
        .map_or(0, |usage| usage.bytes_reserved);
    (out, after.saturating_sub(before))
}

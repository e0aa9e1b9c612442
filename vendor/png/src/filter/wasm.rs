//! WebAssembly SIMD128 versions of the hottest filter loops (compiled when the crate is built
//! with `-C target-feature=+simd128`).
//!
//! The scalar loops are fast natively because LLVM vectorises them for x86 and Arm (the sum
//! of absolute values becomes `psadbw`, for instance), but the same code compiled to
//! WebAssembly and then to machine code by a WebAssembly runtime runs 2–3× slower. These
//! versions give the same results with explicit 128-bit operations, which the runtime maps
//! one to one onto the host's vector instructions.

use core::arch::wasm32::*;

/// The Paeth predictor of each 16-bit lane (`a`, `b`, `c` hold bytes widened to `i16`;
/// `c3` is `3 × c`), in the form stb_image uses: it picks the same byte as the PNG
/// specification's ties-favour-`a`-then-`b` rule with fewer steps after `a` is known, and
/// `a` (the byte just decoded) is what each pixel waits for.
#[inline(always)]
fn paeth_predictor(a: v128, b: v128, c: v128, c3: v128) -> v128 {
    let threshold = i16x8_sub(c3, i16x8_add(a, b));
    let low = i16x8_min(a, b);
    let high = i16x8_max(a, b);
    let low_or_c = v128_bitselect(low, c, i16x8_le(high, threshold));
    v128_bitselect(high, low_or_c, i16x8_le(threshold, low))
}

/// `BPP` (3 or 4) bytes at the start of `bytes`, widened to the low `i16` lanes.
#[inline(always)]
fn load_pixel<const BPP: usize>(bytes: &[u8]) -> v128 {
    let mut word = [0u8; 4];
    word[..BPP].copy_from_slice(&bytes[..BPP]);
    u16x8_extend_low_u8x16(u32x4(u32::from_le_bytes(word), 0, 0, 0))
}

/// Stores the low `BPP` lanes of `pixel` (each 0..=255) as bytes.
#[inline(always)]
fn store_pixel<const BPP: usize>(pixel: v128, bytes: &mut [u8]) {
    let word = u32x4_extract_lane::<0>(u8x16_narrow_i16x8(pixel, pixel)).to_le_bytes();
    bytes[..BPP].copy_from_slice(&word[..BPP]);
}

/// Reverses the Paeth filter of a row of 3- or 4-byte pixels, one pixel per step with all its
/// channels at once.
pub(super) fn paeth_unfilter<const BPP: usize>(current: &mut [u8], previous: &[u8]) {
    debug_assert!(BPP == 3 || BPP == 4);
    let low_byte = i16x8_splat(0xff);
    let mut a = i16x8_splat(0);
    let mut c = a;
    for (pixel, above) in current
        .chunks_exact_mut(BPP)
        .zip(previous.chunks_exact(BPP))
    {
        let b = load_pixel::<BPP>(above);
        let x = load_pixel::<BPP>(pixel);
        let c3 = i16x8_add(c, i16x8_add(c, c));
        let value = v128_and(i16x8_add(x, paeth_predictor(a, b, c, c3)), low_byte);
        store_pixel::<BPP>(value, pixel);
        a = value;
        c = b;
    }
}

/// The sum of the absolute values of the bytes read as `i8`: the adaptive filter's cost of a
/// filtered row.
pub(super) fn sum_abs(buf: &[u8]) -> u64 {
    // Each step adds at most 2 × 128 to a 16-bit lane, so 255 steps cannot overflow it.
    const STEPS: usize = 255;
    let mut total = 0u64;
    let mut blocks = buf.chunks_exact(16);
    loop {
        let mut lanes = u16x8_splat(0);
        let mut taken = 0;
        for block in blocks.by_ref().take(STEPS) {
            let low = u64::from_le_bytes(block[..8].try_into().unwrap());
            let high = u64::from_le_bytes(block[8..].try_into().unwrap());
            let magnitude = i8x16_abs(u64x2(low, high));
            // |-128| stays 0x80, which read unsigned is the right 128.
            lanes = i16x8_add(lanes, u16x8_extadd_pairwise_u8x16(magnitude));
            taken += 1;
        }
        let wide = u32x4_extadd_pairwise_u16x8(lanes);
        total += u64::from(u32x4_extract_lane::<0>(wide))
            + u64::from(u32x4_extract_lane::<1>(wide))
            + u64::from(u32x4_extract_lane::<2>(wide))
            + u64::from(u32x4_extract_lane::<3>(wide));
        if taken < STEPS {
            break;
        }
    }
    total
        + blocks
            .remainder()
            .iter()
            .map(|&b| u64::from((b as i8).unsigned_abs()))
            .sum::<u64>()
}

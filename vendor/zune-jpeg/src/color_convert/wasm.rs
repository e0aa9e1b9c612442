/*
 * Copyright (c) 2025.
 *
 * This software is free software;
 *
 * You can redistribute it or modify it under terms of the MIT, Apache License or Zlib license
 */

//! WebAssembly SIMD128 color conversion routines, modelled on `neon64.rs`.
//!
//! The results are bit identical to `scalar.rs` for Cb and Cr in 0..=255, the
//! range the IDCT and the upsamplers produce (and the AVX2 code assumes). As
//! `Y_CF` is `1 << YUV_PREC`, each channel is Y plus a term of the chroma alone:
//! R and B take theirs from `i16x8.q15mulr_sat_s` (`pmulhrsw` on x86) on `i16`
//! lanes; G's term, the sum of two products, comes from `i32x4.dot_i16x8_s`
//! (`pmaddwd`) on interleaved Cr and Cb.
//!
//! There is no `vst3`/`vst4` equivalent, so the planar R, G and B vectors are
//! interleaved with byte shuffles before being stored.

#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#![allow(clippy::wildcard_imports)]

use core::arch::wasm32::*;

use crate::color_convert::scalar::{CB_CF, CR_CF, C_G_CB_COEF_2, C_G_CR_COEF_1, YUV_PREC, YUV_RND};
use crate::decoder::ColorConvert16Ptr;

/// Load 16 `i16`s as two `i16x8` vectors
#[inline(always)]
fn load_16(v: &[i16; 16]) -> (v128, v128) {
    // SAFETY: `v` is 16 i16s (32 bytes) long and v128.load has no alignment requirement.
    unsafe { (v128_load(v.as_ptr().cast()), v128_load(v[8..].as_ptr().cast())) }
}

/// `((c - 128) * coef + YUV_RND) >> YUV_PREC` for `c` in 0..=255, in `i16` lanes.
///
/// `Y_CF` is `1 << YUV_PREC`, so the scalar `(y * Y_CF + (c - 128) * coef + YUV_RND) >>
/// YUV_PREC` is exactly `y + (((c - 128) * coef + YUV_RND) >> YUV_PREC)`. With `d = c - 128`
/// in -128..=127, `i16x8.q15mulr_sat_s` of `2 * d` and `coef` gives `(2 * d * coef + (1 <<
/// 14)) >> 15`, which is `(d * coef + (1 << 13)) >> 14`: a rounding constant of 8192 instead
/// of `YUV_RND`'s 8191. The two differ only where `d * coef` is an odd multiple of `1 << 13`,
/// and `CR_CF` (22970) and `CB_CF` (29032) have one and three factors of two, so `d` would
/// need ten or more: `|d| >= 1024`. The products never reach the saturation.
#[inline(always)]
fn chroma_term<const RELAXED: bool>(d2: v128, coef: i16) -> v128 {
    if RELAXED {
        // `i16x8.relaxed_q15mulr_s` differs from `i16x8.q15mulr_sat_s` only where both
        // operands are `i16::MIN`; `d2` is within -256..=254. On x86 it is one `pmulhrsw`
        // instead of `pmulhrsw` followed by a compare and a xor that fix that one case up.
        i16x8_relaxed_q15mulr(d2, i16x8_splat(coef))
    } else {
        i16x8_q15mulr_sat(d2, i16x8_splat(coef))
    }
}

/// Convert 8 pixels, returns R, G and B as `i16x8` (unclamped, but saturated to i16)
///
/// `cb` and `cr` must be in 0..=255, as the decoder's IDCT and upsamplers leave them (the
/// x86 AVX2 version relies on it too); `y` may be any `i16`.
#[inline(always)]
fn ycbcr_to_rgb_8<const RELAXED: bool>(y: v128, cb: v128, cr: v128) -> (v128, v128, v128) {
    // The G coefficients packed for `i32x4_dot_i16x8` against interleaved (cr, cb) lanes.
    let c_g = i32x4_splat(pair(C_G_CR_COEF_1, C_G_CB_COEF_2));
    let rnd = i32x4_splat(i32::from(YUV_RND));
    let shift = YUV_PREC as u32;

    let cb = i16x8_sub(cb, i16x8_splat(128));
    let cr = i16x8_sub(cr, i16x8_splat(128));

    // r = y + ((cr * CR_CF + YUV_RND) >> YUV_PREC), b likewise with cb and CB_CF: the
    // saturating add gives the scalar result wherever it is in i16 range, and a value that
    // still clamps to the same 0 or 255 where it is not.
    let r = i16x8_add_sat(y, chroma_term::<RELAXED>(i16x8_add(cr, cr), CR_CF));
    let b = i16x8_add_sat(y, chroma_term::<RELAXED>(i16x8_add(cb, cb), CB_CF));

    // g = y + ((cr * C_G_CR_COEF_1 + cb * C_G_CB_COEF_2 + YUV_RND) >> YUV_PREC): the sum of
    // two products does not split like r and b, so it is computed on i32 lanes.
    let cr_cb_lo = i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(cr, cb);
    let cr_cb_hi = i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(cr, cb);
    let g_lo = i32x4_shr(i32x4_add(i32x4_dot_i16x8(cr_cb_lo, c_g), rnd), shift);
    let g_hi = i32x4_shr(i32x4_add(i32x4_dot_i16x8(cr_cb_hi, c_g), rnd), shift);
    let g = i16x8_add_sat(y, i16x8_narrow_i32x4(g_lo, g_hi));
    (r, g, b)
}

/// Two `i16` coefficients packed in the `i32` lane layout `i32x4_dot_i16x8` expects:
/// `a` multiplies the even `i16` lane, `b` the odd one.
const fn pair(a: i16, b: i16) -> i32 {
    (a as u16 as i32) | ((b as u16 as i32) << 16)
}

/// Convert 16 pixels, returns R, G and B clamped to 0..=255 as `u8x16`
#[inline(always)]
fn ycbcr_to_rgb_16<const RELAXED: bool>(
    y: &[i16; 16], cb: &[i16; 16], cr: &[i16; 16]
) -> (v128, v128, v128) {
    let (y0, y1) = load_16(y);
    let (cb0, cb1) = load_16(cb);
    let (cr0, cr1) = load_16(cr);

    let (r0, g0, b0) = ycbcr_to_rgb_8::<RELAXED>(y0, cb0, cr0);
    let (r1, g1, b1) = ycbcr_to_rgb_8::<RELAXED>(y1, cb1, cr1);

    // Signed -> unsigned saturating narrowing: the clamp to 0..=255
    (
        u8x16_narrow_i16x8(r0, r1),
        u8x16_narrow_i16x8(g0, g1),
        u8x16_narrow_i16x8(b0, b1)
    )
}

/// Interleave three planes of 16 bytes into 16 three byte pixels (what NEON's `vst3q_u8`
/// does), in two rounds of two input shuffles per output vector.
#[inline(always)]
fn interleave_3(a: v128, b: v128, c: v128) -> [v128; 3] {
    // Bytes of `a` and `b` in place, holes (index 0, overwritten below) for `c`.
    let ab0 = i8x16_shuffle::<0, 16, 0, 1, 17, 0, 2, 18, 0, 3, 19, 0, 4, 20, 0, 5>(a, b);
    let ab1 = i8x16_shuffle::<21, 0, 6, 22, 0, 7, 23, 0, 8, 24, 0, 9, 25, 0, 10, 26>(a, b);
    let ab2 = i8x16_shuffle::<0, 11, 27, 0, 12, 28, 0, 13, 29, 0, 14, 30, 0, 15, 31, 0>(a, b);

    // a0 b0 c0 a1 b1 c1 a2 b2 c2 a3 b3 c3 a4 b4 c4 a5
    let out0 = i8x16_shuffle::<0, 1, 16, 3, 4, 17, 6, 7, 18, 9, 10, 19, 12, 13, 20, 15>(ab0, c);
    // b5 c5 a6 b6 c6 a7 b7 c7 a8 b8 c8 a9 b9 c9 a10 b10
    let out1 = i8x16_shuffle::<0, 21, 2, 3, 22, 5, 6, 23, 8, 9, 24, 11, 12, 25, 14, 15>(ab1, c);
    // c10 a11 b11 c11 a12 b12 c12 a13 b13 c13 a14 b14 c14 a15 b15 c15
    let out2 = i8x16_shuffle::<26, 1, 2, 27, 4, 5, 28, 7, 8, 29, 10, 11, 30, 13, 14, 31>(ab2, c);

    [out0, out1, out2]
}

/// Interleave four planes of 16 bytes into 16 four byte pixels (what NEON's `vst4q_u8`
/// does), with byte then 16 bit unpacks.
#[inline(always)]
fn interleave_4(a: v128, b: v128, c: v128, d: v128) -> [v128; 4] {
    let ab_lo = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(a, b);
    let ab_hi =
        i8x16_shuffle::<8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31>(a, b);
    let cd_lo = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(c, d);
    let cd_hi =
        i8x16_shuffle::<8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31>(c, d);

    [
        i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(ab_lo, cd_lo),
        i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(ab_lo, cd_lo),
        i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(ab_hi, cd_hi),
        i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(ab_hi, cd_hi)
    ]
}

/// Store `N` vectors to `output[*pos..]` and advance `pos`.
///
/// Panics if `output` is too small, like the scalar functions.
#[inline(always)]
fn store<const N: usize>(vectors: [v128; N], output: &mut [u8], pos: &mut usize) {
    let out = output
        .get_mut(*pos..*pos + N * 16)
        .expect("Slice to small cannot write");
    for (v, chunk) in vectors.iter().zip(out.chunks_exact_mut(16)) {
        // SAFETY: `chunk` is 16 bytes long; v128.store has no alignment requirement.
        unsafe { v128_store(chunk.as_mut_ptr().cast(), *v) }
    }
    *pos += N * 16;
}

/// Converts 16 pixels to `N` bytes each (RGB or RGBA, BGR or BGRA if `BGRA`) at
/// `out[*pos..]` and advances `pos`; `RELAXED` picks the Q15 multiplication (see
/// [`chroma_term`]).
#[inline(always)]
fn convert_16<const N: usize, const BGRA: bool, const RELAXED: bool>(
    y: &[i16; 16], cb: &[i16; 16], cr: &[i16; 16], out: &mut [u8], pos: &mut usize
) {
    let (r, g, b) = ycbcr_to_rgb_16::<RELAXED>(y, cb, cr);
    let (first, third) = if BGRA { (b, r) } else { (r, b) };
    if N == 3 {
        store(interleave_3(first, g, third), out, pos);
    } else {
        store(interleave_4(first, g, third, u8x16_splat(255)), out, pos);
    }
}

/// A row converter: `y`, `cb` and `cr` hold at least `width` samples, `out` is `width`
/// pixels long, and `width` is at least 16.
pub type ConvertRow = fn(&[i16], &[i16], &[i16], &mut [u8]);

/// Converts 16 pixels to RGB, for the decoder's function pointer. This and the three below
/// are not generic, so that each has a single address to recognise in [`row_converter`]. (A
/// generic function is instantiated in every codegen unit that names it, each copy at its own
/// address.)
pub fn ycbcr_to_rgb_16_wasm(
    y: &[i16; 16], cb: &[i16; 16], cr: &[i16; 16], out: &mut [u8], offset: &mut usize
) {
    convert_16::<3, false, false>(y, cb, cr, out, offset);
}

/// BGR, see [`ycbcr_to_rgb_16_wasm`].
pub fn ycbcr_to_bgr_16_wasm(
    y: &[i16; 16], cb: &[i16; 16], cr: &[i16; 16], out: &mut [u8], offset: &mut usize
) {
    convert_16::<3, true, false>(y, cb, cr, out, offset);
}

/// RGBA, see [`ycbcr_to_rgb_16_wasm`].
pub fn ycbcr_to_rgba_16_wasm(
    y: &[i16; 16], cb: &[i16; 16], cr: &[i16; 16], out: &mut [u8], offset: &mut usize
) {
    convert_16::<4, false, false>(y, cb, cr, out, offset);
}

/// BGRA, see [`ycbcr_to_rgb_16_wasm`].
pub fn ycbcr_to_bgra_16_wasm(
    y: &[i16; 16], cb: &[i16; 16], cr: &[i16; 16], out: &mut [u8], offset: &mut usize
) {
    convert_16::<4, true, false>(y, cb, cr, out, offset);
}

/// The row converter that does what `convert_16` does, if it is one of this module's.
///
/// A row converter keeps the loop over a row's 16 pixel groups in one function, where the
/// decoder calls `convert_16` through a pointer for every group, and it uses the relaxed
/// form of the Q15 multiplication.
#[allow(unpredictable_function_pointer_comparisons)]
pub fn row_converter(convert_16: ColorConvert16Ptr) -> Option<ConvertRow> {
    // A WebAssembly function pointer is the function's index in the table, and the
    // functions compared here are not generic, so each has exactly one. A miss would only
    // mean the slower path.
    let ours: [(ColorConvert16Ptr, ConvertRow); 4] = [
        (ycbcr_to_rgb_16_wasm, convert_row::<3, false>),
        (ycbcr_to_bgr_16_wasm, convert_row::<3, true>),
        (ycbcr_to_rgba_16_wasm, convert_row::<4, false>),
        (ycbcr_to_bgra_16_wasm, convert_row::<4, true>)
    ];
    ours.iter()
        .find(|(function, _)| *function == convert_16)
        .map(|(_, row)| *row)
}

/// Converts a row of `out.len() / N` pixels (at least 16) to `N` bytes per pixel: RGB(A), or
/// BGR(A) if `BGRA`. The last group of 16 overlaps the one before it when the width is not a
/// multiple of 16, and writes the same bytes there again.
fn convert_row<const N: usize, const BGRA: bool>(
    y: &[i16], cb: &[i16], cr: &[i16], out: &mut [u8]
) {
    let width = out.len() / N;
    assert!(width >= 16 && y.len() >= width && cb.len() >= width && cr.len() >= width);
    convert_row_relaxed::<N, BGRA>(&y[..width], &cb[..width], &cr[..width], out, width);
}

/// [`convert_row`]'s loop, compiled with relaxed SIMD for `i16x8.relaxed_q15mulr_s`. The
/// runtime must enable the relaxed SIMD proposal (wasmtime does by default).
#[target_feature(enable = "relaxed-simd")]
fn convert_row_relaxed<const N: usize, const BGRA: bool>(
    y: &[i16], cb: &[i16], cr: &[i16], out: &mut [u8], width: usize
) {
    let group = |x: usize, out: &mut [u8]| {
        let take = |plane: &[i16]| -> [i16; 16] { plane[x..x + 16].try_into().unwrap() };
        convert_16::<N, BGRA, true>(&take(y), &take(cb), &take(cr), out, &mut (x * N));
    };
    let mut x = 0;
    while x + 16 <= width {
        group(x, out);
        x += 16;
    }
    if x < width {
        group(width - 16, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::color_convert::scalar::{
        ycbcr_to_rgb_inner_16_scalar, ycbcr_to_rgba_inner_16_scalar
    };

    #[test]
    fn interleave_3_is_vst3() {
        let a = u8x16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let b = u8x16_add(a, u8x16_splat(100));
        let c = u8x16_add(a, u8x16_splat(200));
        let mut out = [0u8; 48];
        store(interleave_3(a, b, c), &mut out, &mut 0);
        for (i, px) in out.chunks_exact(3).enumerate() {
            assert_eq!(px, [i as u8, i as u8 + 100, i as u8 + 200]);
        }
    }

    #[test]
    fn wasm_matches_scalar() {
        // Every Cb and Cr pair of the range the decoder produces, against Y values in and
        // far out of range (which saturate).
        let y_values: [i16; 8] = [0, 1, 128, 254, 255, -300, i16::MIN, i16::MAX];
        for &y in &y_values {
            for cb in 0..=255_i16 {
                for cr_start in (0..256_i16).step_by(16) {
                    let y_in: [i16; 16] = core::array::from_fn(|i| y.wrapping_add(i as i16));
                    let cb_in = [cb; 16];
                    let cr_in: [i16; 16] = core::array::from_fn(|i| cr_start + i as i16);

                    let mut a = [0u8; 64 + 3];
                    let mut b = [0u8; 64 + 3];
                    macro_rules! check {
                        ($scalar:expr, $wasm:expr, $len:expr) => {
                            let (mut pa, mut pb) = (3, 3);
                            $scalar(&y_in, &cb_in, &cr_in, &mut a, &mut pa);
                            $wasm(&y_in, &cb_in, &cr_in, &mut b, &mut pb);
                            assert_eq!(pa, 3 + $len);
                            assert_eq!(pb, 3 + $len);
                            assert_eq!(a, b, "y {y} cb {cb} cr {cr_start}..");
                        };
                    }
                    check!(ycbcr_to_rgb_inner_16_scalar::<false>, ycbcr_to_rgb_16_wasm, 48);
                    check!(ycbcr_to_rgb_inner_16_scalar::<true>, ycbcr_to_bgr_16_wasm, 48);
                    check!(ycbcr_to_rgba_inner_16_scalar::<false>, ycbcr_to_rgba_16_wasm, 64);
                    check!(ycbcr_to_rgba_inner_16_scalar::<true>, ycbcr_to_bgra_16_wasm, 64);
                }
            }
        }
    }

    #[test]
    fn rows_match_scalar() {
        // Widths that are and are not multiples of 16 (the last group then overlaps), with
        // samples spread over the decoder's range and Y beyond it.
        for width in [16, 17, 31, 32, 33, 47, 100, 257] {
            let sample = |i: usize, k: usize| ((i * k + i / 3) % 256) as i16;
            let y: Vec<i16> = (0..width + 5).map(|i| sample(i, 7) * 2 - 100).collect();
            let cb: Vec<i16> = (0..width + 5).map(|i| sample(i, 13)).collect();
            let cr: Vec<i16> = (0..width + 5).map(|i| sample(i, 29)).collect();
            let cases: [(ColorConvert16Ptr, usize, ColorConvert16Ptr); 4] = [
                (ycbcr_to_rgb_16_wasm, 3, ycbcr_to_rgb_inner_16_scalar::<false>),
                (ycbcr_to_bgr_16_wasm, 3, ycbcr_to_rgb_inner_16_scalar::<true>),
                (ycbcr_to_rgba_16_wasm, 4, ycbcr_to_rgba_inner_16_scalar::<false>),
                (ycbcr_to_bgra_16_wasm, 4, ycbcr_to_rgba_inner_16_scalar::<true>)
            ];
            for (convert_16, n, scalar) in cases {
                let row = row_converter(convert_16).expect("a row converter");
                let mut got = vec![0u8; width * n];
                row(&y, &cb, &cr, &mut got);
                let mut want = vec![0u8; (width + 15) / 16 * 16 * n];
                let padded = |plane: &[i16]| {
                    let mut v = plane[..width].to_vec();
                    v.resize((width + 15) / 16 * 16, 0);
                    v
                };
                let (py, pcb, pcr) = (padded(&y), padded(&cb), padded(&cr));
                let mut pos = 0;
                let groups =
                    py.chunks_exact(16).zip(pcb.chunks_exact(16)).zip(pcr.chunks_exact(16));
                for ((y16, cb16), cr16) in groups {
                    let group = |plane: &[i16]| -> [i16; 16] { plane.try_into().unwrap() };
                    scalar(&group(y16), &group(cb16), &group(cr16), &mut want, &mut pos);
                }
                assert_eq!(got, want[..width * n], "width {width}, {n} bytes per pixel");
            }
        }
    }
}

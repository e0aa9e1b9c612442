/*
 * Copyright (c) 2025.
 *
 * This software is free software;
 *
 * You can redistribute it or modify it under terms of the MIT, Apache License or Zlib license
 */

#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
//! WebAssembly SIMD128 optimised IDCT.
//!
//! A port of the NEON / AVX2 versions (see `idct/neon.rs` for the description of the
//! algorithm): the block is kept as eight rows of eight `i32`s, two `i32x4` vectors per
//! row, a one dimensional IDCT is carried out on the columns, the block is transposed,
//! the same IDCT is carried out again and the result is transposed back.
//!
//! All the arithmetic is done on `i32` lanes with wrapping adds and multiplies and
//! arithmetic shifts, exactly like the scalar code in `idct/scalar.rs`, so the results
//! are bit identical to it.
//!
//! The only difference in structure from the NEON version is the last step: the
//! results are narrowed (with saturation) to `i16` and clamped *before* the final
//! transpose, so that transpose works on eight `i16x8` vectors instead of sixteen
//! `i32x4` ones.
#![allow(clippy::wildcard_imports)]

use core::arch::wasm32::*;

use crate::unsafe_utils::{transpose, transpose4, YmmRegister};

const SCALE_BITS: i32 = 512 + 65536 + (128 << 17);

/// Store 8 `i16`s at `out[pos..pos + 8]`.
///
/// Like the other implementations, writes that would fall out of bounds (which only
/// happens with some bad images) are silently discarded.
#[inline(always)]
fn store_i16x8(out: &mut [i16], pos: usize, value: v128) {
    let mut tmp = [0_i16; 8];
    let dst: &mut [i16; 8] = out
        .get_mut(pos..pos + 8)
        .unwrap_or(&mut tmp)
        .try_into()
        .unwrap();
    // SAFETY: `dst` is 8 i16s, 16 bytes, and v128.store has no alignment requirement.
    unsafe { v128_store(dst.as_mut_ptr().cast(), value) }
}

/// Finish an IDCT whose second pass left the block transposed: `cols[k]` holds the
/// output column `k`, lane `i` of it being the output row `i`.
///
/// The values are narrowed to `i16` with signed saturation and clamped to 0..=255
/// (together equivalent to the scalar `clamp(x)` on `i32`), the 8x8 `i16` block is
/// transposed back and the rows are stored `stride` elements apart.
#[inline(always)]
fn clamp_transpose_store(cols: [YmmRegister; 8], out: &mut [i16], stride: usize) {
    let zero = i16x8_splat(0);
    let max = i16x8_splat(255);

    let [c0, c1, c2, c3, c4, c5, c6, c7] = cols.map(|c| {
        let packed = i16x8_narrow_i32x4(c.mm256[0], c.mm256[1]);
        i16x8_min(i16x8_max(packed, zero), max)
    });

    // 8x8 transpose of 16 bit lanes: interleave 16, then 32, then 64 bit lanes.
    // (writing `cK[i]` for lane `i` of column `k`, i.e. the element of row `i`)
    //
    // c0[0] c1[0] c0[1] c1[1] c0[2] c1[2] c0[3] c1[3] and the upper half
    let t0 = i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(c0, c1);
    let t1 = i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(c0, c1);
    let t2 = i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(c2, c3);
    let t3 = i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(c2, c3);
    let t4 = i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(c4, c5);
    let t5 = i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(c4, c5);
    let t6 = i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(c6, c7);
    let t7 = i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(c6, c7);

    // c0[0] c1[0] c2[0] c3[0] c0[1] c1[1] c2[1] c3[1]: halves of rows 0 and 1, etc.
    let u0 = i32x4_shuffle::<0, 4, 1, 5>(t0, t2);
    let u1 = i32x4_shuffle::<2, 6, 3, 7>(t0, t2);
    let u2 = i32x4_shuffle::<0, 4, 1, 5>(t1, t3);
    let u3 = i32x4_shuffle::<2, 6, 3, 7>(t1, t3);
    let w0 = i32x4_shuffle::<0, 4, 1, 5>(t4, t6);
    let w1 = i32x4_shuffle::<2, 6, 3, 7>(t4, t6);
    let w2 = i32x4_shuffle::<0, 4, 1, 5>(t5, t7);
    let w3 = i32x4_shuffle::<2, 6, 3, 7>(t5, t7);

    let rows = [
        i64x2_shuffle::<0, 2>(u0, w0),
        i64x2_shuffle::<1, 3>(u0, w0),
        i64x2_shuffle::<0, 2>(u1, w1),
        i64x2_shuffle::<1, 3>(u1, w1),
        i64x2_shuffle::<0, 2>(u2, w2),
        i64x2_shuffle::<1, 3>(u2, w2),
        i64x2_shuffle::<0, 2>(u3, w3),
        i64x2_shuffle::<1, 3>(u3, w3)
    ];

    let mut pos = 0;
    for row in rows {
        store_i16x8(out, pos, row);
        pos += stride;
    }
}

#[allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::similar_names,
    clippy::op_ref,
    unused_assignments,
    clippy::zero_prefixed_literal
)]
pub fn idct_wasm(in_vector: &mut [i32; 64], out_vector: &mut [i16], stride: usize) {
    // load into registers
    //
    // We sign extend i16's to i32's and calculate them with extended precision and
    // later reduce them to i16's when we are done carrying out IDCT
    let mut row0 = YmmRegister::load_slice(&in_vector[00..]);
    let mut row1 = YmmRegister::load_slice(&in_vector[08..]);
    let mut row2 = YmmRegister::load_slice(&in_vector[16..]);
    let mut row3 = YmmRegister::load_slice(&in_vector[24..]);
    let mut row4 = YmmRegister::load_slice(&in_vector[32..]);
    let mut row5 = YmmRegister::load_slice(&in_vector[40..]);
    let mut row6 = YmmRegister::load_slice(&in_vector[48..]);
    let mut row7 = YmmRegister::load_slice(&in_vector[56..]);

    // Forward DCT and quantization may cause all the AC terms to be zero, for such
    // cases we can try to accelerate it: the IDCT of the block is then its DC value
    // scaled and propagated to all the elements.
    //
    // Do another load for the first row, we don't want to check DC value, because
    // we only care about AC terms
    let row8 = YmmRegister::load_slice(&in_vector[01..]);

    let or_tree = (((row1 | row8) | (row2 | row3)) | ((row4 | row5) | (row6 | row7)));

    if or_tree.all_zero() {
        // AC terms all zero, idct of the block is ( coeff[0] * qt[0] )/8 + 128 (bias)
        // (and clamped to 255)
        // Round by adding 0.5 * (1 << 3) and offset by adding (128 << 3) before scaling
        // (wrapping, like `scalar::idct_int_1x1`)
        let coeff = (in_vector[0].wrapping_add(4).wrapping_add(1024) >> 3).clamp(0, 255) as i16;
        let idct_value = i16x8_splat(coeff);

        let mut pos = 0;
        for _ in 0..8 {
            store_i16x8(out_vector, pos, idct_value);
            pos += stride;
        }
        return;
    }

    macro_rules! dct_pass {
        ($SCALE_BITS:tt,$scale:tt) => {
            // A direct translation of the scalar code, see `idct/neon.rs`

            // even part
            let p1 = (row2 + row6) * 2217;

            let mut t2 = p1 + row6 * -7567;
            let mut t3 = p1 + row2 * 3135;

            let mut t0 = (row0 + row4).const_shl::<12>();
            let mut t1 = (row0 - row4).const_shl::<12>();

            let x0 = t0 + t3 + $SCALE_BITS;
            let x3 = t0 - t3 + $SCALE_BITS;
            let x1 = t1 + t2 + $SCALE_BITS;
            let x2 = t1 - t2 + $SCALE_BITS;

            let p3 = row7 + row3;
            let p4 = row5 + row1;
            let p1 = row7 + row1;
            let p2 = row5 + row3;
            let p5 = (p3 + p4) * 4816;

            t0 = row7 * 1223;
            t1 = row5 * 8410;
            t2 = row3 * 12586;
            t3 = row1 * 6149;

            let p1 = p5 + p1 * -3685;
            let p2 = p5 + (p2 * -10497);
            let p3 = p3 * -8034;
            let p4 = p4 * -1597;

            t3 += p1 + p4;
            t2 += p2 + p3;
            t1 += p2 + p4;
            t0 += p1 + p3;

            row0 = (x0 + t3).const_shra::<$scale>();
            row1 = (x1 + t2).const_shra::<$scale>();
            row2 = (x2 + t1).const_shra::<$scale>();
            row3 = (x3 + t0).const_shra::<$scale>();

            row4 = (x3 - t0).const_shra::<$scale>();
            row5 = (x2 - t1).const_shra::<$scale>();
            row6 = (x1 - t2).const_shra::<$scale>();
            row7 = (x0 - t3).const_shra::<$scale>();
        };
    }

    // Process columns (`scalar::idct_int`'s vertical pass)
    dct_pass!(512, 10);
    transpose(
        &mut row0, &mut row1, &mut row2, &mut row3, &mut row4, &mut row5, &mut row6, &mut row7
    );

    // Process rows (the horizontal pass); the results end up transposed
    dct_pass!(SCALE_BITS, 17);

    // Pack i32 to i16's, clamp them to be between 0-255, undo the transposition and
    // store back to the output
    clamp_transpose_store(
        [row0, row1, row2, row3, row4, row5, row6, row7],
        out_vector,
        stride
    );
}

/// IDCT assuming only the upper left 4x4 coefficients are non-zero,
/// the counterpart of `scalar::idct4x4`.
///
/// `in_vector` is only read, so the contract of `choose_idct_4x4_func` (everything
/// outside the upper left 4x4 block is zero on return) is upheld trivially.
#[allow(clippy::similar_names, clippy::zero_prefixed_literal)]
pub fn idct_wasm_4x4(in_vector: &mut [i32; 64], out_vector: &mut [i16], stride: usize) {
    // First pass, on the columns. Only columns 0..4 of rows 0..4 are non-zero, and the
    // scalar code ignores the other columns altogether, so one i32x4 per row suffices.
    let load4 = |pos: usize| {
        let src: &[i32; 4] = in_vector[pos..pos + 4].try_into().unwrap();
        // SAFETY: `src` is 4 i32s, 16 bytes.
        unsafe { v128_load(src.as_ptr().cast()) }
    };
    let row0 = load4(00);
    let row1 = load4(08);
    let row2 = load4(16);
    let row3 = load4(24);

    let mul = |a: v128, c: i32| i32x4_mul(a, i32x4_splat(c));

    let [mut o0, mut o1, mut o2, mut o3, mut o4, mut o5, mut o6, mut o7] = {
        // even part
        let i0 = i32x4_add(i32x4_shl(row0, 12), i32x4_splat(512));

        let p1 = mul(row2, 2217);
        let p3 = mul(row2, 5352);

        let x0 = i32x4_add(i0, p3);
        let x1 = i32x4_add(i0, p1);
        let x2 = i32x4_sub(i0, p1);
        let x3 = i32x4_sub(i0, p3);

        // odd part
        let p5 = mul(i32x4_add(row3, row1), 4816);

        let p1 = i32x4_add(p5, mul(row1, -3685));
        let p2 = i32x4_add(p5, mul(row3, -10497));

        let t3 = i32x4_add(p5, mul(row1, 867));
        let t2 = i32x4_add(p5, mul(row3, -5945));

        let t1 = i32x4_add(p2, mul(row1, -1597));
        let t0 = i32x4_add(p1, mul(row3, -8034));

        [
            i32x4_shr(i32x4_add(x0, t3), 10),
            i32x4_shr(i32x4_add(x1, t2), 10),
            i32x4_shr(i32x4_add(x2, t1), 10),
            i32x4_shr(i32x4_add(x3, t0), 10),
            i32x4_shr(i32x4_sub(x3, t0), 10),
            i32x4_shr(i32x4_sub(x2, t1), 10),
            i32x4_shr(i32x4_sub(x1, t2), 10),
            i32x4_shr(i32x4_sub(x0, t3), 10)
        ]
    };

    // Transpose the 8x4 result into four 8 lane columns
    transpose4(&mut o0, &mut o1, &mut o2, &mut o3);
    transpose4(&mut o4, &mut o5, &mut o6, &mut o7);

    let i0 = YmmRegister::from([o0, o4]);
    let i1 = YmmRegister::from([o1, o5]);
    let i2 = YmmRegister::from([o2, o6]);
    let i3 = YmmRegister::from([o3, o7]);

    // Second pass, on the rows (one row per lane)

    // constants scaled things up by 1<<12, plus we had 1<<2 from first
    // loop, plus horizontal and vertical each scale by sqrt(8) so together
    // we've got an extra 1<<3, so 1<<17 total we need to remove.
    // so we want to round that, which means adding 0.5 * 1<<17,
    // aka 65536. Also, we'll end up with -128 to 127 that we want
    // to encode as 0..255 by adding 128, so we'll add that before the shift
    // (all in SCALE_BITS)
    let t0 = i0.const_shl::<12>() + SCALE_BITS;
    let t2 = i2 * 2217;
    let t3 = i2 * 5352;

    let x0 = t0 + t3;
    let x3 = t0 - t3;
    let x1 = t0 + t2;
    let x2 = t0 - t2;

    // odd part
    let p5 = (i3 + i1) * 4816;

    let p1 = p5 + i1 * -3685;
    let p2 = p5 + i3 * -10497;

    let t3 = p5 + i1 * 867;
    let t2 = p5 + i3 * -5945;

    let t1 = p2 + i1 * -1597;
    let t0 = p1 + i3 * -8034;

    clamp_transpose_store(
        [
            (x0 + t3).const_shra::<17>(),
            (x1 + t2).const_shra::<17>(),
            (x2 + t1).const_shra::<17>(),
            (x3 + t0).const_shra::<17>(),
            (x3 - t0).const_shra::<17>(),
            (x2 - t1).const_shra::<17>(),
            (x1 - t2).const_shra::<17>(),
            (x0 - t3).const_shra::<17>()
        ],
        out_vector,
        stride
    );
}

#[cfg(test)]
#[allow(clippy::cast_possible_wrap)]
mod tests {
    use super::*;
    use crate::idct::scalar::{idct4x4, idct_int};

    /// A small deterministic pseudo random generator (xorshift)
    fn next(state: &mut u32) -> u32 {
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;
        *state
    }

    #[test]
    fn idct_wasm_matches_scalar() {
        let mut state = 0x1234_5678;
        for round in 0..20_000 {
            let mut coeff = [0i32; 64];
            // Mix small, typical and huge coefficients, and blocks with few of them
            let range = [64, 1024, 1 << 16, i32::MAX as u32][round % 4];
            let density = 1 + (next(&mut state) % 64) as usize;
            for c in coeff.iter_mut().take(density) {
                *c = (next(&mut state) % range) as i32 - (range / 2) as i32;
            }
            let mut coeff2 = coeff;
            let mut out_scalar = [0i16; 64];
            let mut out_wasm = [0i16; 64];
            idct_int(&mut coeff, &mut out_scalar, 8);
            idct_wasm(&mut coeff2, &mut out_wasm, 8);
            assert_eq!(out_scalar, out_wasm, "round {round}");
        }
    }

    #[test]
    fn idct_wasm_4x4_matches_scalar() {
        let mut state = 0x8765_4321;
        for round in 0..20_000 {
            let mut coeff = [0i32; 64];
            let range = [64, 1024, 1 << 16, i32::MAX as u32][round % 4];
            for r in 0..4 {
                for c in 0..4 {
                    coeff[r * 8 + c] = (next(&mut state) % range) as i32 - (range / 2) as i32;
                }
            }
            let mut coeff2 = coeff;
            // Wider than 8, to check the stride
            let mut out_scalar = [0i16; 8 * 16];
            let mut out_wasm = [0i16; 8 * 16];
            idct4x4(&mut coeff, &mut out_scalar, 16);
            idct_wasm_4x4(&mut coeff2, &mut out_wasm, 16);
            assert_eq!(out_scalar, out_wasm, "round {round}");
            assert!(coeff2[32..].iter().all(|&c| c == 0));
        }
    }
}

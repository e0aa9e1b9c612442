/*
 * Copyright (c) 2025.
 *
 * This software is free software;
 *
 * You can redistribute it or modify it under terms of the MIT, Apache License or Zlib license
 */

//! WebAssembly SIMD128 up-sampling routines, a port of `neon.rs`.
//!
//! Same `i16` arithmetic (`(3 * a + b + 2) >> 2`, wrapping, arithmetic shift) as
//! the scalar code, so the results are bit identical to it.

#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#![allow(clippy::wildcard_imports)]

use core::arch::wasm32::*;

/// Load 8 `i16`s
#[inline(always)]
fn load(v: &[i16]) -> v128 {
    let v: &[i16; 8] = v[..8].try_into().unwrap();
    // SAFETY: `v` is 8 i16s (16 bytes) long and v128.load has no alignment requirement.
    unsafe { v128_load(v.as_ptr().cast()) }
}

/// Store 8 `i16`s
#[inline(always)]
fn store(v: &mut [i16], value: v128) {
    let v: &mut [i16; 8] = (&mut v[..8]).try_into().unwrap();
    // SAFETY: `v` is 8 i16s (16 bytes) long and v128.store has no alignment requirement.
    unsafe { v128_store(v.as_mut_ptr().cast(), value) }
}

/// `(3 * near + 2 + far) >> 2` on 8 lanes
#[inline(always)]
fn triangle(near: v128, far: v128) -> v128 {
    let common = i16x8_add(i16x8_mul(near, i16x8_splat(3)), i16x8_splat(2));
    i16x8_shr(i16x8_add(common, far), 2)
}

pub fn upsample_horizontal_wasm(
    input: &[i16], in_near: &[i16], in_far: &[i16], scratch: &mut [i16], output: &mut [i16]
) {
    assert_eq!(input.len() * 2, output.len());
    assert!(input.len() > 2);

    let len = input.len();

    if len < 10 {
        return super::scalar::upsample_horizontal(input, in_near, in_far, scratch, output);
    }

    // First two pixels
    output[0] = input[0];
    output[1] = (input[0] * 3 + input[1] + 2) >> 2;

    // Input pixels 1..9 (with their neighbours 0..10) give output pixels 2..18
    let upsample8 = |input: &[i16; 10], output: &mut [i16; 16]| {
        let v_prev = load(&input[0..]);
        let v_curr = load(&input[1..]);
        let v_next = load(&input[2..]);

        let v_even = triangle(v_curr, v_prev);
        let v_odd = triangle(v_curr, v_next);

        store(&mut output[0..], i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(v_even, v_odd));
        store(&mut output[8..], i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(v_even, v_odd));
    };

    for (input, output) in input
        .windows(10)
        .step_by(8)
        .zip(output[2..].chunks_exact_mut(16))
    {
        upsample8(input.try_into().unwrap(), output.try_into().unwrap());
    }

    // Upsample the remainder: the last 8 input pixels with a neighbour on each side,
    // i.e. all output pixels but the last two. This may have some overlap, but that's fine.
    // (`len >= 10`, so `output.len() >= 20`.)
    let end = output.len() - 2;
    upsample8(
        input[len - 10..].try_into().unwrap(),
        (&mut output[end - 16..end]).try_into().unwrap()
    );

    // Last two pixels.
    output[output.len() - 2] = (3 * input[len - 1] + input[len - 2] + 2) >> 2;
    output[output.len() - 1] = input[len - 1];
}

pub fn upsample_vertical_wasm(
    input: &[i16], in_near: &[i16], in_far: &[i16], scratch: &mut [i16], output: &mut [i16]
) {
    assert_eq!(input.len() * 2, output.len());
    assert_eq!(in_near.len(), input.len());
    assert_eq!(in_far.len(), input.len());

    let len = input.len();

    if len < 16 {
        return super::scalar::upsample_vertical(input, in_near, in_far, scratch, output);
    }

    let middle = output.len() / 2;
    let (out_top, out_bottom) = output.split_at_mut(middle);

    let upsample8 = |input: &[i16], in_near: &[i16], in_far: &[i16], out_top: &mut [i16],
                     out_bottom: &mut [i16]| {
        let v_in = load(input);
        store(out_top, triangle(v_in, load(in_near)));
        store(out_bottom, triangle(v_in, load(in_far)));
    };

    let chunks = input
        .chunks_exact(8)
        .zip(in_near.chunks_exact(8))
        .zip(in_far.chunks_exact(8))
        .zip(out_top.chunks_exact_mut(8))
        .zip(out_bottom.chunks_exact_mut(8));

    for ((((input, in_near), in_far), out_top), out_bottom) in chunks {
        upsample8(input, in_near, in_far, out_top, out_bottom);
    }

    // Upsample the remainder (the last 8 lanes, overlapping the main loop).
    if len % 8 != 0 {
        let rest = len - 8;
        upsample8(
            &input[rest..],
            &in_near[rest..],
            &in_far[rest..],
            &mut out_top[rest..],
            &mut out_bottom[rest..]
        );
    }
}

pub fn upsample_hv_wasm(
    input: &[i16], in_near: &[i16], in_far: &[i16], scratch_space: &mut [i16], output: &mut [i16]
) {
    assert_eq!(input.len() * 4, output.len());

    assert!(input.len() * 2 <= scratch_space.len());
    let scratch_space = &mut scratch_space[..input.len() * 2];

    upsample_vertical_wasm(input, in_near, in_far, &mut [], scratch_space);

    // Horizontal up-sampling must be done separately for each of the two rows
    let scratch_half = scratch_space.len() / 2;
    let output_half = output.len() / 2;

    let (scratch_top, scratch_bottom) = scratch_space.split_at_mut(scratch_half);
    let (out_top, out_bottom) = output.split_at_mut(output_half);

    let mut t = [0];
    upsample_horizontal_wasm(scratch_top, &[], &[], &mut t, out_top);
    upsample_horizontal_wasm(scratch_bottom, &[], &[], &mut t, out_bottom);
}

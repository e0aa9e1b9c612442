/*
 * Copyright (c) 2025.
 *
 * This software is free software;
 *
 * You can redistribute it or modify it under terms of the MIT, Apache License or Zlib license
 */

#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
//! WebAssembly SIMD128 counterpart of `unsafe_utils_neon`.
//!
//! An 8 lane `i32` row (what one AVX2 `ymm` register holds) is kept in two
//! 128 bit `v128` registers, low half = lanes 0..4, high half = lanes 4..8.
//!
//! SIMD128 is a compile time feature on WebAssembly (a module either uses it or
//! it does not validate), so there is no runtime detection and the arithmetic
//! intrinsics are safe to call; only loads and stores through raw pointers are
//! `unsafe`.
#![allow(clippy::wildcard_imports)]

use core::arch::wasm32::*;
use core::ops::{Add, AddAssign, BitOr, BitOrAssign, Mul, MulAssign, Sub};

/// Two `i32x4` vectors: lanes 0..4 and lanes 4..8 of a row
pub type VecType = [v128; 2];

/// Load 8 `i32`s
///
/// # Safety
/// `src` must be valid for reading 8 `i32`s (no alignment requirement).
#[inline(always)]
pub unsafe fn loadu(src: *const i32) -> VecType {
    // SAFETY: the caller guarantees 32 readable bytes; v128.load has no alignment requirement.
    unsafe { [v128_load(src.cast()), v128_load(src.add(4).cast())] }
}

/// An abstraction of an AVX ymm register that
/// allows some things to not look ugly
#[derive(Clone, Copy)]
pub struct YmmRegister {
    /// Lanes 0..4 and 4..8
    pub(crate) mm256: VecType
}

impl YmmRegister {
    /// Load 8 `i32`s
    ///
    /// # Safety
    /// `src` must be valid for reading 8 `i32`s.
    #[inline(always)]
    pub unsafe fn load(src: *const i32) -> Self {
        // SAFETY: forwarded to the caller.
        unsafe { loadu(src).into() }
    }

    /// Load 8 `i32`s from the start of `src`, panicking if it is shorter than that
    #[inline(always)]
    pub fn load_slice(src: &[i32]) -> Self {
        let src: &[i32; 8] = src[..8].try_into().unwrap();
        // SAFETY: `src` is exactly 8 i32s long.
        unsafe { Self::load(src.as_ptr()) }
    }

    #[inline(always)]
    pub fn map2(self, other: Self, f: impl Fn(v128, v128) -> v128) -> Self {
        YmmRegister {
            mm256: [f(self.mm256[0], other.mm256[0]), f(self.mm256[1], other.mm256[1])]
        }
    }

    #[inline(always)]
    pub fn map(self, f: impl Fn(v128) -> v128) -> Self {
        YmmRegister {
            mm256: [f(self.mm256[0]), f(self.mm256[1])]
        }
    }

    /// True if all 8 lanes are zero
    #[inline(always)]
    pub fn all_zero(self) -> bool {
        !v128_any_true(v128_or(self.mm256[0], self.mm256[1]))
    }

    /// Shift every lane left by `N` (wrapping, like the scalar `<<`)
    #[inline(always)]
    pub fn const_shl<const N: u32>(self) -> Self {
        self.map(|a| i32x4_shl(a, N))
    }

    /// Arithmetic (sign extending) shift right of every lane by `N`
    #[inline(always)]
    pub fn const_shra<const N: u32>(self) -> Self {
        self.map(|a| i32x4_shr(a, N))
    }
}

impl<T> Add<T> for YmmRegister
where
    T: Into<Self>
{
    type Output = YmmRegister;

    #[inline(always)]
    fn add(self, rhs: T) -> Self::Output {
        self.map2(rhs.into(), |a, b| i32x4_add(a, b))
    }
}

impl<T> Sub<T> for YmmRegister
where
    T: Into<Self>
{
    type Output = YmmRegister;

    #[inline(always)]
    fn sub(self, rhs: T) -> Self::Output {
        self.map2(rhs.into(), |a, b| i32x4_sub(a, b))
    }
}

impl<T> AddAssign<T> for YmmRegister
where
    T: Into<Self>
{
    #[inline(always)]
    fn add_assign(&mut self, rhs: T) {
        let rhs: Self = rhs.into();
        *self = *self + rhs;
    }
}

impl<T> Mul<T> for YmmRegister
where
    T: Into<Self>
{
    type Output = YmmRegister;

    /// Wrapping (low 32 bits) multiplication, like the scalar `wrapping_mul`
    #[inline(always)]
    fn mul(self, rhs: T) -> Self::Output {
        self.map2(rhs.into(), |a, b| i32x4_mul(a, b))
    }
}

impl<T> MulAssign<T> for YmmRegister
where
    T: Into<Self>
{
    #[inline(always)]
    fn mul_assign(&mut self, rhs: T) {
        let rhs: Self = rhs.into();
        *self = *self * rhs;
    }
}

impl<T> BitOr<T> for YmmRegister
where
    T: Into<Self>
{
    type Output = YmmRegister;

    #[inline(always)]
    fn bitor(self, rhs: T) -> Self::Output {
        self.map2(rhs.into(), |a, b| v128_or(a, b))
    }
}

impl<T> BitOrAssign<T> for YmmRegister
where
    T: Into<Self>
{
    #[inline(always)]
    fn bitor_assign(&mut self, rhs: T) {
        let rhs: Self = rhs.into();
        *self = *self | rhs;
    }
}

impl From<i32> for YmmRegister {
    #[inline(always)]
    fn from(val: i32) -> Self {
        let dup = i32x4_splat(val);

        YmmRegister { mm256: [dup, dup] }
    }
}

impl From<VecType> for YmmRegister {
    #[inline(always)]
    fn from(mm256: VecType) -> Self {
        YmmRegister { mm256 }
    }
}

/// Transpose a 4x4 block of `i32`s held in four `i32x4` rows.
///
/// Two rounds of interleaving, 32 bit then 64 bit; every shuffle here has the
/// shape of an SSE `punpck{l,h}{dq,qdq}` so engines lower it to one instruction.
#[inline(always)]
pub fn transpose4(v0: &mut v128, v1: &mut v128, v2: &mut v128, v3: &mut v128) {
    // a0 b0 a1 b1 / a2 b2 a3 b3
    let t0 = i32x4_shuffle::<0, 4, 1, 5>(*v0, *v1);
    let t1 = i32x4_shuffle::<2, 6, 3, 7>(*v0, *v1);
    // c0 d0 c1 d1 / c2 d2 c3 d3
    let t2 = i32x4_shuffle::<0, 4, 1, 5>(*v2, *v3);
    let t3 = i32x4_shuffle::<2, 6, 3, 7>(*v2, *v3);

    *v0 = i64x2_shuffle::<0, 2>(t0, t2); // a0 b0 c0 d0
    *v1 = i64x2_shuffle::<1, 3>(t0, t2); // a1 b1 c1 d1
    *v2 = i64x2_shuffle::<0, 2>(t1, t3); // a2 b2 c2 d2
    *v3 = i64x2_shuffle::<1, 3>(t1, t3); // a3 b3 c3 d3
}

/// Transpose an array of 8 by 8 i32
///
/// Same scheme as the NEON version:
/// 1. Transpose the upper left and lower right quadrants
/// 2. Swap and transpose the upper right and lower left quadrants
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn transpose(
    v0: &mut YmmRegister, v1: &mut YmmRegister, v2: &mut YmmRegister, v3: &mut YmmRegister,
    v4: &mut YmmRegister, v5: &mut YmmRegister, v6: &mut YmmRegister, v7: &mut YmmRegister
) {
    use core::mem::swap;

    let [ul0, ur0] = &mut v0.mm256;
    let [ul1, ur1] = &mut v1.mm256;
    let [ul2, ur2] = &mut v2.mm256;
    let [ul3, ur3] = &mut v3.mm256;

    let [ll0, lr0] = &mut v4.mm256;
    let [ll1, lr1] = &mut v5.mm256;
    let [ll2, lr2] = &mut v6.mm256;
    let [ll3, lr3] = &mut v7.mm256;

    swap(ur0, ll0);
    swap(ur1, ll1);
    swap(ur2, ll2);
    swap(ur3, ll3);

    transpose4(ul0, ul1, ul2, ul3);

    transpose4(ur0, ur1, ur2, ur3);

    transpose4(ll0, ll1, ll2, ll3);

    transpose4(lr0, lr1, lr2, lr3);
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
mod tests {
    use super::*;

    #[test]
    fn test_transpose() {
        fn get_val(i: usize, j: usize) -> i32 {
            ((i * 8) / (j + 1)) as i32
        }
        let mut vals: [i32; 8 * 8] = [0; 8 * 8];

        for i in 0..8 {
            for j in 0..8 {
                // some order-dependent value of i and j
                vals[i * 8 + j] = get_val(i, j);
            }
        }

        let mut regs: [YmmRegister; 8] =
            core::array::from_fn(|i| YmmRegister::load_slice(&vals[i * 8..]));
        let [r0, r1, r2, r3, r4, r5, r6, r7] = &mut regs;
        transpose(r0, r1, r2, r3, r4, r5, r6, r7);

        let mut from_reg = [0i32; 64];
        for (reg, out) in regs.iter().zip(from_reg.chunks_exact_mut(8)) {
            // SAFETY: `out` is 8 i32s, 32 bytes.
            unsafe {
                v128_store(out.as_mut_ptr().cast(), reg.mm256[0]);
                v128_store(out[4..].as_mut_ptr().cast(), reg.mm256[1]);
            }
        }
        for i in 0..8 {
            for j in 0..8 {
                assert_eq!(from_reg[j * 8 + i], get_val(i, j));
            }
        }
    }
}

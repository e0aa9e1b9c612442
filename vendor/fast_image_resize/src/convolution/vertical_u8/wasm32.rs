use crate::compat::*;
use core::arch::wasm32::*;

use crate::convolution::optimisations::{CoefficientsI16Chunk, Normalizer16};
use crate::convolution::vertical_u8::native;
use crate::pixels::InnerPixel;
use crate::{wasm32_utils, ImageView, ImageViewMut};

#[inline]
pub(crate) fn vert_convolution<T: InnerPixel<Component = u8>>(
    src_view: &impl ImageView<Pixel = T>,
    dst_view: &mut impl ImageViewMut<Pixel = T>,
    offset: u32,
    normalizer: &Normalizer16,
) {
    let coefficients_chunks = normalizer.chunks();
    let src_x = offset as usize * T::count_of_components();

    let mut pairs = Vec::new();
    let dst_rows = dst_view.iter_rows_mut(0);
    for (dst_row, coeffs_chunk) in dst_rows.zip(coefficients_chunks) {
        unsafe {
            vert_convolution_into_one_row_u8(
                src_view,
                dst_row,
                src_x,
                coeffs_chunk,
                normalizer,
                &mut pairs,
            );
        }
    }
}

/// Two source rows of a vertical convolution and their coefficients, packed as
/// `i32x4_dot_i16x8` expects them against the rows' interleaved samples.
struct RowPair<'a> {
    top: &'a [u8],
    bottom: &'a [u8],
    coeffs: v128,
}

/// Adds the products of 32 bytes of a pair of rows, from `x`, to the eight sums.
#[inline(always)]
unsafe fn add_pair_32(sss: [v128; 8], pair: &RowPair, x: usize) -> [v128; 8] {
    let [s0, s1, s2, s3, s4, s5, s6, s7] = sss;
    let [s0, s1, s2, s3] = add_pair_16([s0, s1, s2, s3], pair, x);
    let [s4, s5, s6, s7] = add_pair_16([s4, s5, s6, s7], pair, x + 16);
    [s0, s1, s2, s3, s4, s5, s6, s7]
}

/// Adds the products of 16 bytes of a pair of rows, from `x`, to the four sums.
#[inline(always)]
unsafe fn add_pair_16(sss: [v128; 4], pair: &RowPair, x: usize) -> [v128; 4] {
    let top = wasm32_utils::load_v128(pair.top, x);
    let bottom = wasm32_utils::load_v128(pair.bottom, x);
    let low =
        i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(top, bottom);
    let high =
        i8x16_shuffle::<8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31>(top, bottom);
    let k = pair.coeffs;
    [
        i32x4_add(sss[0], i32x4_dot_i16x8(i16x8_extend_low_u8x16(low), k)),
        i32x4_add(sss[1], i32x4_dot_i16x8(i16x8_extend_high_u8x16(low), k)),
        i32x4_add(sss[2], i32x4_dot_i16x8(i16x8_extend_low_u8x16(high), k)),
        i32x4_add(sss[3], i32x4_dot_i16x8(i16x8_extend_high_u8x16(high), k)),
    ]
}

#[inline]
#[target_feature(enable = "simd128")]
unsafe fn vert_convolution_into_one_row_u8<'a, T: InnerPixel<Component = u8>>(
    src_view: &'a impl ImageView<Pixel = T>,
    dst_row: &mut [T],
    mut src_x: usize,
    coeffs_chunk: &CoefficientsI16Chunk,
    normalizer: &Normalizer16,
    pairs: &mut Vec<RowPair<'a>>,
) {
    const ZERO: v128 = i64x2(0, 0);
    let y_start = coeffs_chunk.start;
    let coeffs = coeffs_chunk.values();
    let max_rows = coeffs.len() as u32;
    let precision = normalizer.precision() as u32;
    let mut dst_u8 = T::components_mut(dst_row);

    let initial = i32x4_splat(1 << (precision - 1));

    // The source rows of this output row, in pairs, with their coefficients: gathered
    // once here rather than for every 32 bytes of the row.
    pairs.clear();
    let mut rows = src_view
        .iter_rows(y_start)
        .take(max_rows as usize)
        .zip(coeffs)
        .map(|(row, &k)| (T::components(row), k));
    while let Some((top, k_top)) = rows.next() {
        pairs.push(match rows.next() {
            Some((bottom, k_bottom)) => RowPair {
                top,
                bottom,
                coeffs: i16x8(
                    k_top, k_bottom, k_top, k_bottom, k_top, k_bottom, k_top, k_bottom,
                ),
            },
            // An odd last row is a pair with itself whose second coefficient is zero.
            None => RowPair {
                top,
                bottom: top,
                coeffs: i16x8(k_top, 0, k_top, 0, k_top, 0, k_top, 0),
            },
        });
    }

    let mut dst_chunks_32 = dst_u8.chunks_exact_mut(32);
    for dst_chunk in &mut dst_chunks_32 {
        let mut sss = [initial; 8];
        let mut two_pairs = pairs.chunks_exact(2);
        for two in &mut two_pairs {
            sss = add_pair_32(sss, &two[0], src_x);
            sss = add_pair_32(sss, &two[1], src_x);
        }
        for pair in two_pairs.remainder() {
            sss = add_pair_32(sss, pair, src_x);
        }
        let [sss0, sss1, sss2, sss3, sss4, sss5, sss6, sss7] =
            sss.map(|s| i32x4_shr(s, precision));

        let sss0 = i16x8_narrow_i32x4(sss0, sss1);
        let sss2 = i16x8_narrow_i32x4(sss2, sss3);
        let sss0 = u8x16_narrow_i16x8(sss0, sss2);
        let dst_ptr = dst_chunk.as_mut_ptr() as *mut v128;
        v128_store(dst_ptr, sss0);
        let sss4 = i16x8_narrow_i32x4(sss4, sss5);
        let sss6 = i16x8_narrow_i32x4(sss6, sss7);
        let sss4 = u8x16_narrow_i16x8(sss4, sss6);
        let dst_ptr = dst_ptr.add(1);
        v128_store(dst_ptr, sss4);

        src_x += 32;
    }

    dst_u8 = dst_chunks_32.into_remainder();
    let mut dst_chunks_8 = dst_u8.chunks_exact_mut(8);
    for dst_chunk in &mut dst_chunks_8 {
        let mut sss0 = initial; // left row
        let mut sss1 = initial; // right row
        let mut y: u32 = 0;

        for src_rows in src_view.iter_2_rows(y_start, max_rows) {
            let components1 = T::components(src_rows[0]);
            let components2 = T::components(src_rows[1]);
            // Load two coefficients at once
            let mmk = wasm32_utils::ptr_i16_to_set1_i32(coeffs, y as usize);

            let source1 = wasm32_utils::loadl_i64(components1, src_x); // top line
            let source2 = wasm32_utils::loadl_i64(components2, src_x); // bottom line

            let source = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(
                source1, source2,
            );
            let pix = i16x8_extend_low_u8x16(source);
            sss0 = i32x4_add(sss0, i32x4_dot_i16x8(pix, mmk));
            let pix = i16x8_extend_high_u8x16(source);
            sss1 = i32x4_add(sss1, i32x4_dot_i16x8(pix, mmk));

            y += 2;
        }

        if let Some(&k) = coeffs.get(y as usize) {
            if let Some(s_row) = src_view.iter_rows(y_start + y).next() {
                let components = T::components(s_row);
                let mmk = i32x4_splat(k as i32);

                let source1 = wasm32_utils::loadl_i64(components, src_x); // top line

                let source = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(
                    source1, ZERO,
                );
                let pix = i16x8_extend_low_u8x16(source);
                sss0 = i32x4_add(sss0, i32x4_dot_i16x8(pix, mmk));
                let pix = i16x8_extend_high_u8x16(source);
                sss1 = i32x4_add(sss1, i32x4_dot_i16x8(pix, mmk));
            }
        }

        sss0 = i32x4_shr(sss0, precision);
        sss1 = i32x4_shr(sss1, precision);

        sss0 = i16x8_narrow_i32x4(sss0, sss1);
        sss0 = u8x16_narrow_i16x8(sss0, sss0);
        let dst_ptr = dst_chunk.as_mut_ptr() as *mut i64;
        dst_ptr.write_unaligned(i64x2_extract_lane::<0>(sss0));

        src_x += 8;
    }

    dst_u8 = dst_chunks_8.into_remainder();
    let mut dst_chunks_4 = dst_u8.chunks_exact_mut(4);
    if let Some(dst_chunk) = dst_chunks_4.next() {
        let mut sss = initial;
        let mut y: u32 = 0;

        for src_rows in src_view.iter_2_rows(y_start, max_rows) {
            let components1 = T::components(src_rows[0]);
            let components2 = T::components(src_rows[1]);
            // Load two coefficients at once
            let mmk = wasm32_utils::ptr_i16_to_set1_i32(coeffs, y as usize);

            let source1 = wasm32_utils::i32x4_v128_from_u8(components1, src_x); // top line
            let source2 = wasm32_utils::i32x4_v128_from_u8(components2, src_x); // bottom line

            let source = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(
                source1, source2,
            );
            let pix = i16x8_extend_low_u8x16(source);
            sss = i32x4_add(sss, i32x4_dot_i16x8(pix, mmk));

            y += 2;
        }

        if let Some(&k) = coeffs.get(y as usize) {
            if let Some(s_row) = src_view.iter_rows(y_start + y).next() {
                let components = T::components(s_row);
                let pix = wasm32_utils::i32x4_extend_low_ptr_u8(components, src_x);
                let mmk = i32x4_splat(k as i32);
                sss = i32x4_add(sss, i32x4_dot_i16x8(pix, mmk));
            }
        }

        sss = i32x4_shr(sss, precision);

        sss = i16x8_narrow_i32x4(sss, sss);
        let dst_ptr = dst_chunk.as_mut_ptr() as *mut i32;
        dst_ptr.write_unaligned(i32x4_extract_lane::<0>(u8x16_narrow_i16x8(sss, sss)));

        src_x += 4;
    }

    dst_u8 = dst_chunks_4.into_remainder();
    if !dst_u8.is_empty() {
        native::convolution_by_u8(
            src_view,
            normalizer,
            1 << (precision - 1),
            dst_u8,
            src_x,
            y_start,
            coeffs,
        );
    }
}

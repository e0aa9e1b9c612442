//! CRC-32 of long buffers with XORs of 16-byte blocks instead of table lookups.
//!
//! The CRC of a message is the remainder of a polynomial division, so any multiple of the
//! CRC polynomial `P` can be subtracted (XORed) without changing it. Counting in 16-byte
//! blocks (128 bits), `P` divides
//!
//! ```text
//! x^(128·300) + x^(128·155) + x^(128·117) + x^(128·89) + 1
//! ```
//!
//! (found by a meet-in-the-middle search over the remainders of `x^(128·m)`; the unit tests
//! check it). A block followed by at least 300 more can therefore be replaced by zero once it
//! has been XORed into the blocks 145, 183, 211 and 300 places after it. Doing that from the
//! front of the buffer leaves the last 300 blocks (and any bytes after the last whole block)
//! to the table-driven code, and every block before them costs four XORs, which
//! WebAssembly's SIMD128 and x86's SSE2 do sixteen bytes at a time. The table-driven code
//! does sixteen table lookups for those sixteen bytes, and WebAssembly has no carry-less
//! multiply for the folding that `pclmulqdq` allows.
//!
//! Written as a recurrence: the value `v[i]` a block carries forward is its own bytes XOR
//! the values of the blocks 300, 211, 183 and 145 places before it (zero before the
//! buffer), and each of the last 300 blocks is XORed with the values that reach it.

use crate::baseline::update_fast_16;

/// Blocks at the end that are left to the table-driven code: the degree of the multiple.
const SPAN: usize = 300;

/// How far back, in blocks, the values XORed into a block come from, as offsets into a
/// window that starts `SPAN` blocks back: `SPAN - 211`, `SPAN - 183`, `SPAN - 145`, and 0
/// for `SPAN` itself.
const BACK: [usize; 3] = [SPAN - 211, SPAN - 183, SPAN - 145];

/// Blocks folded per pass between two moves of the window.
const PASS: usize = 512;

/// Buffers from this length (in bytes) take this path: below it the table-driven code,
/// which still reads the last `SPAN` blocks, is about as fast.
pub(crate) const MIN_LEN: usize = 3 * SPAN * 16;

type Block = [u64; 2];

#[inline(always)]
fn load(bytes: &[u8]) -> Block {
    let mut low = [0; 8];
    let mut high = [0; 8];
    low.copy_from_slice(&bytes[..8]);
    high.copy_from_slice(&bytes[8..16]);
    [u64::from_le_bytes(low), u64::from_le_bytes(high)]
}

#[inline(always)]
fn xor(a: Block, b: Block) -> Block {
    [a[0] ^ b[0], a[1] ^ b[1]]
}

/// `update_fast_16(prev, buf)` for `buf.len() >= MIN_LEN`.
pub(crate) fn update(prev: u32, buf: &[u8]) -> u32 {
    debug_assert!(buf.len() >= MIN_LEN);
    let blocks = buf.len() / 16;
    let folded = blocks - SPAN;
    let (head, rest) = buf.split_at(folded * 16);
    let (last, trailing) = rest.split_at(SPAN * 16);

    // `window[m]` is the value of the block `SPAN - m` places before the next one to fold.
    // Before the buffer they are zero, except that the CRC so far is XORed into the first
    // four bytes, which is what a table-driven update starting from zero does with it: it
    // is given to the first block as the value of the block `SPAN` places before it.
    let mut window = [[0u64; 2]; SPAN + PASS];
    window[0][0] = u64::from(!prev);
    for pass in head.chunks(PASS * 16) {
        let count = (pass.len() / 16).min(PASS);
        for (k, bytes) in (0..count).zip(pass.chunks_exact(16)) {
            let mut value = xor(load(bytes), window[k]);
            for back in BACK {
                value = xor(value, window[k + back]);
            }
            window[k + SPAN] = value;
        }
        window.copy_within(count..count + SPAN, 0);
    }

    // The last `SPAN` blocks take the values that reach them; block `t` of them gets those
    // from blocks before them only, `SPAN - back` places back.
    let mut tail = [0u8; SPAN * 16];
    for (t, (out, bytes)) in tail
        .chunks_exact_mut(16)
        .zip(last.chunks_exact(16))
        .enumerate()
    {
        let mut value = xor(load(bytes), window[t]);
        for back in BACK {
            if t + back < SPAN {
                value = xor(value, window[t + back]);
            }
        }
        out[..8].copy_from_slice(&value[0].to_le_bytes());
        out[8..].copy_from_slice(&value[1].to_le_bytes());
    }
    let crc = update_fast_16(!0, &tail);
    update_fast_16(crc, trailing)
}

#[cfg(test)]
mod test {
    use crate::baseline::update_slow;

    /// The CRC register after `bytes`, from `register`, without the inversions.
    fn raw(register: u32, bytes: &[u8]) -> u32 {
        !update_slow(!register, bytes)
    }

    #[test]
    fn the_multiple_is_divisible_by_the_polynomial() {
        // x^(128·m) times a one-bit block, reduced: the remainders of the five terms cancel.
        let mut block = [0u8; 16];
        block[0] = 1;
        let remainder = |m: usize| raw(raw(0, &block), &vec![0; 16 * m]);
        assert_eq!(
            remainder(300) ^ remainder(155) ^ remainder(117) ^ remainder(89) ^ remainder(0),
            0
        );
    }

    #[test]
    fn long_buffers_have_the_crc_of_the_table_driven_code() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let bytes: Vec<u8> = (0..200_000).map(|_| next() as u8).collect();
        let lengths = [
            super::MIN_LEN,
            super::MIN_LEN + 1,
            super::MIN_LEN + 15,
            super::MIN_LEN + 16 * super::PASS,
            super::MIN_LEN + 16 * super::PASS + 7,
            65_536,
            131_071,
            199_990,
        ];
        for length in lengths {
            for start in [0, 1, 3, 8] {
                let buf = &bytes[start..start + length];
                for prev in [0, 0xffff_ffff, next() as u32] {
                    assert_eq!(
                        super::update(prev, buf),
                        update_slow(prev, buf),
                        "length {length}, start {start}, prev {prev:#x}"
                    );
                }
            }
        }
    }
}

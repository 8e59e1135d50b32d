//! Bit matrices for OT extension: 64 x 64 block transposes over `u64` words (bit `b` of a word is
//! `(w >> b) & 1`, words serialised little-endian), so rows of 512 bits and columns of `m` bits convert in
//! O(m) word operations.

use rayon::prelude::*;

/// Transpose a 64 x 64 bit block in place: afterwards bit `k` of `a[b]` is what bit `b` of `a[k]` was.
pub fn transpose64(a: &mut [u64; 64]) {
    let mut j = 32;
    let mut m: u64 = 0x0000_0000_FFFF_FFFF;
    while j != 0 {
        let mut k = 0;
        while k < 64 {
            let t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k] ^= t << j;
            a[k + j] ^= t;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

/// Row blocks (of 64 rows each) handed to one rayon task by the transposes.
const BLOCKS_PER_TASK: usize = 16;

/// Work (OTs, rows or hashed blocks) below which a data-parallel loop stays on the calling thread. Handing a
/// small job to rayon's pool costs a cross-thread wake-up, and the pool's workers then spin (yielding) before
/// they sleep, taking cycles from the peer's process when both parties share a machine: in SS-LR's per-batch
/// steps, of 1024 rows, that spinning was an eighth of a party's samples.
pub const SERIAL_BELOW: usize = 1 << 14;

/// `with_min_len` for a parallel loop of `tasks` tasks over `work` units: one undivided task (rayon then runs
/// it inline, without the pool) when the work is below [`SERIAL_BELOW`].
pub fn min_tasks(tasks: usize, work: usize) -> usize {
    if work < SERIAL_BELOW { tasks.max(1) } else { 1 }
}

/// Columns (`cols` of them, each `words` u64 long, column-major) to rows of `cols / 64` words each.
/// `cols` must be a multiple of 64; rows beyond `rows` are dropped.
pub fn columns_to_rows(columns: &[u64], cols: usize, words: usize, rows: usize) -> Vec<u64> {
    let row_words = cols / 64;
    transpose_rows(columns, (row_words, words, rows), row_words, |row: &mut [u64], cw, w| row[cw] = w)
}

/// [`columns_to_rows`] for 128 columns, each row one `u128` (its first column word low): the OT extension's
/// rows, without a second buffer and pass to regroup words.
pub fn columns_to_rows128(columns: &[u64], words: usize, rows: usize) -> Vec<u128> {
    transpose_rows(columns, (2, words, rows), 1, |row: &mut [u128], cw, w| row[0] |= (w as u128) << (64 * cw))
}

/// The transpose behind both: `row_words` column words per row, each row `per_row` items of `T` that `set`
/// fills from column word `cw`.
fn transpose_rows<T: Copy + Default + Send>(
    columns: &[u64],
    (row_words, words, rows): (usize, usize, usize),
    per_row: usize,
    set: impl Fn(&mut [T], usize, u64) + Sync,
) -> Vec<T> {
    let mut out = vec![T::default(); rows * per_row];
    let tasks = rows.div_ceil(64 * BLOCKS_PER_TASK);
    let chunks = out.par_chunks_mut(64 * per_row * BLOCKS_PER_TASK).with_min_len(min_tasks(tasks, rows));
    chunks.enumerate().for_each(|(task, dst)| {
        let mut block = [0u64; 64];
        for (i, dst) in dst.chunks_mut(64 * per_row).enumerate() {
            let rb = task * BLOCKS_PER_TASK + i;
            for cw in 0..row_words {
                for (b, slot) in block.iter_mut().enumerate() {
                    *slot = columns[(cw * 64 + b) * words + rb];
                }
                transpose64(&mut block);
                for (row, w) in dst.chunks_exact_mut(per_row).zip(&block) {
                    set(row, cw, *w);
                }
            }
        }
    });
    out
}

/// Rows (`rows` of them, `cols / 64` words each) to columns of `ceil(rows / 64)` words each.
pub fn rows_to_columns(rows_data: &[u64], rows: usize, cols: usize) -> Vec<u64> {
    let row_words = cols / 64;
    let words = rows.div_ceil(64);
    let mut out = vec![0u64; cols * words];
    let mut block = [0u64; 64];
    for rb in 0..words {
        for cw in 0..row_words {
            for (k, slot) in block.iter_mut().enumerate() {
                let r = rb * 64 + k;
                *slot = if r < rows { rows_data[r * row_words + cw] } else { 0 };
            }
            transpose64(&mut block);
            for (b, w) in block.iter().enumerate() {
                out[(cw * 64 + b) * words + rb] = *w;
            }
        }
    }
    out
}

/// Little-endian bytes to words (the length must be a multiple of 8).
pub fn words(bytes: &[u8]) -> Vec<u64> {
    bytes.chunks_exact(8).map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect()
}

/// Words to little-endian bytes.
pub fn bytes(words: &[u64]) -> Vec<u8> {
    let mut out = vec![0u8; words.len() * 8];
    for (c, w) in out.chunks_exact_mut(8).zip(words) {
        c.copy_from_slice(&w.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bit(ws: &[u64], i: usize) -> bool {
        (ws[i / 64] >> (i % 64)) & 1 == 1
    }

    #[test]
    fn transposes_agree_with_the_naive_definition() {
        let mut x = 0x1234_5678_9abc_def1u64;
        let (rows, cols) = (150, 128);
        let data: Vec<u64> = (0..rows * cols / 64)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect();
        let columns = rows_to_columns(&data, rows, cols);
        let words_per_col = rows.div_ceil(64);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(
                    bit(&data[r * 2..r * 2 + 2], c),
                    bit(&columns[c * words_per_col..(c + 1) * words_per_col], r)
                );
            }
        }
        assert_eq!(columns_to_rows(&columns, cols, words_per_col, rows), data);
        let wide: Vec<u64> = columns_to_rows128(&columns, words_per_col, rows)
            .iter()
            .flat_map(|r| [*r as u64, (*r >> 64) as u64])
            .collect();
        assert_eq!(wide, data);
    }
}

//! Cuckoo hashing with three hash functions (Pagh and Rodler; the 3-way variant used by KKRT and
//! Pinkas-Schneider-Zohner) into `1.27 n + 16` bins, no stash: an insertion walk longer than [`MAX_KICKS`]
//! fails the table, and the caller retries with a fresh seed (the retry is independent of the set's
//! contents, so it reveals nothing). Hash positions are keyed BLAKE3 of the encoded key.

/// Hash functions per key.
pub const HASHES: usize = 3;
/// Longest eviction walk before the table is declared failed.
pub const MAX_KICKS: usize = 1000;

/// Bins for `n` keys.
pub fn bin_count(n: usize) -> usize {
    (n as f64 * 1.27).ceil() as usize + 16
}

/// The three bins of `key`.
pub fn positions(seed: &[u8; 32], key: &[u8], bins: usize) -> [usize; HASHES] {
    let mut out = [0u8; 8 * HASHES];
    blake3::Hasher::new_keyed(seed).update(key).finalize_xof().fill(&mut out);
    let mut p = [0usize; HASHES];
    for (k, slot) in p.iter_mut().enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&out[8 * k..8 * k + 8]);
        *slot = (u64::from_le_bytes(w) % bins as u64) as usize;
    }
    p
}

/// Place every key (given its positions) in a bin: `table[b] = Some((key index, hash index))`, or `None` if
/// the walk failed.
pub fn build(positions: &[[usize; HASHES]], bins: usize) -> Option<Vec<Option<(u32, u8)>>> {
    let mut table: Vec<Option<(u32, u8)>> = vec![None; bins];
    for item in 0..positions.len() {
        let mut cur = (item as u32, 0u8);
        let mut placed = false;
        for _ in 0..MAX_KICKS {
            // Prefer a free candidate bin before evicting.
            let cands = positions[cur.0 as usize];
            if let Some(k) = (0..HASHES).find(|k| table[cands[*k]].is_none()) {
                table[cands[k]] = Some((cur.0, k as u8));
                placed = true;
                break;
            }
            let b = cands[cur.1 as usize];
            match table[b].replace(cur) {
                None => {
                    placed = true;
                    break;
                }
                Some(evicted) => cur = (evicted.0, (evicted.1 + 1) % HASHES as u8),
            }
        }
        if !placed {
            return None;
        }
    }
    Some(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_lands_in_one_of_its_bins_exactly_once() {
        let keys: Vec<Vec<u8>> = (0..5000u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let seed = [7u8; 32];
        let bins = bin_count(keys.len());
        let pos: Vec<_> = keys.iter().map(|k| positions(&seed, k, bins)).collect();
        let table = build(&pos, bins).expect("a table at 1.27 n");
        let mut seen = vec![0; keys.len()];
        for (b, slot) in table.iter().enumerate() {
            if let Some((i, k)) = slot {
                assert_eq!(pos[*i as usize][*k as usize], b);
                seen[*i as usize] += 1;
            }
        }
        assert!(seen.iter().all(|n| *n == 1));
    }
}

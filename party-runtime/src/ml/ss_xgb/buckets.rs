//! Each feature owner's local quantile sketch: split candidates per feature, and the plaintext 0/1 matrix that
//! says which rows fall left of each candidate (the owner's side of every histogram product).

use crate::ring::Ring;

/// Split candidates of one column: the distinct values at the quantiles `k * eps` (`k = 1, 2, ...`), ascending;
/// a row goes left of candidate `t` when its value is at most `t`. A column with one distinct value has none.
pub fn thresholds(column: &[f64], eps: f64) -> Vec<f64> {
    let mut sorted: Vec<f64> = column.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let steps = (1.0 / eps).ceil() as usize;
    let mut out: Vec<f64> = Vec::with_capacity(steps);
    for k in 1..steps {
        // The rank k eps n, rounded up (a hair below, so 30.000000000000004 is 30).
        let at = ((k as f64 * eps * n as f64 - 1e-9).ceil() as usize).clamp(1, n) - 1;
        let t = sorted[at];
        // The largest value would send every row left: no split.
        if t < sorted[n - 1] && out.last().is_none_or(|last| *last < t) {
            out.push(t);
        }
    }
    out
}

/// The owner's matrix: one row per candidate of every selected feature (features in column order), one column
/// per data row, 1 where the row goes left. `x` is row-major with `cols` columns.
pub fn left_matrix<R: Ring>(x: &[f64], cols: usize, selected: &[(usize, &[f64])]) -> Vec<R> {
    let rows = x.len().checked_div(cols).unwrap_or(0);
    let mut a = Vec::with_capacity(selected.iter().map(|(_, t)| t.len()).sum::<usize>() * rows);
    for (feature, cands) in selected {
        for t in cands.iter() {
            a.extend((0..rows).map(|r| if x[r * cols + feature] <= *t { R::ONE } else { R::ZERO }));
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_distinct_quantiles_that_split() {
        let col: Vec<f64> = (0..100).map(|i| (i % 20) as f64).collect();
        let t = thresholds(&col, 0.1);
        assert_eq!(t, vec![1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0, 17.0]);
        assert!(thresholds(&[2.0; 10], 0.1).is_empty());
        assert_eq!(thresholds(&[0.0, 1.0, 0.0, 1.0], 0.1), vec![0.0]);
        let a: Vec<u64> = left_matrix(&[0.0, 5.0, 1.0, 6.0], 2, &[(1, &[5.0][..])]);
        assert_eq!(a, vec![1, 0]);
    }
}

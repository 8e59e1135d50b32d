//! Each feature owner's local quantile sketch: split candidates per feature, and which bucket between them each
//! row falls in (the owner's private side of every histogram).

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

/// Each row's bucket of every feature (row-major, `rows x cols`, as `x`): the first candidate the row goes left
/// of, or the candidates' count where it goes right of all, so candidate `t`'s left side is buckets `0..=t`.
pub fn row_buckets(x: &[f64], cols: usize, thresholds: &[Vec<f64>]) -> Vec<u32> {
    x.iter().enumerate().map(|(i, v)| thresholds[i % cols].partition_point(|t| t < v) as u32).collect()
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
        let th = vec![vec![], vec![5.0, 7.0]];
        assert_eq!(row_buckets(&[0.0, 5.0, 1.0, 6.0, 2.0, 9.0, 3.0, 7.0], 2, &th), vec![0, 0, 0, 1, 0, 2, 0, 1]);
    }
}

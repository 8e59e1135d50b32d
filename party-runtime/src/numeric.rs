//! Plain numeric helpers with pandas/numpy semantics, shared by the local jobs.
//!
//! Quantiles reproduce numpy's `percentile(..., method="linear")` float for float, including pandas'
//! round trip through percent and numpy's two-sided `lerp`, so bin edges equal pandas' to the last bit.

/// Mean of `xs` (None when empty).
pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() { None } else { Some(xs.iter().sum::<f64>() / xs.len() as f64) }
}

/// Variance with `ddof` delta degrees of freedom, two-pass (None when fewer than `ddof + 1` values).
pub fn variance(xs: &[f64], ddof: usize) -> Option<f64> {
    if xs.len() <= ddof {
        return None;
    }
    let m = mean(xs)?;
    Some(xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - ddof) as f64)
}

/// The present values of a column.
pub fn present(xs: &[Option<f64>]) -> Vec<f64> {
    xs.iter().flatten().copied().filter(|x| !x.is_nan()).collect()
}

/// Sort ascending (NaN-free input).
pub fn sorted(mut xs: Vec<f64>) -> Vec<f64> {
    xs.sort_by(f64::total_cmp);
    xs
}

/// numpy's virtual index for method "linear": the two order statistics around quantile `q` of `n` values and
/// the interpolation weight.
fn virtual_index(n: usize, q: f64) -> (usize, usize, f64) {
    // pandas passes q * 100 to numpy, which divides by 100 again.
    let q = (q * 100.0) / 100.0;
    // `n q + (alpha + q (1 - alpha - beta)) - 1` with alpha = beta = 1, in numpy's order of operations.
    let (alpha, beta) = (1.0, 1.0);
    let v = n as f64 * q + (alpha + q * (1.0 - alpha - beta)) - 1.0;
    let prev = v.floor();
    let clamp = |i: f64| (i.max(0.0) as usize).min(n - 1);
    (clamp(prev), clamp(prev + 1.0), v - prev)
}

/// The `q`-quantile (0..=1) of ascending `sorted`, as `pandas.Series.quantile(q)` computes it.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let (lo, hi, gamma) = virtual_index(sorted.len(), q);
    Some(lerp(sorted[lo], sorted[hi], gamma))
}

/// Several quantiles of unsorted NaN-free `values`, by selection (linear time each) rather than a full sort;
/// equal to [`quantile`] on the sorted values.
pub fn quantiles(mut values: Vec<f64>, qs: &[f64]) -> Vec<Option<f64>> {
    let n = values.len();
    if n == 0 {
        return vec![None; qs.len()];
    }
    let wanted: Vec<(usize, usize, f64)> = qs.iter().map(|q| virtual_index(n, *q)).collect();
    let mut ranks: Vec<usize> = wanted.iter().flat_map(|(lo, hi, _)| [*lo, *hi]).collect();
    ranks.sort_unstable();
    ranks.dedup();
    let mut at = Vec::with_capacity(ranks.len());
    let mut start = 0;
    for k in ranks {
        // Everything left of `start` is <= values[start]; select within the rest.
        values[start..].select_nth_unstable_by(k - start, f64::total_cmp);
        at.push((k, values[k]));
        start = k;
    }
    let get = |k: usize| at.iter().find(|(r, _)| *r == k).map_or(f64::NAN, |(_, v)| *v);
    wanted.into_iter().map(|(lo, hi, g)| Some(lerp(get(lo), get(hi), g))).collect()
}

/// numpy's `_lerp`: `a + (b - a) t`, computed from `b` when `t >= 0.5`.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let d = b - a;
    if t >= 0.5 { b - d * (1.0 - t) } else { a + d * t }
}

/// numpy's `linspace(start, stop, n)` with the endpoint.
pub fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![start];
    }
    let step = (stop - start) / (n - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * step + start).collect();
    if let Some(last) = v.last_mut() {
        *last = stop;
    }
    v
}

/// Bin of `x` for right-closed edges (first bin closed on the left): the number of interior edges below `x`.
pub fn bin_index(edges: &[f64], x: f64) -> usize {
    let interior = &edges[1..edges.len().saturating_sub(1).max(1)];
    interior.partition_point(|e| *e < x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_pandas_describe() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&xs, 0.25), Some(25.75));
        assert_eq!(quantile(&xs, 0.5), Some(50.5));
        assert_eq!(quantile(&xs, 0.75), Some(75.25));
        assert_eq!(quantile(&[3.0], 0.5), Some(3.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn selection_quantiles_equal_sorted_quantiles() {
        let mut x = 0x2545F4914F6CDD1Du64;
        let values: Vec<f64> = (0..1001)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 97) as f64 / 7.0
            })
            .collect();
        let qs = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0];
        let s = sorted(values.clone());
        let expected: Vec<Option<f64>> = qs.iter().map(|q| quantile(&s, *q)).collect();
        assert_eq!(quantiles(values, &qs), expected);
        assert_eq!(quantiles(vec![], &qs), vec![None; qs.len()]);
    }

    #[test]
    fn variance_population_and_sample() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(variance(&xs, 0), Some(1.25));
        assert!((variance(&xs, 1).unwrap() - 5.0 / 3.0).abs() < 1e-15);
        assert_eq!(variance(&[1.0], 1), None);
    }

    #[test]
    fn bins_are_right_closed() {
        let edges = [0.0, 1.0, 2.0, 3.0];
        assert_eq!(bin_index(&edges, 0.0), 0);
        assert_eq!(bin_index(&edges, 1.0), 0);
        assert_eq!(bin_index(&edges, 1.5), 1);
        assert_eq!(bin_index(&edges, 3.0), 2);
        assert_eq!(linspace(0.0, 1.0, 3), vec![0.0, 0.5, 1.0]);
    }
}

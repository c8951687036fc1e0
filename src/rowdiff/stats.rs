//! Sample statistics for the continuous diff: the diff ratio and its 95% upper confidence bound.
//!
//! We use the **one-sided exact Clopper-Pearson** bound: the largest true diff ratio `p` for
//! which seeing at most `k` differing rows in `n` still has probability ≥ 5%. For `k = 0` it is
//! `1 - 0.05^(1/n)` ≈ `3/n` (the "rule of three"), so "0 diffs in 1,000 rows" reads "≤ 0.30%",
//! never "0%". Exact rather than Wilson because the interesting cases are tiny `k`, where the
//! normal approximation behind Wilson is weakest; the cost (a bisection) is negligible.

/// `ln P(X ≤ k)` for `X ~ Binomial(n, p)`, summed in log space (no underflow for large `n`).
fn ln_binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return if k >= n { 0.0 } else { f64::NEG_INFINITY };
    }
    let (lp, lq) = (p.ln(), (-p).ln_1p());
    // ln pmf(0) = n ln(1-p); pmf(i+1)/pmf(i) = (n-i)/(i+1) * p/(1-p).
    let mut term = n as f64 * lq;
    let mut terms = Vec::with_capacity(k.min(n) as usize + 1);
    terms.push(term);
    for i in 0..k.min(n) {
        term += ((n - i) as f64).ln() - ((i + 1) as f64).ln() + lp - lq;
        terms.push(term);
    }
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
}

/// One-sided 95% Clopper-Pearson upper bound of a proportion with `k` successes in `n` trials.
/// `n = 0` gives 1 (nothing is known).
pub fn upper_bound_95(k: u64, n: u64) -> f64 {
    const ALPHA: f64 = 0.05;
    if n == 0 || k >= n {
        return 1.0;
    }
    if k == 0 {
        return 1.0 - ALPHA.powf(1.0 / n as f64);
    }
    // P(X ≤ k) falls as p grows: find where it crosses ALPHA.
    let target = ALPHA.ln();
    let (mut lo, mut hi) = (k as f64 / n as f64, 1.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if ln_binomial_cdf(k, n, mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 {
            break;
        }
    }
    hi
}

/// `k / n`, 0 for an empty sample.
pub fn ratio(k: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        k as f64 / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn zero_diffs_is_the_rule_of_three_not_zero() {
        let u = upper_bound_95(0, 1000);
        assert!(close(u, 0.0029912, 1e-6), "{u}");
        assert!(u <= 3.0 / 1000.0 && u > 2.9 / 1000.0);
        assert_eq!(upper_bound_95(0, 0), 1.0);
    }

    #[test]
    fn matches_reference_values() {
        // Reference: an independent bisection on the exact binomial CDF (= beta.ppf(0.95, k+1, n-k)).
        assert!(close(upper_bound_95(1, 10), 0.3941633, 1e-6));
        assert!(close(upper_bound_95(5, 100), 0.1022534, 1e-6));
        assert!(close(upper_bound_95(10, 100_000), 0.00016962, 1e-8));
        assert_eq!(upper_bound_95(7, 7), 1.0);
    }

    #[test]
    fn bound_is_above_the_ratio_and_shrinks_with_n() {
        for (k, n) in [(1, 20), (3, 1000), (50, 500)] {
            assert!(upper_bound_95(k, n) > ratio(k, n));
        }
        assert!(upper_bound_95(2, 10_000) < upper_bound_95(2, 1_000));
        assert_eq!(ratio(0, 0), 0.0);
    }
}

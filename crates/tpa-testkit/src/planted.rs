//! Matrices with chosen singular values: W = U·diag(σ)·Vᵀ, where U and V
//! have orthonormal columns taken from the DCT-II basis, with seeded
//! permutations and signs. Closed form, so no linear algebra library is
//! needed, and exact to rounding: the spectrum of W is σ.

use crate::SplitMix64;

/// Orthonormal columns u_0 … u_{k−1} of length n (k ≤ n), row-major n × k.
fn basis(n: usize, k: usize, rng: &mut SplitMix64) -> Vec<f64> {
    let mut frequencies: Vec<usize> = (0..n).collect();
    let mut coordinates: Vec<usize> = (0..n).collect();
    shuffle(&mut frequencies, rng);
    shuffle(&mut coordinates, rng);
    let signs: Vec<f64> = (0..n)
        .map(|_| if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 })
        .collect();
    let mut u = vec![0.0; n * k];
    for (c, &f) in frequencies.iter().take(k).enumerate() {
        let scale = if f == 0 {
            (1.0 / n as f64).sqrt()
        } else {
            (2.0 / n as f64).sqrt()
        };
        for j in 0..n {
            let value =
                scale * (std::f64::consts::PI * (j as f64 + 0.5) * f as f64 / n as f64).cos();
            u[coordinates[j] * k + c] = signs[j] * value;
        }
    }
    u
}

fn shuffle(items: &mut [usize], rng: &mut SplitMix64) {
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Row-major values of a rows × cols matrix whose singular values are
/// `sigma` (padded with zeros to min(rows, cols)).
pub fn matrix(rows: usize, cols: usize, sigma: &[f64], seed: u64) -> Vec<f64> {
    let k = sigma.len().min(rows.min(cols));
    let mut rng = SplitMix64::new(seed);
    let u = basis(rows, k, &mut rng);
    let v = basis(cols, k, &mut rng);
    let mut w = vec![0.0; rows * cols];
    for i in 0..rows {
        for (c, s) in sigma.iter().take(k).enumerate() {
            let a = u[i * k + c] * s;
            if a != 0.0 {
                for (j, out) in w[i * cols..(i + 1) * cols].iter_mut().enumerate() {
                    *out += a * v[j * k + c];
                }
            }
        }
    }
    w
}

/// σ_i = scale · i^(−1/4), i = 1 … n: eigenvalues λ = σ² with a power-law
/// density of exponent 3, so WeightWatcher's α lands near 3 ("well trained").
pub fn power_law(n: usize, scale: f64) -> Vec<f64> {
    (1..=n).map(|i| scale * (i as f64).powf(-0.25)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_orthonormal() {
        let mut rng = SplitMix64::new(3);
        let (n, k) = (12, 5);
        let u = basis(n, k, &mut rng);
        for a in 0..k {
            for b in 0..k {
                let dot: f64 = (0..n).map(|j| u[j * k + a] * u[j * k + b]).sum();
                let expected = if a == b { 1.0 } else { 0.0 };
                assert!((dot - expected).abs() < 1e-12, "{a} {b} {dot}");
            }
        }
    }

    #[test]
    fn frobenius_norm_is_that_of_sigma() {
        let sigma = [3.0, 2.0, 1.0];
        let w = matrix(4, 6, &sigma, 9);
        let fro: f64 = w.iter().map(|x| x * x).sum();
        assert!((fro - 14.0).abs() < 1e-12, "{fro}");
    }
}

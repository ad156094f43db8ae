//! How good a clustering is: the one-way ANOVA F-ratio (Calinski–Harabasz)
//! with its p-value, sampled silhouettes, and the elbow of the inertia curve.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use super::Standardized;

/// The original's one-way ANOVA over the clusters with more than one member,
/// which is the Calinski–Harabasz index of those points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Anova {
    /// F = [B/(k'−1)] / [W/(n'−k')], B the between-cluster and W the
    /// within-cluster sum of squares, k' clusters and n' points.
    pub f_ratio: f64,
    /// k' − 1
    pub df_between: u64,
    /// n' − k'
    pub df_within: u64,
    /// P(F(df_between, df_within) ≥ f_ratio); 0 when it underflows f64
    /// (printed "< 1e-300").
    pub p_value: f64,
    /// k': clusters with more than one member.
    pub clusters: usize,
    /// n': their points.
    pub points: usize,
}

/// The F-ratio of `labels` over non-singleton clusters, computed in f64 on
/// the standardized values. `None` when fewer than two clusters have more
/// than one member (k = 1 has no F).
///
/// ```
/// use tpa_core::analyses::embedding::{Standardized, scores::anova};
/// // Two tight groups far apart: a large F.
/// let raw = [0.0f32, 0.1, 0.2, 10.0, 10.1, 10.2];
/// let z = Standardized::new(&raw, 1);
/// let a = anova(&z, &[0, 0, 0, 1, 1, 1], 2).unwrap();
/// assert!(a.f_ratio > 1000.0);
/// assert_eq!((a.df_between, a.df_within), (1, 4));
/// ```
pub fn anova(data: &Standardized<'_>, labels: &[u32], k: usize) -> Option<Anova> {
    let d = data.dim();
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l as usize] += 1;
    }
    let kept: Vec<bool> = sizes.iter().map(|&s| s > 1).collect();
    let clusters = kept.iter().filter(|&&k| k).count();
    let points: usize = sizes.iter().filter(|&&s| s > 1).sum();
    if clusters < 2 || points <= clusters {
        return None;
    }
    let mut sums = vec![0.0f64; k * d];
    let mut total = vec![0.0f64; d];
    let mut row = vec![0.0f64; d];
    for (i, &l) in labels.iter().enumerate() {
        if !kept[l as usize] {
            continue;
        }
        data.row_f64(i, &mut row);
        for j in 0..d {
            sums[l as usize * d + j] += row[j];
            total[j] += row[j];
        }
    }
    let mean: Vec<f64> = total.iter().map(|t| t / points as f64).collect();
    let centers: Vec<f64> = (0..k * d)
        .map(|idx| {
            if sizes[idx / d] > 0 {
                sums[idx] / sizes[idx / d] as f64
            } else {
                0.0
            }
        })
        .collect();
    let mut between = 0.0;
    for c in (0..k).filter(|&c| kept[c]) {
        let dist: f64 = (0..d).map(|j| (centers[c * d + j] - mean[j]).powi(2)).sum();
        between += sizes[c] as f64 * dist;
    }
    let mut within = 0.0;
    for (i, &l) in labels.iter().enumerate() {
        if !kept[l as usize] {
            continue;
        }
        data.row_f64(i, &mut row);
        within += (0..d)
            .map(|j| (row[j] - centers[l as usize * d + j]).powi(2))
            .sum::<f64>();
    }
    let (df_between, df_within) = ((clusters - 1) as u64, (points - clusters) as u64);
    // scikit-learn's convention when every cluster is a single point repeated.
    let f_ratio = if within == 0.0 {
        1.0
    } else {
        between * df_within as f64 / (within * df_between as f64)
    };
    let p_value = FisherSnedecor::new(df_between as f64, df_within as f64)
        .map_or(f64::NAN, |f| f.sf(f_ratio));
    Some(Anova {
        f_ratio,
        df_between,
        df_within,
        p_value,
        clusters,
        points,
    })
}

/// A p-value as printed: "< 1e-300" where it underflowed.
pub fn format_p_value(p: f64) -> String {
    if p == 0.0 {
        "< 1e-300".to_owned()
    } else {
        format!("{p:.3e}")
    }
}

/// A seeded sample of rows with all their pairwise Euclidean distances,
/// computed once and reused for every k of a sweep.
pub struct SilhouetteSample {
    pub rows: Vec<usize>,
    /// m × m, row-major, f32.
    distances: Vec<f32>,
}

/// Silhouettes of one clustering on the sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Silhouettes {
    /// Mean silhouette of the sampled points in non-singleton clusters.
    pub overall: Option<f64>,
    /// Mean silhouette per cluster (`None`: no sampled point in it, or a singleton).
    pub per_cluster: Vec<Option<f64>>,
}

impl SilhouetteSample {
    /// Draws `size` distinct rows (all when there are fewer) with `seed`.
    pub fn new(data: &super::kmeans::Data<'_>, size: usize, seed: u64) -> SilhouetteSample {
        let n = data.len();
        let mut rows: Vec<usize> = (0..n).collect();
        if size < n {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for i in 0..size {
                let j = i + (rng.next_u64() % (n - i) as u64) as usize;
                rows.swap(i, j);
            }
            rows.truncate(size);
            rows.sort_unstable();
        }
        let d = data.dim();
        let sample: Vec<f32> = rows
            .iter()
            .flat_map(|&i| data.row(i).iter().copied())
            .collect();
        let sample_data = super::kmeans::Data::new(&sample, d);
        let mut distances = super::kmeans::sq_distance_matrix(&sample_data, &sample, rows.len());
        distances.par_iter_mut().for_each(|x| *x = x.sqrt());
        for a in 0..rows.len() {
            distances[a * rows.len() + a] = 0.0;
        }
        SilhouetteSample { rows, distances }
    }

    /// Silhouettes (scikit-learn's definition) of `labels` over the sampled
    /// points whose cluster has more than one member in the whole data.
    pub fn score(&self, labels: &[u32], k: usize) -> Silhouettes {
        let mut sizes = vec![0usize; k];
        for &l in labels {
            sizes[l as usize] += 1;
        }
        let m = self.rows.len();
        let keep: Vec<bool> = self
            .rows
            .iter()
            .map(|&r| sizes[labels[r] as usize] > 1)
            .collect();
        let sample_labels: Vec<usize> = self.rows.iter().map(|&r| labels[r] as usize).collect();
        let mut in_sample = vec![0usize; k];
        for a in 0..m {
            if keep[a] {
                in_sample[sample_labels[a]] += 1;
            }
        }
        let values: Vec<Option<f64>> = (0..m)
            .into_par_iter()
            .map(|a| {
                if !keep[a] {
                    return None;
                }
                let own = sample_labels[a];
                if in_sample[own] <= 1 {
                    return Some(0.0);
                }
                let mut sums = vec![0.0f64; k];
                let row = &self.distances[a * m..(a + 1) * m];
                for b in 0..m {
                    if keep[b] {
                        sums[sample_labels[b]] += f64::from(row[b]);
                    }
                }
                let inner = sums[own] / (in_sample[own] - 1) as f64;
                let nearest = (0..k)
                    .filter(|&c| c != own && in_sample[c] > 0)
                    .map(|c| sums[c] / in_sample[c] as f64)
                    .fold(f64::INFINITY, f64::min);
                if !nearest.is_finite() {
                    return Some(0.0);
                }
                let denominator = inner.max(nearest);
                Some(if denominator > 0.0 {
                    (nearest - inner) / denominator
                } else {
                    0.0
                })
            })
            .collect();
        let mut per_sum = vec![0.0; k];
        let mut per_count = vec![0usize; k];
        let (mut total, mut count) = (0.0, 0usize);
        for (a, v) in values.iter().enumerate() {
            if let Some(v) = v {
                per_sum[sample_labels[a]] += v;
                per_count[sample_labels[a]] += 1;
                total += v;
                count += 1;
            }
        }
        Silhouettes {
            overall: (count > 0).then(|| total / count as f64),
            per_cluster: (0..k)
                .map(|c| (per_count[c] > 0).then(|| per_sum[c] / per_count[c] as f64))
                .collect(),
        }
    }
}

/// The elbow of a decreasing inertia curve: the k farthest from the straight
/// line through the curve's ends, both axes scaled to [0, 1] (the "kneedle"
/// rule). `points` are (k, inertia) in increasing k.
pub fn elbow(points: &[(usize, f64)]) -> Option<usize> {
    let (&(k0, i0), &(k1, i1)) = (points.first()?, points.last()?);
    if k1 == k0 || i0 == i1 {
        return None;
    }
    let scale_k = |k: usize| (k - k0) as f64 / (k1 - k0) as f64;
    let scale_i = |i: f64| (i - i1) / (i0 - i1);
    points
        .iter()
        .map(|&(k, i)| (k, (1.0 - scale_k(k)) - scale_i(i)))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singletons_are_left_out_of_the_f_ratio() {
        let raw = [0.0f32, 1.0, 10.0, 11.0, 50.0];
        let z = Standardized::new(&raw, 1);
        let with = anova(&z, &[0, 0, 1, 1, 2], 3).unwrap();
        assert_eq!((with.clusters, with.points), (2, 4));
        // The same as the F of the four points alone.
        let raw4 = [0.0f32, 1.0, 10.0, 11.0];
        let z4 = Standardized::new(&raw4, 1);
        let without = anova(&z4, &[0, 0, 1, 1], 2).unwrap();
        // Standardization differs (five vs four points) but F is scale-free.
        assert!((with.f_ratio - without.f_ratio).abs() < 1e-9 * without.f_ratio);
        // Directly: means 0.5 and 10.5 around 5.5, B = 2·5² + 2·5² = 100,
        // W = 4·0.5² = 1, F = (100/1)/(1/2) = 200.
        assert!((without.f_ratio - 200.0).abs() < 1e-9);
    }

    #[test]
    fn k_one_and_all_singletons_have_no_f() {
        let raw = [0.0f32, 1.0, 2.0];
        let z = Standardized::new(&raw, 1);
        assert!(anova(&z, &[0, 0, 0], 1).is_none());
        assert!(anova(&z, &[0, 1, 2], 3).is_none());
    }

    #[test]
    fn elbow_of_a_kinked_curve() {
        let points: Vec<(usize, f64)> = (1..=10)
            .map(|k| {
                (
                    k,
                    if k <= 3 {
                        100.0 - 30.0 * (k - 1) as f64
                    } else {
                        40.0 - (k - 3) as f64
                    },
                )
            })
            .collect();
        assert_eq!(elbow(&points), Some(3));
    }

    #[test]
    fn p_values_underflow_to_zero_and_print_as_such() {
        let f = FisherSnedecor::new(9.0, 30000.0).unwrap();
        assert_eq!(f.sf(5000.0), 0.0);
        assert_eq!(format_p_value(0.0), "< 1e-300");
    }
}

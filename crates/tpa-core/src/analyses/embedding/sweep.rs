//! The sweep over k: fit every k, score it, choose one.

use std::time::Instant;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::Standardized;
use super::kmeans::{
    Clustering, Data, Distances, KMeansAccelerator, KMeansOptions, kmeans, kmeans_on,
};
use super::scores::{Anova, SilhouetteSample, Silhouettes, anova, elbow};

/// How k is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    /// The highest F-ratio (the original's choice).
    Anova,
    /// The highest mean silhouette.
    Silhouette,
    /// The elbow of the inertia curve.
    Elbow,
}

/// Largest max_k swept exhaustively; above it, a coarse then a fine pass.
pub const EXHAUSTIVE_UP_TO: usize = 50;

/// Settings of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SweepOptions {
    pub max_k: usize,
    pub n_init: usize,
    pub seed: u64,
    pub criterion: Criterion,
    /// Rows in the seeded silhouette sample.
    pub silhouette_rows: usize,
    /// Sweep on this many seeded rows, then refit the chosen k on all rows.
    pub sweep_rows: Option<usize>,
}

/// One k of the curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KScore {
    pub k: usize,
    pub inertia: f64,
    /// `None` for k = 1 and whenever fewer than two clusters have 2+ members.
    pub anova: Option<Anova>,
    pub silhouette: Option<f64>,
    pub iterations: usize,
    pub seconds: f64,
}

/// What a sweep found.
pub struct Sweep {
    pub curve: Vec<KScore>,
    pub chosen_k: usize,
    /// The clustering at the chosen k on all rows.
    pub clustering: Clustering,
    /// Its silhouettes, on a seeded sample of all rows.
    pub silhouettes: Silhouettes,
    /// Rows the sweep ran on when it was sampled.
    pub sampled_rows: Option<usize>,
    /// Whether every fit ran on the accelerator.
    pub accelerated: bool,
}

/// Where a sweep's fits run: on the accelerator while it works, then on
/// the CPU (each switch is reported through the notice).
pub struct Placement<'a> {
    pub accelerator: Option<&'a dyn KMeansAccelerator>,
    pub notice: &'a dyn Fn(&str),
}

impl Placement<'_> {
    /// Everything on the CPU, silently.
    pub fn cpu() -> Placement<'static> {
        Placement {
            accelerator: None,
            notice: &|_| {},
        }
    }
}

/// Fits on one data set, on its device copy while that works.
struct Fitter<'a> {
    data: &'a Data<'a>,
    device: Option<Box<dyn Distances + 'a>>,
    notice: &'a dyn Fn(&str),
    all_on_device: bool,
}

impl<'a> Fitter<'a> {
    fn new(data: &'a Data<'a>, placement: &Placement<'a>) -> Fitter<'a> {
        let device = placement.accelerator.and_then(|a| match a.prepare(data) {
            Ok(device) => Some(device),
            Err(e) => {
                (placement.notice)(&format!(
                    "k-means: {} not used ({e}); fitting on the CPU",
                    a.describe()
                ));
                None
            }
        });
        Fitter {
            all_on_device: device.is_some(),
            data,
            device,
            notice: placement.notice,
        }
    }

    fn fit(&mut self, options: &KMeansOptions) -> Clustering {
        if let Some(device) = &self.device {
            match kmeans_on(self.data, options, device.as_ref()) {
                Ok(fit) => return fit,
                Err(e) => {
                    (self.notice)(&format!(
                        "k-means on the GPU failed at k = {} ({e}); the rest runs on the CPU",
                        options.k
                    ));
                    self.device = None;
                    self.all_on_device = false;
                }
            }
        }
        kmeans(self.data, options)
    }
}

/// The k values of the first pass: 1..=max_k when max_k ≤ 50 (k = 1 gets an
/// inertia but no F), otherwise every `coarse_step(max_k)`-th k from 2.
pub fn first_pass(max_k: usize) -> Vec<usize> {
    if max_k <= EXHAUSTIVE_UP_TO {
        (1..=max_k).collect()
    } else {
        (2..=max_k).step_by(coarse_step(max_k)).collect()
    }
}

/// The original's coarse step: max(10, max_k / 20).
pub fn coarse_step(max_k: usize) -> usize {
    (max_k / 20).max(10)
}

/// The fine pass around the best coarse k: every k closer than one step.
pub fn second_pass(max_k: usize, best: usize, done: &[usize]) -> Vec<usize> {
    if max_k <= EXHAUSTIVE_UP_TO {
        return Vec::new();
    }
    let step = coarse_step(max_k);
    (best.saturating_sub(step - 1).max(2)..=(best + step - 1).min(max_k))
        .filter(|k| !done.contains(k))
        .collect()
}

/// The k the criterion picks from the curve (never k = 1).
pub fn choose(curve: &[KScore], criterion: Criterion) -> Option<usize> {
    let best_by = |value: &dyn Fn(&KScore) -> Option<f64>| {
        curve
            .iter()
            .filter(|s| s.k >= 2)
            .filter_map(|s| Some((s.k, value(s)?)))
            .filter(|(_, v)| v.is_finite())
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(k, _)| k)
    };
    match criterion {
        Criterion::Anova => best_by(&|s| s.anova.map(|a| a.f_ratio)),
        Criterion::Silhouette => best_by(&|s| s.silhouette),
        Criterion::Elbow => {
            let mut points: Vec<(usize, f64)> = curve.iter().map(|s| (s.k, s.inertia)).collect();
            points.sort_by_key(|p| p.0);
            elbow(&points)
        }
    }
}

/// Sweeps k on the standardized matrix `z` (`x` is the same as f32),
/// reporting each k through `on_k` (its score, and the k values still to
/// come in this pass). Scores in `known` (from an interrupted run with the
/// same data and options) are taken as they are instead of fitting again;
/// fits are deterministic, so the result is the same as an uninterrupted
/// run's.
pub fn sweep(
    z: &Standardized<'_>,
    x: &[f32],
    options: &SweepOptions,
    placement: &Placement<'_>,
    known: &[KScore],
    on_k: &mut dyn FnMut(&KScore, usize),
) -> Option<Sweep> {
    let d = z.dim();
    let n = z.len();
    let sample_rows = options.sweep_rows.filter(|&m| m < n);
    let (sweep_x, sweep_raw): (Vec<f32>, Vec<f32>) = match sample_rows {
        Some(m) => {
            let rows = sample(n, m, options.seed);
            (
                rows.iter()
                    .flat_map(|&i| x[i * d..(i + 1) * d].iter().copied())
                    .collect(),
                rows.iter()
                    .flat_map(|&i| z.raw_row(i).iter().copied())
                    .collect(),
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    let (data_x, data_z) = match sample_rows {
        Some(_) => (&sweep_x[..], Standardized::with_stats_of(&sweep_raw, z)),
        None => (x, Standardized::with_stats_of(z.raw(), z)),
    };
    let data = Data::new(data_x, d);
    let mut fitter = Fitter::new(&data, placement);
    let silhouette_sample = SilhouetteSample::new(&data, options.silhouette_rows, options.seed);
    let mut curve: Vec<KScore> = Vec::new();
    let mut fits: Vec<Option<Clustering>> = Vec::new();
    let fit_options = |k| KMeansOptions {
        n_init: options.n_init,
        ..KMeansOptions::new(k, options.seed)
    };
    let mut run = |ks: Vec<usize>,
                   curve: &mut Vec<KScore>,
                   fits: &mut Vec<Option<Clustering>>,
                   fitter: &mut Fitter<'_>| {
        for (done, &k) in ks.iter().enumerate() {
            if k > data.len() {
                continue;
            }
            if let Some(score) = known.iter().find(|s| s.k == k) {
                on_k(score, ks.len() - done - 1);
                curve.push(score.clone());
                fits.push(None);
                continue;
            }
            let start = Instant::now();
            let fit = fitter.fit(&fit_options(k));
            let score = KScore {
                k,
                inertia: fit.inertia,
                anova: anova(&data_z, &fit.labels, k),
                silhouette: if k >= 2 {
                    silhouette_sample.score(&fit.labels, k).overall
                } else {
                    None
                },
                iterations: fit.iterations,
                seconds: start.elapsed().as_secs_f64(),
            };
            on_k(&score, ks.len() - done - 1);
            curve.push(score);
            fits.push(Some(fit));
        }
    };
    let first = first_pass(options.max_k);
    run(first.clone(), &mut curve, &mut fits, &mut fitter);
    if let Some(best) = choose(&curve, options.criterion) {
        let done: Vec<usize> = curve.iter().map(|s| s.k).collect();
        run(
            second_pass(options.max_k, best, &done),
            &mut curve,
            &mut fits,
            &mut fitter,
        );
    }
    let order: Vec<usize> = {
        let mut idx: Vec<usize> = (0..curve.len()).collect();
        idx.sort_by_key(|&i| curve[i].k);
        idx
    };
    let curve_sorted: Vec<KScore> = order.iter().map(|&i| curve[i].clone()).collect();
    let chosen_k = choose(&curve_sorted, options.criterion)?;
    let chosen_fit = fits.swap_remove(curve.iter().position(|s| s.k == chosen_k)?);
    let (clustering, silhouettes) = match sample_rows {
        None => {
            // A resumed run fits the chosen k again, as it was fitted before.
            let chosen_fit = chosen_fit.unwrap_or_else(|| fitter.fit(&fit_options(chosen_k)));
            let silhouettes = silhouette_sample.score(&chosen_fit.labels, chosen_k);
            (chosen_fit, silhouettes)
        }
        Some(_) => {
            let all = Data::new(x, d);
            let mut refit = Fitter::new(&all, placement);
            let fit = refit.fit(&fit_options(chosen_k));
            fitter.all_on_device &= refit.all_on_device;
            let silhouettes = SilhouetteSample::new(&all, options.silhouette_rows, options.seed)
                .score(&fit.labels, chosen_k);
            (fit, silhouettes)
        }
    };
    Some(Sweep {
        curve: curve_sorted,
        chosen_k,
        clustering,
        silhouettes,
        sampled_rows: sample_rows,
        accelerated: fitter.all_on_device,
    })
}

/// `m` distinct row indices of `n`, seeded, in increasing order.
fn sample(n: usize, m: usize, seed: u64) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_5A3B_1E00_0000);
    for i in 0..m.min(n) {
        let j = i + (rng.next_u64() % (n - i) as u64) as usize;
        rows.swap(i, j);
    }
    rows.truncate(m.min(n));
    rows.sort_unstable();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_ranges() {
        assert_eq!(first_pass(5), [1, 2, 3, 4, 5]);
        assert_eq!(first_pass(100), [2, 12, 22, 32, 42, 52, 62, 72, 82, 92]);
        assert_eq!(
            second_pass(100, 12, &first_pass(100)),
            [
                3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21
            ]
        );
        assert_eq!(
            second_pass(100, 2, &first_pass(100)),
            [3, 4, 5, 6, 7, 8, 9, 10, 11]
        );
        assert_eq!(coarse_step(400), 20);
    }
}

//! k-means, its scores and the sweep on data with known structure.

use std::cell::Cell;
use tpa_core::analyses::embedding::Standardized;

use tpa_core::analyses::embedding::kmeans::{
    CpuDistances, Data, Distances, KMeansAccelerator, KMeansOptions, kmeans, kmeans_on,
};
use tpa_core::analyses::embedding::scores::anova;
use tpa_core::analyses::embedding::sweep::{Criterion, Placement, SweepOptions, sweep};
use tpa_core::analyses::spectrum::BackendError;
use tpa_testkit::SplitMix64;

/// `per` points around each of `centers.len()` well separated centres in
/// `d` dimensions (spread 1, centres 20 apart), with their true labels.
fn blobs(k: usize, per: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = SplitMix64::new(seed);
    let centers: Vec<Vec<f64>> = (0..k)
        .map(|c| {
            (0..d)
                .map(|j| {
                    if j == c % d {
                        20.0 * (1 + c / d) as f64
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    let mut x = Vec::new();
    let mut truth = Vec::new();
    for i in 0..k * per {
        let c = i % k;
        x.extend(centers[c].iter().map(|m| (m + rng.normal()) as f32));
        truth.push(c as u32);
    }
    (x, truth)
}

/// Whether two labelings are the same partition.
fn same_partition(a: &[u32], b: &[u32]) -> bool {
    let mut map = std::collections::HashMap::new();
    a.iter()
        .zip(b)
        .all(|(x, y)| *map.entry(*x).or_insert(*y) == *y)
        && {
            let mut back = std::collections::HashMap::new();
            b.iter()
                .zip(a)
                .all(|(x, y)| *back.entry(*x).or_insert(*y) == *y)
        }
}

#[test]
fn the_sweep_finds_the_true_k_and_recovers_the_clusters() {
    let (raw, truth) = blobs(4, 300, 8, 1);
    let z = Standardized::new(&raw, 8);
    let x = z.to_f32();
    let options = SweepOptions {
        max_k: 10,
        n_init: 5,
        seed: 42,
        criterion: Criterion::Anova,
        silhouette_rows: 10_000,
        sweep_rows: None,
    };
    let mut seen = Vec::new();
    let result = sweep(&z, &x, &options, &Placement::cpu(), &[], &mut |s, _| {
        seen.push(s.k)
    })
    .unwrap();
    assert_eq!(seen, (1..=10).collect::<Vec<_>>());
    assert_eq!(result.chosen_k, 4);
    assert!(same_partition(&result.clustering.labels, &truth));
    assert!(result.curve[0].anova.is_none(), "k = 1 has no F");
    // Half the features are pure noise, so the blobs overlap in distance:
    // expected about (4.3 − 2.85) / 4.3 ≈ 0.34.
    let silhouette = result.silhouettes.overall.unwrap();
    assert!((0.25..0.45).contains(&silhouette), "{silhouette}");
    // The silhouette criterion agrees on such clear blobs.
    let by_silhouette = sweep(
        &z,
        &x,
        &SweepOptions {
            criterion: Criterion::Silhouette,
            ..options
        },
        &Placement::cpu(),
        &[],
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(by_silhouette.chosen_k, 4);
}

#[test]
fn a_sampled_sweep_says_so_and_refits_on_all_rows() {
    let (raw, truth) = blobs(3, 400, 6, 2);
    let z = Standardized::new(&raw, 6);
    let x = z.to_f32();
    let options = SweepOptions {
        max_k: 6,
        n_init: 3,
        seed: 7,
        criterion: Criterion::Anova,
        silhouette_rows: 500,
        sweep_rows: Some(300),
    };
    let result = sweep(&z, &x, &options, &Placement::cpu(), &[], &mut |_, _| {}).unwrap();
    assert_eq!(result.sampled_rows, Some(300));
    assert_eq!(result.chosen_k, 3);
    assert_eq!(result.clustering.labels.len(), 1200);
    assert!(same_partition(&result.clustering.labels, &truth));
}

#[test]
fn f_ratio_equals_a_direct_computation() {
    let (raw, _) = blobs(5, 60, 4, 3);
    let z = Standardized::new(&raw, 4);
    let x = z.to_f32();
    let fit = kmeans(&Data::new(&x, 4), &KMeansOptions::new(5, 1));
    let ours = anova(&z, &fit.labels, 5).unwrap();
    // Direct textbook formula, in f64, from the raw values.
    let n = raw.len() / 4;
    let col = |j: usize| -> (f64, f64) {
        let m = (0..n).map(|i| f64::from(raw[i * 4 + j])).sum::<f64>() / n as f64;
        let v = (0..n)
            .map(|i| (f64::from(raw[i * 4 + j]) - m).powi(2))
            .sum::<f64>()
            / n as f64;
        (m, v.sqrt())
    };
    let stats: Vec<(f64, f64)> = (0..4).map(col).collect();
    let zrow = |i: usize| -> Vec<f64> {
        (0..4)
            .map(|j| (f64::from(raw[i * 4 + j]) - stats[j].0) / stats[j].1)
            .collect()
    };
    let mut groups: Vec<Vec<Vec<f64>>> = vec![Vec::new(); 5];
    for i in 0..n {
        groups[fit.labels[i] as usize].push(zrow(i));
    }
    let mean = |pts: &[Vec<f64>]| -> Vec<f64> {
        (0..4)
            .map(|j| pts.iter().map(|p| p[j]).sum::<f64>() / pts.len() as f64)
            .collect()
    };
    let all: Vec<Vec<f64>> = (0..n).map(zrow).collect();
    let grand = mean(&all);
    let (mut b, mut w) = (0.0, 0.0);
    for g in groups.iter().filter(|g| g.len() > 1) {
        let m = mean(g);
        b += g.len() as f64
            * m.iter()
                .zip(&grand)
                .map(|(a, c)| (a - c).powi(2))
                .sum::<f64>();
        w += g
            .iter()
            .map(|p| p.iter().zip(&m).map(|(a, c)| (a - c).powi(2)).sum::<f64>())
            .sum::<f64>();
    }
    let direct = (b / 4.0) / (w / (n - 5) as f64);
    assert!(
        (ours.f_ratio - direct).abs() <= 1e-10 * direct,
        "{} vs {direct}",
        ours.f_ratio
    );
    assert!(ours.p_value < 1e-100);
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let (raw, _) = blobs(6, 700, 16, 4);
    let z = Standardized::new(&raw, 16);
    let x = z.to_f32();
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| kmeans(&Data::new(&x, 16), &KMeansOptions::new(8, 42)))
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn more_clusters_than_structure_still_fills_every_cluster() {
    // Four distinct points repeated: k = 4 leaves no cluster empty.
    let raw: Vec<f32> = (0..40).flat_map(|i| [(i % 4) as f32, 0.0]).collect();
    let fit = kmeans(&Data::new(&raw, 2), &KMeansOptions::new(4, 0));
    assert!(fit.sizes().iter().all(|&s| s == 10), "{:?}", fit.sizes());
    assert_eq!(fit.inertia, 0.0);
}

#[test]
fn more_clusters_than_distinct_rows_relocates_into_the_empty_ones() {
    // Three distinct points, k = 5: seeding must repeat a point, the
    // duplicate centre's cluster empties and takes a row from a cluster
    // that can spare one.
    let raw: Vec<f32> = (0..30).flat_map(|i| [(i % 3) as f32, 1.0]).collect();
    let fit = kmeans(&Data::new(&raw, 2), &KMeansOptions::new(5, 3));
    assert!(fit.sizes().iter().all(|&s| s >= 1), "{:?}", fit.sizes());
    assert_eq!(fit.sizes().iter().sum::<usize>(), 30);
    assert_eq!(fit.inertia, 0.0);
}

#[test]
fn every_label_is_the_nearest_returned_centre() {
    // Overlapping blobs and more centres than blobs: many rows sit near a
    // boundary, where wrong bounds would keep a stale label.
    let (raw, _) = blobs(4, 400, 24, 11);
    let z = Standardized::new(&raw, 24);
    let x = z.to_f32();
    let fit = kmeans(&Data::new(&x, 24), &KMeansOptions::new(13, 7));
    let sq = |i: usize, c: usize| -> f64 {
        (0..24)
            .map(|j| f64::from(x[i * 24 + j] - fit.centers[c * 24 + j]).powi(2))
            .sum()
    };
    for i in 0..x.len() / 24 {
        let own = sq(i, fit.labels[i] as usize);
        let best = (0..13).map(|c| sq(i, c)).fold(f64::INFINITY, f64::min);
        assert!(
            own <= best * (1.0 + 1e-5) + 1e-9,
            "row {i}: {own} vs {best}"
        );
    }
}

#[test]
fn silhouettes_equal_a_direct_computation() {
    use tpa_core::analyses::embedding::scores::SilhouetteSample;
    let (raw, _) = blobs(3, 20, 3, 5);
    let x: Vec<f32> = raw.clone();
    let data = Data::new(&x, 3);
    // Labels with a singleton (point 0 alone in cluster 3), which is left out.
    let mut labels: Vec<u32> = (0..60).map(|i| (i % 3) as u32).collect();
    labels[0] = 3;
    let ours = SilhouetteSample::new(&data, 10_000, 1).score(&labels, 4);
    let dist = |a: usize, b: usize| -> f64 {
        (0..3)
            .map(|j| (f64::from(x[a * 3 + j]) - f64::from(x[b * 3 + j])).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let kept: Vec<usize> = (0..60).filter(|&i| labels[i] != 3).collect();
    let mut total = 0.0;
    for &i in &kept {
        let mean_to = |c: u32| {
            let members: Vec<usize> = kept
                .iter()
                .copied()
                .filter(|&j| labels[j] == c && j != i)
                .collect();
            members.iter().map(|&j| dist(i, j)).sum::<f64>() / members.len() as f64
        };
        let a = mean_to(labels[i]);
        let b = (0..3)
            .filter(|&c| c != labels[i])
            .map(mean_to)
            .fold(f64::INFINITY, f64::min);
        total += (b - a) / a.max(b);
    }
    let direct = total / kept.len() as f64;
    assert!(
        (ours.overall.unwrap() - direct).abs() < 1e-5,
        "{:?} vs {direct}",
        ours.overall
    );
    assert_eq!(ours.per_cluster[3], None, "the singleton has no silhouette");
}

/// A stand-in device: the CPU's distances, counted, failing after a number
/// of calls.
struct FakeDevice<'a, 'x> {
    cpu: CpuDistances<'a, 'x>,
    calls: Cell<usize>,
    fail_after: usize,
}

impl Distances for FakeDevice<'_, '_> {
    fn matrix(&self, centers: &[f32], m: usize) -> Result<Vec<f32>, BackendError> {
        self.count()?;
        self.cpu.matrix(centers, m)
    }

    fn nearest(&self, centers: &[f32], k: usize) -> Result<(Vec<u32>, Vec<f32>), BackendError> {
        self.count()?;
        self.cpu.nearest(centers, k)
    }
}

impl FakeDevice<'_, '_> {
    fn count(&self) -> Result<(), BackendError> {
        self.calls.set(self.calls.get() + 1);
        if self.calls.get() > self.fail_after {
            return Err(BackendError::Broken("fake device lost".into()));
        }
        Ok(())
    }
}

struct FakeAccelerator {
    fail_after: usize,
}

impl KMeansAccelerator for FakeAccelerator {
    fn describe(&self) -> String {
        "fake".into()
    }

    fn prepare<'a>(&'a self, data: &'a Data<'a>) -> Result<Box<dyn Distances + 'a>, BackendError> {
        Ok(Box::new(FakeDevice {
            cpu: CpuDistances(data),
            calls: Cell::new(0),
            fail_after: self.fail_after,
        }))
    }
}

#[test]
fn the_device_path_fits_what_the_cpu_path_fits() {
    let (raw, truth) = blobs(5, 300, 12, 21);
    let z = Standardized::new(&raw, 12);
    let x = z.to_f32();
    let data = Data::new(&x, 12);
    let device = FakeDevice {
        cpu: CpuDistances(&data),
        calls: Cell::new(0),
        fail_after: usize::MAX,
    };
    for k in [1, 5, 9] {
        let options = KMeansOptions::new(k, 3);
        let on_device = kmeans_on(&data, &options, &device).unwrap();
        let on_cpu = kmeans(&data, &options);
        let relative = (on_device.inertia - on_cpu.inertia).abs() / on_cpu.inertia;
        assert!(
            relative < 1e-3,
            "k = {k}: {} vs {}",
            on_device.inertia,
            on_cpu.inertia
        );
        if k == 5 {
            assert!(same_partition(&on_device.labels, &truth));
        }
        // Every label is its row's nearest returned centre.
        let (nearest, _) = CpuDistances(&data).nearest(&on_device.centers, k).unwrap();
        assert_eq!(nearest, on_device.labels, "k = {k}");
    }
    assert!(device.calls.get() > 30, "{}", device.calls.get());
}

#[test]
fn a_failing_device_hands_the_sweep_to_the_cpu_and_says_so() {
    let (raw, _) = blobs(4, 250, 8, 8);
    let z = Standardized::new(&raw, 8);
    let x = z.to_f32();
    let options = SweepOptions {
        max_k: 8,
        n_init: 2,
        seed: 5,
        criterion: Criterion::Anova,
        silhouette_rows: 400,
        sweep_rows: None,
    };
    let on_cpu = sweep(&z, &x, &options, &Placement::cpu(), &[], &mut |_, _| {}).unwrap();
    assert!(!on_cpu.accelerated);

    let working = FakeAccelerator {
        fail_after: usize::MAX,
    };
    let notices = std::cell::RefCell::new(Vec::<String>::new());
    let notice = |m: &str| notices.borrow_mut().push(m.to_owned());
    let placement = Placement {
        accelerator: Some(&working),
        notice: &notice,
    };
    let on_device = sweep(&z, &x, &options, &placement, &[], &mut |_, _| {}).unwrap();
    assert!(on_device.accelerated);
    assert_eq!(on_device.chosen_k, on_cpu.chosen_k);
    assert!(notices.borrow().is_empty());

    let failing = FakeAccelerator { fail_after: 40 };
    let placement = Placement {
        accelerator: Some(&failing),
        notice: &notice,
    };
    let mixed = sweep(&z, &x, &options, &placement, &[], &mut |_, _| {}).unwrap();
    assert!(!mixed.accelerated);
    assert_eq!(mixed.chosen_k, on_cpu.chosen_k);
    assert_eq!(mixed.curve.len(), on_cpu.curve.len());
    let said = notices.borrow();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("failed") && said[0].contains("fake device lost"));
}

#[test]
fn a_sweep_resumed_from_known_scores_equals_an_uninterrupted_one() {
    let (raw, _) = blobs(4, 300, 10, 13);
    let z = Standardized::new(&raw, 10);
    let x = z.to_f32();
    let options = SweepOptions {
        max_k: 60,
        n_init: 2,
        seed: 9,
        criterion: Criterion::Anova,
        silhouette_rows: 500,
        sweep_rows: None,
    };
    let mut fitted = Vec::new();
    let full = sweep(&z, &x, &options, &Placement::cpu(), &[], &mut |s, _| {
        fitted.push(s.k)
    })
    .unwrap();
    // An interruption after the first five k values, the chosen one among them.
    let known: Vec<_> = full.curve.iter().take(5).cloned().collect();
    assert!(known.iter().any(|s| s.k == full.chosen_k));
    let mut refitted = Vec::new();
    let resumed = sweep(&z, &x, &options, &Placement::cpu(), &known, &mut |s, _| {
        if !known.contains(s) {
            refitted.push(s.k)
        }
    })
    .unwrap();
    assert_eq!(refitted.len(), fitted.len() - 5);
    // Equal but for the seconds each fit took.
    let untimed = |curve: &[tpa_core::analyses::embedding::sweep::KScore]| {
        curve
            .iter()
            .map(|s| tpa_core::analyses::embedding::sweep::KScore {
                seconds: 0.0,
                ..s.clone()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(untimed(&resumed.curve), untimed(&full.curve));
    assert_eq!(resumed.chosen_k, full.chosen_k);
    assert_eq!(resumed.clustering, full.clustering);
    assert_eq!(resumed.silhouettes.overall, full.silhouettes.overall);
}

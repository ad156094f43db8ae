//! Per-cluster sums and counts, and the steps of Lloyd's algorithm that
//! only need them: moving the centres, re-seeding empty clusters, and the
//! final inertia. Shared by the CPU iterations (Elkan's) and the
//! accelerator's (all distances each time).

use rayon::prelude::*;

use super::{Clustering, Data, exact_sq_distance};

/// f64 sums of each cluster's rows, and the cluster sizes.
pub(super) struct Sums {
    pub sums: Vec<f64>,
    pub counts: Vec<usize>,
    d: usize,
}

impl Sums {
    /// The sums of `labels`' clusters. Each cluster adds its rows in row
    /// order, so the result does not depend on the thread count.
    pub fn of(data: &Data<'_>, labels: &[u32], k: usize) -> Sums {
        let d = data.d;
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); k];
        for (i, &l) in labels.iter().enumerate() {
            members[l as usize].push(i as u32);
        }
        let mut sums = vec![0.0f64; k * d];
        sums.par_chunks_mut(d.max(1))
            .zip(&members)
            .for_each(|(sum, rows)| {
                for &i in rows {
                    sum.iter_mut()
                        .zip(data.row(i as usize))
                        .for_each(|(s, v)| *s += f64::from(*v));
                }
            });
        Sums {
            sums,
            counts: members.iter().map(Vec::len).collect(),
            d,
        }
    }

    /// Row `i` of `data` leaves cluster `from` for `to`.
    pub fn move_row(&mut self, data: &Data<'_>, i: usize, from: usize, to: usize) {
        let d = self.d;
        self.counts[from] -= 1;
        self.counts[to] += 1;
        for (j, v) in data.row(i).iter().enumerate() {
            self.sums[from * d + j] -= f64::from(*v);
            self.sums[to * d + j] += f64::from(*v);
        }
    }

    /// Moves every non-empty cluster's centre to its mean; returns the
    /// total squared shift and each centre's distance moved.
    pub fn update_centers(&self, centers: &mut [f32]) -> (f64, Vec<f32>) {
        let d = self.d;
        let mut shift = 0.0;
        let mut drift = vec![0.0f32; self.counts.len()];
        for (c, &count) in self.counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            let inv = 1.0 / count as f64;
            let mut moved = 0.0;
            for j in 0..d {
                let new = (self.sums[c * d + j] * inv) as f32;
                moved += f64::from(new - centers[c * d + j]).powi(2);
                centers[c * d + j] = new;
            }
            shift += moved;
            drift[c] = moved.sqrt() as f32;
        }
        (shift, drift)
    }

    /// scikit-learn's `_relocate_empty_clusters`: each empty cluster takes
    /// the row farthest from its centre (among rows whose cluster keeps a
    /// member), and that row's sums move with it. Returns the moved rows.
    pub fn relocate_empty(
        &mut self,
        data: &Data<'_>,
        centers: &[f32],
        labels: &mut [u32],
    ) -> Vec<usize> {
        let d = self.d;
        let distances: Vec<f64> = (0..data.n)
            .into_par_iter()
            .map(|i| {
                let c = labels[i] as usize;
                exact_sq_distance(data.row(i), &centers[c * d..(c + 1) * d])
            })
            .collect();
        let mut far: Vec<usize> = (0..data.n).collect();
        far.sort_by(|&i, &j| distances[j].total_cmp(&distances[i]).then(i.cmp(&j)));
        let mut far = far.into_iter();
        let mut moved = Vec::new();
        for c in 0..self.counts.len() {
            if self.counts[c] != 0 {
                continue;
            }
            let Some(i) = far.by_ref().find(|&i| self.counts[labels[i] as usize] > 1) else {
                break;
            };
            self.move_row(data, i, labels[i] as usize, c);
            labels[i] = c as u32;
            moved.push(i);
        }
        moved
    }
}

/// The clustering of `labels` around `centers`, with exact f64 distances.
pub(super) fn finish(
    data: &Data<'_>,
    labels: Vec<u32>,
    centers: Vec<f32>,
    iterations: usize,
) -> Clustering {
    let d = data.d;
    let k = centers.len() / d.max(1);
    let sq_distances: Vec<f64> = (0..data.n)
        .into_par_iter()
        .map(|i| {
            let c = labels[i] as usize;
            exact_sq_distance(data.row(i), &centers[c * d..(c + 1) * d])
        })
        .collect();
    Clustering {
        k,
        inertia: sq_distances.iter().sum(),
        sq_distances: sq_distances.into_iter().map(|v| v as f32).collect(),
        labels,
        centers,
        iterations,
    }
}

/// The result when there is nothing to cluster (no rows, or k = 0).
pub(super) fn nothing_to_fit(n: usize, centers: Vec<f32>, k: usize) -> Clustering {
    Clustering {
        k,
        labels: vec![0; n],
        centers,
        sq_distances: vec![0.0; n],
        inertia: 0.0,
        iterations: 0,
    }
}

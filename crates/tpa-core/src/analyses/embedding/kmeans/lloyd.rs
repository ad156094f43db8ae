//! Plain Lloyd steps with every distance from a [`Distances`] engine: what
//! an accelerator runs, since it computes all n·k distances faster than the
//! CPU could prune them.

use super::sums::{Sums, finish, nothing_to_fit};
use super::{Clustering, Data, Distances, KMeansOptions};
use crate::analyses::spectrum::BackendError;

/// Lloyd iterations from `centers` until the labels settle or the centres
/// move less than the tolerance, then the exact inertia of the final labels.
pub(super) fn lloyd(
    data: &Data<'_>,
    mut centers: Vec<f32>,
    options: &KMeansOptions,
    device: &dyn Distances,
) -> Result<Clustering, BackendError> {
    let k = centers.len() / data.d.max(1);
    if k == 0 || data.n == 0 {
        return Ok(nothing_to_fit(data.n, centers, k));
    }
    let tol = options.tol * data.tol_unit;
    let (mut labels, _) = device.nearest(&centers, k)?;
    let mut sums = Sums::of(data, &labels, k);
    let mut iterations = 0;
    while iterations < options.max_iter {
        iterations += 1;
        if sums.counts.contains(&0) {
            sums.relocate_empty(data, &centers, &mut labels);
        }
        let (shift, _) = sums.update_centers(&mut centers);
        // Also the final assignment scikit-learn reruns, so that the labels
        // always belong to the returned centres.
        let (next, _) = device.nearest(&centers, k)?;
        let mut changed = 0;
        for (i, (old, new)) in labels.iter_mut().zip(&next).enumerate() {
            if old != new {
                sums.move_row(data, i, *old as usize, *new as usize);
                *old = *new;
                changed += 1;
            }
        }
        if changed == 0 || shift <= tol {
            break;
        }
    }
    Ok(finish(data, labels, centers, iterations))
}

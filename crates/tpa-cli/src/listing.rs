//! `tpa-download --list-tensors`: every tensor of a Hub model from its
//! shards' headers (Range requests, no weights), and the wall time its
//! analysis would take on one or many machines like this one.

use std::path::Path;

use anyhow::{Result, bail};
use tpa_core::analyses::shard::split;
use tpa_core::records::TensorListing;
use tpa_core::writers::{Format, write_table};
use tpa_hub::{Plan, RemoteHeader, human};

/// Machine counts the planned wall time is printed for.
const MACHINES: [usize; 4] = [1, 8, 64, 256];

/// What to list and how to price it.
pub struct ListRequest<'a> {
    /// The table's file (format from its extension); CSV on stdout if None.
    pub out: Option<&'a Path>,
    pub format: Option<Format>,
    /// Also find the shard count that meets this wall time.
    pub target_hours: Option<f64>,
    /// Cost units per second; measured on this machine when None.
    pub units_per_second: Option<f64>,
    pub jobs: usize,
}

/// Writes the tensor table and prints the totals and planned wall times.
pub fn list_tensors(
    headers: &[RemoteHeader],
    plan: &Plan,
    request: &ListRequest<'_>,
    say: &dyn Fn(&str),
) -> Result<()> {
    if headers.is_empty() {
        bail!("{} has no safetensors or GGUF files to list", plan.repo);
    }
    let (rate, measured) = match request.units_per_second {
        Some(rate) if rate > 0.0 => (rate, false),
        Some(rate) => bail!("--units-per-second must be positive, not {rate}"),
        None => {
            say("measuring this machine's analysis rate (about a second)...");
            (crate::estimate::units_per_second(request.jobs)?, true)
        }
    };
    let mut rows = Vec::new();
    let mut matrix_costs = Vec::new();
    for header in headers {
        for t in &header.tensors {
            let row = TensorListing::new(
                &t.name,
                &t.dtype,
                &t.shape,
                &header.file.path,
                t.bytes(),
                rate,
            );
            // Its matrices cost alike (one per expert of a stacked tensor).
            if let Some(each) = row.cost.checked_div(row.matrices) {
                matrix_costs.extend(std::iter::repeat_n(each, row.matrices as usize));
            }
            rows.push(row);
        }
    }
    let format = match request.out {
        Some(path) => request
            .format
            .or_else(|| Format::from_path(path))
            .unwrap_or(Format::Csv),
        None => request.format.unwrap_or(Format::Csv),
    };
    let total_bytes: u64 = headers.iter().map(|h| h.file.size).sum();
    let requests: u32 = headers.iter().map(|h| h.requests).sum();
    let total: u64 = matrix_costs.iter().sum();
    let wall = |machines: usize| longest_shard(&matrix_costs, machines) as f64 / rate;
    let summary = serde_json::json!({
        "repo": plan.repo.to_string(),
        "commit": plan.commit,
        "shards": headers.len(),
        "bytes": total_bytes,
        "tensors": rows.len(),
        "matrices": matrix_costs.len(),
        "cost": total,
        "units_per_second": rate,
        "rate_measured": measured,
        "planned_wall_seconds": MACHINES.iter().map(|&m| (m.to_string(), wall(m).into())).collect::<serde_json::Map<_, _>>(),
    });
    match request.out {
        Some(path) => write_table(path, format, &rows, "tensors", Some(&summary))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            tpa_core::writers::write_table_to(
                &mut stdout,
                format,
                &rows,
                "tensors",
                Some(&summary),
            )?;
        }
    }
    let experts = match matrix_costs.len() - rows.len() {
        0 => String::new(),
        more => format!(" ({more} more matrices as stacked experts split)"),
    };
    say(&format!(
        "{} at commit {}: {} {} files, {}, {} tensors as stored{experts}; {} header requests",
        plan.repo,
        &plan.commit[..plan.commit.len().min(12)],
        headers.len(),
        if headers.iter().any(|h| h.file.path.ends_with(".gguf")) {
            "GGUF"
        } else {
            "safetensors"
        },
        human(total_bytes),
        rows.len(),
        requests,
    ));
    say(&format!(
        "analysis cost {total:.3e} units at {rate:.3e} units/s ({}; costs from the stored shapes, \
         on the CPU)",
        if measured {
            "measured on this machine"
        } else {
            "as given by --units-per-second"
        }
    ));
    let planned: Vec<String> = MACHINES
        .iter()
        .map(|&m| {
            format!(
                "{m} machine{}: {}",
                if m == 1 { "" } else { "s" },
                duration(wall(m))
            )
        })
        .collect();
    let largest = matrix_costs.iter().max().copied().unwrap_or(0) as f64 / rate;
    say(&format!(
        "planned wall time with --shard: {} (no shard can beat the largest matrix, {})",
        planned.join("; "),
        duration(largest)
    ));
    if let Some(hours) = request.target_hours {
        let target = hours * 3600.0;
        match shards_for(&matrix_costs, rate, target) {
            Some(n) => say(&format!(
                "--target-hours {hours}: {n} shard{} (--shard I/{n}), planned {}",
                if n == 1 { "" } else { "s" },
                duration(wall(n))
            )),
            None => say(&format!(
                "--target-hours {hours}: not reachable by sharding; the largest matrix alone takes {}",
                duration(largest)
            )),
        }
    }
    Ok(())
}

/// The cost of the most loaded of `count` shards.
fn longest_shard(costs: &[u64], count: usize) -> u64 {
    let mut loads = vec![0u64; count.max(1)];
    for (cost, shard) in costs.iter().zip(split(costs, count)) {
        loads[shard] += cost;
    }
    loads.into_iter().max().unwrap_or(0)
}

/// The fewest shards whose longest one takes at most `target` seconds.
fn shards_for(costs: &[u64], rate: f64, target: f64) -> Option<usize> {
    let fits = |n: usize| longest_shard(costs, n) as f64 / rate <= target;
    let most = costs.len().max(1);
    if !fits(most) {
        return None;
    }
    // The longest shard shrinks (nearly) monotonically with more shards.
    let (mut low, mut high) = (1, most);
    while low < high {
        let mid = (low + high) / 2;
        if fits(mid) { high = mid } else { low = mid + 1 }
    }
    Some(low)
}

fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 10.0 => format!("{s:.2} s"),
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 5400.0 => format!("{:.1} min", s / 60.0),
        s if s < 2.0 * 86400.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} days", s / 86400.0),
    }
}

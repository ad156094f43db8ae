//! Runs many jobs on a fixed number of threads under a memory budget.
//!
//! Spectra of big matrices need hundreds of MiB each; running one per core
//! is fastest, but on a 70B model with few GiB of RAM it must not start more
//! big ones than fit. Jobs start in descending order of cost (the big ones
//! first, so the tail of the run is small matrices that keep every core
//! busy), each when a thread is free and its memory fits in the budget. A job
//! larger than the whole budget runs alone.

use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

/// How many threads, and how much memory they may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub jobs: usize,
    pub max_memory: u64,
}

impl Limits {
    /// All cores, and half of the memory available now (MemAvailable in
    /// /proc/meminfo; 4 GiB where that cannot be read).
    pub fn detect() -> Limits {
        Limits {
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_memory: available_memory().map_or(4 << 30, |bytes| bytes / 2),
        }
    }
}

/// MemAvailable from /proc/meminfo, in bytes.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Parses a memory size: `16G`, `512M`, `1.5GiB`, `4096` (bytes); units are binary.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 8G or 512M"))?;
    let scale = match unit
        .trim()
        .trim_end_matches("iB")
        .trim_end_matches('B')
        .to_ascii_uppercase()
        .as_str()
    {
        "" => 1u64,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("{text:?}: unknown unit (use K, M, G or T)")),
    };
    Ok((number * scale as f64) as u64)
}

struct Budget {
    next: usize,
    in_use: u64,
}

/// Runs `work` on every item and hands each result to `done` on the calling
/// thread, in completion order, together with the item's index. `cost` is
/// the item's memory need in bytes.
pub fn run<T: Sync, R: Send>(
    items: &[T],
    limits: Limits,
    cost: impl Fn(&T) -> u64,
    work: impl Fn(&T) -> R + Sync,
    mut done: impl FnMut(usize, R),
) {
    let mut order: Vec<(usize, u64)> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (i, cost(item)))
        .collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let budget = limits.max_memory.max(1);
    let state = Mutex::new(Budget { next: 0, in_use: 0 });
    let freed = Condvar::new();
    let (sender, receiver) = mpsc::channel::<(usize, R)>();
    std::thread::scope(|scope| {
        for _ in 0..limits.jobs.max(1).min(items.len()) {
            let sender = sender.clone();
            let (order, state, freed, work) = (&order, &state, &freed, &work);
            scope.spawn(move || {
                loop {
                    let (index, charge) = {
                        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                        loop {
                            let Some(&(index, need)) = order.get(s.next) else {
                                return;
                            };
                            let charge = need.min(budget);
                            if s.in_use == 0 || s.in_use + charge <= budget {
                                s.next += 1;
                                s.in_use += charge;
                                break (index, charge);
                            }
                            s = freed.wait(s).unwrap_or_else(|e| e.into_inner());
                        }
                    };
                    let result = work(&items[index]);
                    state.lock().unwrap_or_else(|e| e.into_inner()).in_use -= charge;
                    freed.notify_all();
                    if sender.send((index, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);
        for (index, result) in receiver {
            done(index, result);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn every_item_runs_once_and_memory_stays_in_budget() {
        let items: Vec<u64> = (1..=40).map(|i| (i % 7) * 10).collect();
        let held = AtomicU64::new(0);
        let peak = AtomicU64::new(0);
        let mut seen = vec![0; items.len()];
        run(
            &items,
            Limits {
                jobs: 4,
                max_memory: 100,
            },
            |&c| c,
            |&c| {
                let now = held.fetch_add(c, Ordering::SeqCst) + c;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(2));
                held.fetch_sub(c, Ordering::SeqCst);
                c * 2
            },
            |i, r| {
                assert_eq!(r, items[i] * 2);
                seen[i] += 1;
            },
        );
        assert!(seen.iter().all(|&n| n == 1));
        assert!(
            peak.load(Ordering::SeqCst) <= 100,
            "{}",
            peak.load(Ordering::SeqCst)
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5GB"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn a_job_larger_than_the_budget_runs_alone() {
        let items = [500u64, 10, 10];
        let held = AtomicU64::new(0);
        run(
            &items,
            Limits {
                jobs: 3,
                max_memory: 100,
            },
            |&c| c,
            |&c| {
                let before = held.fetch_add(c, Ordering::SeqCst);
                assert!(c != 500 || before == 0, "the big job shares the budget");
                std::thread::sleep(std::time::Duration::from_millis(5));
                held.fetch_sub(c, Ordering::SeqCst);
            },
            |_, _| {},
        );
    }
}

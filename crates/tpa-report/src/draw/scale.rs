//! Mapping data to pixels, with ticks people read at a glance: integers for
//! layers and k, 1-2-5 steps, decades on log axes, no "-0.0".

/// How an axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Linear,
    /// Base 10; only positive values are drawn.
    Log,
    /// Linear, with ticks only at whole numbers (layers, k), half a unit
    /// of room at either end.
    Integer,
    /// Counts: linear from the data's range, ticks only at whole numbers.
    Count,
}

/// A labelled tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub value: f64,
    pub label: String,
}

/// A data interval mapped onto a pixel interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub kind: Kind,
    pub lo: f64,
    pub hi: f64,
    px0: f64,
    px1: f64,
}

impl Scale {
    /// A scale over the data extent `lo..=hi`, widened to tick marks (or, for
    /// integer axes, half a unit), mapped onto `px0..px1` (which may run
    /// backwards, as y axes do).
    ///
    /// ```
    /// use tpa_report::draw::scale::{Kind, Scale};
    /// let s = Scale::new(Kind::Linear, 0.13, 0.87, 0.0, 100.0);
    /// assert_eq!((s.lo, s.hi), (0.0, 1.0));
    /// assert_eq!(s.map(0.5), 50.0);
    /// let labels: Vec<String> = s.ticks(6).into_iter().map(|t| t.label).collect();
    /// assert_eq!(labels, ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
    /// ```
    pub fn new(kind: Kind, lo: f64, hi: f64, px0: f64, px1: f64) -> Scale {
        let (lo, hi) = domain(kind, lo, hi);
        Scale::exact(kind, lo, hi, px0, px1)
    }

    /// A scale over exactly `lo..=hi`, for axes whose ends are fixed.
    pub fn exact(kind: Kind, lo: f64, hi: f64, px0: f64, px1: f64) -> Scale {
        Scale {
            kind,
            lo,
            hi,
            px0,
            px1,
        }
    }

    /// The pixel of `value` (values outside the domain map outside the range;
    /// on a log axis non-positive values map to the low end).
    pub fn map(&self, value: f64) -> f64 {
        let t = match self.kind {
            Kind::Log => {
                let v = value.max(self.lo * 1e-3).log10();
                (v - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
            }
            _ => (value - self.lo) / (self.hi - self.lo),
        };
        self.px0 + t * (self.px1 - self.px0)
    }

    /// The pixel range.
    pub fn range(&self) -> (f64, f64) {
        (self.px0, self.px1)
    }

    /// Whether `value` lies within the domain (and is drawable).
    pub fn contains(&self, value: f64) -> bool {
        value.is_finite()
            && value >= self.lo
            && value <= self.hi
            && (self.kind != Kind::Log || value > 0.0)
    }

    /// About `target` ticks (fewer where the steps do not fit).
    pub fn ticks(&self, target: usize) -> Vec<Tick> {
        match self.kind {
            Kind::Log => log_ticks(self.lo, self.hi),
            Kind::Integer | Kind::Count => {
                let step = nice_step((self.hi - self.lo) / target.max(1) as f64).max(1.0);
                let step = step.round();
                let first = (self.lo / step).ceil() * step;
                steps(first, self.hi, step)
                    .map(|v| Tick {
                        value: v,
                        label: format!("{}", v.round() as i64),
                    })
                    .collect()
            }
            Kind::Linear => {
                let step = nice_step((self.hi - self.lo) / target.max(1) as f64);
                let first = (self.lo / step - 1e-9).ceil() * step;
                steps(first, self.hi, step)
                    .map(|v| Tick {
                        value: v,
                        label: tick_label(v, step),
                    })
                    .collect()
            }
        }
    }
}

fn steps(first: f64, last: f64, step: f64) -> impl Iterator<Item = f64> {
    let n = if step > 0.0 && first <= last + step * 1e-9 {
        ((last - first) / step + 1e-9).floor() as usize + 1
    } else {
        0
    };
    (0..n.min(1000)).map(move |i| first + i as f64 * step)
}

fn domain(kind: Kind, lo: f64, hi: f64) -> (f64, f64) {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() && lo <= hi {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    match kind {
        Kind::Log => {
            let lo = if lo > 0.0 { lo } else { hi.max(1e-12) / 10.0 };
            let hi = hi.max(lo);
            let (mut a, mut b) = (step_below(lo), step_above(hi));
            if b / a < 2.0 {
                (a, b) = (step_below(a * 0.99), step_above(b * 1.01));
            }
            if !(a > 0.0 && b.is_finite()) {
                (a, b) = (1.0, 10.0);
            }
            (a, b)
        }
        Kind::Integer => {
            let (lo, hi) = (lo.floor(), hi.ceil());
            (lo - 0.5, hi + 0.5)
        }
        Kind::Count => {
            let (lo, hi) = domain(Kind::Linear, lo, hi.max(lo + 1.0));
            (lo, hi.max(1.0))
        }
        Kind::Linear => {
            if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
                let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
                return domain(kind, lo - pad, hi + pad);
            }
            let step = nice_step((hi - lo) / 5.0);
            ((lo / step).floor() * step, (hi / step).ceil() * step)
        }
    }
}

/// The largest 1, 2 or 5 × 10^k at or below `v` (> 0).
fn step_below(v: f64) -> f64 {
    let m = 10f64.powf(v.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|f| f * m)
        .find(|&s| s <= v * (1.0 + 1e-12))
        .unwrap_or(m)
}

/// The smallest 1, 2 or 5 × 10^k at or above `v` (> 0).
fn step_above(v: f64) -> f64 {
    let m = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|f| f * m)
        .find(|&s| s >= v * (1.0 - 1e-12))
        .unwrap_or(10.0 * m)
}

/// The 1-2-5 step nearest above `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 || raw.is_infinite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let f = raw / magnitude;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn tick_label(value: f64, step: f64) -> String {
    let big = value.abs().max(step);
    if big >= 1e5 || step < 1e-4 {
        return format_number(value);
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    clean_zero(format!("{value:.decimals$}"))
}

fn log_ticks(lo: f64, hi: f64) -> Vec<Tick> {
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let decades = (hi / lo).log10();
    let within = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
    let mut ticks = Vec::new();
    if decades <= 2.5 {
        for e in a..=b {
            for m in [1.0, 2.0, 5.0] {
                let v = m * 10f64.powi(e);
                if within(v) {
                    let label = if m == 1.0 {
                        power_of_ten(e)
                    } else {
                        format_number(v)
                    };
                    ticks.push(Tick { value: v, label });
                }
            }
        }
    } else {
        let every = (decades / 7.0).ceil().max(1.0) as i32;
        for e in a..=b {
            let v = 10f64.powi(e);
            if (e - a) % every == 0 && within(v) {
                ticks.push(Tick {
                    value: v,
                    label: power_of_ten(e),
                });
            }
        }
    }
    ticks
}

/// 10^e as people write it: 0.01 … 1000 plainly, 10⁴ and 10⁻³ beyond.
pub fn power_of_ten(e: i32) -> String {
    if (-2..=3).contains(&e) {
        return format_number(10f64.powi(e));
    }
    let digits: String = e
        .to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            '0' => '⁰',
            '1' => '¹',
            '2' => '²',
            '3' => '³',
            '4' => '⁴',
            '5' => '⁵',
            '6' => '⁶',
            '7' => '⁷',
            '8' => '⁸',
            _ => '⁹',
        })
        .collect();
    format!("10{digits}")
}

/// A number in at most 4 significant digits: plain between 0.001 and
/// 100 000, else scientific (`1.25e-7`); never "-0".
///
/// ```
/// use tpa_report::draw::scale::format_number;
/// assert_eq!(format_number(3.14159), "3.142");
/// assert_eq!(format_number(-0.0), "0");
/// assert_eq!(format_number(1234567.0), "1.235e6");
/// assert_eq!(format_number(0.000125), "1.25e-4");
/// assert_eq!(format_number(20.0), "20");
/// ```
pub fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return "–".to_owned();
    }
    if value == 0.0 {
        return "0".to_owned();
    }
    let a = value.abs();
    if !(1e-3..1e5).contains(&a) {
        let e = a.log10().floor() as i32;
        let mut m = value / 10f64.powi(e);
        let mut e = e;
        if (m.abs() * 1000.0).round() >= 10_000.0 {
            m /= 10.0;
            e += 1;
        }
        return format!("{}e{e}", trim(format!("{m:.3}")));
    }
    let digits = 4 - (a.log10().floor() as i32 + 1);
    let decimals = digits.max(0) as usize;
    clean_zero(trim(format!("{value:.decimals$}")))
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

fn clean_zero(s: String) -> String {
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        "0".to_owned()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_ticks_are_whole_numbers() {
        let s = Scale::new(Kind::Integer, 0.0, 31.0, 0.0, 600.0);
        let ticks = s.ticks(8);
        assert!(ticks.iter().all(|t| t.value.fract() == 0.0));
        assert!(ticks.iter().all(|t| !t.label.contains('.')));
        assert_eq!(ticks.first().unwrap().label, "0");
        let s = Scale::new(Kind::Integer, 1.0, 3.0, 0.0, 600.0);
        let labels: Vec<_> = s.ticks(10).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["1", "2", "3"]);
    }

    #[test]
    fn negative_linear_ticks_have_no_minus_zero() {
        let s = Scale::new(Kind::Linear, -0.04, 0.11, 0.0, 100.0);
        let labels: Vec<_> = s.ticks(6).into_iter().map(|t| t.label).collect();
        assert!(labels.contains(&"0".to_owned()), "{labels:?}");
        assert!(
            labels.iter().all(|l| l != "-0" && l != "-0.0"),
            "{labels:?}"
        );
    }

    #[test]
    fn log_ticks_are_decades() {
        let s = Scale::new(Kind::Log, 3e-4, 42.0, 0.0, 100.0);
        assert_eq!((s.lo, s.hi), (2e-4, 50.0));
        let labels: Vec<_> = s.ticks(8).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["10⁻³", "0.01", "0.1", "1", "10"]);
        let s = Scale::new(Kind::Log, 0.03, 0.09, 0.0, 100.0);
        assert_eq!((s.lo, s.hi), (0.02, 0.1));
        let labels: Vec<_> = s.ticks(8).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["0.02", "0.05", "0.1"]);
    }

    #[test]
    fn a_constant_series_gets_a_visible_range() {
        let s = Scale::new(Kind::Linear, 5.0, 5.0, 0.0, 100.0);
        assert!(s.lo < 5.0 && s.hi > 5.0);
    }
}

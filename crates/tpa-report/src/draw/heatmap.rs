//! A grid of coloured cells (layer × block type) with its colour bar; each
//! cell carries its value as a tooltip.

use super::axis::{TICK_SIZE, widest};
use super::palette;
use super::scale::{Kind, Scale, format_number};
use super::text::{fit, width};
use super::{Anchor, Color, Item, Scene, Stroke, TextStyle};

/// How values become colours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Colors {
    /// Viridis from the smallest to the largest value (log10 when `log`).
    Sequential { log: bool },
    /// Blue below zero, red above, white at zero, symmetric.
    Diverging,
}

/// A heatmap: `values[row][column]`, `None` where there is no matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub title: String,
    pub note: Option<String>,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    pub x_label: String,
    /// What the colour shows, with its unit.
    pub value_label: String,
    pub values: Vec<Vec<Option<f64>>>,
    pub tips: Vec<Vec<String>>,
    pub colors: Colors,
}

const ROW_LABEL_SIZE: f64 = 11.0;
const MAX_ROW_LABEL: f64 = 160.0;
const BAR_STEPS: usize = 48;
/// The colour bar is at least this tall, so that its label fits along it.
const BAR_MIN_HEIGHT: f64 = 170.0;

impl Heatmap {
    pub fn render(&self, max_width: f64) -> Scene {
        let label_w = self
            .rows
            .iter()
            .map(|r| width(r, ROW_LABEL_SIZE, false).min(MAX_ROW_LABEL))
            .fold(0.0, f64::max);
        let left = 14.0 + label_w + 8.0;
        let bar_area = 130.0;
        let columns = self.columns.len().max(1) as f64;
        let cell_w = ((max_width - left - bar_area - 14.0) / columns).clamp(4.0, 56.0);
        let cell_h = if self.rows.len() > 24 { 14.0 } else { 20.0 };
        let top = 30.0 + if self.note.is_some() { 15.0 } else { 0.0 };
        let grid_w = cell_w * columns;
        let grid_h = cell_h * self.rows.len() as f64;
        let width = (left + grid_w + bar_area).max(320.0);
        let bar_h = grid_h.max(BAR_MIN_HEIGHT);
        let height = top + bar_h + 52.0;
        let mut scene = Scene::new(width, height, self.title.clone());

        let (lo, hi) = self.value_range();
        for (r, row) in self.values.iter().enumerate() {
            for (c, value) in row.iter().enumerate() {
                let (x, y) = (left + c as f64 * cell_w, top + r as f64 * cell_h);
                let tip = self.tips.get(r).and_then(|t| t.get(c)).cloned();
                let fill = match value {
                    Some(v) if v.is_finite() => self.color(*v, lo, hi),
                    _ => Color::hex(0xf2f2f2),
                };
                scene.push(Item::Rect {
                    x,
                    y,
                    w: cell_w,
                    h: cell_h,
                    fill: Some(fill),
                    stroke: Some(Stroke::solid(
                        Color::WHITE,
                        if cell_w > 8.0 { 1.0 } else { 0.3 },
                    )),
                    tip: tip.filter(|t| !t.is_empty()),
                });
            }
        }
        for (r, label) in self.rows.iter().enumerate() {
            let short = fit(label, ROW_LABEL_SIZE, MAX_ROW_LABEL);
            scene.push(Item::Text {
                x: left - 6.0,
                y: top + r as f64 * cell_h + cell_h / 2.0 + 4.0,
                tip: (short != *label).then(|| label.clone()),
                text: short,
                size: ROW_LABEL_SIZE,
                anchor: Anchor::End,
                color: Color::INK,
                bold: false,
                vertical: false,
            });
        }
        // Column labels: every k-th, so that they do not touch.
        let widest_col = self
            .columns
            .iter()
            .map(|c| super::text::width(c, TICK_SIZE, false))
            .fold(0.0, f64::max);
        let every = ((widest_col + 6.0) / cell_w).ceil().max(1.0) as usize;
        let every = [1, 2, 5, 10, 20, 50, 100]
            .into_iter()
            .find(|&e| e >= every)
            .unwrap_or(every);
        let tick = TextStyle::new(TICK_SIZE).anchor(Anchor::Middle);
        for (c, label) in self.columns.iter().enumerate() {
            if c % every == 0 {
                let x = left + (c as f64 + 0.5) * cell_w;
                scene.text(x, top + grid_h + 15.0, label, tick);
            }
        }
        scene.text(
            left + grid_w / 2.0,
            top + grid_h + 33.0,
            &self.x_label,
            TextStyle::new(12.0).anchor(Anchor::Middle),
        );
        self.colour_bar(&mut scene, left + grid_w + 18.0, top, bar_h, lo, hi);
        scene.text(
            12.0,
            20.0,
            fit(&self.title, 14.0, width - 24.0),
            TextStyle::new(14.0).bold(),
        );
        if let Some(note) = &self.note {
            scene.text(
                12.0,
                36.0,
                fit(note, 11.0, width - 24.0),
                TextStyle::new(11.0).color(Color::MUTED),
            );
        }
        scene
    }

    fn value_range(&self) -> (f64, f64) {
        let finite = self
            .values
            .iter()
            .flatten()
            .flatten()
            .copied()
            .filter(|v| v.is_finite());
        match self.colors {
            Colors::Diverging => {
                let m = finite.map(f64::abs).fold(0.0, f64::max);
                let m = if m > 0.0 { m } else { 1.0 };
                (-m, m)
            }
            Colors::Sequential { log } => {
                let (lo, hi) = finite
                    .filter(|v| !log || *v > 0.0)
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                        (a.min(v), b.max(v))
                    });
                match (lo < hi, lo == hi) {
                    (true, _) => (lo, hi),
                    // One value everywhere: a colour bar around it, so that
                    // it still reads off.
                    (_, true) if log => (lo / 2.0, hi * 2.0),
                    (_, true) if lo != 0.0 => (lo - 0.1 * lo.abs(), hi + 0.1 * hi.abs()),
                    (_, true) => (0.0, 1.0),
                    _ => (0.0, 1.0),
                }
            }
        }
    }

    fn color(&self, v: f64, lo: f64, hi: f64) -> Color {
        match self.colors {
            Colors::Diverging => palette::diverging(v / hi),
            Colors::Sequential { log } => {
                let (v, lo, hi) = if log {
                    (v.max(lo).log10(), lo.log10(), hi.log10())
                } else {
                    (v, lo, hi)
                };
                let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                palette::sequential(t)
            }
        }
    }

    fn colour_bar(&self, scene: &mut Scene, x: f64, top: f64, h: f64, lo: f64, hi: f64) {
        let step = h / BAR_STEPS as f64;
        for i in 0..BAR_STEPS {
            let t = (i as f64 + 0.5) / BAR_STEPS as f64;
            let v = self.bar_value(1.0 - t, lo, hi);
            scene.push(Item::Rect {
                x,
                y: top + i as f64 * step,
                w: 12.0,
                h: step + 0.3,
                fill: Some(self.color(v, lo, hi)),
                stroke: None,
                tip: None,
            });
        }
        let log = matches!(self.colors, Colors::Sequential { log: true });
        let kind = if log { Kind::Log } else { Kind::Linear };
        let scale = Scale::exact(kind, lo, hi, top + h, top);
        let mut ticks = if lo < hi {
            Scale::new(kind, lo, hi, 0.0, 1.0).ticks(5)
        } else {
            Vec::new()
        };
        ticks.retain(|t| t.value >= lo - 1e-12 * lo.abs() && t.value <= hi + 1e-12 * hi.abs());
        if ticks.len() < 2 {
            ticks = vec![
                super::scale::Tick {
                    value: lo,
                    label: format_number(lo),
                },
                super::scale::Tick {
                    value: hi,
                    label: format_number(hi),
                },
            ];
        }
        let ink = Stroke::solid(Color::INK, 1.0);
        for t in &ticks {
            let y = scale.map(t.value);
            scene.line((x + 12.0, y), (x + 16.0, y), ink);
            scene.text(x + 19.0, y + 4.0, &t.label, TextStyle::new(TICK_SIZE));
        }
        // Turned text extends left of its baseline by its height.
        let label_x = x + 19.0 + widest(&ticks) + 16.0;
        let label = fit(&self.value_label, 11.0, h);
        scene.push(Item::Text {
            x: label_x,
            y: top + h / 2.0,
            tip: (label != self.value_label).then(|| self.value_label.clone()),
            text: label,
            size: 11.0,
            anchor: Anchor::Middle,
            color: Color::INK,
            bold: false,
            vertical: true,
        });
    }

    fn bar_value(&self, t: f64, lo: f64, hi: f64) -> f64 {
        match self.colors {
            Colors::Sequential { log: true } if lo > 0.0 => {
                10f64.powf(lo.log10() + t * (hi.log10() - lo.log10()))
            }
            _ => lo + t * (hi - lo),
        }
    }
}

//! Axes, grid lines and tick labels around a plot area.

use super::scale::{Kind, Scale, Tick};
use super::text::width;
use super::{Anchor, Color, Scene, Stroke, TextStyle};

pub const TICK_SIZE: f64 = 11.0;
pub const LABEL_SIZE: f64 = 12.0;

/// What an axis shows.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisSpec {
    /// The label, with its unit; " (log scale)" is added to log axes.
    pub label: String,
    pub kind: Kind,
    /// Fixed ends instead of the data's extent.
    pub range: Option<(f64, f64)>,
    /// Values the axis must show besides the data (0, a threshold).
    pub include: Vec<f64>,
}

impl AxisSpec {
    pub fn new(label: impl Into<String>, kind: Kind) -> AxisSpec {
        AxisSpec {
            label: label.into(),
            kind,
            range: None,
            include: Vec::new(),
        }
    }

    pub fn range(mut self, lo: f64, hi: f64) -> AxisSpec {
        self.range = Some((lo, hi));
        self
    }

    pub fn include(mut self, value: f64) -> AxisSpec {
        self.include.push(value);
        self
    }

    /// The label as drawn.
    pub fn title(&self) -> String {
        match self.kind {
            Kind::Log => format!("{} (log scale)", self.label),
            _ => self.label.clone(),
        }
    }

    /// The scale over `extent` (data values), or over the fixed range.
    pub fn scale(&self, extent: (f64, f64), px0: f64, px1: f64) -> Scale {
        match self.range {
            Some((lo, hi)) => Scale::exact(self.kind, lo, hi, px0, px1),
            None => {
                let (mut lo, mut hi) = extent;
                for &v in &self.include {
                    if v.is_finite() && (self.kind != Kind::Log || v > 0.0) {
                        lo = lo.min(v);
                        hi = hi.max(v);
                    }
                }
                Scale::new(self.kind, lo, hi, px0, px1)
            }
        }
    }
}

/// Ticks for an axis `length` pixels long: about one per 60 px on x, 40 px on y.
pub fn ticks(scale: &Scale, length: f64, horizontal: bool) -> Vec<Tick> {
    let spacing = if horizontal { 60.0 } else { 40.0 };
    let target = (length.abs() / spacing).floor().clamp(2.0, 12.0) as usize;
    let mut ticks = scale.ticks(target);
    if horizontal && scale.kind != Kind::Log {
        // Labels must not touch: thin out until the widest fits its slot.
        while ticks.len() > 2 {
            let widest = ticks
                .iter()
                .map(|t| width(&t.label, TICK_SIZE, false))
                .fold(0.0, f64::max);
            let slot = length.abs() / ticks.len() as f64;
            if widest + 6.0 <= slot {
                break;
            }
            ticks = ticks.into_iter().step_by(2).collect();
        }
    }
    ticks
}

/// The widest tick label of `ticks`.
pub fn widest(ticks: &[Tick]) -> f64 {
    ticks
        .iter()
        .map(|t| width(&t.label, TICK_SIZE, false))
        .fold(0.0, f64::max)
}

/// The plot rectangle: left, top, right, bottom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
}

/// Grid lines under the data.
pub fn grid(scene: &mut Scene, frame: Frame, x: &Scale, xt: &[Tick], y: &Scale, yt: &[Tick]) {
    let stroke = Stroke::solid(Color::GRID, 1.0);
    for t in yt {
        let py = y.map(t.value);
        scene.line((frame.left, py), (frame.right, py), stroke);
    }
    for t in xt {
        let px = x.map(t.value);
        scene.line((px, frame.top), (px, frame.bottom), stroke);
    }
}

/// Axis lines, ticks, tick labels and axis titles over the data.
#[allow(clippy::too_many_arguments)]
pub fn axes(
    scene: &mut Scene,
    frame: Frame,
    x: &Scale,
    xt: &[Tick],
    x_title: &str,
    y: &Scale,
    yt: &[Tick],
    y_title: &str,
) {
    let ink = Stroke::solid(Color::INK, 1.0);
    scene.line((frame.left, frame.bottom), (frame.right, frame.bottom), ink);
    scene.line((frame.left, frame.top), (frame.left, frame.bottom), ink);
    let tick_style = TextStyle::new(TICK_SIZE);
    for t in xt {
        let px = x.map(t.value);
        scene.line((px, frame.bottom), (px, frame.bottom + 4.0), ink);
        scene.text(
            px,
            frame.bottom + 16.0,
            &t.label,
            tick_style.anchor(Anchor::Middle),
        );
    }
    for t in yt {
        let py = y.map(t.value);
        scene.line((frame.left - 4.0, py), (frame.left, py), ink);
        scene.text(
            frame.left - 7.0,
            py + 4.0,
            &t.label,
            tick_style.anchor(Anchor::End),
        );
    }
    let label = TextStyle::new(LABEL_SIZE).anchor(Anchor::Middle);
    scene.text(
        (frame.left + frame.right) / 2.0,
        frame.bottom + 34.0,
        x_title,
        label,
    );
    let y_label_x = frame.left - widest(yt) - 16.0;
    scene.text(
        y_label_x,
        (frame.top + frame.bottom) / 2.0,
        y_title,
        label.vertical(),
    );
}

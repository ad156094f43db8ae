//! The x–y chart every line, scatter and histogram of the report is made
//! of: layers of data over a grid, axes with labelled units, and a legend
//! beside the plot, never over the data.

use super::axis::{self, AxisSpec, Frame};
use super::scale::{Kind, Scale};
use super::text::{fit, width};
use super::{Anchor, Color, Item, Marker, Scene, Stroke, TextStyle};

/// One layer of data, drawn in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// A polyline through the points; non-finite y values break it.
    Line {
        points: Vec<(f64, f64)>,
        stroke: Stroke,
        /// Markers at the points, with a tooltip each when `tips` is given.
        marker: Option<Marker>,
        tips: Vec<String>,
    },
    /// A filled band between two curves over the same x values.
    Band {
        lower: Vec<(f64, f64)>,
        upper: Vec<(f64, f64)>,
        fill: Color,
    },
    Points {
        points: Vec<(f64, f64)>,
        marker: Marker,
        color: Color,
        radius: f64,
        tips: Vec<String>,
    },
    /// Rectangles from `base` up to each bar's height.
    Bars {
        bars: Vec<Bar>,
        fill: Color,
        tips: Vec<String>,
    },
    /// A vertical reference line over the whole height.
    VLine {
        x: f64,
        stroke: Stroke,
        label: Option<String>,
    },
    HLine {
        y: f64,
        stroke: Stroke,
        label: Option<String>,
    },
    /// A shaded vertical band (`x0..x1`) over the whole height.
    Span { x0: f64, x1: f64, fill: Color },
    /// A shaded horizontal band (`y0..y1`) over the whole width.
    HSpan { y0: f64, y1: f64, fill: Color },
    /// The line y = x across the plot.
    Diagonal { stroke: Stroke },
}

/// One bar of a histogram or bar chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub x0: f64,
    pub x1: f64,
    pub y: f64,
    /// The bar's foot: 0 on linear axes, the axis floor on log axes.
    pub base: f64,
}

/// One legend entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    pub label: String,
    pub color: Color,
    pub marker: Option<Marker>,
    /// The line style; `None` draws a filled box.
    pub stroke: Option<Stroke>,
}

impl LegendEntry {
    pub fn line(label: impl Into<String>, stroke: Stroke, marker: Option<Marker>) -> LegendEntry {
        LegendEntry {
            label: label.into(),
            color: stroke.color,
            marker,
            stroke: Some(stroke),
        }
    }

    pub fn swatch(label: impl Into<String>, color: Color) -> LegendEntry {
        LegendEntry {
            label: label.into(),
            color,
            marker: None,
            stroke: None,
        }
    }

    pub fn point(label: impl Into<String>, color: Color, marker: Marker) -> LegendEntry {
        LegendEntry {
            label: label.into(),
            color,
            marker: Some(marker),
            stroke: None,
        }
    }
}

/// A chart: title, axes, layers and legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    pub title: String,
    /// A second, smaller line under the title (what is left out, how it is drawn).
    pub note: Option<String>,
    pub width: f64,
    pub height: f64,
    pub x: AxisSpec,
    pub y: AxisSpec,
    pub layers: Vec<Layer>,
    pub legend: Vec<LegendEntry>,
    /// The plot area's left edge, when panels stacked above each other must
    /// line up; default: what the y tick labels need.
    pub left: Option<f64>,
}

const TITLE_SIZE: f64 = 14.0;
const NOTE_SIZE: f64 = 11.0;
const LEGEND_SIZE: f64 = 11.0;
const LEGEND_ROW: f64 = 17.0;
const LEGEND_MAX_LABEL: f64 = 170.0;

impl Plot {
    pub fn new(title: impl Into<String>, x: AxisSpec, y: AxisSpec) -> Plot {
        Plot {
            title: title.into(),
            note: None,
            width: 640.0,
            height: 340.0,
            x,
            y,
            layers: Vec::new(),
            legend: Vec::new(),
            left: None,
        }
    }

    pub fn size(mut self, width: f64, height: f64) -> Plot {
        self.width = width;
        self.height = height;
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Plot {
        self.note = Some(note.into());
        self
    }

    pub fn layer(&mut self, layer: Layer) {
        self.layers.push(layer);
    }

    /// Whether any layer holds data (reference lines alone do not count).
    pub fn has_data(&self) -> bool {
        self.layers.iter().any(|l| match l {
            Layer::Line { points, .. } | Layer::Points { points, .. } => {
                points.iter().any(|p| p.0.is_finite() && p.1.is_finite())
            }
            Layer::Bars { bars, .. } => !bars.is_empty(),
            Layer::Band { lower, .. } => !lower.is_empty(),
            _ => false,
        })
    }

    fn height(&self) -> f64 {
        self.height
            .max(self.legend.len() as f64 * LEGEND_ROW + 60.0)
    }

    fn top(&self) -> f64 {
        30.0 + if self.note.is_some() { 15.0 } else { 0.0 }
    }

    /// The left edge the y tick labels need.
    pub fn natural_left(&self) -> f64 {
        self.left_for(self.extents().1)
    }

    fn left_for(&self, ye: (f64, f64)) -> f64 {
        let (top, bottom) = (self.top(), self.height() - 46.0);
        let probe_y = self.y.scale(ye, bottom, top);
        16.0 + axis::widest(&axis::ticks(&probe_y, bottom - top, false)) + 22.0
    }

    /// Lays the chart out and draws it.
    pub fn render(&self) -> Scene {
        let legend_width = self.legend_width();
        let height = self.height();
        let mut scene = Scene::new(self.width, height, self.title.clone());
        let (top, bottom) = (self.top(), height - 46.0);
        let (xe, ye) = self.extents();
        let left = self.left.unwrap_or_else(|| self.left_for(ye));
        let right = self.width - 14.0 - legend_width;
        let frame = Frame {
            left,
            top,
            right,
            bottom,
        };
        let x = self.x.scale(xe, left, right);
        let y = self.y.scale(ye, bottom, top);
        let x_ticks = axis::ticks(&x, right - left, true);
        let y_ticks = axis::ticks(&y, bottom - top, false);

        axis::grid(&mut scene, frame, &x, &x_ticks, &y, &y_ticks);
        let mut labels = 0;
        for layer in &self.layers {
            draw_layer(&mut scene, layer, frame, &x, &y, &mut labels);
        }
        axis::axes(
            &mut scene,
            frame,
            &x,
            &x_ticks,
            &self.x.title(),
            &y,
            &y_ticks,
            &self.y.title(),
        );
        scene.text(
            12.0,
            20.0,
            fit(&self.title, TITLE_SIZE, self.width - 24.0),
            TextStyle::new(TITLE_SIZE).bold(),
        );
        if let Some(note) = &self.note {
            scene.text(
                12.0,
                36.0,
                fit(note, NOTE_SIZE, self.width - 24.0),
                TextStyle::new(NOTE_SIZE).color(Color::MUTED),
            );
        }
        self.draw_legend(&mut scene, right + 14.0, top);
        scene
    }

    fn legend_width(&self) -> f64 {
        if self.legend.is_empty() {
            return 0.0;
        }
        let widest = self
            .legend
            .iter()
            .map(|e| width(&e.label, LEGEND_SIZE, false).min(LEGEND_MAX_LABEL))
            .fold(0.0, f64::max);
        widest + 34.0
    }

    fn draw_legend(&self, scene: &mut Scene, x: f64, top: f64) {
        for (i, entry) in self.legend.iter().enumerate() {
            let y = top + 8.0 + i as f64 * LEGEND_ROW;
            match entry.stroke {
                Some(stroke) => scene.line((x, y), (x + 20.0, y), stroke),
                None if entry.marker.is_none() => scene.push(Item::Rect {
                    x: x + 4.0,
                    y: y - 5.0,
                    w: 12.0,
                    h: 10.0,
                    fill: Some(entry.color),
                    stroke: None,
                    tip: None,
                }),
                None => {}
            }
            if let Some(marker) = entry.marker {
                scene.push(Item::Point {
                    x: x + 10.0,
                    y,
                    r: 3.5,
                    marker,
                    fill: entry.color,
                    tip: None,
                });
            }
            let label = fit(&entry.label, LEGEND_SIZE, LEGEND_MAX_LABEL);
            let tip = (label != entry.label).then(|| entry.label.clone());
            scene.push(Item::Text {
                x: x + 26.0,
                y: y + 4.0,
                text: label,
                size: LEGEND_SIZE,
                anchor: Anchor::Start,
                color: Color::INK,
                bold: false,
                vertical: false,
                tip,
            });
        }
    }

    /// The data's extent on each axis (drawable values only).
    fn extents(&self) -> ((f64, f64), (f64, f64)) {
        let mut xe = Extent::new(self.x.kind);
        let mut ye = Extent::new(self.y.kind);
        for layer in &self.layers {
            match layer {
                Layer::Line { points, .. } | Layer::Points { points, .. } => {
                    for &(x, y) in points {
                        if xe.fits(x) && ye.fits(y) {
                            xe.add(x);
                            ye.add(y);
                        }
                    }
                }
                Layer::Band { lower, upper, .. } => {
                    for &(x, y) in lower.iter().chain(upper) {
                        xe.add(x);
                        ye.add(y);
                    }
                }
                Layer::Bars { bars, .. } => {
                    for b in bars {
                        xe.add(b.x0);
                        xe.add(b.x1);
                        ye.add(b.y);
                        ye.add(b.base);
                    }
                }
                Layer::VLine { x, .. } => xe.add(*x),
                Layer::HLine { y, .. } => ye.add(*y),
                Layer::Span { .. } | Layer::HSpan { .. } | Layer::Diagonal { .. } => {}
            }
        }
        (xe.get(), ye.get())
    }
}

struct Extent {
    kind: Kind,
    lo: f64,
    hi: f64,
}

impl Extent {
    fn new(kind: Kind) -> Extent {
        Extent {
            kind,
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
        }
    }

    fn fits(&self, v: f64) -> bool {
        v.is_finite() && (self.kind != Kind::Log || v > 0.0)
    }

    fn add(&mut self, v: f64) {
        if self.fits(v) {
            self.lo = self.lo.min(v);
            self.hi = self.hi.max(v);
        }
    }

    fn get(&self) -> (f64, f64) {
        if self.lo <= self.hi {
            (self.lo, self.hi)
        } else if self.kind == Kind::Log {
            (1.0, 10.0)
        } else {
            (0.0, 1.0)
        }
    }
}

/// `labels` counts the reference-line labels drawn so far: successive ones
/// are staggered in height so that lines close together stay readable.
fn draw_layer(
    scene: &mut Scene,
    layer: &Layer,
    frame: Frame,
    x: &Scale,
    y: &Scale,
    labels: &mut usize,
) {
    let inside = |px: f64, py: f64| {
        px >= frame.left - 0.5
            && px <= frame.right + 0.5
            && py >= frame.top - 0.5
            && py <= frame.bottom + 0.5
    };
    let clamp_y = |py: f64| py.clamp(frame.top, frame.bottom);
    match layer {
        Layer::Line {
            points,
            stroke,
            marker,
            tips,
        } => {
            let mut run: Vec<(f64, f64)> = Vec::new();
            let flush = |run: &mut Vec<(f64, f64)>, scene: &mut Scene| {
                if run.len() > 1 {
                    scene.push(Item::Path {
                        points: std::mem::take(run),
                        stroke: Some(*stroke),
                        fill: None,
                    });
                }
                run.clear();
            };
            for &(vx, vy) in points {
                if x.contains(vx) && y.contains(vy) {
                    run.push((x.map(vx), y.map(vy)));
                } else {
                    flush(&mut run, scene);
                }
            }
            flush(&mut run, scene);
            if let Some(marker) = marker {
                for (i, &(vx, vy)) in points.iter().enumerate() {
                    if x.contains(vx) && y.contains(vy) {
                        scene.push(Item::Point {
                            x: x.map(vx),
                            y: y.map(vy),
                            r: 3.0,
                            marker: *marker,
                            fill: stroke.color.with_alpha(1.0),
                            tip: tips.get(i).cloned(),
                        });
                    }
                }
            }
        }
        Layer::Band { lower, upper, fill } => {
            let mut polygon: Vec<(f64, f64)> = lower
                .iter()
                .filter(|p| x.contains(p.0) && p.1.is_finite())
                .map(|&(vx, vy)| (x.map(vx), clamp_y(y.map(vy))))
                .collect();
            polygon.extend(
                upper
                    .iter()
                    .rev()
                    .filter(|p| x.contains(p.0) && p.1.is_finite())
                    .map(|&(vx, vy)| (x.map(vx), clamp_y(y.map(vy)))),
            );
            if polygon.len() > 2 {
                scene.push(Item::Path {
                    points: polygon,
                    stroke: None,
                    fill: Some(*fill),
                });
            }
        }
        Layer::Points {
            points,
            marker,
            color,
            radius,
            tips,
        } => {
            for (i, &(vx, vy)) in points.iter().enumerate() {
                let (px, py) = (x.map(vx), y.map(vy));
                if x.contains(vx) && y.contains(vy) && inside(px, py) {
                    scene.push(Item::Point {
                        x: px,
                        y: py,
                        r: *radius,
                        marker: *marker,
                        fill: *color,
                        tip: tips.get(i).cloned(),
                    });
                }
            }
        }
        Layer::Bars { bars, fill, tips } => {
            for (i, b) in bars.iter().enumerate() {
                let (x0, x1) = (x.map(b.x0), x.map(b.x1));
                let (y0, y1) = (clamp_y(y.map(b.base)), clamp_y(y.map(b.y)));
                scene.push(Item::Rect {
                    x: x0.min(x1),
                    y: y0.min(y1),
                    w: (x1 - x0).abs(),
                    h: (y1 - y0).abs(),
                    fill: Some(*fill),
                    stroke: Some(Stroke::solid(Color::WHITE, 0.5)),
                    tip: tips.get(i).cloned(),
                });
            }
        }
        Layer::VLine {
            x: vx,
            stroke,
            label,
        } => {
            if x.contains(*vx) {
                let px = x.map(*vx);
                scene.line((px, frame.top), (px, frame.bottom), *stroke);
                if let Some(label) = label {
                    let anchor = if px > (frame.left + frame.right) / 2.0 {
                        Anchor::End
                    } else {
                        Anchor::Start
                    };
                    let dx = if anchor == Anchor::End { -4.0 } else { 4.0 };
                    let row = (*labels % 3) as f64;
                    *labels += 1;
                    scene.text(
                        px + dx,
                        frame.top + 12.0 + 13.0 * row,
                        label,
                        TextStyle::new(10.5).anchor(anchor).color(stroke.color),
                    );
                }
            }
        }
        Layer::HLine {
            y: vy,
            stroke,
            label,
        } => {
            if y.contains(*vy) {
                let py = y.map(*vy);
                scene.line((frame.left, py), (frame.right, py), *stroke);
                if let Some(label) = label {
                    scene.text(
                        frame.right - 4.0,
                        py - 4.0,
                        label,
                        TextStyle::new(10.5).anchor(Anchor::End).color(stroke.color),
                    );
                }
            }
        }
        Layer::Span { x0, x1, fill } => {
            let (a, b) = (
                x.map(x0.max(x.lo)).max(frame.left),
                x.map(x1.min(x.hi)).min(frame.right),
            );
            if b > a {
                scene.push(Item::Rect {
                    x: a,
                    y: frame.top,
                    w: b - a,
                    h: frame.bottom - frame.top,
                    fill: Some(*fill),
                    stroke: None,
                    tip: None,
                });
            }
        }
        Layer::HSpan { y0, y1, fill } => {
            let (a, b) = (clamp_y(y.map(*y0)), clamp_y(y.map(*y1)));
            if (b - a).abs() > 0.0 {
                scene.push(Item::Rect {
                    x: frame.left,
                    y: a.min(b),
                    w: frame.right - frame.left,
                    h: (b - a).abs(),
                    fill: Some(*fill),
                    stroke: None,
                    tip: None,
                });
            }
        }
        Layer::Diagonal { stroke } => {
            let lo = x.lo.max(y.lo);
            let hi = x.hi.min(y.hi);
            if hi > lo {
                scene.line((x.map(lo), y.map(lo)), (x.map(hi), y.map(hi)), *stroke);
            }
        }
    }
}

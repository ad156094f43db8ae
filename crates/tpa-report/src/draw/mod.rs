//! A small vector drawing layer: charts are built as a [`Scene`] of shapes,
//! which is then written as SVG ([`svg`]) or rasterised to PNG ([`png`]).
//!
//! Why not plotters' chart API: it cannot attach a tooltip (`<title>`) to a
//! shape, which the heatmap and scatter need for their values on hover, and
//! its SVG text layout is an estimate. Here text is measured with the bundled
//! font ([`text`]), every chart is one description, and plotters is kept for
//! what it does well: rasterising shapes and text into a PNG.

pub mod axis;
pub mod heatmap;
pub mod palette;
pub mod plot;
pub mod png;
pub mod scale;
pub mod svg;
pub mod text;

/// An sRGB colour with opacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Color {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    pub alpha: f64,
}

impl Color {
    /// `Color::hex(0x0072B2)`.
    pub const fn hex(rgb: u32) -> Color {
        Color {
            r: (rgb >> 16) as u8,
            g: (rgb >> 8) as u8,
            b: rgb as u8,
            alpha: 1.0,
        }
    }

    pub const fn with_alpha(self, alpha: f64) -> Color {
        Color { alpha, ..self }
    }

    /// `#rrggbb`.
    pub fn css(&self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
    }

    pub const BLACK: Color = Color::hex(0x000000);
    pub const WHITE: Color = Color::hex(0xffffff);
    /// Axis lines, tick labels.
    pub const INK: Color = Color::hex(0x333333);
    /// Grid lines.
    pub const GRID: Color = Color::hex(0xe4e4e4);
    /// Reference lines and secondary text.
    pub const MUTED: Color = Color::hex(0x777777);
}

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stroke {
    pub color: Color,
    pub width: f64,
    /// Dash and gap lengths; `None` for a solid line.
    pub dash: Option<(f64, f64)>,
}

impl Stroke {
    pub const fn solid(color: Color, width: f64) -> Stroke {
        Stroke {
            color,
            width,
            dash: None,
        }
    }

    pub const fn dashed(color: Color, width: f64) -> Stroke {
        Stroke {
            color,
            width,
            dash: Some((5.0, 3.0)),
        }
    }

    pub const fn dotted(color: Color, width: f64) -> Stroke {
        Stroke {
            color,
            width,
            dash: Some((1.5, 2.5)),
        }
    }
}

/// Where a text's anchor point sits on its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// Point markers, so that series differ by more than colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    TriangleDown,
}

impl Marker {
    /// The marker's outline as a polygon around (x, y), or `None` for a circle.
    pub fn polygon(self, x: f64, y: f64, r: f64) -> Option<Vec<(f64, f64)>> {
        let p = match self {
            Marker::Circle => return None,
            Marker::Square => {
                let h = r * 0.85;
                vec![
                    (x - h, y - h),
                    (x + h, y - h),
                    (x + h, y + h),
                    (x - h, y + h),
                ]
            }
            Marker::Triangle => vec![
                (x, y - r * 1.15),
                (x + r, y + r * 0.75),
                (x - r, y + r * 0.75),
            ],
            Marker::TriangleDown => vec![
                (x, y + r * 1.15),
                (x + r, y - r * 0.75),
                (x - r, y - r * 0.75),
            ],
            Marker::Diamond => vec![(x, y - r * 1.2), (x + r, y), (x, y + r * 1.2), (x - r, y)],
        };
        Some(p)
    }
}

/// One shape of a scene. Coordinates are pixels from the top left.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: Option<Color>,
        stroke: Option<Stroke>,
        /// Shown on hover (SVG `<title>`); not drawn in PNG.
        tip: Option<String>,
    },
    /// A polyline, or a polygon when `fill` is set.
    Path {
        points: Vec<(f64, f64)>,
        stroke: Option<Stroke>,
        fill: Option<Color>,
    },
    Point {
        x: f64,
        y: f64,
        r: f64,
        marker: Marker,
        fill: Color,
        tip: Option<String>,
    },
    Text {
        x: f64,
        y: f64,
        text: String,
        size: f64,
        anchor: Anchor,
        color: Color,
        bold: bool,
        /// Turned 90° counter-clockwise (a y-axis label).
        vertical: bool,
        tip: Option<String>,
    },
}

/// A picture: its size, a title for screen readers, and its shapes in
/// drawing order.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub width: f64,
    pub height: f64,
    pub title: String,
    pub items: Vec<Item>,
}

impl Scene {
    pub fn new(width: f64, height: f64, title: impl Into<String>) -> Scene {
        Scene {
            width,
            height,
            title: title.into(),
            items: Vec::new(),
        }
    }

    pub fn push(&mut self, item: Item) {
        self.items.push(item);
    }

    pub fn line(&mut self, from: (f64, f64), to: (f64, f64), stroke: Stroke) {
        self.push(Item::Path {
            points: vec![from, to],
            stroke: Some(stroke),
            fill: None,
        });
    }

    pub fn text(&mut self, x: f64, y: f64, text: impl Into<String>, style: TextStyle) {
        self.push(Item::Text {
            x,
            y,
            text: text.into(),
            size: style.size,
            anchor: style.anchor,
            color: style.color,
            bold: style.bold,
            vertical: style.vertical,
            tip: None,
        });
    }

    /// Appends `other`'s shapes shifted by (dx, dy): for composing panels.
    pub fn place(&mut self, other: Scene, dx: f64, dy: f64) {
        for mut item in other.items {
            item.translate(dx, dy);
            self.items.push(item);
        }
    }
}

impl Item {
    fn translate(&mut self, dx: f64, dy: f64) {
        match self {
            Item::Rect { x, y, .. } | Item::Point { x, y, .. } | Item::Text { x, y, .. } => {
                *x += dx;
                *y += dy;
            }
            Item::Path { points, .. } => {
                for (x, y) in points {
                    *x += dx;
                    *y += dy;
                }
            }
        }
    }
}

/// Text appearance, built from [`TextStyle::new`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextStyle {
    pub size: f64,
    pub anchor: Anchor,
    pub color: Color,
    pub bold: bool,
    pub vertical: bool,
}

impl TextStyle {
    pub const fn new(size: f64) -> TextStyle {
        TextStyle {
            size,
            anchor: Anchor::Start,
            color: Color::INK,
            bold: false,
            vertical: false,
        }
    }

    pub const fn anchor(self, anchor: Anchor) -> TextStyle {
        TextStyle { anchor, ..self }
    }

    pub const fn color(self, color: Color) -> TextStyle {
        TextStyle { color, ..self }
    }

    pub const fn bold(self) -> TextStyle {
        TextStyle { bold: true, ..self }
    }

    pub const fn vertical(self) -> TextStyle {
        TextStyle {
            vertical: true,
            ..self
        }
    }
}

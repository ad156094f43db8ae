//! A [`Scene`] as a standalone SVG document, which also inlines into HTML.

use std::fmt::Write;

use super::text::FONT_FAMILY;
use super::{Anchor, Color, Item, Scene, Stroke};

/// The scene as SVG text: valid XML, no external references, tooltips as
/// `<title>` children.
///
/// ```
/// use tpa_report::draw::{Scene, Item, Color, svg};
/// let mut scene = Scene::new(100.0, 50.0, "a & b");
/// scene.push(Item::Rect { x: 1.0, y: 2.0, w: 3.0, h: 4.0, fill: Some(Color::BLACK), stroke: None, tip: Some("x < 1".into()) });
/// let text = svg::render(&scene);
/// assert!(text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
/// assert!(text.contains("<title>a &amp; b</title>") && text.contains("<title>x &lt; 1</title>"));
/// ```
pub fn render(scene: &Scene) -> String {
    let mut out = String::with_capacity(4096 + scene.items.len() * 80);
    let (w, h) = (num(scene.width), num(scene.height));
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\" font-family=\"{FONT_FAMILY}\">\
         <title>{}</title><rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>",
        escape(&scene.title)
    );
    for item in &scene.items {
        item_svg(&mut out, item);
    }
    out.push_str("</svg>\n");
    out
}

fn item_svg(out: &mut String, item: &Item) {
    match item {
        Item::Rect {
            x,
            y,
            w,
            h,
            fill,
            stroke,
            tip,
        } => {
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"",
                num(*x),
                num(*y),
                num(w.max(0.0)),
                num(h.max(0.0))
            );
            fill_attrs(out, *fill);
            stroke_attrs(out, stroke.as_ref());
            close(out, "rect", tip.as_deref());
        }
        Item::Path {
            points,
            stroke,
            fill,
        } => {
            let tag = if fill.is_some() {
                "polygon"
            } else {
                "polyline"
            };
            let _ = write!(out, "<{tag} points=\"");
            for (i, (x, y)) in points.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{},{}", num(*x), num(*y));
            }
            out.push('"');
            fill_attrs(out, *fill);
            stroke_attrs(out, stroke.as_ref());
            out.push_str("/>");
        }
        Item::Point {
            x,
            y,
            r,
            marker,
            fill,
            tip,
        } => match marker.polygon(*x, *y, *r) {
            None => {
                let _ = write!(
                    out,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"{}\"",
                    num(*x),
                    num(*y),
                    num(*r)
                );
                fill_attrs(out, Some(*fill));
                close(out, "circle", tip.as_deref());
            }
            Some(points) => {
                out.push_str("<polygon points=\"");
                for (i, (x, y)) in points.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "{},{}", num(*x), num(*y));
                }
                out.push('"');
                fill_attrs(out, Some(*fill));
                close(out, "polygon", tip.as_deref());
            }
        },
        Item::Text {
            x,
            y,
            text,
            size,
            anchor,
            color,
            bold,
            vertical,
            tip,
        } => {
            let (x, y) = (num(*x), num(*y));
            let _ = write!(
                out,
                "<text x=\"{x}\" y=\"{y}\" font-size=\"{}\"",
                num(*size)
            );
            match anchor {
                Anchor::Start => {}
                Anchor::Middle => out.push_str(" text-anchor=\"middle\""),
                Anchor::End => out.push_str(" text-anchor=\"end\""),
            }
            if *color != Color::INK {
                fill_attrs(out, Some(*color));
            } else {
                out.push_str(" fill=\"#333\"");
            }
            if *bold {
                out.push_str(" font-weight=\"bold\"");
            }
            if *vertical {
                let _ = write!(out, " transform=\"rotate(-90 {x} {y})\"");
            }
            out.push('>');
            if let Some(tip) = tip {
                let _ = write!(out, "<title>{}</title>", escape(tip));
            }
            out.push_str(&escape(text));
            out.push_str("</text>");
        }
    }
}

fn close(out: &mut String, tag: &str, tip: Option<&str>) {
    match tip {
        Some(tip) => {
            let _ = write!(out, "><title>{}</title></{tag}>", escape(tip));
        }
        None => out.push_str("/>"),
    }
}

fn fill_attrs(out: &mut String, fill: Option<Color>) {
    match fill {
        None => out.push_str(" fill=\"none\""),
        Some(c) => {
            let _ = write!(out, " fill=\"{}\"", c.css());
            if c.alpha < 1.0 {
                let _ = write!(out, " fill-opacity=\"{}\"", num(c.alpha));
            }
        }
    }
}

fn stroke_attrs(out: &mut String, stroke: Option<&Stroke>) {
    if let Some(s) = stroke {
        let _ = write!(
            out,
            " stroke=\"{}\" stroke-width=\"{}\"",
            s.color.css(),
            num(s.width)
        );
        if s.color.alpha < 1.0 {
            let _ = write!(out, " stroke-opacity=\"{}\"", num(s.color.alpha));
        }
        if let Some((dash, gap)) = s.dash {
            let _ = write!(out, " stroke-dasharray=\"{},{}\"", num(dash), num(gap));
        }
        out.push_str(" stroke-linejoin=\"round\"");
    }
}

/// A coordinate with at most one decimal (a tenth of a pixel is invisible,
/// and short numbers keep pages small).
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0".to_owned();
    }
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Characters XML 1.0 forbids.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(-0.04), "0");
        assert_eq!(num(f64::NAN), "0");
    }
}

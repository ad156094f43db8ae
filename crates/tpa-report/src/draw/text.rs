//! Text measured with the bundled font, so that labels, legends and margins
//! are laid out to fit in SVG (which names the same font first) and in PNG
//! (which is drawn with it).

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef};

/// DejaVu Sans, bundled so that drawing needs no system fonts (Bitstream
/// Vera licence: assets/fonts/LICENSE-DejaVu.txt).
pub static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The CSS font stack of every SVG: the bundled font first, then fonts of
/// nearly the same widths.
pub const FONT_FAMILY: &str = "DejaVu Sans, Verdana, Bitstream Vera Sans, sans-serif";

fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
}

/// Width in pixels of `text` at font size `size` (the em size, as CSS's
/// `font-size`). Bold text is about 10% wider.
///
/// ```
/// use tpa_report::draw::text::width;
/// let w = width("layer", 12.0, false);
/// assert!(w > 25.0 && w < 40.0, "{w}");
/// assert!(width("layer 10", 12.0, false) > w);
/// ```
pub fn width(text: &str, size: f64, bold: bool) -> f64 {
    let em = match font() {
        Some(font) => {
            let units = font.units_per_em().unwrap_or(2048.0) as f64;
            let mut total = 0.0;
            let mut previous = None;
            for c in text.chars() {
                let id = font.glyph_id(c);
                if let Some(p) = previous {
                    total += font.kern_unscaled(p, id) as f64;
                }
                total += font.h_advance_unscaled(id) as f64;
                previous = Some(id);
            }
            total / units
        }
        // Cannot happen with the bundled font; an average width keeps layout sane.
        None => text.chars().count() as f64 * 0.6,
    };
    em * size * if bold { 1.1 } else { 1.0 }
}

/// `text`, shortened with "…" in the middle to fit `max_width` pixels; the
/// start and the end of a tensor name say the most.
///
/// ```
/// use tpa_report::draw::text::{fit, width};
/// let name = "model.layers.31.self_attn.q_proj.weight";
/// let short = fit(name, 12.0, 150.0);
/// assert!(short.contains('…') && width(&short, 12.0, false) <= 150.0);
/// assert!(short.ends_with("weight"));
/// assert_eq!(fit("q_proj", 12.0, 150.0), "q_proj");
/// ```
pub fn fit(text: &str, size: f64, max_width: f64) -> String {
    if width(text, size, false) <= max_width {
        return text.to_owned();
    }
    let chars: Vec<char> = text.chars().collect();
    // Keep more of the end (the tensor's own name) than of the start.
    let mut keep = chars.len();
    while keep > 1 {
        keep -= 1;
        let tail = (keep * 3).div_ceil(5);
        let head = keep - tail;
        let candidate: String = chars[..head]
            .iter()
            .chain(std::iter::once(&'…'))
            .chain(&chars[chars.len() - tail..])
            .collect();
        if width(&candidate, size, false) <= max_width {
            return candidate;
        }
    }
    "…".to_owned()
}

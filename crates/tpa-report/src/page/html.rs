//! Building blocks of the HTML page. The page is well-formed XML as well
//! as HTML5 (every element closed, no named entities, the script in CDATA),
//! so that tests and tools can parse it strictly.

use std::fmt::Write;

use crate::charts::Chart;

pub use crate::draw::svg::escape;

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("script.js");

/// A page under construction: sections in order, with the navigation bar
/// built from their titles.
pub struct Page {
    title: String,
    subtitle: String,
    sections: Vec<(String, String, String)>,
}

impl Page {
    pub fn new(title: impl Into<String>, subtitle: impl Into<String>) -> Page {
        Page {
            title: title.into(),
            subtitle: subtitle.into(),
            sections: Vec::new(),
        }
    }

    /// Adds a section with anchor `id`.
    pub fn section(&mut self, id: &str, title: &str, body: String) {
        self.sections.push((id.to_owned(), title.to_owned(), body));
    }

    /// The whole document.
    pub fn finish(self) -> String {
        let mut out = String::with_capacity(
            64 * 1024 + self.sections.iter().map(|s| s.2.len()).sum::<usize>(),
        );
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\
             <meta name=\"generator\" content=\"tpa-report {}\"/>\
             <title>{}</title><style>{STYLE}</style></head><body>\
             <header><h1>{}</h1><p>{}</p></header><nav>",
            env!("CARGO_PKG_VERSION"),
            escape(&self.title),
            escape(&self.title),
            escape(&self.subtitle)
        );
        for (id, title, _) in &self.sections {
            let _ = write!(out, "<a href=\"#{id}\">{}</a>", escape(title));
        }
        out.push_str("</nav><main>");
        for (id, title, body) in &self.sections {
            let _ = write!(
                out,
                "<section id=\"{id}\"><h2>{}</h2>{body}</section>",
                escape(title)
            );
        }
        let _ = write!(
            out,
            "</main><script>//<![CDATA[\n{SCRIPT}//]]></script></body></html>\n"
        );
        out
    }
}

/// A paragraph of muted text.
pub fn note(text: &str) -> String {
    format!("<p class=\"note\">{}</p>", escape(text))
}

/// Label–value pairs.
pub fn facts(pairs: &[(String, String)]) -> String {
    let mut out = String::from("<dl class=\"facts\">");
    for (k, v) in pairs {
        let _ = write!(
            out,
            "<div><dt>{}</dt><dd>{}</dd></div>",
            escape(k),
            escape(v)
        );
    }
    out.push_str("</dl>");
    out
}

/// A chart inline, with a caption and a link to its standalone file (none
/// for an empty caption, as in the spectrum cards).
pub fn figure(chart: &Chart, caption: &str) -> String {
    let (svg, name) = (&chart.svg, &chart.name);
    if caption.is_empty() {
        return format!("<figure id=\"fig-{name}\">{svg}</figure>");
    }
    format!(
        "<figure id=\"fig-{name}\">{svg}<figcaption>{} <a href=\"charts/{name}.svg\">SVG</a></figcaption></figure>",
        escape(caption)
    )
}

/// One table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Td {
    Text(String),
    /// A number: shown as text, sorted by value.
    Num(Option<f64>, String),
    /// Markup as it is (badges, links).
    Html(String),
    /// A long name, shortened, complete in its tooltip.
    Name(String),
}

impl Td {
    pub fn num(value: Option<f64>) -> Td {
        Td::Num(
            value,
            value.map_or_else(|| "–".to_owned(), crate::draw::scale::format_number),
        )
    }

    pub fn count(value: Option<u64>) -> Td {
        Td::Num(
            value.map(|v| v as f64),
            value.map_or("–".into(), group_digits),
        )
    }
}

/// A sortable table; `class_of` gives a row class (e.g. its worst alert).
pub fn table(headers: &[&str], rows: &[(Option<&str>, Vec<Td>)], sortable: bool) -> String {
    let mut out = String::with_capacity(256 + rows.len() * 200);
    let _ = write!(
        out,
        "<div class=\"scroll\"><table{}><thead><tr>",
        if sortable { " class=\"sortable\"" } else { "" }
    );
    let numeric: Vec<bool> = (0..headers.len())
        .map(|c| rows.iter().any(|r| matches!(r.1.get(c), Some(Td::Num(..)))))
        .collect();
    for (h, n) in headers.iter().zip(&numeric) {
        let _ = write!(
            out,
            "<th{}>{}</th>",
            if *n { " class=\"n\"" } else { "" },
            escape(h)
        );
    }
    out.push_str("</tr></thead><tbody>");
    for (class, cells) in rows {
        match class {
            Some(c) => {
                let _ = write!(out, "<tr class=\"{c}\">");
            }
            None => out.push_str("<tr>"),
        }
        for cell in cells {
            match cell {
                Td::Text(t) => {
                    let _ = write!(out, "<td>{}</td>", escape(t));
                }
                Td::Num(v, t) => {
                    let data = v
                        .filter(|v| v.is_finite())
                        .map_or(String::new(), |v| v.to_string());
                    let _ = write!(out, "<td class=\"n\" data-v=\"{data}\">{}</td>", escape(t));
                }
                Td::Html(h) => {
                    let _ = write!(out, "<td>{h}</td>");
                }
                Td::Name(name) => {
                    let short = crate::draw::text::fit(name, 12.0, 340.0);
                    let _ = write!(
                        out,
                        "<td class=\"name\" title=\"{}\">{}</td>",
                        escape(name),
                        escape(&short)
                    );
                }
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A severity badge.
pub fn badge(severity: &str) -> String {
    format!("<span class=\"badge {severity}\">{severity}</span>")
}

/// 1234567 → "1,234,567".
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in binary units: "1.9 GiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Several panels of which one is shown at a time when scripts run (a
/// select chooses), all of them otherwise.
pub fn switch(label: &str, panels: &[(String, String, String)]) -> String {
    let mut out = format!(
        "<div class=\"switch\"><label>{} <select hidden=\"hidden\">",
        escape(label)
    );
    for (key, title, _) in panels {
        let _ = write!(out, "<option value=\"{key}\">{}</option>", escape(title));
    }
    out.push_str("</select></label>");
    for (key, _, body) in panels {
        let _ = write!(out, "<div class=\"panel\" data-key=\"{key}\">{body}</div>");
    }
    out.push_str("</div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_bytes() {
        assert_eq!(group_digits(22_713_216), "22,713,216");
        assert_eq!(group_digits(999), "999");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12), "12 B");
    }
}

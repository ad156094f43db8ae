//! `report.md`: the summary for GitHub (tables and links to the charts).

use std::fmt::Write;

/// A Markdown document under construction.
#[derive(Default)]
pub struct Markdown(String);

impl Markdown {
    pub fn heading(&mut self, level: usize, text: &str) {
        let _ = write!(self.0, "\n{} {}\n\n", "#".repeat(level), text);
    }

    pub fn paragraph(&mut self, text: &str) {
        let _ = write!(self.0, "{}\n\n", text.trim());
    }

    /// A table; cells are escaped.
    pub fn table(&mut self, headers: &[&str], rows: &[Vec<String>]) {
        let line = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        self.0.push_str(&line(&headers));
        let _ = writeln!(self.0, "|{}", "---|".repeat(headers.len()));
        for row in rows {
            self.0.push_str(&line(row));
        }
        self.0.push('\n');
    }

    /// Label–value pairs as a two-column table.
    pub fn facts(&mut self, pairs: &[(String, String)]) {
        let rows: Vec<Vec<String>> = pairs
            .iter()
            .map(|(k, v)| vec![k.clone(), v.clone()])
            .collect();
        self.table(&["", ""], &rows);
    }

    /// An image of a chart.
    pub fn chart(&mut self, name: &str, alt: &str) {
        let _ = write!(self.0, "![{}](charts/{name}.svg)\n\n", cell(alt));
    }

    pub fn finish(self) -> String {
        self.0.trim_start().to_owned()
    }
}

/// A table cell: pipes escaped, line breaks flattened.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Text as inline code (tensor names).
pub fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'"))
}

//! Rendering records into the three formats.

use std::io;

use serde::ser::{SerializeMap, SerializeSeq, Serializer};

use super::Sink;
use crate::records::{Cell, Record};

pub(super) fn csv<R: Record>(out: Sink<'_>, rows: &[R]) -> io::Result<()> {
    let mut writer = ::csv::Writer::from_writer(out);
    match rows.first() {
        Some(row) => writer.write_record(row.columns())?,
        None => writer.write_record(R::COLUMNS)?,
    }
    let mut fields: Vec<String> = Vec::with_capacity(R::COLUMNS.len());
    for row in rows {
        fields.clear();
        fields.extend(row.cells().iter().map(csv_field));
        writer.write_record(&fields)?;
    }
    writer.flush()
}

fn csv_field(cell: &Cell) -> String {
    match cell {
        Cell::Empty => String::new(),
        Cell::Text(s) => s.clone(),
        Cell::UInt(v) => v.to_string(),
        Cell::Float(v) if v.is_finite() => ryu::Buffer::new().format_finite(*v).to_owned(),
        Cell::Float(_) => String::new(),
        Cell::List(items) => {
            let items: Vec<String> = items.iter().map(u64::to_string).collect();
            format!("[{}]", items.join(", "))
        }
    }
}

pub(super) fn jsonl<R: Record>(out: Sink<'_>, rows: &[R]) -> io::Result<()> {
    for row in rows {
        serde_json::to_writer(&mut *out, &JsonRow(row))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

pub(super) fn json<R: Record>(
    out: Sink<'_>,
    rows: &[R],
    rows_key: &str,
    summary: Option<&serde_json::Value>,
) -> io::Result<()> {
    let mut ser = serde_json::Serializer::pretty(&mut *out);
    let mut map = ser.serialize_map(None)?;
    if let Some(summary) = summary {
        map.serialize_entry("summary", summary)?;
    }
    map.serialize_entry(rows_key, &JsonRows(rows))?;
    SerializeMap::end(map)?;
    out.write_all(b"\n")
}

struct JsonRows<'a, R>(&'a [R]);

impl<R: Record> serde::Serialize for JsonRows<'_, R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for row in self.0 {
            seq.serialize_element(&JsonRow(row))?;
        }
        seq.end()
    }
}

/// A record as a JSON object with keys in column order.
struct JsonRow<'a, R>(&'a R);

impl<R: Record> serde::Serialize for JsonRow<'_, R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let cells = self.0.cells();
        let columns = self.0.columns();
        let mut map = serializer.serialize_map(Some(cells.len()))?;
        for (column, cell) in columns.iter().zip(&cells) {
            match cell {
                Cell::Empty => map.serialize_entry(column, &())?,
                Cell::Text(s) => map.serialize_entry(column, s)?,
                Cell::UInt(v) => map.serialize_entry(column, v)?,
                Cell::Float(v) if v.is_finite() => map.serialize_entry(column, v)?,
                Cell::Float(_) => map.serialize_entry(column, &())?,
                Cell::List(items) => map.serialize_entry(column, items)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Row(Vec<Cell>);

    impl Record for Row {
        const COLUMNS: &'static [&'static str] = &["a", "b", "c", "d"];
        fn cells(&self) -> Vec<Cell> {
            self.0.clone()
        }
    }

    fn rows() -> Vec<Row> {
        vec![
            Row(vec![
                Cell::text("x,y"),
                Cell::Float(1e-10),
                Cell::List(vec![2, 3]),
                Cell::Empty,
            ]),
            Row(vec![
                Cell::text("z"),
                Cell::Float(f64::NAN),
                Cell::UInt(7),
                Cell::Float(0.5),
            ]),
        ]
    }

    #[test]
    fn csv_quotes_and_leaves_missing_values_empty() {
        let mut out = Vec::new();
        csv(&mut out, &rows()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,b,c,d\n\"x,y\",1e-10,\"[2, 3]\",\nz,,7,0.5\n"
        );
    }

    #[test]
    fn jsonl_keeps_column_order_and_uses_null() {
        let mut out = Vec::new();
        jsonl(&mut out, &rows()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":\"x,y\",\"b\":1e-10,\"c\":[2,3],\"d\":null}\n{\"a\":\"z\",\"b\":null,\"c\":7,\"d\":0.5}\n"
        );
    }
}

//! An append-only record of finished work, so that an interrupted run can
//! resume where it stopped.
//!
//! The file is JSON Lines: a header object (what the run was: model, options)
//! and then one record per finished item, each flushed as soon as it is
//! written. A crash or Ctrl-C loses at most the items in flight; a line cut
//! short by the crash is ignored on reading.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::output_error;
use crate::error::Result;

/// An open journal being appended to.
pub struct Journal {
    path: PathBuf,
    file: File,
}

/// What a journal held when it was read back.
pub struct Resumed<T> {
    pub header: serde_json::Value,
    pub records: Vec<T>,
}

impl Journal {
    /// Starts a new journal at `path` (replacing any old one) with `header`.
    pub fn create(path: &Path, header: &serde_json::Value) -> Result<Journal> {
        let file = File::create(path).map_err(|e| output_error(path, e))?;
        let mut journal = Journal {
            path: path.to_owned(),
            file,
        };
        journal.append(header)?;
        Ok(journal)
    }

    /// Continues an existing journal: drops a cut-short last line, then appends.
    pub fn reopen(path: &Path, valid_len: u64) -> Result<Journal> {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| output_error(path, e))?;
        file.set_len(valid_len).map_err(|e| output_error(path, e))?;
        let mut journal = Journal {
            path: path.to_owned(),
            file,
        };
        use std::io::Seek;
        journal
            .file
            .seek(std::io::SeekFrom::End(0))
            .map_err(|e| output_error(path, e))?;
        Ok(journal)
    }

    /// Appends one record as a line and flushes it to the file.
    pub fn append(&mut self, record: &impl Serialize) -> Result<()> {
        let mut line = serde_json::to_vec(record).map_err(|e| output_error(&self.path, e))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .map_err(|e| output_error(&self.path, e))
    }

    /// Reads a journal back: its header, the records that parse, and the
    /// length of the valid prefix (for [`Journal::reopen`]). `Ok(None)` when
    /// there is no journal at `path`.
    pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Option<(Resumed<T>, u64)>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(output_error(path, e)),
        };
        let mut reader = BufReader::new(file);
        let mut header = None;
        let mut records = Vec::new();
        let mut valid_len = 0u64;
        let mut line = String::new();
        loop {
            line.clear();
            let read = reader
                .read_line(&mut line)
                .map_err(|e| output_error(path, e))?;
            if read == 0 || !line.ends_with('\n') {
                break; // end of file, or a line the crash cut short
            }
            if header.is_none() {
                match serde_json::from_str(&line) {
                    Ok(value) => header = Some(value),
                    Err(_) => break,
                }
            } else {
                match serde_json::from_str(&line) {
                    Ok(record) => records.push(record),
                    Err(_) => break,
                }
            }
            valid_len += read as u64;
        }
        Ok(header.map(|header| (Resumed { header, records }, valid_len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_short_line_is_dropped_and_appending_continues() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.journal");
        let mut journal = Journal::create(&path, &serde_json::json!({"run": 1})).unwrap();
        journal.append(&vec![1, 2]).unwrap();
        drop(journal);
        // A crash in the middle of the next line:
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"[3, 4")
            .unwrap();

        let (resumed, valid) = Journal::read::<Vec<i32>>(&path).unwrap().unwrap();
        assert_eq!(resumed.header["run"], 1);
        assert_eq!(resumed.records, [vec![1, 2]]);
        let mut journal = Journal::reopen(&path, valid).unwrap();
        journal.append(&vec![5]).unwrap();
        let (resumed, _) = Journal::read::<Vec<i32>>(&path).unwrap().unwrap();
        assert_eq!(resumed.records, [vec![1, 2], vec![5]]);
    }

    #[test]
    fn no_journal_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            Journal::read::<i32>(&dir.path().join("missing"))
                .unwrap()
                .is_none()
        );
    }
}

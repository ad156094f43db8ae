//! Write-then-rename, so that no reader ever sees half a file.

use std::io::{BufWriter, Write};
use std::path::Path;

use super::{Sink, output_error};
use crate::error::Result;

/// Writes a file through `write` into a temporary file beside `path`, syncs
/// it, then renames it over `path`. On any error (a full disk included) the
/// temporary file is removed and `path` is left as it was. Missing parent
/// directories are created.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("out.txt");
/// tpa_core::writers::write_atomically(&path, |w| w.write_all(b"done\n"))?;
/// assert_eq!(std::fs::read_to_string(&path)?, "done\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(Sink<'_>) -> std::io::Result<()>,
) -> Result<()> {
    let dir = prepare_output(path)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| output_error(path, e))?;
    let mut out = BufWriter::with_capacity(1 << 16, temp);
    write(&mut out).map_err(|e| output_error(path, e))?;
    out.flush().map_err(|e| output_error(path, e))?;
    let temp = out
        .into_inner()
        .map_err(|e| output_error(path, e.error()))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| output_error(path, e))?;
    publish(temp, path)
}

/// Gives a finished temporary file the permissions of an ordinary new file
/// (temporary files are created private, 0600) and renames it into place.
fn publish(temp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let readable = std::fs::Permissions::from_mode(0o644);
        temp.as_file()
            .set_permissions(readable)
            .map_err(|e| output_error(path, e))?;
    }
    temp.persist(path)
        .map_err(|e| output_error(path, e.error))?;
    Ok(())
}

/// Checks that `path` can take an output file and creates its missing parent
/// directories; returns the parent. Tools call this before long work, so that
/// a bad `--out` fails at once rather than after the analysis.
pub fn prepare_output(path: &Path) -> Result<&Path> {
    if path.is_dir() {
        return Err(output_error(path, "it is a directory; give a file name"));
    }
    if path.file_name().is_none() {
        return Err(output_error(path, "no file name"));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| output_error(path, format!("creating {}: {e}", dir.display())))?;
    Ok(dir)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn outputs_are_readable_by_others_like_ordinary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        super::write_atomically(&path, |w| w.write_all(b"x\n")).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }
}

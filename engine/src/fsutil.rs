//! Writing files safely: a temporary file beside the target, renamed into place, so a
//! failed or interrupted write leaves nothing behind and never a half-written file.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Whether an existing file may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    Never,
    Allowed,
}

/// Writes `path` atomically with what `write` puts into the temporary file.
pub fn write_atomic(
    path: &Path,
    overwrite: Overwrite,
    write: impl FnOnce(&mut std::io::BufWriter<&mut std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let write_err = |error| Error::Write {
        path: path.to_path_buf(),
        error,
    };
    if overwrite == Overwrite::Never && path.exists() {
        return Err(Error::invalid(
            path,
            "already exists (use --force to overwrite)",
        ));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".timbrel-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(write_err)?;
    {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut out).map_err(write_err)?;
        out.flush().map_err(write_err)?;
    }
    match overwrite {
        Overwrite::Allowed => tmp.persist(path).map(|_| ()),
        // No clobbering even if the file appeared while we were writing.
        Overwrite::Never => tmp.persist_noclobber(path).map(|_| ()),
    }
    .map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            Error::invalid(path, "already exists (use --force to overwrite)")
        } else {
            write_err(e.error)
        }
    })
}

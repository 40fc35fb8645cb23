//! NumPy `.npy` files of one `f32` matrix `[rows, cols]` (format 1.0, little-endian,
//! C order): how embeddings leave and enter Timbrel, so other tools can edit them.

use std::path::Path;

use crate::error::{Error, Result, read_bounded};
use crate::fsutil::{Overwrite, write_atomic};

const MAGIC: &[u8] = b"\x93NUMPY";
/// An embedding of a 10-minute note is 19k × 16 floats (1.2 MB); 256 MB is far beyond
/// any embedding and still a bounded read.
const MAX_BYTES: u64 = 256 << 20;

/// Writes `data` (`rows × cols`, row-major) as `path`, atomically.
pub fn write(
    path: &Path,
    data: &[f32],
    rows: usize,
    cols: usize,
    overwrite: Overwrite,
) -> Result<()> {
    if data.len() != rows * cols {
        return Err(Error::invalid(
            path,
            format!("{} values do not make a {rows} × {cols} matrix", data.len()),
        ));
    }
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + header length (2) + header + '\n', a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let header_len =
        u16::try_from(header.len()).map_err(|_| Error::invalid(path, "npy header too long"))?;
    write_atomic(path, overwrite, |out| {
        use std::io::Write;
        out.write_all(MAGIC)?;
        out.write_all(&[1, 0])?;
        out.write_all(&header_len.to_le_bytes())?;
        out.write_all(header.as_bytes())?;
        for v in data {
            out.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    })
}

/// Reads a 2-D `f32` matrix: `(data, rows, cols)`. `float64` files are accepted and
/// converted; anything else (other dtypes, Fortran order, other ranks) is an error
/// naming the file.
pub fn read(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let bytes = read_bounded(path, MAX_BYTES)?;
    let bad = |what: &str| Error::invalid(path, format!("not a 2-D float .npy file ({what})"));
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("no NUMPY magic"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(bad("unknown version")),
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("truncated header"))?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = field("descr").ok_or_else(|| bad("no descr"))?;
    let width = if descr.starts_with("'<f4'") {
        4
    } else if descr.starts_with("'<f8'") {
        8
    } else {
        return Err(bad(&format!(
            "dtype {}",
            descr.split(',').next().unwrap_or(descr)
        )));
    };
    if !field("fortran_order").is_some_and(|f| f.starts_with("False")) {
        return Err(bad("Fortran order"));
    }
    let shape = field("shape")
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("unreadable shape"))?;
    let [rows, cols] = dims[..] else {
        return Err(bad(&format!("{} dimensions", dims.len())));
    };
    let body = &bytes[start + header_len..];
    let count = rows
        .checked_mul(cols)
        .ok_or_else(|| bad("shape too large"))?;
    if body.len() != count * width {
        return Err(bad(&format!(
            "{} data bytes for shape ({rows}, {cols})",
            body.len()
        )));
    }
    let data: Vec<f32> = if width == 4 {
        body.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    } else {
        body.chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect()
    };
    if data.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid(
            path,
            "the matrix holds NaN or infinite values",
        ));
    }
    Ok((data, rows, cols))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.npy");
        let data: Vec<f32> = (0..48).map(|i| i as f32 * 0.5 - 3.0).collect();
        write(&path, &data, 3, 16, Overwrite::Never).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // The data starts on a 64-byte boundary, as numpy writes it.
        assert_eq!((bytes.len() - 48 * 4) % 64, 0);
        assert_eq!(read(&path).unwrap(), (data.clone(), 3, 16));
        assert!(write(&path, &data, 3, 16, Overwrite::Never).is_err());

        let junk = dir.path().join("junk.npy");
        std::fs::write(&junk, b"hello").unwrap();
        let err = read(&junk).unwrap_err().to_string();
        assert!(err.contains("junk.npy") && err.contains("magic"), "{err}");

        // Truncated data.
        let short = dir.path().join("short.npy");
        std::fs::write(&short, &bytes[..bytes.len() - 4]).unwrap();
        assert!(read(&short).unwrap_err().to_string().contains("data bytes"));
    }

    #[test]
    fn reads_what_numpy_writes() {
        // np.save of np.arange(6, dtype=np.float64).reshape(2, 3)
        let mut bytes = b"\x93NUMPY\x01\x00v\x00".to_vec();
        let mut header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }".to_string();
        header.push_str(&" ".repeat(128 - 10 - header.len() - 1));
        header.push('\n');
        bytes.extend_from_slice(header.as_bytes());
        for i in 0..6 {
            bytes.extend_from_slice(&(i as f64).to_le_bytes());
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("np.npy");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path).unwrap(), (vec![0., 1., 2., 3., 4., 5.], 2, 3));
    }
}

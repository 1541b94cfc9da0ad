//! The `.npy` format (version 1.0, little-endian f32, C order): what numpy reads, so the
//! vectors tweetsim exports and stores open directly in Python.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// Every header tweetsim writes is this long, whatever the shape, so a file written in
/// pieces can have its row count fixed up in place at the end.
pub const HEADER_LEN: usize = 128;

/// Writes a `rows × cols` f32 matrix to `w` as `.npy`.
pub fn write(w: &mut impl Write, data: &[f32], rows: usize, cols: usize) -> std::io::Result<()> {
    assert_eq!(
        data.len(),
        rows * cols,
        "matrix data does not match its shape"
    );
    w.write_all(&header(rows, cols))?;
    write_rows(w, data)
}

/// Writes matrix data (no header) in little-endian order.
pub fn write_rows(w: &mut impl Write, data: &[f32]) -> std::io::Result<()> {
    for chunk in data.chunks(1 << 14) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
        w.write_all(&bytes)?;
    }
    Ok(())
}

/// The 1.0 header, padded to [`HEADER_LEN`] bytes (a multiple of 64, as numpy aligns).
pub fn header(rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    // The dict is at most ~90 bytes even for 20-digit dimensions.
    let pad = HEADER_LEN - unpadded;
    let len = dict.len() + pad + 1;
    let mut h = Vec::with_capacity(unpadded + pad);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&[1, 0]);
    h.extend_from_slice(&(len as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.extend(std::iter::repeat_n(b' ', pad));
    h.push(b'\n');
    h
}

/// Reads a 2-D little-endian f32 `.npy` file: `(data, rows, cols)`.
pub fn read(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes).map_err(|msg| {
        Error::Invalid(format!(
            "{}: not a 2-D float32 .npy file: {msg}",
            path.display()
        ))
    })
}

/// Float32 rows of a `.npy` file, read into memory or mapped from it.
pub type Vectors = crate::fsutil::Contents<f32>;

/// Maps a 2-D float32 `.npy` file: `(vectors, rows, cols)`, checked like [`read`]; decoded into
/// memory where the floats cannot be read in place.
pub fn map(path: &Path) -> Result<(Vectors, usize, usize)> {
    let map = crate::fsutil::map_immutable(path).map_err(|e| Error::io(path, e))?;
    let bad = |msg: String| {
        Error::Invalid(format!(
            "{}: not a 2-D float32 .npy file: {msg}",
            path.display()
        ))
    };
    let (rows, cols, offset) = parse_header(&map).map_err(bad)?;
    let vectors = Vectors::of(map, offset, rows * cols, |c| {
        f32::from_le_bytes(c.try_into().expect("4 bytes"))
    });
    Ok((vectors, rows, cols))
}

fn parse(bytes: &[u8]) -> std::result::Result<(Vec<f32>, usize, usize), String> {
    let (rows, cols, offset) = parse_header(bytes)?;
    let values = bytes[offset..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((values, rows, cols))
}

/// `(rows, cols, data offset)`, after checking the data is exactly rows × cols floats.
fn parse_header(bytes: &[u8]) -> std::result::Result<(usize, usize, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("missing the \\x93NUMPY magic".into());
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported version {v}")),
    };
    let dict = bytes
        .get(start..start + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated header")?;
    if !dict.contains("'descr': '<f4'") {
        return Err(format!("dtype is not '<f4' in {}", dict.trim()));
    }
    if dict.contains("'fortran_order': True") {
        return Err("Fortran order is not supported".into());
    }
    let shape = dict
        .split_once("'shape': (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(s, _)| s)
        .ok_or("no shape in header")?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("bad shape ({shape})")))
        .collect::<std::result::Result<_, _>>()?;
    let [rows, cols] = dims[..] else {
        return Err(format!("shape ({shape}) is not 2-D"));
    };
    let data = &bytes[start + hlen..];
    let need = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(4))
        .ok_or_else(|| format!("shape ({rows}, {cols}) is too large"))?;
    if data.len() != need {
        return Err(format!(
            "shape ({rows}, {cols}) needs {need} data bytes, file has {}",
            data.len()
        ));
    }
    Ok((rows, cols, start + hlen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_aligns() {
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        let mut buf = Vec::new();
        write(&mut buf, &data, 3, 4).unwrap();
        let hlen = u16::from_le_bytes([buf[8], buf[9]]) as usize;
        assert_eq!(10 + hlen, HEADER_LEN);
        assert_eq!(header(usize::MAX, usize::MAX).len(), HEADER_LEN);
        assert_eq!(parse(&buf).unwrap(), (data.clone(), 3, 4));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.npy");
        std::fs::write(&path, &buf).unwrap();
        let (mapped, rows, cols) = map(&path).unwrap();
        assert!(matches!(mapped, Vectors::Mapped { .. }));
        assert_eq!((&*mapped, rows, cols), (&data[..], 3, 4));
    }

    #[test]
    fn truncated_or_foreign_files_are_refused() {
        let mut buf = Vec::new();
        write(&mut buf, &[1.0, 2.0], 1, 2).unwrap();
        assert!(parse(&buf[..buf.len() - 1])
            .unwrap_err()
            .contains("needs 8 data bytes"));
        assert!(parse(b"PK\x03\x04").unwrap_err().contains("magic"));
        let at = buf.windows(3).position(|w| w == b"<f4").unwrap();
        buf[at + 2] = b'8';
        assert!(parse(&buf).unwrap_err().contains("dtype"));
    }
}

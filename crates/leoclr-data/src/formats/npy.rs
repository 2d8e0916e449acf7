//! NumPy `.npy` (format 1.0) for float32 matrices: what `leoclr embed` writes and `leoclr
//! retrieve` reads, and what `numpy.load` opens. Rows are written as they come, so an embedding
//! of any number of images streams to disk.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";

/// The header of a little-endian float32 C-order array of `shape`, padded to 64 bytes.
pub fn header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = MAGIC.len() + 2 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out
}

/// Writes a `[rows, cols]` float32 matrix row block by row block; [`NpyWriter::finish`] checks
/// that exactly `rows` rows came.
pub struct NpyWriter {
    path: PathBuf,
    out: BufWriter<File>,
    cols: usize,
    rows: usize,
    rows_left: usize,
}

impl NpyWriter {
    pub fn create(path: &Path, rows: usize, cols: usize) -> Result<Self> {
        let file = File::create(path).map_err(|e| DataError::io(path, e))?;
        let mut out = BufWriter::new(file);
        out.write_all(&header(&[rows, cols]))
            .map_err(|e| DataError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            cols,
            rows,
            rows_left: rows,
        })
    }

    /// Appends whole rows (`values.len()` a multiple of the columns).
    pub fn write_rows(&mut self, values: &[f32]) -> Result<()> {
        let rows = values.len() / self.cols.max(1);
        if !values.len().is_multiple_of(self.cols.max(1)) || rows > self.rows_left {
            return Err(DataError::format(
                &self.path,
                format!(
                    "{} values are not whole rows of {} within the {} rows left",
                    values.len(),
                    self.cols,
                    self.rows_left
                ),
            ));
        }
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.out
            .write_all(&bytes)
            .map_err(|e| DataError::io(&self.path, e))?;
        self.rows_left -= rows;
        Ok(())
    }

    /// Ends a matrix that got `rows` rows, fewer than announced (images left out): the header is
    /// rewritten in place for them, padded to its old length.
    pub fn finish_with(mut self, rows: usize) -> Result<()> {
        let written = self.rows - self.rows_left;
        if rows != written {
            return Err(DataError::format(
                &self.path,
                format!("{written} rows written, {rows} claimed"),
            ));
        }
        if rows != self.rows {
            let old = header(&[self.rows, self.cols]);
            let mut new = header(&[rows, self.cols]);
            // Same length: pad the dictionary with spaces before its newline.
            let pad = old.len() - new.len();
            new.pop();
            new.extend(std::iter::repeat_n(b' ', pad));
            new.push(b'\n');
            let dict_len = (new.len() - MAGIC.len() - 2) as u16;
            new[MAGIC.len()..MAGIC.len() + 2].copy_from_slice(&dict_len.to_le_bytes());
            self.out.flush().map_err(|e| DataError::io(&self.path, e))?;
            use std::io::{Seek, SeekFrom};
            let f = self.out.get_mut();
            f.seek(SeekFrom::Start(0))
                .and_then(|_| f.write_all(&new))
                .map_err(|e| DataError::io(&self.path, e))?;
            self.rows_left = 0;
        }
        self.finish()
    }

    pub fn finish(mut self) -> Result<()> {
        if self.rows_left != 0 {
            return Err(DataError::format(
                &self.path,
                format!("{} rows were never written", self.rows_left),
            ));
        }
        self.out.flush().map_err(|e| DataError::io(&self.path, e))?;
        self.out
            .get_ref()
            .sync_all()
            .map_err(|e| DataError::io(&self.path, e))
    }
}

/// Reads a float32 `.npy` matrix: `(rows, cols, values)`. Anything else (another dtype, Fortran
/// order, a size that disagrees with the file) is an error naming the file.
pub fn read_f32_matrix(path: &Path) -> Result<(usize, usize, Vec<f32>)> {
    let bad = |m: &str| DataError::format(path, format!("not a float32 .npy matrix: {m}"));
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let mut pre = [0u8; 10];
    file.read_exact(&mut pre).map_err(|_| bad("too short"))?;
    if &pre[..6] != b"\x93NUMPY" || pre[6] != 1 {
        return Err(bad("no NumPy 1.0 magic"));
    }
    let hlen = u16::from_le_bytes([pre[8], pre[9]]) as usize;
    let mut dict = vec![0u8; hlen];
    file.read_exact(&mut dict)
        .map_err(|_| bad("truncated header"))?;
    let dict = String::from_utf8_lossy(&dict);
    if !dict.contains("'descr': '<f4'") || !dict.contains("'fortran_order': False") {
        return Err(bad("dtype must be '<f4' in C order"));
    }
    let shape = dict
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("unreadable shape")))
        .collect::<Result<_>>()?;
    let [rows, cols] = dims[..] else {
        return Err(bad("not two-dimensional"));
    };
    if cols == 0 {
        return Err(bad(&format!("shape ({rows}, 0): rows of zero width")));
    }
    let want = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(4))
        .ok_or_else(|| bad("shape overflows"))?;
    if want as u64 != len - (10 + hlen) as u64 {
        return Err(bad(&format!(
            "shape ({rows}, {cols}) needs {want} data bytes, the file has {}",
            len - (10 + hlen) as u64
        )));
    }
    let mut data = vec![0u8; want];
    file.read_exact(&mut data)
        .map_err(|e| DataError::io(path, e))?;
    let values = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((rows, cols, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_matrices_read_back_and_headers_are_aligned() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.npy");
        let mut w = NpyWriter::create(&p, 3, 2).unwrap();
        w.write_rows(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!(w.write_rows(&[5.0]).is_err(), "half a row");
        w.write_rows(&[5.0, 6.0]).unwrap();
        w.finish().unwrap();
        assert_eq!(
            read_f32_matrix(&p).unwrap(),
            (3, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        );
        assert_eq!(header(&[100_000, 512]).len() % 64, 0);
        // Fewer rows than announced, said so: the header shrinks, the file reads back.
        let mut w = NpyWriter::create(&p, 1000, 2).unwrap();
        w.write_rows(&[7.0, 8.0]).unwrap();
        w.finish_with(1).unwrap();
        assert_eq!(read_f32_matrix(&p).unwrap(), (1, 2, vec![7.0, 8.0]));
        // Too few rows is an error, not a silently short file.
        let short = NpyWriter::create(&dir.path().join("s.npy"), 2, 2).unwrap();
        assert!(short.finish().is_err());
        // A header that promises more than the file holds.
        let mut bytes = header(&[1_000_000, 1_000_000]);
        bytes.extend([0u8; 8]);
        std::fs::write(&p, bytes).unwrap();
        let e = read_f32_matrix(&p).unwrap_err().to_string();
        assert!(e.contains("m.npy") && e.contains("data bytes"), "{e}");
        // Zero-width rows (they used to reach `chunks_exact(0)` in the search).
        std::fs::write(&p, header(&[3, 0])).unwrap();
        let e = read_f32_matrix(&p).unwrap_err().to_string();
        assert!(e.contains("zero width"), "{e}");
    }
}

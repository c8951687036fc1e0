//! Capture files: JSON Lines dumps written by `kcat -J` or `rpk topic consume`, plain or gzip
//! (detected by magic bytes, not by name). Lines are streamed through a reused buffer, so memory
//! does not grow with the file.

pub mod format;

use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A capture file could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct CaptureError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Counts compressed bytes read, for progress reporting.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open(path: &Path, read: Arc<AtomicU64>) -> io::Result<Box<dyn BufRead>> {
    let mut file = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: File::open(path)?,
            read,
        },
    );
    let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(1 << 20, MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    })
}

/// Call `f(line_number, line)` for every non-empty line of `path` (1-based numbers; the trailing
/// newline and a `\r` are stripped). `f` returns `false` to stop early.
pub fn for_each_line(
    path: &Path,
    bytes_read: Arc<AtomicU64>,
    mut f: impl FnMut(u64, &[u8]) -> bool,
) -> Result<(), CaptureError> {
    let wrap = |source| CaptureError {
        path: path.to_owned(),
        source,
    };
    let mut reader = open(path, bytes_read).map_err(wrap)?;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut number = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(wrap)? == 0 {
            return Ok(());
        }
        number += 1;
        let mut line = buf.as_slice();
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if !f(number, line) {
            return Ok(());
        }
    }
}

/// Total on-disk size of the files, for a progress bar.
pub fn total_size(paths: &[PathBuf]) -> u64 {
    paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_of(path: &Path) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        for_each_line(path, Arc::default(), |n, l| {
            out.push((n, String::from_utf8_lossy(l).into_owned()));
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn plain_and_gzip_read_the_same_lines() {
        let dir = tempfile::tempdir().unwrap();
        let text = "{\"a\":1}\r\n\n{\"b\":2}";
        let plain = dir.path().join("x.jsonl");
        std::fs::write(&plain, text).unwrap();
        let gz = dir.path().join("x.whatever");
        let mut enc =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap();
        let want = vec![(1, "{\"a\":1}".to_owned()), (3, "{\"b\":2}".to_owned())];
        assert_eq!(lines_of(&plain), want);
        assert_eq!(lines_of(&gz), want);
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = for_each_line(
            Path::new("/nonexistent/cap.jsonl"),
            Arc::default(),
            |_, _| true,
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/cap.jsonl: "),
            "{err}"
        );
    }
}

//! How much of any one input deed reads, so memory stays bounded whatever
//! arrives: a log line with no end, a gzip bomb, one enormous statement,
//! `/dev/zero` given as a file. Each limit is a clear error (or, for one
//! statement, a located note) naming the flag that raises it.

use std::io::{self, Read};

/// The limits of one audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// One physical line of a log (`--max-line-bytes`).
    pub line_bytes: u64,
    /// One statement analysed; larger ones are counted, not parsed
    /// (`--max-statement-bytes`). Parsing costs about 150 bytes of memory
    /// per byte of SQL.
    pub statement_bytes: usize,
    /// A whole log after decompression (`--max-input-bytes`); logs are
    /// streamed, so this bounds time, not memory.
    pub input_bytes: u64,
    /// One SQL file or migration, which is read whole
    /// (`--max-file-bytes`).
    pub file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            line_bytes: 64 << 20,
            statement_bytes: 1 << 20,
            input_bytes: 64 << 30,
            file_bytes: 256 << 20,
        }
    }
}

use deed_text::bytes_exact as bytes;

/// A reader that fails, instead of growing a buffer without end, when a
/// line runs past `max` bytes or the whole input past `total`.
pub(crate) struct Bounded<R> {
    inner: R,
    max_line: u64,
    max_total: u64,
    line: u64,
    in_line: u64,
    total: u64,
}

impl<R: Read> Bounded<R> {
    pub fn new(inner: R, limits: &Limits) -> Self {
        Bounded {
            inner,
            max_line: limits.line_bytes,
            max_total: limits.input_bytes,
            line: 1,
            in_line: 0,
            total: 0,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        if self.total > self.max_total {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the input is larger than {} (decompressed); raise --max-input-bytes if it is real",
                    bytes(self.max_total)
                ),
            ));
        }
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &buf[..n]).chain(std::iter::once(n)) {
            self.in_line += (end - start) as u64;
            if self.in_line > self.max_line {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "line {} is longer than {}; raise --max-line-bytes if it is real",
                        self.line,
                        bytes(self.max_line)
                    ),
                ));
            }
            if end < n {
                self.line += 1;
                self.in_line = 0;
                start = end + 1;
            }
        }
        Ok(n)
    }
}

/// Reads a whole file of at most `max` bytes; a larger one (or a device
/// that never ends) is an error.
pub(crate) fn read_file(path: &std::path::Path, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes_read = Vec::new();
    std::fs::File::open(path)?.take(max + 1).read_to_end(&mut bytes_read)?;
    if bytes_read.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {}; raise --max-file-bytes if it is real", bytes(max)),
        ));
    }
    Ok(bytes_read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_long_lines_and_large_inputs() {
        let limits = Limits { line_bytes: 4, statement_bytes: 1, input_bytes: 100, file_bytes: 1 };
        let mut ok = String::new();
        Bounded::new(&b"abc\nde\n"[..], &limits).read_to_string(&mut ok).unwrap();
        let e = Bounded::new(&b"abc\nabcdef\n"[..], &limits).read_to_string(&mut String::new());
        assert!(e.unwrap_err().to_string().starts_with("line 2 is longer than 4 bytes"));
        let zeros = std::io::repeat(b'\n').take(1000);
        let e = Bounded::new(zeros, &limits).read_to_end(&mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("larger than 100 bytes"));
    }
}

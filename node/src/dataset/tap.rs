//! The byte tap every import reads its export through: it hashes the file
//! (SHA-256, on a helper thread), removes a UTF-8 BOM and, for CSV, runs the
//! quote state machine over the raw bytes and records the offset of every
//! `\n`, so rows get physical line numbers and quoting errors are found
//! where `csv_core` would read past them (see `source`).

use super::model::{ImportError, Problem, io_err};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";
/// Read buffer of the parsers (fits the L2 cache).
pub(super) const READ_BUFFER: usize = 256 * 1024;
/// Where quoting went wrong: byte offset (BOM excluded) and what.
#[derive(Debug, Clone)]
pub(super) struct QuoteError {
    pub(super) offset: u64,
    pub(super) problem: Problem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QuoteState {
    /// Outside quotes (in an unquoted field or between fields).
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a `"` inside a quoted field: an escaped quote or the end.
    QuoteSeen,
}

/// RFC 4180 quoting rules over a byte stream fed in chunks.
#[derive(Debug)]
pub(super) struct QuoteCheck {
    pub(super) state: QuoteState,
    /// Last byte of the previous chunk (`\n` at the start of the file).
    pub(super) prev: u8,
    /// Offset of the opening quote of the current quoted field.
    pub(super) open: u64,
    pub(super) error: Option<QuoteError>,
}

impl QuoteCheck {
    pub(super) fn new() -> QuoteCheck {
        QuoteCheck {
            state: QuoteState::Unquoted,
            prev: b'\n',
            open: 0,
            error: None,
        }
    }

    pub(super) fn fail(&mut self, offset: u64, problem: Problem) {
        self.error = Some(QuoteError { offset, problem });
    }

    pub(super) fn feed(&mut self, base: u64, buf: &[u8]) {
        let Some(&last) = buf.last() else { return };
        let mut i = 0;
        while i < buf.len() && self.error.is_none() {
            match self.state {
                QuoteState::Unquoted => match memchr::memchr(b'"', &buf[i..]) {
                    None => break,
                    Some(j) => {
                        let p = i + j;
                        let before = if p == 0 { self.prev } else { buf[p - 1] };
                        if matches!(before, b',' | b'\n' | b'\r') {
                            self.state = QuoteState::Quoted;
                            self.open = base + p as u64;
                        } else {
                            self.fail(base + p as u64, Problem::QuoteInUnquotedField);
                        }
                        i = p + 1;
                    }
                },
                QuoteState::Quoted => match memchr::memchr(b'"', &buf[i..]) {
                    None => break,
                    Some(j) => {
                        self.state = QuoteState::QuoteSeen;
                        i += j + 1;
                    }
                },
                QuoteState::QuoteSeen => {
                    match buf[i] {
                        b'"' => self.state = QuoteState::Quoted,
                        b',' | b'\n' | b'\r' => self.state = QuoteState::Unquoted,
                        _ => self.fail(base + i as u64, Problem::TextAfterClosingQuote),
                    }
                    i += 1;
                }
            }
        }
        self.prev = last;
    }

    pub(super) fn finish(&mut self) {
        if self.error.is_none() && self.state == QuoteState::Quoted {
            self.fail(self.open, Problem::UnterminatedQuote);
        }
    }
}

/// CSV-only tracking of the bytes passing through the tap.
#[derive(Debug)]
pub(super) struct CsvScan {
    pub(super) quotes: QuoteCheck,
    /// Offsets of the `\n` bytes not yet assigned to a parsed row.
    pub(super) newlines: VecDeque<u64>,
}

/// Bytes gathered before they are handed to the hashing thread.
const HASH_CHUNK: usize = 1024 * 1024;

/// SHA-256 of the source, computed on a helper thread: the reader thread is
/// the busiest of the pipeline, and copying each chunk it reads costs it far
/// less than hashing it.
pub(super) struct Hasher {
    pub(super) pending: Vec<u8>,
    pub(super) tx: Option<SyncSender<Vec<u8>>>,
    pub(super) spare: Receiver<Vec<u8>>,
    pub(super) thread: Option<std::thread::JoinHandle<String>>,
}

impl Hasher {
    pub(super) fn new() -> Result<Hasher, ImportError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let (back, spare) = std::sync::mpsc::channel::<Vec<u8>>();
        let thread = std::thread::Builder::new()
            .name("dataset-hash".into())
            .spawn(move || {
                let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
                for chunk in rx {
                    sha.update(&chunk);
                    let _ = back.send(chunk);
                }
                hex::encode(sha.finish().as_ref())
            })
            .map_err(|e| ImportError::Internal(format!("cannot start hashing thread: {e}")))?;
        Ok(Hasher {
            pending: Vec::with_capacity(HASH_CHUNK + READ_BUFFER),
            tx: Some(tx),
            spare,
            thread: Some(thread),
        })
    }

    pub(super) fn update(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= HASH_CHUNK {
            self.send();
        }
    }

    pub(super) fn send(&mut self) {
        let mut next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(HASH_CHUNK + READ_BUFFER));
        next.clear();
        let full = std::mem::replace(&mut self.pending, next);
        if let Some(tx) = &self.tx {
            // A failed send means the thread is gone; `finish` reports it.
            let _ = tx.send(full);
        }
    }

    pub(super) fn finish(mut self) -> Result<String, ImportError> {
        self.send();
        drop(self.tx.take());
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .ok_or_else(|| ImportError::Internal("hashing thread failed".into()))
    }
}

/// A `Read` over the source file that hashes every byte, removes a leading
/// UTF-8 BOM and (for CSV) tracks quotes and newlines.
pub(super) struct Tap {
    pub(super) file: File,
    pub(super) hasher: Hasher,
    /// Bytes read ahead to look for a BOM, not yet delivered.
    pub(super) prefix: Vec<u8>,
    /// Bytes delivered (BOM excluded).
    pub(super) offset: u64,
    pub(super) csv: Option<CsvScan>,
}

impl Tap {
    pub(super) fn open(path: &Path, track_csv: bool) -> Result<Tap, ImportError> {
        let mut file = File::open(path).map_err(io_err(path))?;
        let mut hasher = Hasher::new()?;
        let mut head = Vec::with_capacity(3);
        (&mut file)
            .take(3)
            .read_to_end(&mut head)
            .map_err(io_err(path))?;
        hasher.update(&head);
        if head.as_slice() == BOM {
            head.clear();
        }
        Ok(Tap {
            file,
            hasher,
            prefix: head,
            offset: 0,
            csv: track_csv.then(|| CsvScan {
                quotes: QuoteCheck::new(),
                newlines: VecDeque::new(),
            }),
        })
    }

    pub(super) fn finish(self) -> Result<String, ImportError> {
        self.hasher.finish()
    }
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.len());
            buf[..n].copy_from_slice(&self.prefix[..n]);
            self.prefix.drain(..n);
            n
        } else {
            let n = self.file.read(buf)?;
            self.hasher.update(&buf[..n]);
            n
        };
        if let Some(scan) = &mut self.csv {
            if n == 0 {
                scan.quotes.finish();
            } else {
                let chunk = &buf[..n];
                scan.quotes.feed(self.offset, chunk);
                let base = self.offset;
                scan.newlines
                    .extend(memchr::memchr_iter(b'\n', chunk).map(|p| base + p as u64));
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8]) -> Option<(u64, Problem)> {
        // Feed in every split to exercise chunk boundaries.
        let mut first = None;
        for split in 0..=input.len() {
            let mut q = QuoteCheck::new();
            q.feed(0, &input[..split]);
            q.feed(split as u64, &input[split..]);
            q.finish();
            let got = q.error.map(|e| (e.offset, e.problem));
            if split == 0 {
                first = got.clone();
            }
            assert_eq!(got, first, "split at {split}");
        }
        first
    }

    #[test]
    fn quote_state_machine() {
        assert_eq!(check(b"a,b\n\"c,\"\"d\"\"\",e\r\n\"\"\n"), None);
        assert_eq!(
            check(b"a,b\nc\"d,e\n"),
            Some((5, Problem::QuoteInUnquotedField))
        );
        assert_eq!(
            check(b"a,b\n\"cd\"e,f\n"),
            Some((8, Problem::TextAfterClosingQuote))
        );
        assert_eq!(
            check(b"a,b\nc,\"d\ne,f\n"),
            Some((6, Problem::UnterminatedQuote))
        );
        assert_eq!(check(b"\"a\nb\",c\n"), None);
    }
}

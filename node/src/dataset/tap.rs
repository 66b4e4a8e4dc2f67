//! The byte tap every import reads its export through: it hashes the file
//! (SHA-256, on a helper thread, over the bytes as they are on disk), finds
//! its encoding and hands on UTF-8, and, for CSV, runs the quote state
//! machine over those bytes and records the offset of every `\n`, so rows
//! get physical line numbers and quoting errors are found where `csv_core`
//! would read past them (see `source`).
//!
//! Delimiter: `--delimiter`, else the one of `,`, tab, `;` and `|` the
//! header line holds most often outside quotes (a comma if none).
//!
//! Encodings: a byte-order mark names UTF-8, UTF-16LE or UTF-16BE (and is
//! removed); without one, the first 64 KiB decide: UTF-8 if they are valid
//! UTF-8, GB18030 (which reads GBK and GB2312 too) if they are not but
//! read further as GB18030, holding Chinese text before any byte it does not
//! define; `--encoding` overrides both.
//! Anything but UTF-8 is decoded as it streams (`encoding_rs`), and a byte
//! sequence the encoding does not define stops the import with its line
//! and column: nothing is ever replaced.

use super::model::{DELIMITERS, ImportError, Problem, io_err};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};

/// Bytes read at the start to find the encoding.
const SNIFF: usize = 64 * 1024;
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
    /// The field delimiter.
    pub(super) delimiter: u8,
}

impl QuoteCheck {
    pub(super) fn new(delimiter: u8) -> QuoteCheck {
        QuoteCheck {
            state: QuoteState::Unquoted,
            prev: b'\n',
            open: 0,
            error: None,
            delimiter,
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
                        if before == self.delimiter || matches!(before, b'\n' | b'\r') {
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
                        b'\n' | b'\r' => self.state = QuoteState::Unquoted,
                        b if b == self.delimiter => self.state = QuoteState::Unquoted,
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

/// Characters outside ASCII the start of a file needs, all valid GB18030
/// and not valid UTF-8, to be read as GB18030 without `--encoding`: one
/// damaged byte in a UTF-8 export is reported as such, not read as
/// Chinese text.
const GB18030_EVIDENCE: usize = 8;

/// The encoding of a file without a byte-order mark that starts with
/// `head`: UTF-8 if it is valid UTF-8, or valid UTF-8 holding Chinese text
/// up to a damaged byte; else GB18030 if it reads further as
/// GB18030 than as UTF-8, holding Chinese text before any byte it does not
/// define (so a GBK export with one bad byte on line 20 is read as GBK and
/// the import stops on that byte, at its line and column); else UTF-8 (a
/// damaged byte in a UTF-8 export is reported as such).
fn sniff(head: &[u8]) -> &'static encoding_rs::Encoding {
    let utf8_valid = match std::str::from_utf8(head) {
        Ok(_) => return encoding_rs::UTF_8,
        // Valid but for a character cut at the sniff's end.
        Err(e) if e.error_len().is_none() && head.len() == SNIFF => {
            return encoding_rs::UTF_8;
        }
        Err(e) => e.valid_up_to(),
    };
    // Chinese text that is valid UTF-8 before the bad byte: a UTF-8 export
    // with a damaged byte (UTF-8's Chinese often reads as GB18030 too, so
    // only an ASCII start leaves the question open).
    let before = std::str::from_utf8(&head[..utf8_valid]).unwrap_or("");
    if before.chars().filter(|c| !c.is_ascii()).take(2).count() >= 2 {
        return encoding_rs::UTF_8;
    }
    let mut decoder = encoding_rs::GB18030.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(head.len() * 2 + 16);
    let (result, read) = decoder.decode_to_string_without_replacement(head, &mut out, false);
    let gb_valid = match result {
        encoding_rs::DecoderResult::Malformed(bad, extra) => {
            read.saturating_sub(usize::from(bad) + usize::from(extra))
        }
        _ => read,
    };
    let chinese = out.chars().filter(|c| !c.is_ascii()).count();
    if gb_valid > utf8_valid && chinese >= GB18030_EVIDENCE {
        encoding_rs::GB18030
    } else {
        encoding_rs::UTF_8
    }
}

/// The delimiter of a CSV export whose text starts with `text`: the one of
/// [`DELIMITERS`] its first line holds most often outside quotes (the
/// first of them on a tie), a comma if it holds none.
pub(super) fn sniff_delimiter(text: &[u8]) -> u8 {
    let line = &text[..memchr::memchr(b'\n', text).unwrap_or(text.len())];
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = DELIMITERS.iter().position(|&(d, _)| d == b) {
            counts[i] += 1;
        }
    }
    let (best, n) = counts.iter().enumerate().fold(
        (0, 0),
        |(bi, bn), (i, &n)| if n > bn { (i, n) } else { (bi, bn) },
    );
    if n == 0 { b',' } else { DELIMITERS[best].0 }
}

/// The streaming decoder of a source not in UTF-8, and where in the
/// decoded text it is (for the error a bad byte raises).
pub(super) struct Decoding {
    decoder: encoding_rs::Decoder,
    raw: Vec<u8>,
    /// Decoded bytes not delivered yet, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    eof: bool,
    /// 1-based line and character column of the next decoded character.
    line: u64,
    column: u64,
}

impl Decoding {
    /// Decodes `input` into `self.out`; an error names the line and
    /// column of a byte sequence the encoding does not define.
    fn decode(&mut self, input: &[u8], last: bool) -> io::Result<()> {
        use encoding_rs::DecoderResult;
        let mut read = 0;
        loop {
            let start = self.out.len();
            let need = self
                .decoder
                .max_utf8_buffer_length_without_replacement(input.len() - read)
                .unwrap_or(input.len() * 3 + 16);
            self.out.resize(start + need, 0);
            let (result, r, w) = self.decoder.decode_to_utf8_without_replacement(
                &input[read..],
                &mut self.out[start..],
                last,
            );
            self.out.truncate(start + w);
            self.advance(start);
            read += r;
            match result {
                DecoderResult::InputEmpty => return Ok(()),
                DecoderResult::OutputFull => continue,
                DecoderResult::Malformed(bad, extra) => {
                    // The bad bytes, then `extra` bytes read after them.
                    let end = read.saturating_sub(usize::from(extra));
                    let from = end.saturating_sub(usize::from(bad));
                    let bytes: Vec<String> = input[from..end]
                        .iter()
                        .map(|b| format!("0x{b:02X}"))
                        .collect();
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "line {}, column {}: {} not valid {}",
                            self.line,
                            self.column,
                            if bytes.is_empty() {
                                "the file's last bytes are".to_string()
                            } else {
                                format!("byte(s) {} are", bytes.join(" "))
                            },
                            self.decoder.encoding().name()
                        ),
                    ));
                }
            }
        }
    }

    /// Moves the line and column past the decoded bytes from `start`.
    fn advance(&mut self, start: usize) {
        for &b in &self.out[start..] {
            if b == b'\n' {
                self.line += 1;
                self.column = 1;
            } else if b & 0xC0 != 0x80 {
                self.column += 1;
            }
        }
    }
}

/// A `Read` over the source file that hashes every byte, finds the
/// encoding, removes a byte-order mark, decodes to UTF-8 and (for CSV)
/// tracks quotes and newlines.
pub(super) struct Tap {
    pub(super) file: File,
    pub(super) hasher: Hasher,
    /// Bytes read ahead to find the encoding, not yet delivered (UTF-8 only).
    pub(super) prefix: Vec<u8>,
    /// Bytes delivered (BOM excluded).
    pub(super) offset: u64,
    pub(super) csv: Option<CsvScan>,
    /// The decoder, for a source not in UTF-8.
    decoding: Option<Decoding>,
    encoding: &'static encoding_rs::Encoding,
}

impl Tap {
    /// Opens `path`; in `encoding` if given, else in the one its
    /// byte-order mark or first 64 KiB say.
    /// For CSV (`csv` is `Some`), the delimiter given or else the one the
    /// header line shows is used by the quote checks (see [`Tap::delimiter`]).
    pub(super) fn open(
        path: &Path,
        csv: Option<Option<u8>>,
        encoding: Option<&'static encoding_rs::Encoding>,
    ) -> Result<Tap, ImportError> {
        let mut file = File::open(path).map_err(io_err(path))?;
        let mut hasher = Hasher::new()?;
        let mut head = Vec::with_capacity(SNIFF);
        (&mut file)
            .take(SNIFF as u64)
            .read_to_end(&mut head)
            .map_err(io_err(path))?;
        hasher.update(&head);
        let bom = encoding_rs::Encoding::for_bom(&head);
        let detected = match (encoding, bom) {
            (Some(e), Some((b, len))) if e == b => {
                head.drain(..len);
                e
            }
            (Some(e), _) => e,
            (None, Some((b, len))) => {
                head.drain(..len);
                b
            }
            (None, None) => sniff(&head),
        };
        let mut tap = Tap {
            file,
            hasher,
            prefix: Vec::new(),
            offset: 0,
            csv: csv.map(|d| CsvScan {
                quotes: QuoteCheck::new(d.unwrap_or(b',')),
                newlines: VecDeque::new(),
            }),
            decoding: None,
            encoding: detected,
        };
        if detected == encoding_rs::UTF_8 {
            tap.prefix = head;
        } else {
            let mut d = Decoding {
                decoder: detected.new_decoder_without_bom_handling(),
                raw: vec![0; READ_BUFFER],
                out: Vec::new(),
                out_pos: 0,
                eof: false,
                line: 1,
                column: 1,
            };
            d.decode(&head, false).map_err(io_err(path))?;
            tap.decoding = Some(d);
        }
        if let Some(None) = csv {
            let text = match &tap.decoding {
                Some(d) => &d.out[d.out_pos..],
                None => &tap.prefix[..],
            };
            let found = sniff_delimiter(text);
            if let Some(scan) = &mut tap.csv {
                scan.quotes.delimiter = found;
            }
        }
        Ok(tap)
    }

    /// The CSV delimiter the quote checks use (a comma for other formats).
    pub(super) fn delimiter(&self) -> u8 {
        self.csv.as_ref().map_or(b',', |s| s.quotes.delimiter)
    }

    /// The encoding the source is read in.
    pub(super) fn encoding(&self) -> &'static encoding_rs::Encoding {
        self.encoding
    }

    pub(super) fn finish(self) -> Result<String, ImportError> {
        self.hasher.finish()
    }

    /// Delivers decoded bytes into `buf` (reading and decoding more as needed).
    fn read_decoded(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(d) = &mut self.decoding else {
            return Ok(0);
        };
        while d.out_pos == d.out.len() && !d.eof {
            d.out.clear();
            d.out_pos = 0;
            let mut raw = std::mem::take(&mut d.raw);
            let n = self.file.read(&mut raw)?;
            self.hasher.update(&raw[..n]);
            d.eof = n == 0;
            let decoded = d.decode(&raw[..n], d.eof);
            d.raw = raw;
            decoded?;
        }
        let n = (d.out.len() - d.out_pos).min(buf.len());
        buf[..n].copy_from_slice(&d.out[d.out_pos..d.out_pos + n]);
        d.out_pos += n;
        Ok(n)
    }
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if self.decoding.is_some() {
            self.read_decoded(buf)?
        } else if !self.prefix.is_empty() {
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
            let mut q = QuoteCheck::new(b',');
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

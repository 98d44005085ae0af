//! Reading export files as they come: CSV in UTF-8 (with or without BOM)
//! or Windows-1252, `;` or `,` separated, quoted fields with separators or
//! line breaks, CRLF; and XLSX sheets. The result is text cells with the
//! line each came from.
//!
//! Owns bytes → text, separator and header; the body is cut into cells by
//! `cells`. It must not interpret values (that is `fields`) and must not
//! print a cell, which may hold a personal identifier.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::cells::{
    in_parallel, plain_rows, records_of, separator_name, Rows, PARALLEL_PARSE_BYTES,
};
use super::report::Problem;
use super::IngestError;

/// The text encodings an export may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    #[value(name = "windows-1252", alias = "cp1252", alias = "latin1")]
    Windows1252,
}

/// A file read into header and records.
#[derive(Debug)]
pub struct RawFile {
    pub path: PathBuf,
    /// The digest of the file as sent, once [`RawFile::sha256`] has it.
    sha256: std::sync::OnceLock<String>,
    /// The thread computing it, until then.
    digesting: std::sync::Mutex<Option<std::thread::JoinHandle<String>>>,
    pub bytes: u64,
    /// How it was read, e.g. "CSV, `;`, Windows-1252".
    pub format: String,
    pub header: Vec<String>,
    /// The readable rows, in file order, in one or more pieces (a large
    /// file is read in one piece per core).
    pub rows: Vec<Rows>,
    /// Problems of the file's structure: bad bytes, wrong field counts.
    pub problems: Vec<Problem>,
}

impl RawFile {
    /// The SHA-256 of the file as sent, in hex. It is computed beside the
    /// parse and the checks, which do not need it, and waited for here.
    pub fn sha256(&self) -> &str {
        self.sha256.get_or_init(|| {
            let digesting = self.digesting.lock().expect("no digest panics").take();
            digesting
                .expect("a file read has its digest or the thread computing it")
                .join()
                .expect("the digest thread panicked")
        })
    }

    /// How many readable rows the file has.
    pub fn row_count(&self) -> usize {
        self.rows.iter().map(Rows::len).sum()
    }
}

/// Reads a CSV or XLSX file, chosen by its extension.
pub fn read_file(path: &Path, encoding: Option<Encoding>) -> Result<RawFile, IngestError> {
    let bytes = read_bytes(path).map_err(|source| IngestError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let size = bytes.len() as u64;
    let mut file = match extension.as_deref() {
        Some("xlsx") | Some("xlsm") | Some("xls") | Some("ods") => {
            let mut file = read_sheet(path)?;
            file.sha256 = hex::encode(Sha256::digest(&bytes)).into();
            file
        }
        _ => read_csv(path, bytes, encoding)?,
    };
    file.bytes = size;
    if file.header.iter().all(|h| h.trim().is_empty()) {
        return Err(IngestError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(file)
}

/// The bytes of the file at `path`. A large file is read in one piece per
/// core, side by side: copying a hundred megabytes out of the page cache
/// takes a core about a tenth of a second.
fn read_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::open(path)?;
        let size = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if size >= PARALLEL_PARSE_BYTES && threads > 1 {
            let mut bytes = vec![0u8; size];
            let piece = size.div_ceil(threads);
            std::thread::scope(|scope| {
                let readers: Vec<_> = bytes
                    .chunks_mut(piece)
                    .enumerate()
                    .map(|(k, chunk)| {
                        let file = &file;
                        scope.spawn(move || file.read_exact_at(chunk, (k * piece) as u64))
                    })
                    .collect();
                readers
                    .into_iter()
                    .try_for_each(|r| r.join().expect("a reading thread panicked"))
            })?;
            // A file still being written has grown since its size was read:
            // it is read whole, as a single read would.
            if file.metadata()?.len() == size as u64 {
                return Ok(bytes);
            }
        }
    }
    std::fs::read(path)
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The file's text, how it was decoded, and the file's own bytes when the
/// text is not them (the digest is of the file as sent). A UTF-8 text keeps
/// its byte-order mark.
fn decode(
    path: &Path,
    bytes: Vec<u8>,
    encoding: Option<Encoding>,
) -> Result<(String, &'static str, Option<Vec<u8>>), IngestError> {
    let had_bom = bytes.starts_with(BOM);
    let as_utf8 = |bytes: Vec<u8>| {
        utf8_text(bytes).map_err(|e| IngestError::Encoding {
            path: path.to_path_buf(),
            line: line_of(e.as_bytes(), e.utf8_error().valid_up_to()),
            reason: "bytes that are not UTF-8; if the file comes from Excel on Windows, try --encoding windows-1252".into(),
        })
    };
    match encoding {
        Some(Encoding::Utf8) => Ok((as_utf8(bytes)?, "UTF-8", None)),
        Some(Encoding::Windows1252) => {
            Ok((windows_1252(path, &bytes)?, "Windows-1252", Some(bytes)))
        }
        None if had_bom => Ok((as_utf8(bytes)?, "UTF-8 with BOM", None)),
        None => match utf8_text(bytes) {
            Ok(text) => Ok((text, "UTF-8", None)),
            Err(e) => {
                let bytes = e.into_bytes();
                Ok((windows_1252(path, &bytes)?, "Windows-1252", Some(bytes)))
            }
        },
    }
}

/// `bytes` as text if they are UTF-8. A valid file, the usual case, is
/// checked with the processor's vector instructions, several times faster
/// than the standard check, which runs only to find where a bad one fails.
fn utf8_text(bytes: Vec<u8>) -> Result<String, std::string::FromUtf8Error> {
    if simdutf8::basic::from_utf8(&bytes).is_ok() {
        // SAFETY: the bytes were just checked to be UTF-8.
        Ok(unsafe { String::from_utf8_unchecked(bytes) })
    } else {
        String::from_utf8(bytes)
    }
}

/// The line of byte `offset`.
fn line_of(bytes: &[u8], offset: usize) -> u64 {
    1 + memchr::memchr_iter(b'\n', &bytes[..offset]).count() as u64
}

/// Windows-1252 leaves five bytes undefined; a file that has them is in
/// some other encoding, and guessing further would corrupt names.
fn windows_1252(path: &Path, bytes: &[u8]) -> Result<String, IngestError> {
    if let Some(offset) = bytes
        .iter()
        .position(|b| matches!(b, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D) || *b == 0)
    {
        return Err(IngestError::Encoding {
            path: path.to_path_buf(),
            line: line_of(bytes, offset),
            reason: format!(
                "byte 0x{:02X} is neither UTF-8 nor Windows-1252; save the file as CSV UTF-8",
                bytes[offset]
            ),
        });
    }
    let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
    Ok(text.into_owned())
}

/// The separator: whichever of `;`, `,`, tab and `|` occurs most in the
/// header line outside quotes.
fn detect_separator(text: &str) -> u8 {
    let mut counts = [(b';', 0usize), (b',', 0), (b'\t', 0), (b'|', 0)];
    let mut quoted = false;
    for c in text.bytes() {
        match c {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(entry) = counts.iter_mut().find(|(s, _)| *s == c) {
                    entry.1 += 1;
                }
            }
            _ => {}
        }
    }
    counts
        .iter()
        .max_by_key(|(_, n)| *n)
        .filter(|(_, n)| *n > 0)
        .map_or(b',', |(s, _)| *s)
}

fn read_csv(
    path: &Path,
    bytes: Vec<u8>,
    encoding: Option<Encoding>,
) -> Result<RawFile, IngestError> {
    let (text, encoding_name, original) = decode(path, bytes, encoding)?;
    // Line ends become `\n` before parsing: the reader counts lines by `\n`
    // and would place a record after a CRLF on the line before.
    // Most exports have neither a carriage return nor a quote: one pass
    // over the text says so, and the two searches below are skipped.
    let neither = memchr::memchr2(b'\r', b'"', text.as_bytes()).is_none();
    let (text, original) = if !neither && memchr::memchr(b'\r', text.as_bytes()).is_some() {
        let normalised = text.replace("\r\n", "\n");
        (normalised, original.or(Some(text.into_bytes())))
    } else {
        (text, original)
    };
    let bom = if text.as_bytes().starts_with(BOM) {
        BOM.len()
    } else {
        0
    };
    if text[bom..].trim().is_empty() {
        return Err(IngestError::Empty {
            path: path.to_path_buf(),
        });
    }
    let separator = detect_separator(&text[bom..]);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(false)
        .flexible(true)
        .from_reader(text[bom..].as_bytes());
    let mut rows = reader.records();
    let header: Vec<String> = match rows.next() {
        Some(Ok(record)) => record.iter().map(|h| h.trim().to_string()).collect(),
        Some(Err(error)) => {
            return Err(IngestError::Malformed {
                path: path.to_path_buf(),
                line: 1,
                reason: error.to_string(),
            })
        }
        None => {
            return Err(IngestError::Empty {
                path: path.to_path_buf(),
            })
        }
    };
    // Where the data starts: the reader stands at the next record.
    let body_start = bom + rows.reader().position().byte() as usize;
    let lines_before_body = rows.reader().position().line() - 1;
    let text = Arc::new(text);
    let body = &text[body_start..];
    // A body with no quote and no lone carriage return is cut at its
    // separators as it is: every line end ends a record and every
    // separator ends a cell. Otherwise the CSV reader copies the cells out.
    let plain = neither || memchr::memchr2(b'"', b'\r', body.as_bytes()).is_none();
    let digesting = {
        let text = Arc::clone(&text);
        std::thread::spawn(move || {
            hex::encode(Sha256::digest(
                original.as_deref().unwrap_or(text.as_bytes()),
            ))
        })
    };
    let parts = if plain {
        in_parallel(body, lines_before_body, |range, lines_before| {
            let range = body_start + range.start..body_start + range.end;
            Ok(plain_rows(
                path,
                &text,
                range,
                lines_before,
                &header,
                separator,
            ))
        })
    } else {
        vec![records_of(
            path,
            body,
            lines_before_body,
            &header,
            separator,
        )]
    };
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for part in parts {
        let (part_rows, mut part_problems) = part?;
        rows.push(part_rows);
        problems.append(&mut part_problems);
    }
    Ok(RawFile {
        path: path.to_path_buf(),
        sha256: Default::default(),
        digesting: Some(digesting).into(),
        bytes: 0,
        format: format!(
            "CSV, separator {}, {encoding_name}",
            separator_name(separator)
        ),
        header,
        rows,
        problems,
    })
}

fn read_sheet(path: &Path) -> Result<RawFile, IngestError> {
    use calamine::{open_workbook_auto, Data, Reader};
    let malformed = |reason: String| IngestError::Malformed {
        path: path.to_path_buf(),
        line: 0,
        reason,
    };
    let mut workbook = open_workbook_auto(path).map_err(|e| malformed(e.to_string()))?;
    let sheet = workbook
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| malformed("the workbook has no sheet".into()))?;
    let range = workbook
        .worksheet_range(&sheet)
        .map_err(|e| malformed(e.to_string()))?;
    let first_row = range.start().map_or(0, |(row, _)| row as u64);
    let cell_text = |cell: &Data| -> String {
        match cell {
            Data::Empty => String::new(),
            Data::String(s) => s.clone(),
            Data::Float(f) => {
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    format!("{}", *f as i64)
                } else {
                    f.to_string()
                }
            }
            Data::Int(i) => i.to_string(),
            Data::Bool(b) => b.to_string(),
            Data::DateTime(d) => d
                .as_datetime()
                .map(|d| d.date().format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| d.to_string()),
            Data::DateTimeIso(s) | Data::DurationIso(s) => s.chars().take(10).collect(),
            Data::Error(e) => format!("#{e:?}"),
        }
    };
    let mut rows = range.rows();
    let header: Vec<String> = rows
        .next()
        .map(|r| r.iter().map(|c| cell_text(c).trim().to_string()).collect())
        .unwrap_or_default();
    let mut records = Rows::new(header.len());
    for (i, row) in rows.enumerate() {
        let cells: Vec<String> = row.iter().map(cell_text).collect();
        if cells.iter().any(|c| !c.trim().is_empty()) {
            records.push(first_row + 2 + i as u64, cells.iter().map(String::as_str));
        }
    }
    Ok(RawFile {
        path: path.to_path_buf(),
        sha256: Default::default(),
        digesting: None.into(),
        bytes: 0,
        format: format!("spreadsheet, sheet `{sheet}`"),
        header,
        rows: vec![records],
        problems: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_file_is_read_in_pieces_with_every_line_in_place() {
        let rows = 400_000;
        let bad_row = 180_000;
        let mut text = String::from("id,label,group\n");
        for i in 0..rows {
            if i == bad_row {
                text.push_str("only,two\n");
            } else {
                text.push_str(&format!("{i},label number {i},{}\n", i % 7));
            }
        }
        assert!(text.len() > 2 * PARALLEL_PARSE_BYTES);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("large.csv");
        std::fs::write(&path, &text).unwrap();
        let raw = read_file(&path, None).unwrap();
        assert_eq!(raw.header, ["id", "label", "group"]);
        assert!(raw.rows.len() > 1, "read in pieces");
        assert_eq!(raw.rows.iter().map(Rows::len).sum::<usize>(), rows - 1);
        let read = raw.rows.iter().flat_map(|piece| {
            (0..piece.len()).map(move |r| (piece.cells(r).next().unwrap(), piece.line(r)))
        });
        for (n, (id, line)) in read.enumerate() {
            let i: u64 = id.parse().unwrap();
            assert_eq!(i, if n < bad_row { n as u64 } else { n as u64 + 1 });
            assert_eq!(line, i + 2, "row {i}");
        }
        assert_eq!(raw.problems.len(), 1);
        assert_eq!(raw.problems[0].line, bad_row as u64 + 2);
        assert_eq!(raw.sha256(), hex::encode(Sha256::digest(text.as_bytes())));
    }

    #[test]
    fn separators_are_detected_outside_quotes() {
        assert_eq!(detect_separator("a;b;\"c,d,e\"\n1;2;3"), b';');
        assert_eq!(detect_separator("a,b,c\n"), b',');
        assert_eq!(detect_separator("a\tb\n"), b'\t');
    }
}

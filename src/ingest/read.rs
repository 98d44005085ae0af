//! Reading export files as they come: CSV in UTF-8 (with or without BOM)
//! or Windows-1252, `;` or `,` separated, quoted fields with separators or
//! line breaks, CRLF; and XLSX sheets. The result is text cells with the
//! line each came from.
//!
//! Owns bytes → records. It must not interpret values (that is `fields`)
//! and must not print a cell, which may hold a personal identifier.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::report::{Problem, Rule};
use super::IngestError;

/// A field longer than this is refused: no column of the dictionary needs
/// it, and it is how a broken quote usually shows.
pub const MAX_FIELD_CHARS: usize = 4096;

/// The text encodings an export may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    #[value(name = "windows-1252", alias = "cp1252", alias = "latin1")]
    Windows1252,
}

/// Data rows as read, each with as many cells as the header, and the line
/// each starts on. The text of every cell is kept in one buffer: a million
/// rows cost a handful of allocations, not several per row.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    width: usize,
    text: String,
    /// Where each cell ends in `text`; `width` entries per row.
    ends: Vec<usize>,
    lines: Vec<u64>,
}

impl Rows {
    fn new(width: usize) -> Self {
        Self {
            width,
            ..Self::default()
        }
    }

    /// Appends a row; `cells` must yield `width` cells.
    fn push<'c>(&mut self, line: u64, cells: impl IntoIterator<Item = &'c str>) {
        for cell in cells {
            self.text.push_str(cell);
            self.ends.push(self.text.len());
        }
        debug_assert_eq!(self.ends.len(), (self.lines.len() + 1) * self.width);
        self.lines.push(line);
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// The line row `row` starts on.
    pub fn line(&self, row: usize) -> u64 {
        self.lines[row]
    }

    pub fn lines(&self) -> &[u64] {
        &self.lines
    }

    /// Cell `column` of row `row`.
    pub fn cell(&self, row: usize, column: usize) -> &str {
        let index = row * self.width + column;
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.text[start..self.ends[index]]
    }

    /// The cells of row `row`, in the file's order.
    pub fn cells(&self, row: usize) -> impl Iterator<Item = &str> {
        (0..self.width).map(move |column| self.cell(row, column))
    }
}

/// A file read into header and records.
#[derive(Debug)]
pub struct RawFile {
    pub path: PathBuf,
    pub sha256: String,
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
    /// How many readable rows the file has.
    pub fn row_count(&self) -> usize {
        self.rows.iter().map(Rows::len).sum()
    }
}

/// Reads a CSV or XLSX file, chosen by its extension.
pub fn read_file(path: &Path, encoding: Option<Encoding>) -> Result<RawFile, IngestError> {
    let bytes = std::fs::read(path).map_err(|source| IngestError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    // The digest is computed beside the parse, which does not need it.
    let (sha256, file) = std::thread::scope(|scope| {
        let digest = scope.spawn(|| hex::encode(Sha256::digest(&bytes)));
        let file = match extension.as_deref() {
            Some("xlsx") | Some("xlsm") | Some("xls") | Some("ods") => read_sheet(path),
            _ => read_csv(path, &bytes, encoding),
        };
        (digest.join().expect("the digest thread panicked"), file)
    });
    let mut file = file?;
    file.sha256 = sha256;
    file.bytes = bytes.len() as u64;
    if file.header.iter().all(|h| h.trim().is_empty()) {
        return Err(IngestError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(file)
}

fn decode<'a>(
    path: &Path,
    bytes: &'a [u8],
    encoding: Option<Encoding>,
) -> Result<(Cow<'a, str>, &'static str), IngestError> {
    let undecodable = |line: u64, reason: String| IngestError::Encoding {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let line_of =
        |offset: usize| 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u64;
    let (body, had_bom) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (rest, true),
        None => (bytes, false),
    };
    let bom_offset = if had_bom { 3 } else { 0 };
    let as_utf8 = |body: &'a [u8]| {
        match std::str::from_utf8(body) {
        Ok(text) => Ok(Cow::Borrowed(text)),
        Err(e) => Err(undecodable(
            line_of(bom_offset + e.valid_up_to()),
            "bytes that are not UTF-8; if the file comes from Excel on Windows, try --encoding windows-1252".into(),
        )),
    }
    };
    match encoding {
        Some(Encoding::Utf8) => Ok((as_utf8(body)?, "UTF-8")),
        Some(Encoding::Windows1252) => Ok((windows_1252(path, bytes)?.into(), "Windows-1252")),
        None if had_bom => Ok((as_utf8(body)?, "UTF-8 with BOM")),
        None => match std::str::from_utf8(body) {
            Ok(text) => Ok((Cow::Borrowed(text), "UTF-8")),
            Err(_) => Ok((windows_1252(path, bytes)?.into(), "Windows-1252")),
        },
    }
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
            line: 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u64,
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

fn separator_name(separator: u8) -> &'static str {
    match separator {
        b';' => "`;`",
        b',' => "`,`",
        b'\t' => "tab",
        _ => "`|`",
    }
}

fn read_csv(path: &Path, bytes: &[u8], encoding: Option<Encoding>) -> Result<RawFile, IngestError> {
    let (text, encoding_name) = decode(path, bytes, encoding)?;
    // Line ends become `\n` before parsing: the reader counts lines by `\n`
    // and would place a record after a CRLF on the line before.
    let text = if text.contains('\r') {
        Cow::Owned(text.replace("\r\n", "\n"))
    } else {
        text
    };
    if text.trim().is_empty() {
        return Err(IngestError::Empty {
            path: path.to_path_buf(),
        });
    }
    let separator = detect_separator(&text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
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
    let body_start = rows.reader().position().byte() as usize;
    let lines_before_body = rows.reader().position().line() - 1;
    let body = &text[body_start..];
    let parse =
        |chunk: &str, lines_before: u64| records_of(path, chunk, lines_before, &header, separator);
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for part in in_parallel(body, lines_before_body, parse) {
        let (part_rows, mut part_problems) = part?;
        rows.push(part_rows);
        problems.append(&mut part_problems);
    }
    Ok(RawFile {
        path: path.to_path_buf(),
        sha256: String::new(),
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

/// Below this size a file is parsed on one thread.
const PARALLEL_PARSE_BYTES: usize = 4 << 20;

/// Runs `parse` on pieces of `body` that end at line ends, one per core, and
/// gives their results in order; `parse` gets each piece and the number of
/// lines before it. Only a body without quotes is cut: there every line end
/// ends a record, while inside a quoted field it may not.
fn in_parallel<T: Send>(
    body: &str,
    lines_before: u64,
    parse: impl Fn(&str, u64) -> T + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || body.len() < PARALLEL_PARSE_BYTES || body.contains('"') {
        return vec![parse(body, lines_before)];
    }
    let mut pieces = Vec::with_capacity(threads);
    let mut start = 0;
    let mut lines = lines_before;
    for k in 1..=threads {
        let end = if k == threads {
            body.len()
        } else {
            let target = (body.len() * k / threads).max(start);
            body[target..]
                .find('\n')
                .map_or(body.len(), |i| target + i + 1)
        };
        if end > start {
            pieces.push((start..end, lines));
            lines += body[start..end].bytes().filter(|&b| b == b'\n').count() as u64;
            start = end;
        }
    }
    std::thread::scope(|scope| {
        let parse = &parse;
        let workers: Vec<_> = pieces
            .into_iter()
            .map(|(range, lines)| scope.spawn(move || parse(&body[range], lines)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a parsing thread panicked"))
            .collect()
    })
}

/// The rows of `chunk`, which starts a record, and the problems of
/// those that cannot be read; lines are counted after `lines_before`.
fn records_of(
    path: &Path,
    chunk: &str,
    lines_before: u64,
    header: &[String],
    separator: u8,
) -> Result<(Rows, Vec<Problem>), IngestError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(false)
        .flexible(true)
        .from_reader(chunk.as_bytes());
    let mut rows = Rows::new(header.len());
    let mut problems = Vec::new();
    // One record is read into again and again; its cells are copied into
    // `rows`.
    let mut record = csv::StringRecord::new();
    loop {
        let more = reader
            .read_record(&mut record)
            .map_err(|error| IngestError::Malformed {
                path: path.to_path_buf(),
                line: lines_before + error.position().map_or(0, |p| p.line()),
                reason: error.to_string(),
            })?;
        if !more {
            break;
        }
        let line = lines_before + record.position().map_or(0, |p| p.line());
        if record.len() == 1 && record.get(0).is_some_and(|c| c.trim().is_empty()) {
            continue;
        }
        if record.len() != header.len() {
            let spans_lines = record.iter().any(|c| c.contains('\n'));
            problems.push(Problem::file_level(
                path,
                line,
                Rule::FieldCount,
                format!(
                    "{} fields where the header has {} (separator {}){}",
                    record.len(),
                    header.len(),
                    separator_name(separator),
                    if spans_lines {
                        "; a quote opened here is not closed"
                    } else {
                        ""
                    }
                ),
            ));
            continue;
        }
        if let Some((index, cell)) = record
            .iter()
            .enumerate()
            .find(|(_, c)| c.len() > MAX_FIELD_CHARS && c.chars().count() > MAX_FIELD_CHARS)
        {
            problems.push(Problem::file_level(
                path,
                line,
                Rule::FieldTooLong,
                format!(
                    "column `{}` has {} characters, more than {MAX_FIELD_CHARS}{}",
                    header[index],
                    cell.chars().count(),
                    if cell.contains('\n') {
                        "; a quote is probably not closed"
                    } else {
                        ""
                    }
                ),
            ));
            continue;
        }
        rows.push(line, &record);
    }
    Ok((rows, problems))
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
        sha256: String::new(),
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
        let read = raw
            .rows
            .iter()
            .flat_map(|piece| (0..piece.len()).map(move |r| (piece.cell(r, 0), piece.line(r))));
        for (n, (id, line)) in read.enumerate() {
            let i: u64 = id.parse().unwrap();
            assert_eq!(i, if n < bad_row { n as u64 } else { n as u64 + 1 });
            assert_eq!(line, i + 2, "row {i}");
        }
        assert_eq!(raw.problems.len(), 1);
        assert_eq!(raw.problems[0].line, bad_row as u64 + 2);
        assert_eq!(raw.sha256, hex::encode(Sha256::digest(text.as_bytes())));
    }

    #[test]
    fn separators_are_detected_outside_quotes() {
        assert_eq!(detect_separator("a;b;\"c,d,e\"\n1;2;3"), b';');
        assert_eq!(detect_separator("a,b,c\n"), b',');
        assert_eq!(detect_separator("a\tb\n"), b'\t');
    }
}

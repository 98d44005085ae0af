//! Reading export files as they come: CSV in UTF-8 (with or without BOM)
//! or Windows-1252, `;` or `,` separated, quoted fields with separators or
//! line breaks, CRLF; and XLSX sheets. The result is text cells with the
//! line each came from.
//!
//! Owns bytes → records. It must not interpret values (that is `fields`)
//! and must not print a cell, which may hold a personal identifier.

use std::path::{Path, PathBuf};
use std::sync::Arc;

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
/// each starts on. Cells are ranges of one shared text: the file itself
/// when it could be cut at separators as it is, or one buffer the parser
/// copied them into. A million rows cost a handful of allocations.
#[derive(Debug, Clone)]
pub struct Rows {
    width: usize,
    /// Cells are separated by exactly one byte in it.
    text: Arc<String>,
    /// Where each row's first cell starts in `text`.
    starts: Vec<usize>,
    /// Where each cell ends, from the start of its row; `width` entries per
    /// row. A row fits in `u32`: a cell longer than [`MAX_FIELD_CHARS`]
    /// rejects its row.
    ends: Vec<u32>,
    lines: Vec<u64>,
}

impl Rows {
    fn new(width: usize) -> Self {
        Self {
            width,
            text: Arc::new(String::new()),
            starts: Vec::new(),
            ends: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// Appends a row of copied cells; `cells` must yield `width` cells.
    fn push<'c>(&mut self, line: u64, cells: impl IntoIterator<Item = &'c str>) {
        let text = Arc::get_mut(&mut self.text).expect("a copied text is not shared");
        let start = text.len();
        self.starts.push(start);
        for cell in cells {
            text.push_str(cell);
            self.ends.push((text.len() - start) as u32);
            text.push('\u{1f}');
        }
        debug_assert_eq!(self.ends.len(), self.starts.len() * self.width);
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
        let row_start = self.starts[row];
        let start = if column == 0 {
            row_start
        } else {
            row_start + self.ends[index - 1] as usize + 1
        };
        &self.text[start..row_start + self.ends[index] as usize]
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
            file.sha256 = hex::encode(Sha256::digest(&bytes));
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
        String::from_utf8(bytes).map_err(|e| IngestError::Encoding {
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
        None => match String::from_utf8(bytes) {
            Ok(text) => Ok((text, "UTF-8", None)),
            Err(e) => {
                let bytes = e.into_bytes();
                Ok((windows_1252(path, &bytes)?, "Windows-1252", Some(bytes)))
            }
        },
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

fn separator_name(separator: u8) -> &'static str {
    match separator {
        b';' => "`;`",
        b',' => "`,`",
        b'\t' => "tab",
        _ => "`|`",
    }
}

fn read_csv(
    path: &Path,
    bytes: Vec<u8>,
    encoding: Option<Encoding>,
) -> Result<RawFile, IngestError> {
    let (text, encoding_name, original) = decode(path, bytes, encoding)?;
    // Line ends become `\n` before parsing: the reader counts lines by `\n`
    // and would place a record after a CRLF on the line before.
    let (text, original) = if text.contains('\r') {
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
    let plain = memchr::memchr2(b'"', b'\r', body.as_bytes()).is_none();
    let (sha256, parts) = std::thread::scope(|scope| {
        // The digest is computed beside the parse, which does not need it.
        let digest = scope.spawn(|| {
            hex::encode(Sha256::digest(
                original.as_deref().unwrap_or(text.as_bytes()),
            ))
        });
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
        (digest.join().expect("the digest thread panicked"), parts)
    });
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for part in parts {
        let (part_rows, mut part_problems) = part?;
        rows.push(part_rows);
        problems.append(&mut part_problems);
    }
    Ok(RawFile {
        path: path.to_path_buf(),
        sha256,
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
/// gives their results in order; `parse` gets each piece's range in `body`
/// and the number of lines before it. Only a body where every line end
/// ends a record may be cut.
fn in_parallel<T: Send>(
    body: &str,
    lines_before: u64,
    parse: impl Fn(std::ops::Range<usize>, u64) -> T + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || body.len() < PARALLEL_PARSE_BYTES {
        return vec![parse(0..body.len(), lines_before)];
    }
    let mut pieces = Vec::with_capacity(threads);
    let mut start = 0;
    let mut lines = lines_before;
    for k in 1..=threads {
        let end = if k == threads {
            body.len()
        } else {
            let target = (body.len() * k / threads).max(start);
            memchr::memchr(b'\n', &body.as_bytes()[target..]).map_or(body.len(), |i| target + i + 1)
        };
        if end > start {
            pieces.push((start..end, lines));
            lines += memchr::memchr_iter(b'\n', &body.as_bytes()[start..end]).count() as u64;
            start = end;
        }
    }
    std::thread::scope(|scope| {
        let parse = &parse;
        let workers: Vec<_> = pieces
            .into_iter()
            .map(|(range, lines)| scope.spawn(move || parse(range, lines)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a parsing thread panicked"))
            .collect()
    })
}

/// The rows of `text[range]`, which has no quote and no carriage return
/// and starts a line, as ranges of `text`, and the problems of those that
/// cannot be read; lines are counted after `lines_before`. It reads as
/// the CSV reader would: a line with no separator and only blanks is no
/// row.
fn plain_rows(
    path: &Path,
    text: &Arc<String>,
    range: std::ops::Range<usize>,
    lines_before: u64,
    header: &[String],
    separator: u8,
) -> (Rows, Vec<Problem>) {
    let width = header.len();
    let piece = &text.as_bytes()[range.clone()];
    let mut rows = Rows {
        width,
        text: Arc::clone(text),
        starts: Vec::new(),
        ends: Vec::new(),
        lines: Vec::new(),
    };
    let mut problems = Vec::new();
    let mut line = lines_before;
    let mut start = 0;
    while start < piece.len() {
        let end = memchr::memchr(b'\n', &piece[start..]).map_or(piece.len(), |i| start + i);
        let record = &piece[start..end];
        let row_start = range.start + start;
        start = end + 1;
        line += 1;
        let as_text = &text[row_start..row_start + record.len()];
        if memchr::memchr(separator, record).is_none() && as_text.trim().is_empty() {
            continue;
        }
        let first_end = rows.ends.len();
        // Cell ends are kept from the row's start in 32 bits. A row that
        // passes both checks below is shorter than that unless the header
        // has more than 65535 columns, and then every column is unknown to
        // the dictionary and the file is refused whole.
        rows.ends.extend(
            memchr::memchr_iter(separator, record)
                .chain([record.len()])
                .map(|end| end as u32),
        );
        let fields = rows.ends.len() - first_end;
        if fields != width {
            rows.ends.truncate(first_end);
            problems.push(Problem::file_level(
                path,
                line,
                Rule::FieldCount,
                format!(
                    "{fields} fields where the header has {width} (separator {})",
                    separator_name(separator)
                ),
            ));
            continue;
        }
        if let Some(problem) = long_cell(path, line, as_text, separator, header) {
            rows.ends.truncate(first_end);
            problems.push(problem);
            continue;
        }
        rows.starts.push(row_start);
        rows.lines.push(line);
    }
    (rows, problems)
}

/// The problem of a row with a cell longer than [`MAX_FIELD_CHARS`].
fn long_cell(
    path: &Path,
    line: u64,
    record: &str,
    separator: u8,
    header: &[String],
) -> Option<Problem> {
    // Most lines are shorter than one cell may be.
    if record.len() <= MAX_FIELD_CHARS {
        return None;
    }
    let (index, chars) = record
        .split(char::from(separator))
        .map(|cell| cell.chars().count())
        .enumerate()
        .find(|&(_, chars)| chars > MAX_FIELD_CHARS)?;
    Some(Problem::file_level(
        path,
        line,
        Rule::FieldTooLong,
        format!(
            "column `{}` has {chars} characters, more than {MAX_FIELD_CHARS}",
            header.get(index).map_or("?", String::as_str),
        ),
    ))
}

/// The rows of `chunk`, which starts a record, copied out by the CSV
/// reader, and the problems of those that cannot be read; lines are
/// counted after `lines_before`.
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

    /// The rows and problems of `body` as the plain cut reads it and as the
    /// CSV reader reads it.
    fn both_ways(body: &str, separator: u8) -> [(Vec<(u64, Vec<String>)>, Vec<String>); 2] {
        let header: Vec<String> = ["id", "label", "group"].map(String::from).into();
        let path = Path::new("export.csv");
        let text = Arc::new(body.to_string());
        let plain = plain_rows(path, &text, 0..body.len(), 1, &header, separator);
        let copied = records_of(path, body, 1, &header, separator).unwrap();
        [plain, copied].map(|(rows, problems)| {
            (
                (0..rows.len())
                    .map(|r| (rows.line(r), rows.cells(r).map(String::from).collect()))
                    .collect(),
                problems
                    .iter()
                    .map(|p| format!("{}:{}", p.line, p.message))
                    .collect(),
            )
        })
    }

    #[test]
    fn the_plain_cut_reads_what_the_csv_reader_reads() {
        let long = "x".repeat(MAX_FIELD_CHARS + 1);
        let accented = "è".repeat(MAX_FIELD_CHARS);
        let bodies = [
            "1,one,a\n2,two,b\n".to_string(),
            "1,one,a\n\n   \n2,,b\n,,\n".to_string(),
            "1,one\n2,two,b,extra\n3,three,c".to_string(),
            format!("1,{long},a\n2,{accented},b\n3, spaced ,c\n"),
            " , \n4,four,d\n".to_string(),
        ];
        for body in &bodies {
            let [plain, copied] = both_ways(body, b',');
            assert_eq!(plain, copied, "{body:?}");
        }
        let [plain, copied] = both_ways("1\tone\ta\n2\t\tb\n", b'\t');
        assert_eq!(plain, copied);
        assert_eq!(plain.0[1], (3, vec!["2".into(), "".into(), "b".into()]));
    }

    #[test]
    fn separators_are_detected_outside_quotes() {
        assert_eq!(detect_separator("a;b;\"c,d,e\"\n1;2;3"), b';');
        assert_eq!(detect_separator("a,b,c\n"), b',');
        assert_eq!(detect_separator("a\tb\n"), b'\t');
    }
}

//! Reading export files as they come: CSV in UTF-8 (with or without BOM)
//! or Windows-1252, `;` or `,` separated, quoted fields with separators or
//! line breaks, CRLF; and XLSX sheets. The result is text cells with the
//! line each came from.
//!
//! Owns bytes → records. It must not interpret values (that is `fields`)
//! and must not print a cell, which may hold a personal identifier.

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

/// One data row: its line in the file and its cells, kept in one buffer
/// per row rather than one allocation per cell.
#[derive(Debug, Clone)]
pub struct Record {
    pub line: u64,
    pub cells: csv::StringRecord,
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
    pub records: Vec<Record>,
    /// Problems of the file's structure: bad bytes, wrong field counts.
    pub problems: Vec<Problem>,
}

/// Reads a CSV or XLSX file, chosen by its extension.
pub fn read_file(path: &Path, encoding: Option<Encoding>) -> Result<RawFile, IngestError> {
    let bytes = std::fs::read(path).map_err(|source| IngestError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let mut file = match extension.as_deref() {
        Some("xlsx") | Some("xlsm") | Some("xls") | Some("ods") => read_sheet(path)?,
        _ => read_csv(path, &bytes, encoding)?,
    };
    file.sha256 = sha256;
    file.bytes = bytes.len() as u64;
    if file.header.iter().all(|h| h.trim().is_empty()) {
        return Err(IngestError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(file)
}

fn decode(
    path: &Path,
    bytes: &[u8],
    encoding: Option<Encoding>,
) -> Result<(String, &'static str), IngestError> {
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
    let as_utf8 = |body: &[u8]| {
        match std::str::from_utf8(body) {
        Ok(text) => Ok(text.to_string()),
        Err(e) => Err(undecodable(
            line_of(bom_offset + e.valid_up_to()),
            "bytes that are not UTF-8; if the file comes from Excel on Windows, try --encoding windows-1252".into(),
        )),
    }
    };
    match encoding {
        Some(Encoding::Utf8) => Ok((as_utf8(body)?, "UTF-8")),
        Some(Encoding::Windows1252) => Ok((windows_1252(path, bytes)?, "Windows-1252")),
        None if had_bom => Ok((as_utf8(body)?, "UTF-8 with BOM")),
        None => match std::str::from_utf8(body) {
            Ok(text) => Ok((text.to_string(), "UTF-8")),
            Err(_) => Ok((windows_1252(path, bytes)?, "Windows-1252")),
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
        text.replace("\r\n", "\n")
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
    let mut records = Vec::new();
    let mut problems = Vec::new();
    for row in rows {
        let record = row.map_err(|error| IngestError::Malformed {
            path: path.to_path_buf(),
            line: error.position().map_or(0, |p| p.line()),
            reason: error.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line());
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
        records.push(Record {
            line,
            cells: record,
        });
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
        records,
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
    let records = rows
        .enumerate()
        .map(|(i, row)| Record {
            line: first_row + 2 + i as u64,
            cells: row.iter().map(cell_text).collect(),
        })
        .filter(|r| r.cells.iter().any(|c| !c.trim().is_empty()))
        .collect();
    Ok(RawFile {
        path: path.to_path_buf(),
        sha256: String::new(),
        bytes: 0,
        format: format!("spreadsheet, sheet `{sheet}`"),
        header,
        records,
        problems: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_detected_outside_quotes() {
        assert_eq!(detect_separator("a;b;\"c,d,e\"\n1;2;3"), b';');
        assert_eq!(detect_separator("a,b,c\n"), b',');
        assert_eq!(detect_separator("a\tb\n"), b'\t');
    }
}

//! The rows of an export as text cells: one shared text, and where each
//! row and cell lies in it. A body with no quotes is cut where it lies, on
//! every core; any other goes through the CSV reader, which copies the
//! cells out.
//!
//! Owns body → cells and the problems of a row's shape (its number of
//! fields, a cell too long). It must not decode files or find their
//! separator (that is `read`), must not interpret values, and must not
//! print a cell, which may hold a personal identifier.

use std::path::Path;
use std::sync::Arc;

use super::report::{Problem, Rule};
use super::IngestError;

/// A field longer than this is refused: no column of the dictionary needs
/// it, and it is how a broken quote usually shows.
pub const MAX_FIELD_CHARS: usize = 4096;

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
    pub(super) fn new(width: usize) -> Self {
        Self {
            width,
            text: Arc::new(String::new()),
            starts: Vec::new(),
            ends: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// Appends a row of copied cells; `cells` must yield `width` cells.
    pub(super) fn push<'c>(&mut self, line: u64, cells: impl IntoIterator<Item = &'c str>) {
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

pub(super) fn separator_name(separator: u8) -> &'static str {
    match separator {
        b';' => "`;`",
        b',' => "`,`",
        b'\t' => "tab",
        _ => "`|`",
    }
}

/// Below this size a file is parsed on one thread.
pub(super) const PARALLEL_PARSE_BYTES: usize = 4 << 20;

/// Runs `parse` on pieces of `body` that end at line ends, one per core, and
/// gives their results in order; `parse` gets each piece's range in `body`
/// and the number of lines before it. Only a body where every line end
/// ends a record may be cut.
pub(super) fn in_parallel<T: Send>(
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
pub(super) fn plain_rows(
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
    // Room for about as many rows as lines the length of the first would
    // make: the arrays then grow once or never instead of doubling from
    // nothing, a copy of every cell end each time.
    let first_line = memchr::memchr(b'\n', piece).map_or(piece.len(), |i| i + 1);
    let lines_like_first = piece.len() / first_line.max(1);
    let expected_rows = lines_like_first + lines_like_first / 8 + 1;
    rows.starts.reserve(expected_rows);
    rows.lines.reserve(expected_rows);
    rows.ends.reserve(expected_rows * width);
    let mut problems = Vec::new();
    let mut line = lines_before;
    let mut row_start = 0;
    let mut first_end = 0;
    // One pass over the piece finds every separator and line end.
    let mut hits = memchr::memchr2_iter(separator, b'\n', piece);
    loop {
        let hit = hits.next();
        let end = match hit {
            Some(at) if piece[at] == separator => {
                // Cell ends are kept from the row's start in 32 bits. A row
                // that passes both checks below is shorter than that unless
                // the header has more than 65535 columns, and then every
                // column is unknown to the dictionary and the file is
                // refused whole.
                rows.ends.push((at - row_start) as u32);
                continue;
            }
            Some(at) => at,
            None if row_start >= piece.len() => break,
            None => piece.len(),
        };
        let record_len = end - row_start;
        let absolute_start = range.start + row_start;
        row_start = end + 1;
        line += 1;
        let as_text = &text[absolute_start..absolute_start + record_len];
        let separators = rows.ends.len() - first_end;
        if separators == 0 && as_text.trim().is_empty() {
            if hit.is_none() {
                break;
            }
            continue;
        }
        rows.ends.push(record_len as u32);
        let fields = separators + 1;
        let problem = if fields != width {
            Some(Problem::file_level(
                path,
                line,
                Rule::FieldCount,
                format!(
                    "{fields} fields where the header has {width} (separator {})",
                    separator_name(separator)
                ),
            ))
        } else {
            long_cell(path, line, as_text, separator, header)
        };
        match problem {
            Some(problem) => {
                rows.ends.truncate(first_end);
                problems.push(problem);
            }
            None => {
                rows.starts.push(absolute_start);
                rows.lines.push(line);
                first_end = rows.ends.len();
            }
        }
        if hit.is_none() {
            break;
        }
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
pub(super) fn records_of(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

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
    text: Arc<String>,
    /// Where each row's first cell starts in `text`.
    starts: Vec<usize>,
    cut: Cut,
    lines: Vec<u64>,
}

/// Where a row's cells end.
#[derive(Debug, Clone)]
enum Cut {
    /// Cells the parser copied out, which may hold any character: each
    /// cell's end from the start of its row, `width` entries per row, one
    /// byte apart. A row fits in `u32`: a cell longer than
    /// [`MAX_FIELD_CHARS`] rejects its row.
    Stored { ends: Vec<u32> },
    /// Rows of the file's own text, where every `separator` ends a cell:
    /// each row's length. The cells are cut as a row is read, which costs
    /// less than storing where a million rows' cells end.
    AtSeparators { separator: u8, lengths: Vec<u32> },
}

/// The cells of one row.
pub struct RowCells<'t, 'e> {
    row: &'t str,
    /// Where each cell ends, from the row's start.
    ends: &'e [u32],
}

impl<'t> RowCells<'t, '_> {
    /// Cell `column`.
    pub fn cell(&self, column: usize) -> &'t str {
        let start = match column {
            0 => 0,
            _ => self.ends[column - 1] as usize + 1,
        };
        &self.row[start..self.ends[column] as usize]
    }
}

impl Rows {
    pub(super) fn new(width: usize) -> Self {
        Self {
            width,
            text: Arc::new(String::new()),
            starts: Vec::new(),
            cut: Cut::Stored { ends: Vec::new() },
            lines: Vec::new(),
        }
    }

    /// Appends a row of copied cells; `cells` must yield `width` cells.
    pub(super) fn push<'c>(&mut self, line: u64, cells: impl IntoIterator<Item = &'c str>) {
        let text = Arc::get_mut(&mut self.text).expect("a copied text is not shared");
        let Cut::Stored { ends } = &mut self.cut else {
            unreachable!("rows are pushed only into a copied text")
        };
        let start = text.len();
        self.starts.push(start);
        for cell in cells {
            text.push_str(cell);
            ends.push((text.len() - start) as u32);
            text.push('\u{1f}');
        }
        debug_assert_eq!(ends.len(), self.starts.len() * self.width);
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

    /// The cells of row `row`; `scratch` holds where they end when they are
    /// cut as the row is read, so that one buffer serves every row.
    pub fn row<'t, 'e>(&'t self, row: usize, scratch: &'e mut Vec<u32>) -> RowCells<'t, 'e>
    where
        't: 'e,
    {
        let start = self.starts[row];
        match &self.cut {
            Cut::Stored { ends } => {
                let ends = &ends[row * self.width..(row + 1) * self.width];
                let end = start + ends.last().map_or(0, |&end| end as usize);
                RowCells {
                    row: &self.text[start..end],
                    ends,
                }
            }
            Cut::AtSeparators { separator, lengths } => {
                let row = &self.text[start..start + lengths[row] as usize];
                cut_at_separators(row.as_bytes(), *separator, scratch);
                debug_assert_eq!(scratch.len(), self.width);
                RowCells { row, ends: scratch }
            }
        }
    }

    /// The cells of row `row`, in the file's order.
    pub fn cells(&self, row: usize) -> impl Iterator<Item = &str> {
        let mut scratch = Vec::new();
        let cells = self.row(row, &mut scratch);
        let cells: Vec<&str> = (0..self.width).map(|c| cells.cell(c)).collect();
        cells.into_iter()
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
    let mut ranges = Vec::with_capacity(threads);
    let mut start = 0;
    for k in 1..=threads {
        let end = if k == threads {
            body.len()
        } else {
            let target = (body.len() * k / threads).max(start);
            memchr::memchr(b'\n', &body.as_bytes()[target..]).map_or(body.len(), |i| target + i + 1)
        };
        if end > start {
            ranges.push(start..end);
            start = end;
        }
    }
    std::thread::scope(|scope| {
        // Each piece's lines are counted on a core of its own, then each
        // piece is parsed knowing how many lines come before it.
        let counters: Vec<_> = ranges
            .iter()
            .map(|range| {
                let piece = &body.as_bytes()[range.clone()];
                scope.spawn(move || memchr::memchr_iter(b'\n', piece).count() as u64)
            })
            .collect();
        let mut lines = lines_before;
        let mut pieces = Vec::with_capacity(ranges.len());
        for (range, counter) in ranges.into_iter().zip(counters) {
            pieces.push((range, lines));
            lines += counter.join().expect("a line-counting thread panicked");
        }
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
    // Room for about as many rows as lines the length of the first would
    // make: the arrays then grow once or never instead of doubling.
    let first_line = memchr::memchr(b'\n', piece).map_or(piece.len(), |i| i + 1);
    let lines_like_first = piece.len() / first_line.max(1);
    let expected_rows = lines_like_first + lines_like_first / 8 + 1;
    let mut starts = Vec::with_capacity(expected_rows);
    let mut lengths = Vec::with_capacity(expected_rows);
    let mut lines = Vec::with_capacity(expected_rows);
    let mut problems = Vec::new();
    let mut line = lines_before;
    let line_ends = memchr::memchr_iter(b'\n', piece).chain(
        // A last line with no line end.
        (!piece.ends_with(b"\n") && !piece.is_empty()).then_some(piece.len()),
    );
    let mut row_start = 0;
    for end in line_ends {
        let record = &piece[row_start..end];
        let absolute_start = range.start + row_start;
        row_start = end + 1;
        line += 1;
        // Only counted: a row's cells are found again when it is read.
        let separators = count_separators(record, separator);
        let as_text = &text[absolute_start..absolute_start + record.len()];
        if separators == 0 && as_text.trim().is_empty() {
            continue;
        }
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
            Some(problem) => problems.push(problem),
            None => {
                // A row that passes both checks fits in 32 bits unless the
                // header has more than 65535 columns, and then every column
                // is unknown to the dictionary and the file is refused whole.
                starts.push(absolute_start);
                lengths.push(record.len() as u32);
                lines.push(line);
            }
        }
    }
    let rows = Rows {
        width,
        text: Arc::clone(text),
        starts,
        cut: Cut::AtSeparators { separator, lengths },
        lines,
    };
    (rows, problems)
}

/// Where `separator` is in `bytes`, eight bytes at a time: `each` gets the
/// offset of every word and a mask with the top bit set in each of its
/// bytes that is the separator. Rows are a hundred bytes or so, with a
/// separator every few: too short for a search that stops at each
/// separator to pay its way.
#[inline]
fn separator_masks(bytes: &[u8], separator: u8, mut each: impl FnMut(u32, u64)) {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const LOW_BITS: u64 = u64::from_le_bytes([0x7f; 8]);
    let pattern = ONES * u64::from(separator);
    let mask = |word: u64| {
        let zero_where_separator = word ^ pattern;
        // The top bit of each zero byte, exactly: no carry crosses a byte.
        !(((zero_where_separator & LOW_BITS) + LOW_BITS) | zero_where_separator | LOW_BITS)
    };
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        each(
            offset,
            mask(u64::from_le_bytes(word.try_into().expect("eight bytes"))),
        );
        offset += 8;
    }
    if !words.remainder().is_empty() {
        // Padded with bytes that differ from the separator.
        let mut last = [!separator; 8];
        last[..words.remainder().len()].copy_from_slice(words.remainder());
        each(offset, mask(u64::from_le_bytes(last)));
    }
}

/// How many times `separator` is in `bytes`.
fn count_separators(bytes: &[u8], separator: u8) -> usize {
    let mut count = 0;
    separator_masks(bytes, separator, |_, found| {
        count += found.count_ones() as usize
    });
    count
}

/// Where each cell of `row` ends: at each `separator`, and the last at the
/// row's end. `ends` is left with exactly those.
fn cut_at_separators(row: &[u8], separator: u8, ends: &mut Vec<u32>) {
    ends.clear();
    separator_masks(row, separator, |offset, mut found| {
        while found != 0 {
            ends.push(offset + found.trailing_zeros() / 8);
            found &= found - 1;
        }
    });
    ends.push(row.len() as u32);
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
    fn separators_are_found_in_every_byte_of_a_word() {
        let rows = [
            "",
            ";",
            "a;b",
            ";;;;;;;;;;;;;;;;;",
            "12345678;2345678;345678;",
            "è;€;\u{1f};ÿ;;x",
            "a long row of some thirty bytes; with a few; separators;",
        ];
        for row in rows {
            let expected: Vec<u32> = row
                .bytes()
                .enumerate()
                .filter(|&(_, b)| b == b';')
                .map(|(at, _)| at as u32)
                .chain([row.len() as u32])
                .collect();
            let mut ends = vec![99; 3];
            cut_at_separators(row.as_bytes(), b';', &mut ends);
            assert_eq!(ends, expected, "{row:?}");
            assert_eq!(count_separators(row.as_bytes(), b';'), expected.len() - 1);
        }
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

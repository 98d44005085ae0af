//! Matching an export's headers to the dictionary, and turning each cell
//! into a typed value under the column's rules: decimal commas, Italian
//! dates and booleans, codes, patterns, ranges, plausible dates, and the
//! codice fiscale of personal columns, which becomes a pseudonym here.
//!
//! Owns text → value for one row at a time. Checks across rows (keys,
//! references) belong to `ingest`. It must not let a raw identifier out:
//! problems carry it masked.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};

use super::identity::{check_tax_code, mask, Pseudonymizer};
use super::report::Rule;
use crate::catalog::{ColumnSpec, ColumnType, DatasetSpec, IdentifierKind, YEAR_COLUMN};

/// Headers that hold people's names, which the warehouse never stores.
const NAME_HEADERS: [&str; 8] = [
    "nome",
    "cognome",
    "nominativo",
    "name",
    "surname",
    "firstname",
    "lastname",
    "cognomeenome",
];

/// A header as compared: lower case, accents and punctuation dropped.
pub fn header_key(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ä' => 'a',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ò' | 'ó' | 'ô' | 'ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            other => other,
        })
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// What each header of a file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderMatch {
    /// The dataset column at this index.
    Column(usize),
    /// A column of personal names: read and dropped.
    Name,
    /// The `year` partition column, which ingest computes itself.
    Derived,
    /// Nothing known; the closest known name, if any is close.
    Unknown { suggestion: Option<String> },
    /// A second header for a column already matched.
    Duplicate(usize),
}

/// Matches `headers` against `spec`, by column name, Italian or English
/// label, or alias.
pub fn match_headers(spec: &DatasetSpec, headers: &[String]) -> Vec<HeaderMatch> {
    let mut known: HashMap<String, usize> = HashMap::new();
    for (index, column) in spec.columns.iter().enumerate() {
        let names = [&column.name, &column.label_it, &column.label_en]
            .into_iter()
            .chain(&column.aliases);
        for name in names {
            known.entry(header_key(name)).or_insert(index);
        }
    }
    let mut taken: HashMap<usize, ()> = HashMap::new();
    headers
        .iter()
        .map(|header| {
            let key = header_key(header);
            match known.get(&key) {
                Some(&index)
                    if spec.columns[index].name == YEAR_COLUMN && spec.year_of.is_some() =>
                {
                    HeaderMatch::Derived
                }
                Some(&index) => {
                    if taken.insert(index, ()).is_some() {
                        HeaderMatch::Duplicate(index)
                    } else {
                        HeaderMatch::Column(index)
                    }
                }
                // Only a header that names no column is taken for people's names.
                None if NAME_HEADERS.contains(&key.as_str()) => HeaderMatch::Name,
                None => HeaderMatch::Unknown {
                    suggestion: closest(spec, &key),
                },
            }
        })
        .collect()
}

fn closest(spec: &DatasetSpec, key: &str) -> Option<String> {
    spec.columns
        .iter()
        .flat_map(|c| {
            [&c.name, &c.label_it, &c.label_en]
                .into_iter()
                .chain(&c.aliases)
                .map(move |n| (strsim::levenshtein(&header_key(n), key), &c.name))
        })
        .min_by_key(|(distance, _)| *distance)
        .filter(|(distance, _)| *distance <= (key.chars().count() / 3).max(2))
        .map(|(_, name)| name.clone())
}

/// A typed cell. Text borrows from the file or the dictionary unless the
/// cell was rewritten (a pseudonym), so most cells cost no allocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Text(Cow<'a, str>),
    Pseudonym(super::identity::Pseudonym),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i32),
}

/// Why a cell was refused, with what may be shown of it.
#[derive(Debug, Clone, PartialEq)]
pub struct CellProblem {
    pub rule: Rule,
    pub shown: String,
    pub message: String,
}

/// How the file writes numbers: Italian exports use a decimal comma and may
/// group thousands with dots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberStyle {
    pub decimal_comma: bool,
}

/// A column of the dictionary with its rules made ready once per ingest:
/// its pattern compiled, its codes in a set. Each thread that reads cells
/// takes its own clone: threads sharing one compiled pattern contend for
/// its matching state on every cell.
#[derive(Clone)]
pub struct ColumnRules<'s> {
    pub spec: &'s ColumnSpec,
    pattern: Option<regex::Regex>,
    /// The codes as the dictionary writes them; a cell in another case is
    /// looked for among them one by one.
    codes: Option<datafusion::common::HashSet<&'s str>>,
}

impl<'s> ColumnRules<'s> {
    /// The rules of every column of `dataset`, in its order.
    pub fn of(dataset: &'s DatasetSpec) -> Vec<Self> {
        dataset
            .columns
            .iter()
            .map(|spec| Self {
                spec,
                pattern: spec.pattern.as_ref().map(|pattern| {
                    regex::Regex::new(pattern).expect("the dictionary checks its patterns")
                }),
                codes: spec
                    .codes
                    .as_ref()
                    .map(|codes| codes.iter().map(String::as_str).collect()),
            })
            .collect()
    }
}

/// The reading context of one ingest.
#[derive(Clone, Copy)]
pub struct CellReader<'a> {
    pub pseudonymizer: &'a Pseudonymizer,
    pub style: NumberStyle,
    pub latest_date: NaiveDate,
    pub earliest_date: NaiveDate,
    /// The dataset's columns, in the dictionary's order.
    pub columns: &'a [ColumnRules<'a>],
}

impl CellReader<'_> {
    /// Reads one cell of `rules.spec` onto the end of `values`.
    pub fn read<'v>(
        &self,
        rules: &ColumnRules<'v>,
        raw: &'v str,
        values: &mut Vec<Value<'v>>,
    ) -> Result<(), CellProblem> {
        // The value is built where it is pushed: handed back through memory
        // instead, it was copied out with reads wider than the writes that
        // made it, which stall (about 1% of an ingest's time).
        values.push(self.value_of(rules, raw)?);
        Ok(())
    }

    #[inline(always)]
    fn value_of<'v>(
        &self,
        rules: &ColumnRules<'v>,
        raw: &'v str,
    ) -> Result<Value<'v>, CellProblem> {
        let column = rules.spec;
        let text = trimmed(raw);
        let shown = || {
            if column.pseudonymous {
                mask(text)
            } else {
                text.chars().take(60).collect()
            }
        };
        let problem = |rule: Rule, message: String| CellProblem {
            rule,
            shown: shown(),
            message,
        };
        if text.is_empty() {
            return if column.nullable {
                Ok(Value::Null)
            } else {
                Err(problem(Rule::Required, "a value is required".into()))
            };
        }
        let value = match column.column_type {
            ColumnType::Utf8 => {
                if column.pseudonymous {
                    if column.identifier == Some(IdentifierKind::CodiceFiscale) {
                        check_tax_code(text)
                            .map_err(|e| problem(Rule::CodiceFiscale, e.to_string()))?;
                    }
                    return Ok(Value::Pseudonym(self.pseudonymizer.pseudonym_of(text)));
                }
                let text = match (&column.codes, &rules.codes) {
                    (Some(codes), Some(exact)) => match exact.get(text) {
                        Some(&code) => Cow::Borrowed(code),
                        None => codes
                            .iter()
                            .find(|c| c.eq_ignore_ascii_case(text))
                            .map(|c| Cow::Borrowed(c.as_str()))
                            .ok_or_else(|| {
                                problem(Rule::Code, format!("not one of {}", codes.join(", ")))
                            })?,
                    },
                    _ => Cow::Borrowed(text),
                };
                if let Some(regex) = &rules.pattern {
                    if !regex.is_match(&text) {
                        return Err(problem(
                            Rule::Pattern,
                            format!("does not match {}", regex.as_str()),
                        ));
                    }
                }
                Value::Text(text)
            }
            ColumnType::Int32 | ColumnType::Int64 => {
                let number = match plain_integer(text) {
                    Some(number) => number,
                    None => parse_number(text, self.style)
                        .filter(|n| n.fract() == 0.0)
                        .ok_or_else(|| problem(Rule::Type, "not a whole number".into()))?
                        as i64,
                };
                check_range(column, number as f64).map_err(|m| problem(Rule::Range, m))?;
                if column.column_type == ColumnType::Int32 && i32::try_from(number).is_err() {
                    return Err(problem(Rule::Range, "too large".into()));
                }
                Value::Int(number)
            }
            ColumnType::Float64 => {
                let number = parse_number(text, self.style)
                    .ok_or_else(|| problem(Rule::Type, "not a number".into()))?;
                check_range(column, number).map_err(|m| problem(Rule::Range, m))?;
                Value::Float(number)
            }
            ColumnType::Boolean => Value::Bool(parse_bool(text).ok_or_else(|| {
                problem(
                    Rule::Type,
                    "not a yes/no value (sì/no, true/false, 1/0)".into(),
                )
            })?),
            ColumnType::Date => {
                let date = parse_date(text).ok_or_else(|| {
                    problem(
                        Rule::Type,
                        "not a date; write dd/mm/yyyy or yyyy-mm-dd".into(),
                    )
                })?;
                if date < self.earliest_date || date > self.latest_date {
                    return Err(problem(
                        Rule::ImplausibleDate,
                        format!(
                            "outside {} – {}",
                            self.earliest_date.format("%d/%m/%Y"),
                            self.latest_date.format("%d/%m/%Y")
                        ),
                    ));
                }
                Value::Date(days_since_epoch(date))
            }
        };
        if let Some(codes) = &column.codes {
            if column.column_type != ColumnType::Utf8 {
                let code = match &value {
                    Value::Int(i) => i.to_string(),
                    Value::Bool(true) => "true".to_string(),
                    Value::Bool(false) => "false".to_string(),
                    _ => String::new(),
                };
                if !codes.contains(&code) {
                    return Err(problem(
                        Rule::Code,
                        format!("not one of {}", codes.join(", ")),
                    ));
                }
            }
        }
        Ok(value)
    }
}

/// `raw` without the blanks around it. Most cells have none, and saying so
/// from their first and last bytes costs less than decoding characters.
fn trimmed(raw: &str) -> &str {
    let plain_edge = |b: &u8| b.is_ascii() && !b.is_ascii_whitespace();
    let bytes = raw.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) if plain_edge(first) && plain_edge(last) => raw,
        _ => raw.trim(),
    }
}

/// A whole number written as digits alone, with an optional minus: how
/// nearly every count and year comes. Up to 18 digits, which cannot
/// overflow; anything else is left to [`parse_number`].
fn plain_integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let plain = (1..=18).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    plain.then(|| text.parse().ok()).flatten()
}

fn check_range(column: &ColumnSpec, number: f64) -> Result<(), String> {
    match (column.min, column.max) {
        (Some(min), _) if number < min => Err(format!("below the minimum {min}")),
        (_, Some(max)) if number > max => Err(format!("above the maximum {max}")),
        _ => Ok(()),
    }
}

/// `12,5`, `1.234,5`, `1234.5`, `1 234`; with a decimal comma, a dot only
/// groups thousands.
pub fn parse_number(text: &str, style: NumberStyle) -> Option<f64> {
    // Most cells are plain numbers, read as they are without a copy.
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let plain = !unsigned.is_empty()
        && unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || (b == b'.' && !style.decimal_comma))
        && unsigned.bytes().filter(|&b| b == b'.').count() <= 1;
    if plain {
        return text.parse::<f64>().ok().filter(|n| n.is_finite());
    }
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{a0}' && *c != '€')
        .collect();
    // Without the Italian convention, `1,234` could be a thousand or a
    // fraction; such a value is refused rather than guessed.
    if !style.decimal_comma
        && compact.contains(',')
        && !compact.contains('.')
        && is_grouped(&compact.replace(',', "."))
    {
        return None;
    }
    let normalised = if style.decimal_comma || (compact.contains(',') && !compact.contains('.')) {
        if compact.contains(',') {
            compact.replace('.', "").replace(',', ".")
        } else if is_grouped(&compact) {
            compact.replace('.', "")
        } else {
            compact
        }
    } else {
        compact.replace(',', "")
    };
    normalised.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// `1.234` or `12.345.678`: dots every three digits.
fn is_grouped(text: &str) -> bool {
    let digits = text.trim_start_matches('-');
    let mut groups = digits.split('.');
    let first = groups.next().unwrap_or("");
    let rest: Vec<&str> = groups.collect();
    !rest.is_empty()
        && (1..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_digit())
        && rest
            .iter()
            .all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
}

pub fn parse_bool(text: &str) -> Option<bool> {
    // Exports mostly write the plain forms; only others need lowering.
    match text {
        "true" | "1" => return Some(true),
        "false" | "0" => return Some(false),
        _ => {}
    }
    match text.to_lowercase().as_str() {
        "true" | "vero" | "si" | "sì" | "s" | "yes" | "y" | "1" | "x" => Some(true),
        "false" | "falso" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// `dd/mm/yyyy` (also with `-` or `.`, and one-digit day or month) or ISO
/// `yyyy-mm-dd`, optionally followed by a time, which is ignored.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let date = text.split([' ', 'T']).next().unwrap_or(text);
    if let Some(iso) = iso_date(date) {
        return Some(iso);
    }
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .filter(|_| date.len() == 10 && date.as_bytes()[4] == b'-')
        .or_else(|| {
            ["%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"]
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(date, f).ok())
                .filter(|d| d.year() >= 1000)
        })
}

/// `yyyy-mm-dd` read digit by digit: most exports write dates so, and
/// chrono's format parser costs more than the rest of the row.
fn iso_date(date: &str) -> Option<NaiveDate> {
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| {
        b[range].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)
}

pub fn days_since_epoch(date: NaiveDate) -> i32 {
    // Days from the first of January of year 1 to the first of January 1970.
    const EPOCH_FROM_CE: i32 = 719_163;
    date.num_days_from_ce() - EPOCH_FROM_CE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn italian_numbers_dates_and_booleans() {
        let it = NumberStyle {
            decimal_comma: true,
        };
        let en = NumberStyle {
            decimal_comma: false,
        };
        assert_eq!(parse_number("1.234,5", it), Some(1234.5));
        assert_eq!(parse_number("12,5", it), Some(12.5));
        assert_eq!(parse_number("1.234", it), Some(1234.0));
        assert_eq!(parse_number("7.46", it), Some(7.46));
        assert_eq!(parse_number("1,234.5", en), Some(1234.5));
        assert_eq!(parse_number("6,63", en), Some(6.63));
        assert_eq!(parse_number("abc", en), None);
        assert_eq!(
            parse_number("1,234", en),
            None,
            "ambiguous without the Italian convention"
        );
        assert_eq!(
            parse_date("05/03/2024"),
            NaiveDate::from_ymd_opt(2024, 3, 5)
        );
        assert_eq!(parse_date("5/3/2024"), NaiveDate::from_ymd_opt(2024, 3, 5));
        assert_eq!(
            parse_date("2024-03-05"),
            NaiveDate::from_ymd_opt(2024, 3, 5)
        );
        assert_eq!(
            parse_date("2024-03-05 00:00:00"),
            NaiveDate::from_ymd_opt(2024, 3, 5)
        );
        assert_eq!(parse_date("31/02/2024"), None);
        assert_eq!(trimmed(" 12\u{a0}"), "12");
        assert_eq!(trimmed("\u{2003}x"), "x");
        assert_eq!(trimmed("città"), "città");
        assert_eq!(plain_integer("-0042"), Some(-42));
        assert_eq!(
            plain_integer("123456789012345678"),
            Some(123456789012345678)
        );
        for left_to_parse_number in ["1234567890123456789", "1.0", "+5", "-", "", "1e3"] {
            assert_eq!(plain_integer(left_to_parse_number), None);
        }
        assert_eq!(
            days_since_epoch(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()),
            1
        );
        assert_eq!(parse_bool("Sì"), Some(true));
        assert_eq!(parse_bool("no"), Some(false));
        assert_eq!(header_key("Città di Lavoro"), "cittadilavoro");
    }

    #[test]
    fn a_dictionary_column_called_name_is_not_a_personal_name() {
        let dictionary = crate::catalog::Dictionary::load().unwrap();
        let desks = dictionary.require("desks").unwrap();
        let matched = match_headers(desks, &["Name".to_string(), "Cognome".to_string()]);
        assert!(matches!(matched[0], HeaderMatch::Column(_)), "{matched:?}");
        assert_eq!(matched[1], HeaderMatch::Name);
    }
}

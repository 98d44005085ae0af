//! Numbers as a reader of the report expects them: Italian grouping and
//! decimal comma (1.234,5), percentages, euros, and the sentences of the key
//! findings built from them.
//!
//! Owns number formatting and the findings' templates. It must not compute
//! figures: it words the ones it is given.

use crate::indicators::Lang;

/// `value` with `decimals` digits, grouped by thousands: `1.234,5` in
/// Italian, `1,234.5` in English.
pub fn format_number(value: f64, decimals: usize, lang: Lang) -> String {
    let text = format!("{:.*}", decimals, value.abs());
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w.to_string(), Some(f.to_string())),
        None => (text, None),
    };
    let (group, point) = match lang {
        Lang::It => ('.', ','),
        Lang::En => (',', '.'),
    };
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(group);
        }
        grouped.push(c);
    }
    let mut out = String::new();
    let is_zero = value.abs() < 0.5 * 10f64.powi(-(decimals as i32));
    if value < 0.0 && !is_zero {
        out.push('-');
    }
    out.push_str(&grouped);
    if let Some(fraction) = fraction {
        out.push(point);
        out.push_str(&fraction);
    }
    out
}

/// A table cell: whole numbers without decimals, small fractions with four,
/// others with two.
pub fn format_cell(value: f64, lang: Lang) -> String {
    let decimals = if value.fract() == 0.0 {
        0
    } else if value.abs() < 1.0 {
        4
    } else {
        2
    };
    format_number(value, decimals, lang)
}

/// A headline value in its unit.
pub fn format_in_unit(value: f64, unit: &str, lang: Lang) -> String {
    match unit {
        "share" => format!("{}%", format_number(value * 100.0, 1, lang)),
        "euro" => match lang {
            Lang::It => format!("{} €", format_number(value, 2, lang)),
            Lang::En => format!("€{}", format_number(value, 2, lang)),
        },
        _ if value.fract() == 0.0 => format_number(value, 0, lang),
        _ => format_number(value, 1, lang),
    }
}

/// The key-finding sentence of one indicator: its value this year and the
/// change on the year before, in points for shares and in percent otherwise.
pub fn finding(
    title: &str,
    unit: &str,
    year: i32,
    value: f64,
    previous: Option<f64>,
    lang: Lang,
) -> String {
    let shown = format_in_unit(value, unit, lang);
    let Some(before) = previous else {
        return match lang {
            Lang::It => format!("{title}: {shown} nel {year}."),
            Lang::En => format!("{title}: {shown} in {year}."),
        };
    };
    let last = year - 1;
    if unit == "share" {
        let points = (value - before) * 100.0;
        let size = format_number(points.abs(), 1, lang);
        return match (lang, points) {
            (Lang::It, p) if p.abs() < 0.05 => {
                format!("{title}: {shown} nel {year}, stabile rispetto al {last}.")
            }
            (Lang::It, p) if p > 0.0 => format!(
                "{title}: {shown} nel {year}, in aumento di {size} punti rispetto al {last}."
            ),
            (Lang::It, _) => {
                format!("{title}: {shown} nel {year}, in calo di {size} punti rispetto al {last}.")
            }
            (Lang::En, p) if p.abs() < 0.05 => {
                format!("{title}: {shown} in {year}, unchanged on {last}.")
            }
            (Lang::En, p) if p > 0.0 => {
                format!("{title}: {shown} in {year}, up {size} points on {last}.")
            }
            (Lang::En, _) => format!("{title}: {shown} in {year}, down {size} points on {last}."),
        };
    }
    if before == 0.0 {
        return match lang {
            Lang::It => format!("{title}: {shown} nel {year} (nessun valore nel {last})."),
            Lang::En => format!("{title}: {shown} in {year} (none in {last})."),
        };
    }
    let change = (value - before) / before.abs() * 100.0;
    let size = format!("{}%", format_number(change.abs(), 1, lang));
    match (lang, change) {
        (Lang::It, c) if c.abs() < 0.05 => {
            format!("{title}: {shown} nel {year}, stabile rispetto al {last}.")
        }
        (Lang::It, c) if c > 0.0 => {
            format!("{title}: {shown} nel {year}, in aumento del {size} rispetto al {last}.")
        }
        (Lang::It, _) => {
            format!("{title}: {shown} nel {year}, in calo del {size} rispetto al {last}.")
        }
        (Lang::En, c) if c.abs() < 0.05 => {
            format!("{title}: {shown} in {year}, unchanged on {last}.")
        }
        (Lang::En, c) if c > 0.0 => format!("{title}: {shown} in {year}, up {size} on {last}."),
        (Lang::En, _) => format!("{title}: {shown} in {year}, down {size} on {last}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn italian_and_english_numbers() {
        assert_eq!(format_number(1234.5, 1, Lang::It), "1.234,5");
        assert_eq!(format_number(1234.5, 1, Lang::En), "1,234.5");
        assert_eq!(format_number(1234567.0, 0, Lang::It), "1.234.567");
        assert_eq!(format_number(-0.04, 1, Lang::It), "0,0");
        assert_eq!(format_number(-12.25, 2, Lang::It), "-12,25");
        assert_eq!(format_number(999.0, 0, Lang::It), "999");
        assert_eq!(format_in_unit(0.4532, "share", Lang::It), "45,3%");
        assert_eq!(format_in_unit(1234.5, "euro", Lang::It), "1.234,50 €");
        assert_eq!(
            finding(
                "Le assunzioni",
                "persons",
                2025,
                1120.0,
                Some(1000.0),
                Lang::It
            ),
            "Le assunzioni: 1.120 nel 2025, in aumento del 12,0% rispetto al 2024."
        );
        assert_eq!(
            finding("Declared", "share", 2025, 0.5, Some(0.52), Lang::En),
            "Declared: 50.0% in 2025, down 2.0 points on 2024."
        );
    }
}

//! Dates in the formats invoices print: `31.01.2026`, `01/31/2026`, `31 Jan 2026`,
//! `31. Januar 2026`, `January 31, 2026`, `2026-01-31`, `20260131`, `31-01-26`.

use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;

use super::text::fold;

/// How to read an ambiguous `01/02/2026`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateOrder {
    /// Day first (Europe, most of the world).
    #[default]
    DayFirst,
    /// Month first (United States).
    MonthFirst,
}

static ISO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^\d])(\d{4})-(\d{1,2})-(\d{1,2})(?:$|[^\d])").expect("valid regex")
});
static NUMERIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^\d.,/-])(\d{1,2})([./-])(\d{1,2})([./-])(\d{4}|\d{2})(?:$|[^\d])")
        .expect("valid regex")
});
static COMPACT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[^\d])(\d{8})(?:$|[^\d])").expect("valid regex"));
static DAY_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:^|[^\d])(\d{1,2})(?:\.|er|st|nd|rd|th|º|°)?\s*(?:de\s+)?([a-z]{3,10})\.?,?\s+(?:de\s+)?(\d{4})",
    )
    .expect("valid regex")
});
static MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^a-z])([a-z]{3,10})\.?\s+(\d{1,2})(?:st|nd|rd|th)?\s*,?\s*(\d{4})")
        .expect("valid regex")
});

/// The month number of a month name or its usual abbreviation in English, German,
/// French, Dutch, Italian or Spanish (already folded to lower-case ASCII).
fn month_of(name: &str) -> Option<u32> {
    let m = match name {
        "jan" | "january" | "januar" | "janner" | "janvier" | "januari" | "janv" | "gennaio"
        | "gen" | "enero" | "ene" => 1,
        "feb" | "february" | "februar" | "fevrier" | "februari" | "fev" | "fevr" | "febbraio"
        | "febrero" => 2,
        "mar" | "march" | "marz" | "mars" | "maart" | "mrz" | "maa" | "marzo" => 3,
        "apr" | "april" | "avril" | "avr" | "aprile" | "abril" | "abr" => 4,
        "may" | "mai" | "mei" | "maggio" | "mag" | "mayo" => 5,
        "jun" | "june" | "juni" | "juin" | "giugno" | "giu" | "junio" => 6,
        "jul" | "july" | "juli" | "juillet" | "juil" | "luglio" | "lug" | "julio" => 7,
        "aug" | "august" | "aout" | "augustus" | "agosto" | "ago" => 8,
        "sep" | "sept" | "september" | "septembre" | "settembre" | "set" | "septiembre"
        | "setiembre" => 9,
        "oct" | "okt" | "october" | "oktober" | "octobre" | "ottobre" | "ott" | "octubre" => 10,
        "nov" | "november" | "novembre" | "noviembre" => 11,
        "dec" | "dez" | "december" | "dezember" | "decembre" | "dicembre" | "dic" | "diciembre" => {
            12
        }
        _ => return None,
    };
    Some(m)
}

/// Whether a word is a month name or abbreviation.
pub(crate) fn is_month(word: &str) -> bool {
    let f = fold(word);
    month_of(f.trim_matches(|c: char| !c.is_alphabetic())).is_some()
}

fn year_of(s: &str) -> Option<i32> {
    let y: i32 = s.parse().ok()?;
    let y = match s.len() {
        2 if y < 70 => 2000 + y,
        2 => 1900 + y,
        _ => y,
    };
    (1970..=2100).contains(&y).then_some(y)
}

/// A date found at its byte position in the (folded) text.
fn candidates(text: &str, order: DateOrder) -> Vec<(usize, NaiveDate)> {
    let t = fold(text);
    let mut out = Vec::new();
    for c in ISO.captures_iter(&t) {
        if let (Some(m), Some(y), Some(mo), Some(d)) = (c.get(0), c.get(1), c.get(2), c.get(3))
            && let (Some(y), Ok(mo), Ok(d)) =
                (year_of(y.as_str()), mo.as_str().parse(), d.as_str().parse())
            && let Some(date) = NaiveDate::from_ymd_opt(y, mo, d)
        {
            out.push((m.start(), date));
        }
    }
    for c in NUMERIC.captures_iter(&t) {
        let (Some(m), Some(a), Some(s1), Some(b), Some(s2), Some(y)) =
            (c.get(0), c.get(1), c.get(2), c.get(3), c.get(4), c.get(5))
        else {
            continue;
        };
        if s1.as_str() != s2.as_str() {
            continue;
        }
        let (Ok(a), Ok(b), Some(y)) = (
            a.as_str().parse::<u32>(),
            b.as_str().parse::<u32>(),
            year_of(y.as_str()),
        ) else {
            continue;
        };
        // Day first unless the numbers say otherwise (second > 12) or the document is
        // American and writes `/`.
        let month_first =
            a <= 12 && (b > 12 || (order == DateOrder::MonthFirst && s1.as_str() == "/"));
        let (d, mo) = if month_first { (b, a) } else { (a, b) };
        if let Some(date) = NaiveDate::from_ymd_opt(y, mo, d) {
            out.push((m.start(), date));
        }
    }
    for c in COMPACT.captures_iter(&t) {
        if let (Some(m), Some(s)) = (c.get(0), c.get(1)) {
            let s = s.as_str();
            if let (Some(y), Ok(mo), Ok(d)) = (year_of(&s[..4]), s[4..6].parse(), s[6..].parse())
                && let Some(date) = NaiveDate::from_ymd_opt(y, mo, d)
            {
                out.push((m.start(), date));
            }
        }
    }
    for c in DAY_MONTH.captures_iter(&t) {
        if let (Some(m), Some(d), Some(mo), Some(y)) = (c.get(0), c.get(1), c.get(2), c.get(3))
            && let (Ok(d), Some(mo), Some(y)) = (
                d.as_str().parse(),
                month_of(mo.as_str()),
                year_of(y.as_str()),
            )
            && let Some(date) = NaiveDate::from_ymd_opt(y, mo, d)
        {
            out.push((m.start(), date));
        }
    }
    for c in MONTH_DAY.captures_iter(&t) {
        if let (Some(m), Some(mo), Some(d), Some(y)) = (c.get(0), c.get(1), c.get(2), c.get(3))
            && let (Some(mo), Ok(d), Some(y)) = (
                month_of(mo.as_str()),
                d.as_str().parse(),
                year_of(y.as_str()),
            )
            && let Some(date) = NaiveDate::from_ymd_opt(y, mo, d)
        {
            out.push((m.start(), date));
        }
    }
    out.sort_by_key(|(pos, _)| *pos);
    out
}

/// The first date in `text`.
pub fn find_date(text: &str, order: DateOrder) -> Option<NaiveDate> {
    candidates(text, order).first().map(|(_, d)| *d)
}

/// Every date in `text`, in order.
pub fn find_dates(text: &str, order: DateOrder) -> Vec<NaiveDate> {
    let mut v: Vec<NaiveDate> = candidates(text, order)
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    fn f(s: &str) -> Option<NaiveDate> {
        find_date(s, DateOrder::DayFirst)
    }

    #[test]
    fn numeric_day_first() {
        assert_eq!(f("31.01.2026"), ymd(2026, 1, 31));
        assert_eq!(f("vom 05.03.2018"), ymd(2018, 3, 5));
        assert_eq!(f("8-9-2022"), ymd(2022, 9, 8));
        assert_eq!(f("31/12/2017"), ymd(2017, 12, 31));
        assert_eq!(f("21.05.14"), ymd(2014, 5, 21));
    }

    #[test]
    fn numeric_month_first() {
        assert_eq!(f("01/31/2026"), ymd(2026, 1, 31));
        assert_eq!(
            find_date("03/04/2023", DateOrder::MonthFirst),
            ymd(2023, 3, 4)
        );
        assert_eq!(f("03/04/2023"), ymd(2023, 4, 3));
    }

    #[test]
    fn iso_and_compact() {
        assert_eq!(f("2026-01-31"), ymd(2026, 1, 31));
        assert_eq!(f("issued at 2020-11-21"), ymd(2020, 11, 21));
        assert_eq!(f("20260131"), ymd(2026, 1, 31));
        assert_eq!(f("20261331"), None);
    }

    #[test]
    fn month_names() {
        assert_eq!(f("31 Jan 2026"), ymd(2026, 1, 31));
        assert_eq!(f("31. Januar 2026"), ymd(2026, 1, 31));
        assert_eq!(f("7. Mai 2014"), ymd(2014, 5, 7));
        assert_eq!(f("02 Juillet 2015"), ymd(2015, 7, 2));
        assert_eq!(f("19 april 2014"), ymd(2014, 4, 19));
        assert_eq!(f("1er février 2020"), ymd(2020, 2, 1));
        assert_eq!(f("August 3 , 2014"), ymd(2014, 8, 3));
        assert_eq!(f("Jan 1, 2022"), ymd(2022, 1, 1));
        assert_eq!(f("12. März 2024"), ymd(2024, 3, 12));
    }

    /// "6 December 2026" in each of the six languages, long and abbreviated.
    #[test]
    fn month_names_in_six_languages() {
        let want = ymd(2026, 12, 6);
        for s in [
            "6 December 2026",
            "December 6, 2026",
            "6 Dec 2026",
            "6. Dezember 2026",
            "6. Dez. 2026",
            "6 décembre 2026",
            "6 december 2026",
            "6 dicembre 2026",
            "6 dic 2026",
            "6 de diciembre de 2026",
            "6 diciembre 2026",
        ] {
            assert_eq!(f(s), want, "{s}");
        }
        assert_eq!(f("1º de marzo de 2025"), ymd(2025, 3, 1));
        assert_eq!(f("12 maggio 2024"), ymd(2024, 5, 12));
        assert_eq!(f("3 settembre 2023"), ymd(2023, 9, 3));
        assert_eq!(f("15 de agosto de 2022"), ymd(2022, 8, 15));
        assert_eq!(f("1er janvier 2021"), ymd(2021, 1, 1));
        assert_eq!(f("14 februari 2020"), ymd(2020, 2, 14));
    }

    /// The numeric forms each locale prints.
    #[test]
    fn numeric_forms_per_locale() {
        let want = ymd(2026, 12, 6);
        for s in [
            "06.12.2026",
            "06/12/2026",
            "6-12-2026",
            "2026-12-06",
            "20261206",
            "6.12.26",
        ] {
            assert_eq!(f(s), want, "{s}");
        }
        assert_eq!(find_date("12/06/2026", DateOrder::MonthFirst), want);
    }

    #[test]
    fn no_date() {
        assert_eq!(f("Rechnung 471102"), None);
        assert_eq!(f("1.234,56"), None);
        assert_eq!(f("Tel. 0123/45678"), None);
    }

    #[test]
    fn several() {
        assert_eq!(
            find_dates("01.10.2018 bis 31.10.2018", DateOrder::DayFirst),
            vec![
                ymd(2018, 10, 1).unwrap_or_default(),
                ymd(2018, 10, 31).unwrap_or_default()
            ]
        );
    }
}

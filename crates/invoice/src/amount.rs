//! Amounts and percentages in every common locale format: `1.234,56`, `1,234.56`,
//! `1 234,56 EUR`, `€ 1.234,56`, `-12,00`, `12,00-`, `(12.00)`, `1'234.56`. What OCR
//! engines commonly get wrong in a figure is tolerated where the shape of a money amount
//! leaves no doubt: `O`/`o` read for `0` and `l`/`I`/`|` for `1` (`1O5,OO`), a
//! thousands separator read as the decimal one (`1.234.56`), a table's column rule or box
//! edge read into the word after the cents (`60,00|`, `10,00}`).

use std::str::FromStr;

use rust_decimal::Decimal;

use super::currency::currency_of_token;

/// A parsed amount with what the text said about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    pub value: Decimal,
    /// ISO 4217 code when the text carried a symbol or code.
    pub currency: Option<&'static str>,
    /// The text had a decimal part (`12,00` rather than `12`).
    pub has_decimals: bool,
}

/// Parses one amount from `text`, which must hold nothing else than the amount, an optional
/// currency symbol or code (before or after) and an optional sign.
pub fn parse_amount(text: &str) -> Option<Amount> {
    let mut s = without_rule_glyph(text.trim()).to_owned();
    let mut currency = None;
    // Peel currency symbols/codes off both ends (possibly glued to the number).
    for _ in 0..2 {
        let (rest, cur) = strip_currency(&s);
        if cur.is_some() {
            currency = currency.or(cur);
            s = rest;
        }
    }
    let mut s = s.trim().to_owned();
    let mut negative = false;
    if s.starts_with('(') && s.ends_with(')') && s.len() > 2 {
        negative = true;
        s = s[1..s.len() - 1].trim().to_owned();
    }
    for sign in ['-', '−', '–'] {
        if let Some(rest) = s.strip_prefix(sign) {
            negative = true;
            s = rest.trim().to_owned();
        } else if let Some(rest) = s.strip_suffix(sign) {
            negative = true;
            s = rest.trim().to_owned();
        }
    }
    if let Some(rest) = s.strip_prefix('+') {
        s = rest.trim().to_owned();
    }
    // A currency may also sit between sign and number: "-€ 12,00".
    let (rest, cur) = strip_currency(&s);
    if cur.is_some() {
        currency = currency.or(cur);
        s = rest.trim().to_owned();
    }
    let s = ocr_digits(&s).unwrap_or(s);
    let (digits, has_decimals) = normalise_number(&s)?;
    let mut value = Decimal::from_str(&digits).ok()?;
    if negative {
        value = -value;
    }
    Some(Amount {
        value,
        currency,
        has_decimals,
    })
}

/// `text` without a column rule or box edge that OCR glued after the cents: `60,00|`,
/// `-5,00]`, `10,00}`, `5,00)` (a `)` only when no `(` opens it). Stripped only after a
/// complete two-decimal amount, so `12,5|` is left for the `|`-for-`1` reading.
fn without_rule_glyph(text: &str) -> &str {
    let Some(rest) = text.strip_suffix(['|', '}', ']', ')', '!']) else {
        return text;
    };
    if text.ends_with(')') && text.contains('(') {
        return text;
    }
    let b = rest.as_bytes();
    let n = b.len();
    let two_decimals = n >= 4
        && matches!(b.get(n - 3), Some(b'.' | b','))
        && b.get(n - 2..)
            .is_some_and(|t| t.iter().all(u8::is_ascii_digit))
        && b.get(n - 4).is_some_and(u8::is_ascii_digit);
    if two_decimals { rest } else { text }
}

/// Parses a percentage: `19 %`, `19%`, `7,0`, `15.00%`. Without a `%` sign only when
/// `bare` is allowed. Rates above 100 are refused.
pub fn parse_percent(text: &str, bare: bool) -> Option<Decimal> {
    let t = text.trim();
    let (num, had_sign) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (t, false),
    };
    if !had_sign && !bare {
        return None;
    }
    let (digits, _) = normalise_number(num)?;
    let v = Decimal::from_str(&digits).ok()?;
    (v >= Decimal::ZERO && v <= Decimal::ONE_HUNDRED).then_some(v)
}

/// Splits a leading or trailing currency symbol/code off `s`.
fn strip_currency(s: &str) -> (String, Option<&'static str>) {
    let t = s.trim();
    // Symbols glued to the number.
    for (sym, code) in [
        ("€", "EUR"),
        ("$", "USD"),
        ("£", "GBP"),
        ("¥", "JPY"),
        ("₹", "INR"),
        ("zł", "PLN"),
    ] {
        if let Some(rest) = t.strip_prefix(sym) {
            return (rest.to_owned(), Some(code));
        }
        if let Some(rest) = t.strip_suffix(sym) {
            return (rest.to_owned(), Some(code));
        }
    }
    // Words: "EUR 12,00", "12,00 EUR", "Rs. 1939", "Rs 1939".
    if let Some((first, rest)) = t.split_once(char::is_whitespace)
        && let Some(code) = currency_of_token(first)
    {
        return (rest.to_owned(), Some(code));
    }
    if let Some((rest, last)) = t.rsplit_once(char::is_whitespace)
        && let Some(code) = currency_of_token(last)
    {
        return (rest.to_owned(), Some(code));
    }
    for prefix in ["Rs.", "Rs"] {
        if let Some(rest) = t.strip_prefix(prefix)
            && rest.starts_with(|c: char| c.is_ascii_digit())
        {
            return (rest.to_owned(), Some("INR"));
        }
    }
    (t.to_owned(), None)
}

/// A figure with letters an OCR engine confuses with digits (`O`, `o` for `0`; `l`, `I`,
/// `|` for `1`), read as digits when the result has the shape of a money amount with two
/// decimals and at least one real digit: `1O5,OO`, `l.234,56`. `None` when nothing was
/// replaced or the shape does not fit.
fn ocr_digits(s: &str) -> Option<String> {
    if !s.chars().any(|c| matches!(c, 'O' | 'o' | 'l' | 'I' | '|'))
        || !s.chars().any(|c| c.is_ascii_digit())
    {
        return None;
    }
    let mapped: String = s
        .chars()
        .map(|c| match c {
            'O' | 'o' => '0',
            'l' | 'I' | '|' => '1',
            c => c,
        })
        .collect();
    let bytes = mapped.as_bytes();
    let n = bytes.len();
    // d{1,} ([.,' ]ddd)* [.,] dd
    let shaped = n >= 4
        && matches!(bytes.get(n - 3), Some(b'.' | b','))
        && bytes
            .get(n - 2..)
            .is_some_and(|t| t.iter().all(u8::is_ascii_digit))
        && mapped.get(..n - 3).is_some_and(|int| {
            int.split(['.', ',', '\'', ' ']).enumerate().all(|(i, g)| {
                !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()) && (i == 0 || g.len() == 3)
            })
        });
    shaped.then_some(mapped)
}

/// Turns a number in any locale grouping into a plain `1234.56` string. Returns whether
/// it had a decimal part.
fn normalise_number(s: &str) -> Option<(String, bool)> {
    let s: String = s
        .chars()
        .filter(|c| !matches!(c, '\u{a0}' | '\u{202f}' | '\u{2009}'))
        .collect();
    let s = s.trim();
    if s.is_empty() || !s.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == ',') {
        return None;
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '\'' | ' '))
    {
        return None;
    }
    if !s.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    // Spaces and apostrophes only as thousands separators between groups of three.
    let mut s = s.to_owned();
    if s.contains(' ') || s.contains('\'') {
        let groups: Vec<&str> = s.split([' ', '\'']).collect();
        let ok = groups.iter().skip(1).enumerate().all(|(i, g)| {
            let head: String = g.chars().take_while(char::is_ascii_digit).collect();
            let last = i + 2 == groups.len();
            head.len() == 3 && (last || head.len() == g.len())
        }) && groups
            .first()
            .is_some_and(|g| (1..=3).contains(&g.len()) && g.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return None;
        }
        s = s.replace([' ', '\''], "");
    }
    let dots = s.matches('.').count();
    let commas = s.matches(',').count();
    let decimal_sep = match (dots, commas) {
        (0, 0) => None,
        (_, 0) | (0, _) => {
            let sep = if dots > 0 { '.' } else { ',' };
            let count = dots + commas;
            let after = s.rsplit(sep).next().unwrap_or("");
            let before = s.split(sep).next().unwrap_or("");
            if count > 1 {
                let groups: Vec<&str> = s.split(sep).collect();
                let inner_ok = groups
                    .get(1..groups.len() - 1)
                    .is_some_and(|g| g.iter().all(|g| g.len() == 3));
                if groups.iter().skip(1).all(|g| g.len() == 3) && !before.is_empty() {
                    // "1.234.567": thousands only, each group three digits.
                    None
                } else if inner_ok && after.len() == 2 && !before.is_empty() {
                    // "1.234.56": OCR read the decimal comma as the thousands dot.
                    Some(sep)
                } else {
                    return None;
                }
            } else if after.len() == 3 && before != "0" && !before.is_empty() {
                // "1.234" is a thousands group, "0.025" a decimal.
                Some('#')
            } else {
                Some(sep)
            }
        }
        _ => {
            let last_dot = s.rfind('.').unwrap_or(0);
            let last_comma = s.rfind(',').unwrap_or(0);
            Some(if last_dot > last_comma { '.' } else { ',' })
        }
    };
    let (int_part, frac) = match decimal_sep {
        Some(sep) if sep != '#' => {
            let idx = s.rfind(sep)?;
            (s[..idx].to_owned(), Some(s[idx + 1..].to_owned()))
        }
        _ => (s.clone(), None),
    };
    let int_digits: String = int_part.chars().filter(char::is_ascii_digit).collect();
    // Thousands groups in the integer part must be of three digits.
    let groups: Vec<&str> = int_part.split(['.', ',']).collect();
    if groups.len() > 1 && groups.iter().skip(1).any(|g| g.len() != 3) {
        return None;
    }
    let int_digits = if int_digits.is_empty() {
        "0".to_owned()
    } else {
        int_digits
    };
    // No invoice amount has more than 15 integer or 6 fraction digits; refusing longer
    // numbers keeps every later sum and product far from `Decimal`'s overflow.
    let int_len = int_digits.trim_start_matches('0').len();
    if int_len > 15 || frac.as_ref().is_some_and(|f| f.len() > 6) {
        return None;
    }
    match frac {
        Some(f) if !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()) => {
            Some((format!("{int_digits}.{f}"), true))
        }
        Some(_) => None,
        None => Some((int_digits, false)),
    }
}

/// An amount as the result model wants it: at least two decimals.
pub fn format_amount(v: Decimal) -> String {
    let mut v = v;
    if v.scale() < 2 {
        v.rescale(2);
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap_or_default()
    }

    fn val(s: &str) -> Option<Decimal> {
        parse_amount(s).map(|a| a.value)
    }

    #[test]
    fn german_format() {
        assert_eq!(val("1.234,56"), Some(d("1234.56")));
        assert_eq!(val("529,87"), Some(d("529.87")));
        assert_eq!(val("2.000,00"), Some(d("2000.00")));
        assert_eq!(val("9,9000"), Some(d("9.9000")));
    }

    #[test]
    fn english_format() {
        assert_eq!(val("1,234.56"), Some(d("1234.56")));
        assert_eq!(val("4.11"), Some(d("4.11")));
        assert_eq!(val("1,234,567.00"), Some(d("1234567.00")));
        assert_eq!(val("0.025"), Some(d("0.025")));
    }

    #[test]
    fn space_and_apostrophe_grouping() {
        assert_eq!(val("1 234,56"), Some(d("1234.56")));
        assert_eq!(val("1 234,56 EUR"), Some(d("1234.56")));
        assert_eq!(val("1'234.56"), Some(d("1234.56")));
        assert_eq!(val("12 34,56"), None);
    }

    #[test]
    fn currency_symbols_and_codes() {
        let a = parse_amount("€ 1.234,56");
        assert_eq!(a.map(|a| a.value), Some(d("1234.56")));
        assert_eq!(a.and_then(|a| a.currency), Some("EUR"));
        assert_eq!(parse_amount("$4.11").and_then(|a| a.currency), Some("USD"));
        assert_eq!(
            parse_amount("160.00 €").and_then(|a| a.currency),
            Some("EUR")
        );
        assert_eq!(
            parse_amount("£ 12.00").and_then(|a| a.currency),
            Some("GBP")
        );
        assert_eq!(
            parse_amount("Rs 1939").and_then(|a| a.currency),
            Some("INR")
        );
        assert_eq!(
            parse_amount("EUR 49,99").and_then(|a| a.currency),
            Some("EUR")
        );
    }

    #[test]
    fn negative_forms() {
        assert_eq!(val("-12,00"), Some(d("-12.00")));
        assert_eq!(val("12,00-"), Some(d("-12.00")));
        assert_eq!(val("(12.00)"), Some(d("-12.00")));
        assert_eq!(val("€ -9,32"), Some(d("-9.32")));
        assert_eq!(val("-0,00"), Some(d("0.00")));
    }

    #[test]
    fn ocr_confusions_in_figures() {
        assert_eq!(val("1O5,OO"), Some(d("105.00")));
        assert_eq!(val("l.234,56"), Some(d("1234.56")));
        assert_eq!(val("12,3O"), Some(d("12.30")));
        assert_eq!(val("€ 4I,50"), Some(d("41.50")));
        assert_eq!(val("1.234.56"), Some(d("1234.56")));
        assert_eq!(val("1,234,56"), Some(d("1234.56")));
        assert_eq!(val("2 345,6O"), Some(d("2345.60")));
        // A column rule or box edge read after the cents.
        assert_eq!(val("60,00|"), Some(d("60.00")));
        assert_eq!(val("-5,00|"), Some(d("-5.00")));
        assert_eq!(val("10,00}"), Some(d("10.00")));
        assert_eq!(val("1.234,56]"), Some(d("1234.56")));
        assert_eq!(val("5,00)"), Some(d("5.00")));
        assert_eq!(val("(5,00)"), Some(d("-5.00")));
        assert_eq!(val("12,5|"), Some(d("12.51")));
        // Words stay words: no real digit, no amount shape, or no decimals.
        for s in ["lO.OO", "IOO", "Olo", "1O5", "Total", "1.23.45"] {
            assert_eq!(val(s), None, "{s}");
        }
    }

    #[test]
    fn thousands_without_decimals() {
        assert_eq!(val("1.000"), Some(d("1000")));
        assert_eq!(parse_amount("1.000").map(|a| a.has_decimals), Some(false));
        assert_eq!(val("1939"), Some(d("1939")));
    }

    #[test]
    fn rejects_non_amounts() {
        for s in ["", "abc", "12a", "05.03.2018", "DE123", "1.2.3", "-", "€"] {
            assert_eq!(val(s), None, "{s}");
        }
    }

    #[test]
    fn absurd_lengths_are_refused() {
        assert_eq!(val("1234567890123456"), None);
        assert_eq!(val("99999999999999999999999999999999"), None);
        assert_eq!(val("1,1234567"), None);
        assert_eq!(val("123456789012345"), Some(d("123456789012345")));
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("19 %", false), Some(d("19")));
        assert_eq!(parse_percent("15.00%", false), Some(d("15.00")));
        assert_eq!(parse_percent("7,0", true), Some(d("7.0")));
        assert_eq!(parse_percent("7,0", false), None);
        assert_eq!(parse_percent("250%", false), None);
    }

    #[test]
    fn formatting() {
        assert_eq!(format_amount(d("1939")), "1939.00");
        assert_eq!(format_amount(d("529.87")), "529.87");
        assert_eq!(format_amount(d("9.9000")), "9.9000");
    }
}

//! Currency by ISO code, symbol or name.

/// ISO 4217 codes we accept when printed as a word.
const CODES: [&str; 24] = [
    "EUR", "USD", "GBP", "CHF", "JPY", "INR", "PLN", "CZK", "DKK", "SEK", "NOK", "HUF", "CAD",
    "AUD", "NZD", "CNY", "HKD", "SGD", "ZAR", "RON", "BGN", "TRY", "BRL", "MXN",
];

/// The ISO code a single token stands for: a code (`EUR`), a symbol (`€`) or a common
/// abbreviation (`Rs.`).
pub fn currency_of_token(token: &str) -> Option<&'static str> {
    let t = token.trim_matches(|c: char| matches!(c, ':' | ',' | ';' | '(' | ')' | '*'));
    if let Some(code) = CODES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(t) && t.len() == 3)
    {
        // Lower-case "eur" is rare in prose; accept only upper or title case.
        if t.chars().next().is_some_and(char::is_uppercase) {
            return Some(code);
        }
    }
    match t {
        "€" => Some("EUR"),
        "$" | "US$" => Some("USD"),
        "£" => Some("GBP"),
        "¥" => Some("JPY"),
        "₹" | "Rs" | "Rs." | "INR" => Some("INR"),
        "zł" => Some("PLN"),
        "Fr." | "SFr." => Some("CHF"),
        _ => None,
    }
}

/// The currency named in a phrase such as "US Dollars" or "Euro".
pub fn currency_of_name(text: &str) -> Option<&'static str> {
    let l = text.to_lowercase();
    [
        ("us dollar", "USD"),
        ("euro", "EUR"),
        ("pound sterling", "GBP"),
        ("swiss franc", "CHF"),
        ("indian rupee", "INR"),
        ("rupees", "INR"),
    ]
    .iter()
    .find(|(name, _)| l.contains(name))
    .map(|(_, code)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_symbols() {
        assert_eq!(currency_of_token("EUR"), Some("EUR"));
        assert_eq!(currency_of_token("€"), Some("EUR"));
        assert_eq!(currency_of_token("$"), Some("USD"));
        assert_eq!(currency_of_token("£"), Some("GBP"));
        assert_eq!(currency_of_token("Rs."), Some("INR"));
        assert_eq!(currency_of_token("GBP:"), Some("GBP"));
        assert_eq!(currency_of_token("EURO"), None);
        assert_eq!(currency_of_token("the"), None);
    }

    #[test]
    fn names() {
        assert_eq!(
            currency_of_name("All charges and prices are in US Dollars"),
            Some("USD")
        );
        assert_eq!(currency_of_name("Beträge in Euro"), Some("EUR"));
        assert_eq!(currency_of_name("nothing"), None);
    }
}

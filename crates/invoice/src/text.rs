//! Text folding for matching labels across languages: lower case, Latin letters without
//! diacritics, punctuation as word breaks.

/// Lower case with diacritics folded to ASCII (`Fälligkeit` -> `falligkeit`, `ß` -> `ss`).
pub(crate) fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => out.push('a'),
            'ç' => out.push('c'),
            'è' | 'é' | 'ê' | 'ë' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' => out.push('i'),
            'ñ' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => out.push('o'),
            'ù' | 'ú' | 'û' | 'ü' => out.push('u'),
            'ý' | 'ÿ' => out.push('y'),
            'ß' => out.push_str("ss"),
            'œ' => out.push_str("oe"),
            'æ' => out.push_str("ae"),
            'ł' => out.push('l'),
            _ => out.push(c),
        }
    }
    out
}

/// The folded alphanumeric pieces of a word: `USt.-Id.-Nr.` -> `["ust", "id", "nr"]`,
/// `n°` -> `["n"]`, `#` -> `["#"]`.
pub(crate) fn tokens(word: &str) -> Vec<String> {
    let f = fold(word);
    if f == "#" {
        return vec!["#".to_owned()];
    }
    f.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether a word is made of letters (at least `min` of them) and no digits.
pub(crate) fn is_wordlike(word: &str, min: usize) -> bool {
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    letters >= min && !word.chars().any(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding() {
        assert_eq!(fold("Fälligkeitsdatum"), "falligkeitsdatum");
        assert_eq!(fold("Größe"), "grosse");
        assert_eq!(fold("Échéance"), "echeance");
        assert_eq!(tokens("USt.-Id.-Nr.:"), ["ust", "id", "nr"]);
        assert_eq!(
            tokens("Käufer/Leistungsempfänger"),
            ["kaufer", "leistungsempfanger"]
        );
        assert_eq!(tokens("n°"), ["n"]);
    }
}

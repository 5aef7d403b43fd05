//! Understanding what a caller pressed or said: keys with full-width digits, spoken
//! digits, and keyword matching that tolerates case, spaces, punctuation and curly quotes.

/// Lowercase, full-width ASCII folded to ASCII, curly apostrophes straightened, every
/// run of whitespace and punctuation (ASCII or CJK) turned into one space.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for ch in text.chars() {
        let ch = match ch {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(ch as u32 - 0xFEE0).unwrap_or(ch),
            '\u{3000}' => ' ',
            '\u{2018}' | '\u{2019}' | '\u{02BC}' => '\'',
            _ => ch,
        };
        let is_gap = ch.is_whitespace()
            || (ch.is_ascii_punctuation() && ch != '\'' && ch != '*' && ch != '#')
            || "，。、！？；：“”（）《》【】…—·".contains(ch);
        if is_gap {
            if !space {
                out.push(' ');
                space = true;
            }
        } else {
            out.extend(ch.to_lowercase());
            space = false;
        }
    }
    out.trim_end().to_string()
}

/// The key pressed, from Twilio's `Digits` (trailing `#` and spaces ignored, full-width
/// digits accepted); `None` when nothing usable was pressed.
pub fn key(digits: &str) -> Option<String> {
    let n = normalize(digits);
    let n = n.trim_end_matches('#').trim();
    (!n.is_empty()).then(|| n.replace(' ', ""))
}

/// A whole utterance that is just a digit ("1", "一", "one", "按一", "press one").
pub fn spoken_digit(text: &str) -> Option<char> {
    let n = normalize(text);
    let mut t = n.as_str();
    for prefix in ["press ", "按", "number "] {
        t = t.strip_prefix(prefix).unwrap_or(t);
    }
    for suffix in ["号键", "号", "键"] {
        t = t.strip_suffix(suffix).unwrap_or(t);
    }
    let t = t.trim();
    const TABLE: [(char, &[&str]); 10] = [
        ('0', &["0", "零", "zero"]),
        ('1', &["1", "一", "幺", "one"]),
        ('2', &["2", "二", "两", "two"]),
        ('3', &["3", "三", "three"]),
        ('4', &["4", "四", "four"]),
        ('5', &["5", "五", "five"]),
        ('6', &["6", "六", "six"]),
        ('7', &["7", "七", "seven"]),
        ('8', &["8", "八", "eight"]),
        ('9', &["9", "九", "nine"]),
    ];
    TABLE
        .iter()
        .find(|(_, words)| words.contains(&t))
        .map(|(d, _)| *d)
}

/// Whether `normalize(w) == w` already (script words nearly always are), so matching
/// need not allocate a normalised copy of every word at every step.
fn is_normalized(w: &str) -> bool {
    !w.starts_with(' ')
        && !w.ends_with(' ')
        && !w.contains("  ")
        && w.chars().all(|c| {
            c == ' '
                || !(c.is_whitespace()
                    || (c.is_ascii_punctuation() && c != '\'' && c != '*' && c != '#')
                    || ('\u{FF01}'..='\u{FF5E}').contains(&c)
                    || matches!(c, '\u{3000}' | '\u{2018}' | '\u{2019}' | '\u{02BC}')
                    || "，。、！？；：“”（）《》【】…—·".contains(c)
                    || !c.to_lowercase().eq(std::iter::once(c)))
        })
}

/// `word` occurs in `padded` (the utterance with a space at each end) as whole words.
fn contains_whole(padded: &str, word: &str) -> bool {
    padded
        .match_indices(word)
        .any(|(i, _)| padded[..i].ends_with(' ') && padded[i + word.len()..].starts_with(' '))
}

/// The length of the longest of `words` found in the utterance, if any. Words made of
/// ASCII letters must match whole words ("no" is not in "know"); others anywhere.
pub fn best_match(text: &str, words: &[String]) -> Option<usize> {
    let n = normalize(text);
    let padded = format!(" {n} ");
    let compact = n.replace(' ', "");
    words
        .iter()
        .filter_map(|w| {
            let w: std::borrow::Cow<'_, str> = if is_normalized(w) {
                w.as_str().into()
            } else {
                normalize(w).into()
            };
            if w.is_empty() {
                return None;
            }
            let found = if w.chars().any(|c| c.is_ascii_alphabetic()) {
                contains_whole(&padded, &w)
            } else {
                n.contains(&*w)
                    || (if w.contains(' ') {
                        compact.contains(&w.replace(' ', ""))
                    } else {
                        compact.contains(&*w)
                    })
            };
            found.then(|| w.chars().count())
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keys_accept_full_width_digits_and_a_trailing_hash() {
        assert_eq!(key("１").as_deref(), Some("1"));
        assert_eq!(key(" 2# ").as_deref(), Some("2"));
        assert_eq!(key("*").as_deref(), Some("*"));
        assert_eq!(key("#"), None);
        assert_eq!(key(""), None);
    }

    #[test]
    fn a_spoken_digit_is_a_key() {
        assert_eq!(spoken_digit("一"), Some('1'));
        assert_eq!(spoken_digit("按二。"), Some('2'));
        assert_eq!(spoken_digit("Press one."), Some('1'));
        assert_eq!(spoken_digit("one more thing"), None);
    }

    #[test]
    fn keywords_match_in_either_script_and_prefer_the_longest() {
        let leak = words(&["漏水", "leak", "leaking", "tap"]);
        assert_eq!(best_match("我家水管漏水了", &leak), Some(2));
        assert_eq!(best_match("My tap is LEAKING!", &leak), Some(7));
        assert_eq!(
            best_match("I can’t breathe", &words(&["can't breathe"])),
            Some(13)
        );
        assert_eq!(best_match("I know", &words(&["no"])), None);
        assert_eq!(best_match("水 管", &words(&["水管"])), Some(2));
        // Words written loosely in a script match as if normalised.
        assert_eq!(
            best_match("call the OPERATOR", &words(&[" Operator! "])),
            Some(8)
        );
        assert_eq!(best_match("电话 漏 水", &words(&["漏 水"])), Some(3));
    }

    #[test]
    fn the_normalised_fast_path_agrees_with_normalize() {
        for w in [
            "leak", "Leak", " leak", "can't", "can’t", "水管", "１", "a  b", "a b", "ok!", "ǅ",
        ] {
            assert_eq!(is_normalized(w), normalize(w) == w, "{w:?}");
        }
    }
}

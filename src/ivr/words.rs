//! Understanding what a caller pressed or said: keys with full-width digits, spoken
//! digits, and keyword matching that tolerates case, spaces, punctuation and curly quotes.
//!
//! The rules of keyword matching are `best_match`'s, one word list at a time. A step
//! does not run them word by word: the script's lists are normalised once, when it is
//! loaded, into a [`Lexicon`], and each utterance is normalised once ([`Utterance`]) and
//! read in one pass that answers for every list together, by the same rules.

use aho_corasick::{AhoCorasick, MatchKind};
use std::collections::BTreeMap;

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
    out.truncate(out.trim_end().len());
    out
}

/// The key pressed, from Twilio's `Digits` (trailing `#` and spaces ignored, full-width
/// digits accepted); `None` when nothing usable was pressed.
pub fn key(digits: &str) -> Option<String> {
    let n = normalize(digits);
    let n = n.trim_end_matches('#').trim();
    (!n.is_empty()).then(|| n.replace(' ', ""))
}

/// A whole utterance that is just a digit ("1", "一", "one", "按一", "press one").
#[cfg(test)]
pub fn spoken_digit(text: &str) -> Option<char> {
    digit_of(&normalize(text))
}

/// `spoken_digit` of an already normalised utterance.
fn digit_of(n: &str) -> Option<char> {
    let mut t = n;
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

/// Whether `normalize(w) == w` already (script words nearly always are), so that
/// `best_match` need not allocate a normalised copy of every word.
#[cfg(test)]
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
///
/// The rules, word by word: the engine asks a [`Lexicon`], which must agree with this
/// (a property test checks that it does).
#[cfg(test)]
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

/// An utterance normalised once for a whole step: every word list, and the check for a
/// spoken digit, read this rather than normalising the text again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utterance {
    /// `normalize(text)` with a space at each end, where whole words are looked for.
    padded: String,
    /// `normalize(text)` without its spaces, where other words are looked for (they match
    /// across the recogniser's spaces: "水 管" is "水管").
    compact: String,
}

impl Utterance {
    pub fn new(text: &str) -> Utterance {
        let n = normalize(text);
        let compact = n.replace(' ', "");
        let mut padded = String::with_capacity(n.len() + 2);
        padded.push(' ');
        padded.push_str(&n);
        padded.push(' ');
        Utterance { padded, compact }
    }

    /// `normalize(text)`.
    fn normalized(&self) -> &str {
        &self.padded[1..self.padded.len() - 1]
    }

    /// The digit the whole utterance is, as `spoken_digit`.
    pub fn spoken_digit(&self) -> Option<char> {
        digit_of(self.normalized())
    }
}

/// Word lists, each word normalised once, in two Aho-Corasick automata: [`Lexicon::hear`]
/// reads an utterance once and finds, for every list, what `best_match` finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexicon {
    lists: usize,
    /// Words with ASCII letters, as normalised, looked for in the padded utterance and
    /// kept only where [`contains_whole`] agrees.
    latin: Table,
    /// Every other word, normalised and without its spaces, looked for in the compact
    /// utterance: any occurrence counts.
    other: Table,
}

/// One automaton and, for each of its patterns, every (list, word length) it stands for:
/// a pattern may be in several lists ("好的" is a yes and a menu word), and in one list
/// under two spellings of different lengths ("漏水" and "漏 水").
#[derive(Clone)]
struct Table {
    automaton: AhoCorasick,
    patterns: Vec<(String, Vec<(usize, usize)>)>,
}

impl Table {
    fn new(patterns: BTreeMap<String, Vec<(usize, usize)>>) -> Table {
        let patterns: Vec<_> = patterns.into_iter().collect();
        let keys = patterns.iter().map(|(p, _)| p.as_str());
        // Every occurrence of every word is wanted: `Standard`, searched overlapping. (The
        // builder's own choice of automaton, an NFA for this many words, read the shipped
        // script's as fast as a forced DFA, which took twice as long to build.)
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(keys)
            // Refused only past its index limits (2^31 states or patterns), beyond any
            // script that fits in memory.
            .expect("an automaton of a script's words");
        Table {
            automaton,
            patterns,
        }
    }
}

impl PartialEq for Table {
    /// The automaton is built from the patterns: equal patterns, equal tables.
    fn eq(&self, other: &Table) -> bool {
        self.patterns == other.patterns
    }
}

impl Eq for Table {}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.patterns.iter().map(|(p, hits)| (p, hits)))
            .finish()
    }
}

impl Lexicon {
    /// The lists are numbered in the order given, from 0. Each word is normalised here,
    /// once: a script may write `" Operator! "` or `"漏 水"` or full-width letters.
    pub fn new<'w>(lists: impl IntoIterator<Item = &'w [String]>) -> Lexicon {
        let mut latin: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
        let mut other: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
        let mut count = 0;
        for (list, words) in lists.into_iter().enumerate() {
            count = list + 1;
            for w in words {
                let w = normalize(w);
                if w.is_empty() {
                    continue;
                }
                let hit = (list, w.chars().count());
                let entry = if w.chars().any(|c| c.is_ascii_alphabetic()) {
                    latin.entry(w)
                } else {
                    other.entry(w.replace(' ', ""))
                };
                let hits = entry.or_default();
                if !hits.contains(&hit) {
                    hits.push(hit);
                }
            }
        }
        Lexicon {
            lists: count,
            latin: Table::new(latin),
            other: Table::new(other),
        }
    }

    /// For every list, the length of its longest word in the utterance, if any.
    pub fn hear(&self, utterance: &Utterance) -> Found {
        let mut best = vec![None; self.lists];
        let mut note = |hits: &[(usize, usize)]| {
            for &(list, len) in hits {
                let b: &mut Option<usize> = &mut best[list];
                if b.is_none_or(|b| len > b) {
                    *b = Some(len);
                }
            }
        };
        // A latin word found is only a candidate: whether it stands as whole words is
        // [`contains_whole`]'s answer, asked once per word.
        let mut asked: Vec<usize> = Vec::new();
        for m in self
            .latin
            .automaton
            .find_overlapping_iter(utterance.padded.as_str())
        {
            let p = m.pattern().as_usize();
            if asked.contains(&p) {
                continue;
            }
            asked.push(p);
            let (word, hits) = &self.latin.patterns[p];
            if contains_whole(&utterance.padded, word) {
                note(hits);
            }
        }
        for m in self
            .other
            .automaton
            .find_overlapping_iter(utterance.compact.as_str())
        {
            note(&self.other.patterns[m.pattern().as_usize()].1);
        }
        Found { best }
    }
}

/// What [`Lexicon::hear`] found, list by list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    best: Vec<Option<usize>>,
}

impl Found {
    /// The length of the longest word of list `list` that was said (`None`: none, or no
    /// such list).
    pub fn best(&self, list: usize) -> Option<usize> {
        self.best.get(list).copied().flatten()
    }
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

    /// What a lexicon of `lists` hears in `text`, list by list.
    fn heard(text: &str, lists: &[&[&str]]) -> Vec<Option<usize>> {
        let lists: Vec<Vec<String>> = lists.iter().map(|l| words(l)).collect();
        let found = Lexicon::new(lists.iter().map(Vec::as_slice)).hear(&Utterance::new(text));
        (0..lists.len()).map(|i| found.best(i)).collect()
    }

    fn by_best_match(text: &str, lists: &[&[&str]]) -> Vec<Option<usize>> {
        lists.iter().map(|l| best_match(text, &words(l))).collect()
    }

    #[test]
    fn a_lexicon_answers_for_every_list_at_once_as_best_match_does() {
        let lists: &[&[&str]] = &[
            &["漏水", "leak", "leaking", "tap"],
            &["no"],
            &[" Operator! ", "ＯＰＥＲＡＴＯＲ"],
            &["漏 水", "漏水"],
            &["好的"],
            &["好的", "ok"],
            &[],
        ];
        for text in [
            "我家水管漏水了",
            "My tap is LEAKING!",
            "I know",
            "call the OPERATOR",
            "电话 漏 水",
            "好的，OK。",
            "",
        ] {
            assert_eq!(heard(text, lists), by_best_match(text, lists), "{text:?}");
        }
        assert_eq!(heard("My tap is LEAKING!", lists)[0], Some(7));
        assert_eq!(heard("I know", lists)[1], None);
        // Loosely written words are normalised when the lexicon is built.
        assert_eq!(heard("call the OPERATOR", lists)[2], Some(8));
        // Two spellings in one list: the longer (spaces count) wins.
        assert_eq!(heard("电话 漏 水", lists)[3], Some(3));
        // One word in two lists counts for both.
        assert_eq!(heard("好的，OK。", lists)[4..6], [Some(2), Some(2)]);
        assert_eq!(Lexicon::new([]).hear(&Utterance::new("ok")).best(0), None);
    }

    #[test]
    fn a_word_that_normalises_to_nothing_never_matches() {
        let lists: &[&[&str]] = &[&["", "  ", "！", "…"]];
        for text in ["", "anything at all", "水管", "!"] {
            assert_eq!(heard(text, lists), [None], "{text:?}");
        }
    }

    #[test]
    fn a_lexicon_reads_repeated_latin_words_as_best_match_does() {
        // `contains_whole` looks at occurrences left to right without overlap: the lexicon
        // asks it about each latin word it finds instead of judging boundaries itself.
        for (text, word) in [
            ("ba a a", "a a"),
            ("a a a", "a a"),
            ("ab b a", "b a"),
            ("no no", "no"),
            ("nono no", "no"),
        ] {
            let lists: &[&[&str]] = &[&[word]];
            assert_eq!(
                heard(text, lists),
                by_best_match(text, lists),
                "{text:?} {word:?}"
            );
        }
    }

    #[test]
    fn an_utterance_is_normalised_once_for_its_digit() {
        for text in ["一", "按二。", "Press one.", "one more thing", "", "１"] {
            assert_eq!(
                Utterance::new(text).spoken_digit(),
                spoken_digit(text),
                "{text:?}"
            );
        }
        assert_eq!(Utterance::new(" Ｎumber  NINE!").spoken_digit(), Some('9'));
    }

    const PIECES: &[&str] = &[
        "a", "b", "no", "know", "Ａ", "ｂ", "can't", "can’t", "漏", "水", "管", "一", "é", "1",
        " ", "  ", "!", "，", "'", "*", "\u{3000}",
    ];

    fn piece() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(PIECES)
    }

    proptest::proptest! {
        #[test]
        fn a_lexicon_agrees_with_best_match_on_any_lists_and_utterance(
            lists in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(piece(), 0..4), 0..5),
                0..4,
            ),
            text in proptest::collection::vec(piece(), 0..12),
        ) {
            let text = text.concat();
            let lists: Vec<Vec<String>> = lists
                .iter()
                .map(|l| l.iter().map(|w| w.concat()).collect())
                .collect();
            let found = Lexicon::new(lists.iter().map(Vec::as_slice)).hear(&Utterance::new(&text));
            for (i, list) in lists.iter().enumerate() {
                proptest::prop_assert_eq!(found.best(i), best_match(&text, list), "list {} {:?}", i, list);
            }
        }
    }
}

//! The volunteers' SMS grammar (CONTRACT.md, "Volunteer SMS commands") and the residents'
//! rating reply, as pure parsers: a message body in, a typed command out.
//!
//! Normalisation, applied before any word is matched:
//! - full-width ASCII (`ＹＥＳ１７`) becomes ASCII and the ideographic space a space;
//! - ASCII letters are compared without case;
//! - anything that is neither a letter nor a digit (spaces, ASCII and Chinese punctuation,
//!   emoji) is ignored at both ends, and between the word and its offer code.
//!
//! An offer code may follow any word that acts on one offer or job (accept, decline, done):
//! `YES 17`, `yes17`, `接 17`, `完成17`. The digit words `1` and `2` need something between
//! them and the code (`1 17`): `117` is not read as "accept 17". A code outside 2–6 digits, a
//! code after a word that takes none (`OFF 17`), or any further words make the body
//! [`Command::Unknown`], so a mistyped reply is answered with the help text rather than acted
//! on wrongly.

use std::fmt;
use std::str::FromStr;

/// The short code an offer SMS carries (`YES 17`): 2 to 6 ASCII digits, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OfferCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an offer code (2 to 6 digits)")]
pub struct OfferCodeError(pub String);

impl OfferCode {
    pub const MIN_LEN: usize = 2;
    pub const MAX_LEN: usize = 6;

    /// Parses a code; full-width digits and surrounding spaces are accepted.
    pub fn parse(s: &str) -> Result<Self, OfferCodeError> {
        let n = normalize(s);
        let t = n.trim_matches(|c: char| !c.is_alphanumeric());
        if (Self::MIN_LEN..=Self::MAX_LEN).contains(&t.len())
            && t.bytes().all(|b| b.is_ascii_digit())
        {
            Ok(Self(t.to_string()))
        } else {
            Err(OfferCodeError(s.to_string()))
        }
    }

    /// The code a request's `n`-th offer gets (`n` from 0): `10`, `11`, … `99`, `100`, …,
    /// so a code never starts with 0 and never has fewer than two digits.
    pub fn from_number(n: u32) -> Self {
        Self((u64::from(n) % 999_990 + 10).to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OfferCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for OfferCode {
    type Err = OfferCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What a volunteer's SMS asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Accept an offer; `None` means "my only pending offer".
    Accept { code: Option<OfferCode> },
    /// Decline an offer; `None` means "my only pending offer".
    Decline { code: Option<OfferCode> },
    /// The job is finished; `None` means "my only active job".
    Done { code: Option<OfferCode> },
    /// Pause offers (declines pending ones, keeps active jobs).
    Off,
    /// Resume offers.
    On,
    /// Opt out of all SMS (Twilio's opt-out words).
    Stop,
    /// Opt back in.
    Start,
    /// Ask for the points balance.
    Points,
    /// Ask for the list of commands.
    Help,
    /// Anything else; carries the body with surrounding whitespace removed.
    Unknown(String),
}

/// Whether a word may be followed by an offer code.
#[derive(Clone, Copy)]
enum Word {
    Accept,
    Decline,
    Done,
    Plain(fn() -> Command),
}

/// Every word of the grammar, normalised (ASCII upper case). Twilio's default opt-out words
/// are STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT (and OPTOUT, REVOKE since 2025); its
/// opt-in words are START, UNSTOP and YES, but YES here is accept, as the contract says.
const WORDS: &[(&str, Word)] = &[
    ("YES", Word::Accept),
    ("Y", Word::Accept),
    ("1", Word::Accept),
    ("接", Word::Accept),
    ("是", Word::Accept),
    ("好", Word::Accept),
    ("NO", Word::Decline),
    ("N", Word::Decline),
    ("2", Word::Decline),
    ("不", Word::Decline),
    ("否", Word::Decline),
    ("DONE", Word::Done),
    ("完成", Word::Done),
    ("OFF", Word::Plain(|| Command::Off)),
    ("休息", Word::Plain(|| Command::Off)),
    ("ON", Word::Plain(|| Command::On)),
    ("上线", Word::Plain(|| Command::On)),
    ("STOP", Word::Plain(|| Command::Stop)),
    ("STOPALL", Word::Plain(|| Command::Stop)),
    ("UNSUBSCRIBE", Word::Plain(|| Command::Stop)),
    ("CANCEL", Word::Plain(|| Command::Stop)),
    ("END", Word::Plain(|| Command::Stop)),
    ("QUIT", Word::Plain(|| Command::Stop)),
    ("OPTOUT", Word::Plain(|| Command::Stop)),
    ("REVOKE", Word::Plain(|| Command::Stop)),
    ("START", Word::Plain(|| Command::Start)),
    ("UNSTOP", Word::Plain(|| Command::Start)),
    ("POINTS", Word::Plain(|| Command::Points)),
    ("积分", Word::Plain(|| Command::Points)),
    ("HELP", Word::Plain(|| Command::Help)),
    ("帮助", Word::Plain(|| Command::Help)),
];

/// The accept words as the contract spells them (for tests and the help text).
pub const ACCEPT_WORDS: &[&str] = &["YES", "Y", "1", "接", "是", "好"];
/// The decline words as the contract spells them.
pub const DECLINE_WORDS: &[&str] = &["NO", "N", "2", "不", "否"];
/// The done words as the contract spells them.
pub const DONE_WORDS: &[&str] = &["DONE", "完成"];

/// Full-width ASCII to ASCII, ideographic space to space, ASCII letters to upper case.
fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => {
                char::from_u32(c as u32 - 0xFEE0).map_or(c, |a| a.to_ascii_uppercase())
            }
            '\u{3000}' => ' ',
            _ => c.to_ascii_uppercase(),
        })
        .collect()
}

fn is_noise(c: char) -> bool {
    !c.is_alphanumeric()
}

/// Parses a volunteer's SMS body. Never panics; anything not in the grammar is `Unknown`.
pub fn parse(body: &str) -> Command {
    let unknown = || Command::Unknown(body.trim().to_string());
    let norm = normalize(body);
    let text = norm.trim_matches(is_noise);
    if text.is_empty() {
        return unknown();
    }
    // The code is the trailing run of ASCII digits; a text of digits only is a bare word.
    let word_end = text.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (word, code) = if word_end == 0 {
        (text, None)
    } else {
        let digits = &text[word_end..];
        let word = text[..word_end].trim_end_matches(is_noise);
        (word, (!digits.is_empty()).then_some(digits))
    };
    let Some(&(_, kind)) = WORDS.iter().find(|(w, _)| *w == word) else {
        return unknown();
    };
    let code = match code.map(OfferCode::parse) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => return unknown(),
    };
    match (kind, code) {
        (Word::Accept, code) => Command::Accept { code },
        (Word::Decline, code) => Command::Decline { code },
        (Word::Done, code) => Command::Done { code },
        (Word::Plain(make), None) => make(),
        (Word::Plain(_), Some(_)) => unknown(),
    }
}

/// Reads a resident's reply to the rating question: a single digit 1 to 5 (full-width too),
/// with surrounding spaces and punctuation ignored. Anything else is `None` (a complaint).
pub fn parse_rating(body: &str) -> Option<u8> {
    let norm = normalize(body);
    match norm.trim_matches(is_noise).as_bytes() {
        [d @ b'1'..=b'5'] => Some(d - b'0'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(s: &str) -> Option<OfferCode> {
        Some(OfferCode::parse(s).unwrap())
    }

    #[test]
    fn every_word_of_the_contract_parses_to_its_command() {
        let table: &[(&str, Command)] = &[
            ("YES", Command::Accept { code: None }),
            ("Y", Command::Accept { code: None }),
            ("1", Command::Accept { code: None }),
            ("接", Command::Accept { code: None }),
            ("是", Command::Accept { code: None }),
            ("好", Command::Accept { code: None }),
            ("NO", Command::Decline { code: None }),
            ("N", Command::Decline { code: None }),
            ("2", Command::Decline { code: None }),
            ("不", Command::Decline { code: None }),
            ("否", Command::Decline { code: None }),
            ("DONE", Command::Done { code: None }),
            ("完成", Command::Done { code: None }),
            ("OFF", Command::Off),
            ("休息", Command::Off),
            ("ON", Command::On),
            ("上线", Command::On),
            ("STOP", Command::Stop),
            ("STOPALL", Command::Stop),
            ("UNSUBSCRIBE", Command::Stop),
            ("CANCEL", Command::Stop),
            ("END", Command::Stop),
            ("QUIT", Command::Stop),
            ("START", Command::Start),
            ("UNSTOP", Command::Start),
            ("POINTS", Command::Points),
            ("积分", Command::Points),
            ("HELP", Command::Help),
            ("帮助", Command::Help),
        ];
        for (body, want) in table {
            assert_eq!(&parse(body), want, "{body}");
            assert_eq!(&parse(&body.to_lowercase()), want, "{body} lower case");
            assert_eq!(
                &parse(&format!("  {body}。")),
                want,
                "{body} with punctuation"
            );
        }
    }

    #[test]
    fn stop_is_stop_in_any_case() {
        for b in ["stop", "Stop", "sToP", "ＳＴＯＰ", "stop!", " STOP\n"] {
            assert_eq!(parse(b), Command::Stop, "{b}");
        }
    }

    #[test]
    fn yes_is_accept_not_opt_in() {
        assert_eq!(parse("yes"), Command::Accept { code: None });
        assert_eq!(parse("start"), Command::Start);
    }

    #[test]
    fn a_code_may_follow_accept_decline_and_done() {
        assert_eq!(parse("YES 17"), Command::Accept { code: code("17") });
        assert_eq!(parse("yes17"), Command::Accept { code: code("17") });
        assert_eq!(parse("接 17"), Command::Accept { code: code("17") });
        assert_eq!(parse("接17"), Command::Accept { code: code("17") });
        assert_eq!(parse("1 17"), Command::Accept { code: code("17") });
        assert_eq!(parse("y#4711"), Command::Accept { code: code("4711") });
        assert_eq!(parse("NO 17"), Command::Decline { code: code("17") });
        assert_eq!(parse("不，17"), Command::Decline { code: code("17") });
        assert_eq!(parse("2 17"), Command::Decline { code: code("17") });
        assert_eq!(parse("完成17"), Command::Done { code: code("17") });
        assert_eq!(
            parse("done 123456"),
            Command::Done {
                code: code("123456")
            }
        );
    }

    #[test]
    fn full_width_letters_digits_and_spaces_are_accepted() {
        assert_eq!(parse("ＹＥＳ　１７"), Command::Accept { code: code("17") });
        assert_eq!(parse("ｙｅｓ１７！"), Command::Accept { code: code("17") });
        assert_eq!(parse("１"), Command::Accept { code: None });
        assert_eq!(parse("完成　１７。"), Command::Done { code: code("17") });
    }

    #[test]
    fn chinese_punctuation_around_the_word_is_ignored() {
        for b in [
            "接！",
            "“接”",
            "【好】",
            "是。。。",
            "？不？",
            "完成～",
            "（积分）",
        ] {
            assert!(!matches!(parse(b), Command::Unknown(_)), "{b}");
        }
    }

    #[test]
    fn bad_codes_and_extra_words_are_unknown() {
        for b in [
            "YES 7",
            "YES 1234567",
            "OFF 17",
            "STOP 17",
            "117",
            "17",
            "yes please",
            "yes 17 thanks",
            "YESS",
            "好的",
            "",
            "   ",
            "。",
            "OK",
        ] {
            assert!(matches!(parse(b), Command::Unknown(_)), "{b}");
        }
    }

    #[test]
    fn unknown_keeps_the_body_without_surrounding_whitespace() {
        assert_eq!(
            parse("  hello there \n"),
            Command::Unknown("hello there".into())
        );
    }

    #[test]
    fn offer_codes_are_two_to_six_digits() {
        assert!(OfferCode::parse("17").is_ok());
        assert!(OfferCode::parse("１７").is_ok());
        assert!(OfferCode::parse("999999").is_ok());
        assert!(OfferCode::parse("7").is_err());
        assert!(OfferCode::parse("1234567").is_err());
        assert!(OfferCode::parse("1a").is_err());
        assert!(OfferCode::parse("").is_err());
        assert_eq!(OfferCode::from_number(0).as_str(), "10");
        assert_eq!(OfferCode::from_number(89).as_str(), "99");
        assert_eq!(OfferCode::from_number(90).as_str(), "100");
    }

    #[test]
    fn ratings_are_one_to_five() {
        for (b, want) in [
            ("1", Some(1)),
            ("5", Some(5)),
            (" 3。", Some(3)),
            ("４", Some(4)),
            ("５！", Some(5)),
            ("0", None),
            ("6", None),
            ("10", None),
            ("5 stars but late", None),
            ("很好", None),
            ("", None),
        ] {
            assert_eq!(parse_rating(b), want, "{b}");
        }
    }

    fn full_width(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap(),
                ' ' => '\u{3000}',
                _ => c,
            })
            .collect()
    }

    fn random_case(s: &str, mask: u64) -> String {
        s.chars()
            .enumerate()
            .map(|(i, c)| {
                if mask >> (i % 64) & 1 == 1 {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
            .collect()
    }

    const PUNCT: &[&str] = &[
        "", " ", "。", "！", "，", "？", "!", ".", "  ", "\n", "…", "～",
    ];

    proptest! {
        #[test]
        fn parsing_never_panics(body in any::<String>()) {
            let _ = parse(&body);
            let _ = parse_rating(&body);
            let _ = OfferCode::parse(&body);
        }

        #[test]
        fn parsing_unicode_noise_never_panics(body in "[\\PC\u{3000}\u{FF01}-\u{FF5E}]{0,12}") {
            let _ = parse(&body);
        }

        #[test]
        fn every_accept_variant_parses_to_accept_with_its_code(
            word in prop::sample::select(ACCEPT_WORDS),
            code in "[0-9]{2,6}",
            sep in prop::sample::select(&[" ", "  ", "#", ":", "，", "\u{3000}", ""][..]),
            pre in prop::sample::select(PUNCT),
            post in prop::sample::select(PUNCT),
            mask in any::<u64>(),
            wide in any::<bool>(),
            with_code in any::<bool>(),
        ) {
            // A digit word needs a separator before its code.
            let sep = if sep.is_empty() && word == "1" { " " } else { sep };
            let mut body = if with_code { format!("{word}{sep}{code}") } else { word.to_string() };
            body = random_case(&body, mask);
            if wide { body = full_width(&body); }
            let body = format!("{pre}{body}{post}");
            let want = with_code.then(|| OfferCode::parse(&code).unwrap());
            prop_assert_eq!(parse(&body), Command::Accept { code: want });
        }

        #[test]
        fn decline_and_done_variants_keep_their_code(
            word in prop::sample::select(&["NO", "N", "不", "否", "DONE", "完成"][..]),
            code in "[0-9]{2,6}",
            mask in any::<u64>(),
        ) {
            let body = random_case(&format!("{word} {code}"), mask);
            let code = Some(OfferCode::parse(&code).unwrap());
            let got = parse(&body);
            let ok = matches!(&got, Command::Decline { code: c } | Command::Done { code: c } if *c == code);
            prop_assert!(ok, "{:?}", got);
        }

        #[test]
        fn unrelated_text_is_unknown(body in "[a-zA-Z ]{0,20}[a-zA-Z]{4,}[a-zA-Z ]{1,20}") {
            let words = ["YES", "DONE", "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "QUIT",
                "START", "UNSTOP", "POINTS", "HELP", "OPTOUT", "REVOKE"];
            let t = body.trim().to_ascii_uppercase();
            prop_assume!(!words.contains(&t.as_str()));
            prop_assert_eq!(parse(&body), Command::Unknown(body.trim().to_string()));
        }

        #[test]
        fn unrelated_chinese_text_is_unknown(body in "[\u{4e00}-\u{9fa5}]{3,10}") {
            prop_assert_eq!(parse(&body), Command::Unknown(body.clone()));
        }

        #[test]
        fn ratings_in_range_are_read_back(r in 1u8..=5, wide in any::<bool>(), post in prop::sample::select(PUNCT)) {
            let body = r.to_string();
            let body = if wide { full_width(&body) } else { body };
            prop_assert_eq!(parse_rating(&format!(" {body}{post}")), Some(r));
        }
    }
}

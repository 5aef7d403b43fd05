//! Classifying a resident's SMS by keywords (Chinese and English) into a category.
//!
//! Any emergency word wins outright: a text that mentions fainting is never filed as an
//! errand. Otherwise each category scores the summed weight of the words it matched
//! (a Chinese word weighs its number of characters, an English one two per word), so the
//! more specific wording decides: "陪我聊天" is companionship (聊天 outweighs 陪), "陪我去医院
//! 取药" is an escort (陪 + 医院 outweigh 取药). A tie goes to the category listed first in
//! [`KEYWORDS`]. No keyword at all is `None` (the caller files `other`, `no_keyword`).
//!
//! English words match at the start of a word, so a stem covers its forms ("leak" matches
//! "leaking", "leaks") but not the middle of another word ("fix" does not match "prefix").

use crate::domain::Category;

/// The keyword lists, in tie-break order.
pub const KEYWORDS: &[(Category, &[&str])] = &[
    (
        Category::Emergency,
        &[
            "救命",
            "急救",
            "晕倒",
            "昏倒",
            "胸痛",
            "胸口痛",
            "喘不过气",
            "摔倒",
            "中风",
            "emergency",
            "ambulance",
            "chest pain",
            "faint",
            "passed out",
            "collapse",
            "unconscious",
            "can't breathe",
            "cannot breathe",
            "heart attack",
            "stroke",
            "i fell",
        ],
    ),
    (
        Category::Escort,
        &[
            "陪",
            "看病",
            "医院",
            "诊所",
            "复诊",
            "挂号",
            "体检",
            "hospital",
            "doctor",
            "clinic",
            "appointment",
            "accompany",
            "checkup",
        ],
    ),
    (
        Category::Repair,
        &[
            "水管",
            "漏水",
            "停电",
            "修",
            "坏了",
            "跳闸",
            "灯泡",
            "堵",
            "repair",
            "fix",
            "leak",
            "pipe",
            "plumb",
            "power cut",
            "power outage",
            "no power",
            "no electricity",
            "broken",
            "light bulb",
            "blocked",
            "clogged",
        ],
    ),
    (
        Category::Errands,
        &[
            "买",
            "取药",
            "拿药",
            "缴费",
            "交费",
            "代办",
            "跑腿",
            "快递",
            "buy",
            "shopping",
            "groceries",
            "grocery",
            "pick up",
            "medicine",
            "prescription",
            "pay",
            "bill",
            "errand",
            "parcel",
        ],
    ),
    (
        Category::Companion,
        &[
            "聊天",
            "看看我",
            "探望",
            "陪伴",
            "孤单",
            "寂寞",
            "说说话",
            "chat",
            "talk",
            "lonely",
            "visit",
            "check on me",
            "company",
            "keep me company",
        ],
    ),
];

fn weight(word: &str) -> usize {
    if word.is_ascii() {
        2 * word.split(' ').count()
    } else {
        word.chars().count()
    }
}

/// Lower-cases, turns full-width ASCII into ASCII, and reduces everything that is not a
/// letter, digit or apostrophe to single spaces, with a space at both ends.
fn normalize(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2);
    out.push(' ');
    for c in body.chars() {
        let c = match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '’' => '\'',
            _ => c,
        };
        if c.is_alphanumeric() || c == '\'' {
            out.extend(c.to_lowercase());
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

fn matches(text: &str, word: &str) -> bool {
    if word.is_ascii() {
        // At the start of a word: preceded by a space, or by a Chinese character.
        text.match_indices(word).any(|(i, _)| {
            text[..i]
                .chars()
                .next_back()
                .is_none_or(|c| c == ' ' || !c.is_ascii())
        })
    } else {
        text.contains(word)
    }
}

/// The category a resident's SMS asks for, or `None` when no keyword is found.
pub fn classify(body: &str) -> Option<Category> {
    let text = normalize(body);
    let mut best: Option<(Category, usize)> = None;
    for (category, words) in KEYWORDS {
        let score: usize = words
            .iter()
            .filter(|w| matches(&text, w))
            .map(|w| weight(w))
            .sum();
        if score == 0 {
            continue;
        }
        if *category == Category::Emergency {
            return Some(Category::Emergency);
        }
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((*category, score));
        }
    }
    best.map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_briefs_chinese_words_classify() {
        let table = [
            ("家里水管坏了", Category::Repair),
            ("厨房漏水", Category::Repair),
            ("停电了怎么办", Category::Repair),
            ("门锁要修一下", Category::Repair),
            ("帮我买点菜", Category::Errands),
            ("帮忙取药", Category::Errands),
            ("要去缴费", Category::Errands),
            ("有事要代办", Category::Errands),
            ("陪我去一趟", Category::Escort),
            ("明天看病", Category::Escort),
            ("要去医院复查", Category::Escort),
            ("想找人聊天", Category::Companion),
            ("有空来看看我", Category::Companion),
            ("希望有人探望", Category::Companion),
            ("救命", Category::Emergency),
            ("要急救", Category::Emergency),
            ("老伴晕倒了", Category::Emergency),
            ("胸痛得厉害", Category::Emergency),
        ];
        for (body, want) in table {
            assert_eq!(classify(body), Some(want), "{body}");
        }
    }

    #[test]
    fn english_words_classify() {
        let table = [
            ("My kitchen pipe is leaking", Category::Repair),
            ("Power cut since this morning", Category::Repair),
            ("Can someone FIX my door?", Category::Repair),
            ("Please buy groceries for me", Category::Errands),
            ("pick up my prescription", Category::Errands),
            ("I need to pay the gas bill", Category::Errands),
            (
                "Doctor appointment tomorrow, need someone to accompany me",
                Category::Escort,
            ),
            ("take me to the hospital", Category::Escort),
            ("I'm lonely, would like a chat", Category::Companion),
            ("could someone visit me", Category::Companion),
            ("Chest pain!!", Category::Emergency),
            ("my husband fainted", Category::Emergency),
            ("call an ambulance", Category::Emergency),
            ("I can’t breathe", Category::Emergency),
        ];
        for (body, want) in table {
            assert_eq!(classify(body), Some(want), "{body}");
        }
    }

    #[test]
    fn an_emergency_word_wins_over_everything() {
        assert_eq!(classify("去医院路上晕倒了"), Some(Category::Emergency));
        assert_eq!(
            classify("went to buy medicine and collapsed"),
            Some(Category::Emergency)
        );
    }

    #[test]
    fn the_more_specific_wording_decides() {
        assert_eq!(classify("陪我聊天"), Some(Category::Companion));
        assert_eq!(classify("陪我去医院取药"), Some(Category::Escort));
        assert_eq!(classify("帮我买药"), Some(Category::Errands));
    }

    #[test]
    fn english_stems_match_only_at_word_starts() {
        assert_eq!(classify("prefix"), None);
        assert_eq!(classify("repay"), None);
        assert_eq!(classify("leaks everywhere"), Some(Category::Repair));
        assert_eq!(classify("修fix"), Some(Category::Repair));
    }

    #[test]
    fn full_width_english_is_read() {
        assert_eq!(classify("ＦＩＸ　ｐｉｐｅ"), Some(Category::Repair));
    }

    #[test]
    fn no_keyword_is_none() {
        for b in ["", "你好", "hello", "谢谢你们", "what time is it", "。。。"] {
            assert_eq!(classify(b), None, "{b}");
        }
    }

    proptest! {
        #[test]
        fn classifying_never_panics(body in any::<String>()) {
            let _ = classify(&body);
        }

        #[test]
        fn an_emergency_word_anywhere_is_an_emergency(
            pre in "[a-z \u{4e00}-\u{4e30}]{0,10}",
            post in "[a-z \u{4e00}-\u{4e30}]{0,10}",
            i in 0usize..6,
        ) {
            let w = ["救命", "急救", "晕倒", "胸痛", " ambulance ", " chest pain "][i];
            prop_assert_eq!(classify(&format!("{pre}{w}{post}")), Some(Category::Emergency));
        }
    }
}

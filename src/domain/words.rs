//! The contract's fixed words. Each is stored and sent exactly as CONTRACT.md spells it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{word}` (expected one of: {expected})")]
pub struct UnknownWord {
    pub kind: &'static str,
    pub word: String,
    pub expected: &'static str,
}

macro_rules! word_enum {
    ($(#[$m:meta])* $name:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl FromStr for $name {
            type Err = UnknownWord;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownWord {
                        kind: $kind,
                        word: other.to_string(),
                        expected: concat!($($text, " "),+),
                    }),
                }
            }
        }
    };
}

word_enum!(
    /// What a request is about.
    Category, "category", {
        Repair => "repair", Errands => "errands", Escort => "escort",
        Companion => "companion", Other => "other", Emergency => "emergency",
    }
);

word_enum!(
    /// Urgency on the three-colour scale.
    Grade, "grade", { Red => "red", Yellow => "yellow", Blue => "blue" }
);

word_enum!(
    /// The life of a request (CONTRACT.md, "Request statuses").
    Status, "status", {
        New => "new", Offering => "offering", Assigned => "assigned", Done => "done",
        Closed => "closed", Escalated => "escalated", Cancelled => "cancelled",
    }
);

word_enum!(
    /// Why a request needs an operator.
    EscalationReason, "escalation reason", {
        CallBack => "call_back", NoVolunteer => "no_volunteer", Sla => "sla",
        UnknownSender => "unknown_sender", NoKeyword => "no_keyword", Revisit => "revisit",
        Emergency => "emergency", DeliveryFailed => "delivery_failed", Operator => "operator",
    }
);

word_enum!(
    /// How a request reached us.
    Channel, "channel", { Voice => "voice", Sms => "sms", Operator => "operator" }
);

word_enum!(
    /// The state of one offer to one volunteer.
    OfferStatus, "offer status", {
        Pending => "pending", Accepted => "accepted", Declined => "declined",
        Expired => "expired", Withdrawn => "withdrawn", Failed => "failed",
    }
);

word_enum!(
    /// Prompt and message language of a resident or volunteer.
    Language, "language", { Zh => "zh", En => "en" }
);

word_enum!(
    /// A console login's powers.
    Role, "role", { Admin => "admin", Operator => "operator" }
);

impl Category {
    /// The default script's grade for a category (CONTRACT.md, "The default IVR menu").
    pub fn default_grade(&self) -> Grade {
        match self {
            Category::Emergency => Grade::Red,
            Category::Repair | Category::Escort => Grade::Yellow,
            Category::Errands | Category::Companion | Category::Other => Grade::Blue,
        }
    }

    /// Categories a volunteer can have as a skill (all but `emergency`).
    pub fn is_skill(&self) -> bool {
        *self != Category::Emergency
    }

    pub fn label(&self, lang: Language) -> &'static str {
        match (self, lang) {
            (Category::Repair, Language::Zh) => "维修",
            (Category::Errands, Language::Zh) => "跑腿代办",
            (Category::Escort, Language::Zh) => "陪同就医办事",
            (Category::Companion, Language::Zh) => "陪伴探访",
            (Category::Other, Language::Zh) => "其他求助",
            (Category::Emergency, Language::Zh) => "紧急情况",
            (Category::Repair, Language::En) => "repair",
            (Category::Errands, Language::En) => "errands",
            (Category::Escort, Language::En) => "escort",
            (Category::Companion, Language::En) => "companion visit",
            (Category::Other, Language::En) => "other help",
            (Category::Emergency, Language::En) => "emergency",
        }
    }
}

impl Status {
    /// Statuses in which a request still needs something to happen.
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            Status::New | Status::Offering | Status::Assigned | Status::Escalated
        )
    }
}

impl Language {
    /// Twilio's `language` attribute for speech in this language.
    pub fn speech_code(&self) -> &'static str {
        match self {
            Language::Zh => "zh-CN",
            Language::En => "en-US",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips_through_its_text() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>().unwrap(), *c);
            assert_eq!(
                serde_json::to_string(c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        for r in EscalationReason::ALL {
            assert_eq!(r.as_str().parse::<EscalationReason>().unwrap(), *r);
            assert_eq!(
                serde_json::to_string(r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), *s);
        }
    }

    #[test]
    fn an_unknown_word_names_what_was_expected() {
        let err = "plumbing".parse::<Category>().unwrap_err();
        assert!(err.to_string().contains("repair"), "{err}");
    }

    #[test]
    fn default_grades_follow_the_contract() {
        assert_eq!(Category::Emergency.default_grade(), Grade::Red);
        assert_eq!(Category::Repair.default_grade(), Grade::Yellow);
        assert_eq!(Category::Escort.default_grade(), Grade::Yellow);
        assert_eq!(Category::Errands.default_grade(), Grade::Blue);
        assert_eq!(Category::Companion.default_grade(), Grade::Blue);
        assert_eq!(Category::Other.default_grade(), Grade::Blue);
    }
}

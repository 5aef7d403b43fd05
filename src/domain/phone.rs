//! `PhoneNumber`: an E.164 number, parsed once at the edge.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number is empty")]
    Empty,
    #[error("`{0}` is not a phone number")]
    Unparseable(String),
    #[error("`{0}` is not a valid number for its region")]
    Invalid(String),
    #[error("unknown region `{0}` (expected a two-letter code such as CN)")]
    Region(String),
}

/// A phone number in E.164 form (`+8613800138000`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a number written in any common form; numbers without a country
    /// code are read in `default_region` (e.g. `CN`).
    pub fn parse(input: &str, default_region: &str) -> Result<Self, PhoneError> {
        let cleaned: String = input
            .trim()
            .chars()
            .map(|c| match c {
                // Full-width digits and plus, as typed on Chinese keyboards.
                '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
                '＋' => '+',
                _ => c,
            })
            .collect();
        if cleaned.is_empty() {
            return Err(PhoneError::Empty);
        }
        let region = parse_region(default_region)?;
        // A number with its country code is read without a region: the crate
        // misjudges validity when the default region differs from the number's.
        let region = if cleaned.starts_with('+') {
            None
        } else {
            Some(region)
        };
        let number = phonenumber::parse(region, &cleaned)
            .map_err(|_| PhoneError::Unparseable(input.trim().to_string()))?;
        if !phonenumber::is_valid(&number) {
            return Err(PhoneError::Invalid(input.trim().to_string()));
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// Accepts a number already in E.164 form (as stored); used when reading rows.
    pub fn from_e164(s: &str) -> Result<Self, PhoneError> {
        if s.starts_with('+')
            && s.len() >= 4
            && s.len() <= 16
            && s[1..].bytes().all(|b| b.is_ascii_digit())
        {
            Ok(Self(s.to_string()))
        } else {
            Err(PhoneError::Unparseable(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether SMS can reach this number (mobiles; unknown types are assumed mobile).
    pub fn is_mobile(&self) -> bool {
        use phonenumber::metadata::DATABASE;
        match phonenumber::parse(None, &self.0) {
            Ok(n) => !matches!(n.number_type(&DATABASE), phonenumber::Type::FixedLine),
            Err(_) => true,
        }
    }

    /// For logs: country code, first three digits, last four (`+86 138****5678`).
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

/// Masks anything that looks like a phone number for logging, keeping only
/// enough to tell numbers apart.
pub fn mask_phone(raw: &str) -> String {
    let digits: String = raw.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() < 8 {
        return "***".to_string();
    }
    // Country code: take 2 digits for +86 style numbers, 1 for +1.
    let cc_len = if digits.starts_with('1') || digits.starts_with('7') {
        1
    } else {
        2
    };
    let (cc, rest) = digits.split_at(cc_len);
    let head = &rest[..3.min(rest.len())];
    let tail = &rest[rest.len().saturating_sub(4)..];
    format!("+{cc} {head}****{tail}")
}

fn parse_region(code: &str) -> Result<phonenumber::country::Id, PhoneError> {
    code.trim()
        .to_ascii_uppercase()
        .parse::<phonenumber::country::Id>()
        .map_err(|_| PhoneError::Region(code.to_string()))
}

/// Checks a region code as configuration is loaded.
pub fn validate_region(code: &str) -> Result<(), PhoneError> {
    parse_region(code).map(|_| ())
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    // Debug output ends up in logs: mask it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::from_e164(&s)
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn local_and_international_forms_give_the_same_number() {
        let a = PhoneNumber::parse("13800138000", "CN").unwrap();
        let b = PhoneNumber::parse("+86 138 0013 8000", "CN").unwrap();
        let c = PhoneNumber::parse("＋８６１３８００１３８０００", "CN").unwrap();
        assert_eq!(a.as_str(), "+8613800138000");
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn a_fixed_line_is_not_a_mobile() {
        let landline = PhoneNumber::parse("023 6358 0580", "CN").unwrap();
        assert_eq!(landline.as_str(), "+862363580580");
        assert!(!landline.is_mobile());
        assert!(PhoneNumber::parse("13800138000", "CN").unwrap().is_mobile());
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(PhoneNumber::parse("", "CN"), Err(PhoneError::Empty));
        assert!(PhoneNumber::parse("hello", "CN").is_err());
        assert!(PhoneNumber::parse("123", "CN").is_err());
        assert!(PhoneNumber::parse("13800138000", "XX").is_err());
    }

    #[test]
    fn masking_keeps_head_and_tail_only() {
        assert_eq!(mask_phone("+8613800135678"), "+86 138****5678");
        let p = PhoneNumber::parse("13800135678", "CN").unwrap();
        assert_eq!(format!("{p:?}"), "PhoneNumber(+86 138****5678)");
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = PhoneNumber::parse(&s, "CN");
        }

        #[test]
        fn every_chinese_mobile_round_trips(n in 0u32..100_000_000) {
            let local = format!("139{n:08}");
            let p = PhoneNumber::parse(&local, "CN").unwrap();
            prop_assert_eq!(PhoneNumber::parse(p.as_str(), "US").unwrap(), p.clone());
            prop_assert_eq!(PhoneNumber::from_e164(p.as_str()).unwrap(), p);
        }
    }
}

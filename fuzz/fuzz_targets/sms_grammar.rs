//! The volunteers' SMS grammar, the rating reply, offer codes, the keyword
//! classifier and phone numbers: any bytes, no panic.
#![no_main]

use hotline580::dispatch::{commands, keywords};
use hotline580::domain::PhoneNumber;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = commands::parse(&text);
    let _ = commands::parse_rating(&text);
    let _ = commands::OfferCode::parse(&text);
    let _ = keywords::classify(&text);
    if let Ok(p) = PhoneNumber::parse(&text, "CN") {
        assert!(PhoneNumber::from_e164(p.as_str()).is_ok());
    }
});

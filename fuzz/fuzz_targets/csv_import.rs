//! The CSV import of volunteers and residents: any bytes, no panic, and every
//! row accepted has an E.164 number.
#![no_main]

use hotline580::domain::PhoneNumber;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = hotline580::import::parse_volunteers(data, "CN") {
        for r in rows {
            assert!(PhoneNumber::from_e164(r.phone.as_str()).is_ok());
        }
    }
    let _ = hotline580::import::parse_residents(data, "CN");
});

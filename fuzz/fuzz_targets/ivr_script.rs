//! The IVR script parser: any text, errors that name the file, no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(errors) = hotline580::ivr::parse_script("f.toml", &text) {
        for e in errors {
            assert!(e.to_string().starts_with("f.toml:"));
        }
    }
});

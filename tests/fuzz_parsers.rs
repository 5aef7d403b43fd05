//! Large property runs of every parser of outside input: none may panic,
//! whatever it is given. 10,000 cases for the cheap parsers and a few
//! thousand for the slow ones (a whole script, phone metadata, CSV) keep
//! `cargo test` fast and the same at every run; `HOTLINE580_FUZZ_SCALE=10` runs ten
//! times as many, new ones each time.
//! Failures are shrunk by proptest and belong in `tests/corpus/` once found.

use hotline580::dispatch::{commands, keywords};
use hotline580::domain::PhoneNumber;
use hotline580::ivr::{self, CallState, Input, StepContext};
use proptest::prelude::*;

fn cases(n: u32) -> ProptestConfig {
    let scale: u32 = std::env::var("HOTLINE580_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    ProptestConfig {
        cases: n.saturating_mul(scale.max(1)),
        failure_persistence: None,
        // `cargo test` runs the same cases every time, so the suite never fails by
        // chance; a scaled run explores new ones.
        rng_seed: if scale > 1 {
            proptest::test_runner::RngSeed::Random
        } else {
            proptest::test_runner::RngSeed::Fixed(580)
        },
        ..ProptestConfig::default()
    }
}

/// Text that looks like what volunteers send, mixed with anything at all.
fn sms_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \t,.!？！。]{0,3}(yes|y|no|n|done|off|on|stop|start|unstop|points|help|接|是|好|不|否|完成|休息|上线|积分|帮助|[0-9０-９]{0,12})[ \t,.!？！。#]{0,3}[0-9０-９A-Za-z]{0,10}",
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// Parsed once: the webhook cases only need it as a value.
fn shipped_script() -> &'static ivr::Script {
    static SCRIPT: std::sync::OnceLock<ivr::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| ivr::default_script().expect("the shipped script"))
}

proptest! {
    #![proptest_config(cases(10_000))]

    #[test]
    fn the_sms_grammar_never_panics(body in sms_text()) {
        let _ = commands::parse(&body);
        let _ = commands::parse_rating(&body);
        let _ = commands::OfferCode::parse(&body);
        let _ = keywords::classify(&body);
    }

    /// A webhook's body, however broken, parsed and fed to the signature check
    /// and the IVR engine as the extractor and the step handler do.
    #[test]
    fn webhook_forms_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        signature in any::<String>(),
        path in "/twilio/[a-z/?=&%0-9]{0,20}",
    ) {
        let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let url = hotline580::telephony::signature::webhook_url("http://hotline.test", &path);
        let _ = hotline580::telephony::signature::validate("token", &url, &params, &signature);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let input = Input::from_twilio(get);
        let script = shipped_script();
        let ctx = StepContext {
            staffed: false,
            operators_phone: None,
            emergency_number: "120".into(),
            action_base: "/twilio/voice/step".into(),
        };
        let start = ivr::step(script, &CallState::default(), &Input::Start { known: None }, &ctx);
        let r = ivr::step(script, &start.state, &input, &ctx);
        let _ = ivr::render(&r.actions);
    }
}

proptest! {
    // Phone metadata and CSV generation are slower: 3,000 cases each.
    #![proptest_config(cases(3_000))]

    #[test]
    fn phone_parsing_never_panics_and_round_trips(
        raw in prop_oneof![any::<String>(), "[+＋]?[0-9０-９ ()\\-.]{0,24}"],
        region in prop_oneof![Just("CN".to_string()), Just("US".to_string()), "[A-Za-z]{0,3}"],
    ) {
        if let Ok(p) = PhoneNumber::parse(&raw, &region) {
            prop_assert!(PhoneNumber::from_e164(p.as_str()).is_ok());
            prop_assert_eq!(PhoneNumber::parse(p.as_str(), "CN").ok(), Some(p.clone()));
        }
        let _ = PhoneNumber::from_e164(&raw);
    }

    #[test]
    fn the_csv_import_never_panics(
        rows in proptest::collection::vec(
            proptest::collection::vec("[a-zA-Z0-9 ,;\"\\n\\r.+\\-=@张大爷]{0,12}", 0..9),
            0..6,
        ),
        header in prop_oneof![
            Just("name,phone,lat,lon,skills,languages,max_active".to_string()),
            Just("name,phone,address,lat,lon,language,grid,contact".to_string()),
            "[a-z,]{0,40}",
        ],
    ) {
        let mut text = header;
        for r in rows {
            text.push('\n');
            text.push_str(&r.join(","));
        }
        if let Ok(rows) = hotline580::import::parse_volunteers(text.as_bytes(), "CN") {
            for r in rows {
                prop_assert!(PhoneNumber::from_e164(r.phone.as_str()).is_ok());
            }
        }
        let _ = hotline580::import::parse_residents(text.as_bytes(), "CN");
    }
}

proptest! {
    // Parsing a whole script is the slowest of these (milliseconds in a debug build).
    #![proptest_config(cases(2_000))]

    /// The shipped script with a slice replaced by anything: errors, never a panic,
    /// and every error names the file.
    #[test]
    fn the_ivr_script_parser_never_panics(
        at in 0usize..4096,
        cut in 0usize..64,
        insert in prop_oneof![any::<String>(), "[\\[\\]{}=\"'\\n a-z0-9_.]{0,16}"],
    ) {
        let shipped = ivr::DEFAULT_SCRIPT;
        let mut start = at.min(shipped.len());
        while !shipped.is_char_boundary(start) { start -= 1; }
        let mut end = (start + cut).min(shipped.len());
        while !shipped.is_char_boundary(end) { end -= 1; }
        let text = format!("{}{}{}", &shipped[..start], insert, &shipped[end..]);
        if let Err(errors) = ivr::parse_script("m.toml", &text) {
            prop_assert!(!errors.is_empty());
            for e in errors {
                let shown = e.to_string();
                prop_assert!(shown.starts_with("m.toml:"), "{}", shown);
            }
        }
    }
}

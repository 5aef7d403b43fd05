//! A webhook's body as the extractor reads it: form parsing, the signature
//! check, and the IVR engine's reading of Twilio's fields. No panic.
#![no_main]

use hotline580::ivr::{self, CallState, Input, StepContext};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn script() -> &'static ivr::Script {
    static S: OnceLock<ivr::Script> = OnceLock::new();
    S.get_or_init(|| ivr::default_script().expect("the shipped script"))
}

fuzz_target!(|data: &[u8]| {
    let params: Vec<(String, String)> = form_urlencoded::parse(data).into_owned().collect();
    let url = hotline580::telephony::signature::webhook_url("https://hotline.test", "/twilio/sms");
    let sig = params.first().map(|(_, v)| v.as_str()).unwrap_or("");
    let _ = hotline580::telephony::signature::validate("token", &url, &params, sig);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let ctx = StepContext {
        staffed: true,
        operators_phone: Some("+862363580000".into()),
        emergency_number: "120".into(),
        action_base: "/twilio/voice/step".into(),
    };
    let start = ivr::step(
        script(),
        &CallState::default(),
        &Input::Start { known: None },
        &ctx,
    );
    let r = ivr::step(script(), &start.state, &Input::from_twilio(get), &ctx);
    let _ = ivr::render(&r.actions);
});

//! The checked-in corpus of nasty inputs (`tests/corpus/`), replayed against
//! every parser of outside input: the volunteers' SMS grammar, the IVR script
//! parser and engine, the CSV import, phone numbers, and the Twilio webhooks
//! (unsigned: refused and nothing changes; signed: a clear 4xx or TwiML that
//! parses, never a 5xx).

mod common;
mod support;

use common::{ACCOUNT_SID, AUTH_TOKEN, Backend, PUBLIC_URL, TestApp};
use hotline580::dispatch::{commands, keywords};
use hotline580::domain::PhoneNumber;
use hotline580::ivr::{self, CallState, Input, KnownCaller, StepContext};
use std::panic::{AssertUnwindSafe, catch_unwind};
use support::fake_twilio::FakeTwilio;
use support::webhook::{Answer, post_raw, post_signed};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
const RESIDENT: &str = "+8613800000001";
const VOLUNTEER: &str = "+8613900000001";

/// Every corpus input: its file name and raw bytes; then the phone numbers, one each.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(format!("{CORPUS}/inputs"))
        .expect("tests/corpus/inputs")
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    all.sort();
    assert!(all.len() >= 40, "the corpus is checked in: {}", all.len());
    let phones = std::fs::read(format!("{CORPUS}/phones.txt")).unwrap();
    for (i, line) in phones.split(|b| *b == b'\n').enumerate() {
        if !line.is_empty() {
            all.push((format!("phones.txt:{}", i + 1), line.to_vec()));
        }
    }
    all
}

fn no_panic(name: &str, what: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        panic!("{what} panicked on corpus input {name}");
    }
}

fn context() -> StepContext {
    StepContext {
        staffed: true,
        operators_phone: Some("+862363580000".into()),
        emergency_number: "120".into(),
        action_base: "/twilio/voice/step".into(),
    }
}

#[test]
fn the_sms_grammar_and_phone_numbers_take_every_corpus_input() {
    for (name, bytes) in corpus() {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        no_panic(&name, "the SMS grammar", || {
            let _ = commands::parse(&text);
            let _ = commands::parse_rating(&text);
            let _ = commands::OfferCode::parse(&text);
            let _ = keywords::classify(&text);
        });
        no_panic(&name, "phone parsing", || {
            for region in ["CN", "US", "", "XX", "zz"] {
                if let Ok(p) = PhoneNumber::parse(&text, region) {
                    assert!(PhoneNumber::from_e164(p.as_str()).is_ok(), "{name}: {p:?}");
                    let _ = p.masked();
                    let _ = p.is_mobile();
                }
            }
            let _ = PhoneNumber::from_e164(&text);
        });
    }
    // The formats residents' and volunteers' numbers come in are read alike.
    for raw in [
        "13800138000",
        "+86 138 0013 8000",
        "0086 138 0013 8000",
        "＋８６１３８００１３８０００",
        "+86-138-0013-8000",
    ] {
        assert_eq!(
            PhoneNumber::parse(raw, "CN").map(|p| p.as_str().to_string()),
            Ok("+8613800138000".to_string()),
            "{raw}"
        );
    }
}

#[test]
fn the_ivr_script_parser_and_engine_take_every_corpus_input() {
    let script = ivr::default_script().expect("the shipped script");
    let shipped = ivr::DEFAULT_SCRIPT;
    for (name, bytes) in corpus() {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        no_panic(&name, "the script parser", || {
            for candidate in [
                text.clone(),
                format!("{shipped}\n{text}"),
                shipped.replacen("\"", &format!("\"{}", text.replace('"', "")), 1),
            ] {
                if let Err(errors) = ivr::parse_script("x.toml", &candidate) {
                    assert!(!errors.is_empty());
                    for e in errors {
                        assert!(e.to_string().starts_with("x.toml:"), "{name}: {e}");
                    }
                }
            }
        });
        no_panic(&name, "the IVR engine", || {
            let known = Some(KnownCaller {
                name: text.clone(),
                language: hotline580::domain::Language::Zh,
                address: Some(text.clone()),
            });
            let mut state = CallState::default();
            let r = ivr::step(&script, &state, &Input::Start { known }, &context());
            state = r.state;
            let _ = ivr::render(&r.actions);
            for field in ["Digits", "SpeechResult", "RecordingUrl", "DialCallStatus"] {
                let input = Input::from_twilio(|k| (k == field).then_some(text.as_str()));
                let r = ivr::step(&script, &state, &input, &context());
                let xml = ivr::render(&r.actions);
                assert_xml(&name, &xml);
                state = r.state;
            }
        });
    }
}

#[test]
fn the_csv_import_takes_every_corpus_input() {
    const VOL: &str = "name,phone,lat,lon,skills,languages,max_active\n";
    const RES: &str = "name,phone,address,lat,lon,language,grid,contact\n";
    for (name, bytes) in corpus() {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let field = text.replace(['\n', '\r'], " ");
        let inputs: Vec<Vec<u8>> = vec![
            bytes.clone(),
            [VOL.as_bytes(), &bytes].concat(),
            [RES.as_bytes(), &bytes].concat(),
            format!("{VOL}{field},13800138000,29.5,106.5,repair,zh,1\n").into_bytes(),
            format!("{VOL}A,{field},29.5,106.5,repair,zh,1\n").into_bytes(),
            format!("{VOL}A,13800138000,{field},106.5,{field},{field},{field}\n").into_bytes(),
            format!(
                "{RES}\"{}\",13800138000,\"{}\",29.5,106.5,zh,{field},sms\n",
                field.replace('"', "\"\""),
                field.replace('"', "\"\"")
            )
            .into_bytes(),
        ];
        for input in inputs {
            no_panic(&name, "the CSV import", || {
                match hotline580::import::parse_volunteers(input.as_slice(), "CN") {
                    Ok(rows) => assert!(
                        rows.iter()
                            .all(|r| PhoneNumber::from_e164(r.phone.as_str()).is_ok())
                    ),
                    Err(e) => assert!(!e.to_string().is_empty()),
                }
                let _ = hotline580::import::parse_residents(input.as_slice(), "CN");
            });
        }
    }
}

/// A 200 answer must be TwiML a parser reads to the end.
fn assert_xml(name: &str, xml: &str) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0i32;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(_) => {}
            Err(e) => panic!("{name}: the TwiML does not parse ({e}): {xml}"),
        }
    }
    assert_eq!(depth, 0, "{name}: unbalanced TwiML: {xml}");
    assert!(xml.contains("<Response"), "{name}: {xml}");
}

async fn counts(app: &TestApp) -> Vec<i64> {
    let mut all = Vec::new();
    for sql in [
        "SELECT COUNT(*) FROM requests",
        "SELECT COUNT(*) FROM calls",
        "SELECT COUNT(*) FROM call_steps",
        "SELECT COUNT(*) FROM messages",
        "SELECT COUNT(*) FROM outbox",
        "SELECT COUNT(*) FROM events",
        "SELECT COUNT(*) FROM offers",
        "SELECT COUNT(*) FROM volunteers WHERE available AND NOT opted_out",
    ] {
        all.push(
            hotline580::on_db!(&app.state.db, |c| sqlx::query_scalar(sql)
                .fetch_one(c)
                .await)
            .unwrap(),
        );
    }
    all
}

const PATHS: &[&str] = &[
    "/twilio/voice",
    "/twilio/sms",
    "/twilio/status",
    "/twilio/voice/step?seq=1",
    "/twilio/voice/step/transcription?what=name",
    "/twilio/say?text=x",
];

/// Over this, a body may be refused before it is read (see `post_raw`).
const BODY_LIMIT: usize = 64 * 1024;

fn judge(name: &str, what: &str, a: &Answer) {
    assert!(a.status != 0, "{what} with {name}: no answer: {}", a.body);
    assert!(
        a.status < 500,
        "{what} with {name}: {} {}",
        a.status,
        a.body
    );
    if a.status == 200 {
        assert_xml(&format!("{what} with {name}"), &a.body);
    }
}

async fn every_webhook_refuses_or_answers_politely_whatever_is_posted(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let base = twilio.base_url();
    let app = TestApp::spawn_with(
        backend,
        &[
            ("HOTLINE580__TELEPHONY__PROVIDER", "twilio"),
            ("HOTLINE580__TWILIO__ACCOUNT_SID", ACCOUNT_SID),
            ("HOTLINE580__TWILIO__AUTH_TOKEN", AUTH_TOKEN),
            ("HOTLINE580__TWILIO__API_BASE", base.as_str()),
            ("HOTLINE580__DISPATCH__QUIET_HOURS", "off"),
            ("HOTLINE580__LIMITS__WEBHOOK_PER_MINUTE", "1000000"),
            ("HOTLINE580__LIMITS__INTAKE_PER_HOUR", "1000000"),
        ],
    )
    .await;
    for sql in [
        "INSERT INTO residents (name, phone, address, lat, lon, language, grid, created_at, updated_at) \
         VALUES ('张大爷', '+8613800000001', '解放碑1号', 29.56, 106.57, 'zh', '网格3', 0, 0)",
        "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
         VALUES ('近邻', '+8613900000001', 29.561, 106.571, 'repair;errands;escort;companion;other', 'zh', 1, 0, 0)",
    ] {
        hotline580::on_db!(&app.state.db, |c| sqlx::query(sql)
            .execute(c)
            .await
            .map(|_| ()))
        .unwrap();
    }
    let corpus = corpus();

    // Unsigned (and wrongly signed): refused, nothing changes. A fresh connection for
    // each post: after refusing an oversized body unread the service closes the
    // connection, and a pooled client could send the next post into that closing socket.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let before = counts(&app).await;
    for (name, bytes) in &corpus {
        for path in PATHS {
            let url = app.url(path);
            for sig in [None, Some("bm90IGEgc2lnbmF0dXJl"), Some("=?=")] {
                let a = post_raw(&client, &url, bytes.clone(), sig).await;
                let cut_off = a.status == 0 && bytes.len() > BODY_LIMIT;
                assert!(
                    a.status == 403 || a.status == 413 || cut_off,
                    "unsigned {path} with {name}: {} {}",
                    a.status,
                    a.body
                );
            }
        }
    }
    assert_eq!(counts(&app).await, before, "unsigned posts changed nothing");

    // Signed: a clear 4xx or TwiML that parses; never a 5xx.
    let signed = |path: &'static str, params: Vec<(&'static str, String)>| {
        let app = &app;
        let client = &client;
        async move {
            let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_signed(client, &app.address, PUBLIC_URL, AUTH_TOKEN, path, &p).await
        }
    };
    for (i, (name, bytes)) in corpus.iter().enumerate() {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let call = format!("CAh{i}");
        let a = signed(
            "/twilio/voice",
            vec![("CallSid", call.clone()), ("From", RESIDENT.into())],
        )
        .await;
        judge(name, "voice start", &a);
        for (path, params) in [
            (
                "/twilio/voice",
                vec![("CallSid", text.clone()), ("From", text.clone())],
            ),
            (
                "/twilio/voice",
                vec![("CallSid", format!("CAx{i}")), ("From", text.clone())],
            ),
            (
                "/twilio/voice/step?seq=1",
                vec![("CallSid", call.clone()), ("Digits", text.clone())],
            ),
            (
                "/twilio/voice/step?seq=1",
                vec![("CallSid", call.clone()), ("SpeechResult", text.clone())],
            ),
            (
                "/twilio/voice/step?seq=2",
                vec![
                    ("CallSid", call.clone()),
                    ("RecordingUrl", text.clone()),
                    ("TranscriptionText", text.clone()),
                ],
            ),
            ("/twilio/voice/step?seq=99", vec![("CallSid", text.clone())]),
            (
                "/twilio/voice/step/transcription?what=name",
                vec![
                    ("CallSid", call.clone()),
                    ("TranscriptionText", text.clone()),
                ],
            ),
            (
                "/twilio/sms",
                vec![
                    ("MessageSid", format!("SMv{i}")),
                    ("From", VOLUNTEER.into()),
                    ("Body", text.clone()),
                ],
            ),
            (
                "/twilio/sms",
                vec![
                    ("MessageSid", format!("SMr{i}")),
                    ("From", RESIDENT.into()),
                    ("Body", text.clone()),
                ],
            ),
            (
                "/twilio/sms",
                vec![
                    ("MessageSid", format!("SMu{i}")),
                    ("From", "+8613700000009".into()),
                    ("Body", text.clone()),
                ],
            ),
            (
                "/twilio/sms",
                vec![
                    ("MessageSid", text.clone()),
                    ("From", text.clone()),
                    ("Body", text.clone()),
                ],
            ),
            (
                "/twilio/status",
                vec![
                    ("MessageSid", text.clone()),
                    ("MessageStatus", "failed".into()),
                    ("ErrorCode", text.clone()),
                ],
            ),
            (
                "/twilio/status",
                vec![("CallSid", call.clone()), ("CallStatus", text.clone())],
            ),
            (
                "/twilio/status",
                vec![
                    ("CallSid", text.clone()),
                    ("CallStatus", "completed".into()),
                ],
            ),
        ] {
            let a = signed(path, params).await;
            judge(name, path, &a);
        }
        // The raw bytes as a signed body (signed over what a form parser reads from them).
        for path in PATHS {
            let params: Vec<(String, String)> =
                form_urlencoded::parse(bytes).into_owned().collect();
            let sig = hotline580::telephony::signature::expected_signature(
                AUTH_TOKEN,
                &format!("{PUBLIC_URL}{path}"),
                &params,
            );
            let a = post_raw(&client, &app.url(path), bytes.clone(), Some(&sig)).await;
            if !(a.status == 0 && bytes.len() > BODY_LIMIT) {
                judge(name, &format!("raw {path}"), &a);
            }
        }
    }
    // The service is still whole: a plain request is taken as usual.
    let a = signed(
        "/twilio/sms",
        vec![
            ("MessageSid", "SMfinal".into()),
            ("From", VOLUNTEER.into()),
            ("Body", "POINTS".into()),
        ],
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("<Message>"), "{a:?}");
}

on_both_backends!(every_webhook_refuses_or_answers_politely_whatever_is_posted);

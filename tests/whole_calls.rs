//! Whole calls played through the HTTP surface as Twilio plays them: signed webhooks,
//! the `twilio` provider against a fake of its REST API, every answer parsed as XML.
//! The default script's menu (CONTRACT, "The default IVR menu") key by key, known and
//! unknown callers, speech, `*`, `0`, timeouts, three misses, emergency, retries.

mod common;
mod support;

use common::{ACCOUNT_SID, AUTH_TOKEN, Backend, PUBLIC_URL, TestApp};
use hotline580::domain::Role;
use hotline580::telephony::signature::expected_signature;
use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::{Value, json};
use support::fake_twilio::FakeTwilio;

const ZH_RESIDENT: &str = "+8613800000001";
const EN_RESIDENT: &str = "+8613800000002";
const STRANGER: &str = "+8613700009999";
const OPERATORS: &str = "+8613600000000";
const HOTLINE: &str = "+862363580580";
const PASSWORD: &str = "correct horse battery";
const VOLUNTEER: &str = "+8613900000077";

// ---- TwiML as a tree ----

#[derive(Debug, Clone)]
struct El {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<El>,
    text: String,
}

impl El {
    fn attr(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    /// Every element of the tree, depth first.
    fn all(&self) -> Vec<&El> {
        let mut out = vec![self];
        for c in &self.children {
            out.extend(c.all());
        }
        out
    }

    fn find(&self, name: &str) -> Option<&El> {
        self.all().into_iter().find(|e| e.name == name)
    }

    /// Everything the caller hears, in order.
    fn spoken(&self) -> String {
        let mut s = self.text.clone();
        for c in &self.children {
            s.push_str(&c.spoken());
        }
        s
    }
}

/// Parses a TwiML document; panics (failing the test) unless it is well-formed XML
/// whose root is a non-empty `<Response>`.
fn parse(xml: &str) -> El {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<El> = vec![El {
        name: "#document".into(),
        attrs: vec![],
        children: vec![],
        text: String::new(),
    }];
    let open = |e: &quick_xml::events::BytesStart| El {
        name: e.name().as_ref().to_string(),
        attrs: e
            .attributes()
            .map(|a| {
                let a = a.unwrap_or_else(|err| panic!("bad attribute in {xml}: {err}"));
                (
                    a.key.as_ref().to_string(),
                    a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .unwrap_or_else(|err| panic!("bad attribute in {xml}: {err}"))
                        .into_owned(),
                )
            })
            .collect(),
        children: vec![],
        text: String::new(),
    };
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => stack.push(open(&e)),
            Ok(Event::Empty(e)) => {
                let el = open(&e);
                stack.last_mut().unwrap().children.push(el);
            }
            Ok(Event::End(_)) => {
                let el = stack.pop().unwrap();
                stack
                    .last_mut()
                    .unwrap_or_else(|| panic!("unbalanced {xml}"))
                    .children
                    .push(el);
            }
            Ok(Event::Text(t)) => {
                stack.last_mut().unwrap().text.push_str(&t.xml10_content());
            }
            Ok(Event::GeneralRef(r)) => {
                let ch = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch,
                    Ok(None) => match &*r {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => panic!("unknown entity {other:?} in {xml}"),
                    },
                    Err(e) => panic!("bad reference ({e}) in {xml}"),
                };
                stack.last_mut().unwrap().text.push(ch);
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("TwiML is not well-formed XML ({e}): {xml}"),
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements in {xml}");
    let doc = stack.pop().unwrap();
    assert_eq!(doc.children.len(), 1, "one root element: {xml}");
    let root = doc.children.into_iter().next().unwrap();
    assert_eq!(root.name, "Response", "{xml}");
    assert!(
        !root.children.is_empty(),
        "never an empty <Response/>: {xml}"
    );
    root
}

// ---- the service and its calls ----

async fn spawn(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, FakeTwilio) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let base = twilio.base_url();
    let mut env = vec![
        ("HOTLINE580__TELEPHONY__PROVIDER", "twilio"),
        ("HOTLINE580__TWILIO__ACCOUNT_SID", ACCOUNT_SID),
        ("HOTLINE580__TWILIO__AUTH_TOKEN", AUTH_TOKEN),
        ("HOTLINE580__TWILIO__API_BASE", base.as_str()),
        ("HOTLINE580__DISPATCH__QUIET_HOURS", "off"),
    ];
    env.extend_from_slice(extra);
    let app = TestApp::spawn_with(backend, &env).await;
    exec(&app, "INSERT INTO residents (name, phone, address, lat, lon, language, grid, created_at, updated_at) \
               VALUES ('张大爷', '+8613800000001', '解放碑1号', 29.5600, 106.5700, 'zh', '网格3', 0, 0)").await;
    exec(&app, "INSERT INTO residents (name, phone, address, lat, lon, language, grid, created_at, updated_at) \
               VALUES ('Mary Smith', '+8613800000002', '7 Harbour Road', 29.5610, 106.5710, 'en', '网格3', 0, 0)").await;
    // Someone to offer every category to: with nobody, dispatch would escalate a request
    // (`no_volunteer`) while a test still looks at it.
    exec(&app, "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
               VALUES ('近邻', '+8613900000077', 29.5610, 106.5710, 'repair;errands;escort;companion;other', 'zh', 1, 0, 0)").await;
    (app, twilio)
}

const STAFFED: &[(&str, &str)] = &[("HOTLINE580__OPERATORS__PHONE", OPERATORS)];

async fn exec(app: &TestApp, sql: &'static str) {
    hotline580::on_db!(&app.state.db, |c| sqlx::query(sql)
        .execute(c)
        .await
        .map(|_| ()))
    .unwrap();
}

async fn post_signed(app: &TestApp, path_and_query: &str, params: &[(&str, &str)]) -> String {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = expected_signature(AUTH_TOKEN, &format!("{PUBLIC_URL}{path_and_query}"), &owned);
    let r = app
        .client
        .post(app.url(path_and_query))
        .header("X-Twilio-Signature", sig)
        .form(&owned)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path_and_query}");
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(ct.starts_with("text/xml"), "TwiML is text/xml: {ct}");
    r.text().await.unwrap()
}

/// One call in progress: where Twilio would post next, and what the caller last heard.
struct Call<'a> {
    app: &'a TestApp,
    sid: String,
    from: &'a str,
    twiml: String,
    doc: El,
}

impl<'a> Call<'a> {
    async fn start(app: &'a TestApp, sid: &str, from: &'a str) -> Call<'a> {
        let twiml = post_signed(
            app,
            "/twilio/voice",
            &[("CallSid", sid), ("From", from), ("To", HOTLINE)],
        )
        .await;
        let doc = parse(&twiml);
        Call {
            app,
            sid: sid.to_string(),
            from,
            twiml,
            doc,
        }
    }

    /// The URL the current verb posts its result to (`Gather`, `Record` or `Dial` action).
    fn action(&self) -> String {
        self.doc
            .all()
            .into_iter()
            .find_map(|e| match e.name.as_str() {
                "Gather" | "Record" | "Dial" => e.attr("action").map(str::to_string),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no verb that waits for the caller in {}", self.twiml))
    }

    async fn post(&mut self, url: &str, params: &[(&str, &str)]) -> &El {
        let mut all = vec![
            ("CallSid", self.sid.as_str()),
            ("From", self.from),
            ("To", HOTLINE),
        ];
        all.extend_from_slice(params);
        self.twiml = post_signed(self.app, url, &all).await;
        self.doc = parse(&self.twiml);
        &self.doc
    }

    async fn press(&mut self, digits: &str) -> &El {
        let url = self.action();
        self.post(&url, &[("Digits", digits)]).await
    }

    async fn say(&mut self, speech: &str) -> &El {
        let url = self.action();
        self.post(&url, &[("SpeechResult", speech), ("Confidence", "0.9")])
            .await
    }

    async fn record(&mut self, url: &str) -> &El {
        let action = self.action();
        self.post(
            &action,
            &[("RecordingUrl", url), ("RecordingDuration", "5")],
        )
        .await
    }

    /// The caller says nothing: a `<Gather>` times out and Twilio goes on to the
    /// `<Redirect>` after it (or, without one, posts the action with no input).
    async fn silence(&mut self) -> &El {
        let url = match self.doc.find("Redirect") {
            Some(r) => r.spoken().trim().to_string(),
            None => self.action(),
        };
        self.post(&url, &[]).await
    }

    async fn dial_ended(&mut self, status: &str) -> &El {
        let url = self.action();
        self.post(&url, &[("DialCallStatus", status)]).await
    }

    fn waits_for_keys(&self) -> bool {
        self.doc.find("Gather").is_some()
    }

    fn records(&self) -> bool {
        self.doc.find("Record").is_some()
    }

    fn dials(&self) -> Option<String> {
        self.doc.find("Dial").map(|d| d.spoken().trim().to_string())
    }

    fn hangs_up(&self) -> bool {
        self.doc.find("Hangup").is_some()
    }

    fn heard(&self) -> String {
        self.doc
            .all()
            .into_iter()
            .filter(|e| e.name == "Say")
            .map(El::spoken)
            .collect()
    }

    /// The prosody rates of what is said, e.g. `["90%"]`.
    fn rates(&self) -> Vec<String> {
        self.doc
            .all()
            .into_iter()
            .filter(|e| e.name == "prosody")
            .filter_map(|e| e.attr("rate").map(str::to_string))
            .collect()
    }
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct Req {
    id: i64,
    status: String,
    category: Option<String>,
    grade: Option<String>,
    resident_id: Option<i64>,
    caller_name: Option<String>,
    address: Option<String>,
    recording_url: Option<String>,
    escalation_reason: Option<String>,
}

async fn requests(app: &TestApp) -> Vec<Req> {
    hotline580::on_db!(&app.state.db, |c| sqlx::query_as::<_, Req>(
        "SELECT id, status, category, grade, resident_id, caller_name, address, recording_url, \
         escalation_reason FROM requests ORDER BY id"
    )
    .fetch_all(c)
    .await)
    .unwrap()
}

async fn request_of(app: &TestApp, call_sid: &str) -> Req {
    let id: i64 = hotline580::on_db!(&app.state.db, |c| sqlx::query_scalar(
        "SELECT request_id FROM calls WHERE call_sid = $1"
    )
    .bind(call_sid)
    .fetch_one(c)
    .await)
    .unwrap();
    requests(app)
        .await
        .into_iter()
        .find(|r| r.id == id)
        .unwrap()
}

async fn count(app: &TestApp, sql: &'static str, id: i64) -> i64 {
    hotline580::on_db!(&app.state.db, |c| sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(c)
        .await)
    .unwrap()
}

async fn resident_id(app: &TestApp, phone: &str) -> i64 {
    hotline580::on_db!(&app.state.db, |c| sqlx::query_scalar(
        "SELECT id FROM residents WHERE phone = $1"
    )
    .bind(phone)
    .fetch_one(c)
    .await)
    .unwrap()
}

// ---- the tests ----

async fn a_known_caller_is_greeted_by_name_and_each_menu_key_classifies(backend: Backend) {
    let (app, _twilio) = spawn(backend, &[]).await;
    let zhang = resident_id(&app, ZH_RESIDENT).await;
    let menu: [(&str, &str, &str); 5] = [
        ("1", "repair", "yellow"),
        ("2", "errands", "blue"),
        ("3", "escort", "yellow"),
        ("4", "companion", "blue"),
        ("5", "other", "blue"),
    ];
    for (key, category, grade) in menu {
        let sid = format!("CAkey{key}");
        let mut call = Call::start(&app, &sid, ZH_RESIDENT).await;
        let heard = call.heard();
        assert!(heard.contains("张大爷"), "greeted by name: {heard}");
        assert!(
            heard.contains("解放碑1号"),
            "the address is read back: {heard}"
        );
        assert!(call.waits_for_keys());
        assert_eq!(
            call.doc.find("Say").unwrap().attr("language"),
            Some("zh-CN"),
            "in the resident's language"
        );
        call.press("1").await; // the address is right
        assert!(call.waits_for_keys(), "the menu: {}", call.twiml);
        assert!(call.heard().contains("请按1"), "{}", call.heard());
        assert_eq!(request_of(&app, &sid).await.status, "new");
        call.press(key).await;
        assert!(call.records(), "then a description: {}", call.twiml);
        let r = request_of(&app, &sid).await;
        assert_eq!(
            (r.category.as_deref(), r.grade.as_deref(), r.status.as_str()),
            (Some(category), Some(grade), "offering"),
            "key {key}"
        );
        assert_eq!(r.resident_id, Some(zhang));
        call.record(&format!("https://api.twilio.com/rec/RE{key}"))
            .await;
        assert!(call.hangs_up(), "{}", call.twiml);
        let r = request_of(&app, &sid).await;
        assert_eq!(
            r.recording_url.as_deref(),
            Some(format!("https://api.twilio.com/rec/RE{key}").as_str())
        );
    }
    assert_eq!(requests(&app).await.len(), 5);
}

async fn an_unknown_caller_records_name_and_address(backend: Backend) {
    let (app, _twilio) = spawn(backend, &[]).await;
    let mut call = Call::start(&app, "CAunknown", STRANGER).await;
    assert!(!call.heard().contains("张大爷"));
    assert!(call.waits_for_keys(), "{}", call.twiml);
    call.press("1").await;
    assert!(call.records(), "the name: {}", call.twiml);
    call.record("https://api.twilio.com/rec/NAME").await;
    assert!(call.records(), "the address: {}", call.twiml);
    call.record("https://api.twilio.com/rec/ADDR").await;
    assert!(call.waits_for_keys(), "the menu: {}", call.twiml);
    call.press("2").await;
    call.record("https://api.twilio.com/rec/DESC").await;
    assert!(call.hangs_up());
    let r = request_of(&app, "CAunknown").await;
    assert_eq!(r.resident_id, None);
    assert_eq!(
        r.caller_name.as_deref(),
        Some("https://api.twilio.com/rec/NAME")
    );
    assert_eq!(
        r.address.as_deref(),
        Some("https://api.twilio.com/rec/ADDR")
    );
    assert_eq!(r.category.as_deref(), Some("errands"));
    assert_eq!(
        r.recording_url.as_deref(),
        Some("https://api.twilio.com/rec/DESC")
    );
}

async fn a_wrong_address_is_recorded_anew(backend: Backend) {
    let (app, _twilio) = spawn(backend, &[]).await;
    let mut call = Call::start(&app, "CAmoved", ZH_RESIDENT).await;
    call.press("2").await;
    assert!(call.records(), "the new address: {}", call.twiml);
    assert!(!call.heard().contains("请按1。不对"), "{}", call.heard());
    call.record("https://api.twilio.com/rec/NEWADDR").await;
    assert!(call.waits_for_keys(), "then the menu: {}", call.twiml);
    call.press("1").await;
    let r = request_of(&app, "CAmoved").await;
    assert_eq!(
        r.address.as_deref(),
        Some("https://api.twilio.com/rec/NEWADDR")
    );
    assert_eq!(r.category.as_deref(), Some("repair"));
}

async fn speech_chooses_the_category_in_either_language(backend: Backend) {
    let (app, _twilio) = spawn(backend, &[]).await;
    let mut zh = Call::start(&app, "CAspeechzh", ZH_RESIDENT).await;
    zh.say("对").await;
    assert!(zh.waits_for_keys(), "a spoken yes confirms: {}", zh.twiml);
    zh.say("水管漏水").await;
    assert!(zh.records(), "{}", zh.twiml);
    assert_eq!(
        request_of(&app, "CAspeechzh").await.category.as_deref(),
        Some("repair")
    );

    let mut en = Call::start(&app, "CAspeechen", EN_RESIDENT).await;
    assert!(en.heard().contains("Mary Smith"), "{}", en.heard());
    assert_eq!(en.doc.find("Say").unwrap().attr("language"), Some("en-US"));
    en.say("yes").await;
    en.say("my tap is leaking").await;
    assert!(en.records(), "{}", en.twiml);
    let r = request_of(&app, "CAspeechen").await;
    assert_eq!(r.category.as_deref(), Some("repair"));
    assert_eq!(r.grade.as_deref(), Some("yellow"));
}

async fn star_repeats_the_prompt(backend: Backend) {
    let (app, _twilio) = spawn(backend, &[]).await;
    let mut call = Call::start(&app, "CAstar", ZH_RESIDENT).await;
    let greeting = call.heard();
    call.press("*").await;
    assert_eq!(call.heard(), greeting, "the same prompt again");
    call.press("1").await;
    let menu = call.heard();
    call.press("*").await;
    assert_eq!(call.heard(), menu);
    assert!(call.waits_for_keys());
    assert_eq!(request_of(&app, "CAstar").await.category, None);
}

async fn zero_reaches_the_operators_phone_from_any_step(backend: Backend) {
    let (app, _twilio) = spawn(backend, STAFFED).await;
    // At the greeting.
    let mut call = Call::start(&app, "CAzero1", ZH_RESIDENT).await;
    call.press("0").await;
    assert_eq!(call.dials().as_deref(), Some(OPERATORS), "{}", call.twiml);
    // At the menu.
    let mut call = Call::start(&app, "CAzero2", ZH_RESIDENT).await;
    call.press("1").await;
    call.press("0").await;
    assert_eq!(call.dials().as_deref(), Some(OPERATORS), "{}", call.twiml);
    // While recording the description (`0` ends the recording).
    let mut call = Call::start(&app, "CAzero3", ZH_RESIDENT).await;
    call.press("1").await;
    call.press("1").await;
    assert!(call.records());
    call.press("0").await;
    assert_eq!(call.dials().as_deref(), Some(OPERATORS), "{}", call.twiml);
    // An unknown caller recording their name.
    let mut call = Call::start(&app, "CAzero4", STRANGER).await;
    call.press("1").await;
    assert!(call.records());
    call.press("0").await;
    assert_eq!(call.dials().as_deref(), Some(OPERATORS), "{}", call.twiml);
    // The operator answered and the call ended there.
    call.dial_ended("completed").await;
    assert!(call.hangs_up(), "{}", call.twiml);
}

async fn an_unanswered_operator_line_takes_a_voicemail(backend: Backend) {
    let (app, _twilio) = spawn(backend, STAFFED).await;
    let mut call = Call::start(&app, "CAnoanswer", ZH_RESIDENT).await;
    call.press("0").await;
    assert!(call.dials().is_some());
    call.dial_ended("no-answer").await;
    assert!(call.records(), "a voicemail: {}", call.twiml);
    call.record("https://api.twilio.com/rec/VM").await;
    assert!(call.hangs_up());
    let r = request_of(&app, "CAnoanswer").await;
    assert_eq!(r.status, "escalated");
    assert_eq!(r.escalation_reason.as_deref(), Some("call_back"));
    assert_eq!(
        r.recording_url.as_deref(),
        Some("https://api.twilio.com/rec/VM")
    );
}

async fn silence_repeats_slower_and_three_misses_reach_the_operator(backend: Backend) {
    let (app, _twilio) = spawn(backend, STAFFED).await;
    let mut call = Call::start(&app, "CAsilent", ZH_RESIDENT).await;
    call.press("1").await;
    let first = call.rates();
    assert!(
        first.iter().all(|r| r == "90%"),
        "slow from the start: {first:?}"
    );
    call.silence().await;
    assert!(call.waits_for_keys(), "{}", call.twiml);
    assert!(call.heard().contains("对不起"), "{}", call.heard());
    assert!(
        call.rates().contains(&"75%".to_string()),
        "slower: {:?}",
        call.rates()
    );
    call.press("7").await; // a key the menu does not have is a miss too
    assert!(call.waits_for_keys(), "{}", call.twiml);
    assert!(
        call.rates().contains(&"60%".to_string()),
        "{:?}",
        call.rates()
    );
    call.silence().await;
    assert_eq!(
        call.dials().as_deref(),
        Some(OPERATORS),
        "the third miss: {}",
        call.twiml
    );
    assert_eq!(request_of(&app, "CAsilent").await.category, None);
}

async fn without_operators_three_misses_end_in_a_voicemail(backend: Backend) {
    let (app, _twilio) = spawn(backend, &[]).await;
    let mut call = Call::start(&app, "CAvoicemail", STRANGER).await;
    call.silence().await;
    call.silence().await;
    call.silence().await;
    assert!(call.dials().is_none(), "{}", call.twiml);
    assert!(
        call.records(),
        "a voicemail, never a dead end: {}",
        call.twiml
    );
    call.record("https://api.twilio.com/rec/VM2").await;
    assert!(call.hangs_up(), "{}", call.twiml);
    let r = request_of(&app, "CAvoicemail").await;
    assert_eq!(
        (r.status.as_str(), r.escalation_reason.as_deref()),
        ("escalated", Some("call_back"))
    );
    assert_eq!(
        r.recording_url.as_deref(),
        Some("https://api.twilio.com/rec/VM2")
    );
}

async fn nine_dials_emergency_and_grades_red(backend: Backend) {
    let (app, twilio) = spawn(
        backend,
        &[
            ("HOTLINE580__OPERATORS__PHONE", OPERATORS),
            ("HOTLINE580__EMERGENCY__NUMBER", "112"),
        ],
    )
    .await;
    let mut call = Call::start(&app, "CAnine", ZH_RESIDENT).await;
    call.press("1").await;
    call.press("9").await;
    assert_eq!(call.dials().as_deref(), Some("112"), "{}", call.twiml);
    let r = request_of(&app, "CAnine").await;
    assert_eq!(
        (
            r.category.as_deref(),
            r.grade.as_deref(),
            r.status.as_str(),
            r.escalation_reason.as_deref()
        ),
        (
            Some("emergency"),
            Some("red"),
            "escalated",
            Some("emergency")
        )
    );
    let alerts = count(
        &app,
        "SELECT COUNT(*) FROM events WHERE request_id = $1 AND type = 'alert'",
        r.id,
    )
    .await;
    assert_eq!(alerts, 1, "operators alerted through the events stream");
    // The operators' phone is told too.
    let sms = twilio
        .wait_for_messages(1, std::time::Duration::from_secs(15))
        .await;
    assert_eq!(sms[0].to, OPERATORS);
    // An emergency word works at the greeting too.
    let mut call = Call::start(&app, "CAnine2", ZH_RESIDENT).await;
    call.say("我摔倒了起不来").await;
    assert_eq!(call.dials().as_deref(), Some("112"), "{}", call.twiml);
    // Never offered to volunteers.
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM offers WHERE request_id = $1",
            r.id
        )
        .await,
        0
    );
}

async fn a_retried_step_gets_the_same_twiml_and_has_its_effect_once(backend: Backend) {
    let (app, _twilio) = spawn(backend, &[]).await;
    let mut call = Call::start(&app, "CAretry", ZH_RESIDENT).await;
    call.press("1").await;
    let menu_action = call.action();
    let params = [
        ("CallSid", "CAretry"),
        ("From", ZH_RESIDENT),
        ("To", HOTLINE),
        ("Digits", "1"),
    ];
    let first = post_signed(&app, &menu_action, &params).await;
    let again = post_signed(&app, &menu_action, &params).await;
    assert_eq!(first, again, "the same TwiML");
    parse(&again);
    // Even a retry carrying another key changes nothing.
    let other = post_signed(
        &app,
        &menu_action,
        &[
            ("CallSid", "CAretry"),
            ("From", ZH_RESIDENT),
            ("To", HOTLINE),
            ("Digits", "2"),
        ],
    )
    .await;
    assert_eq!(first, other);
    let r = request_of(&app, "CAretry").await;
    assert_eq!(r.category.as_deref(), Some("repair"));
    let classified = count(
        &app,
        "SELECT COUNT(*) FROM events WHERE request_id = $1 AND type = 'request.status'",
        r.id,
    )
    .await;
    assert_eq!(classified, 1, "classified once");
    // The first wave is offered inside the classification's transaction: once.
    let offers = count(
        &app,
        "SELECT COUNT(*) FROM offers WHERE request_id = $1",
        r.id,
    )
    .await;
    assert_eq!(offers, 1, "dispatch started once");
    assert_eq!(requests(&app).await.len(), 1);
}

/// The IVR issue's "Done when": a known resident, keys 1, 1 and a recording make a
/// `repair` request for that resident, as the operators' JSON API shows it.
async fn keys_one_one_and_a_recording_make_a_repair_request_seen_in_the_api(backend: Backend) {
    let (app, twilio) = spawn(backend, &[]).await;
    let zhang = resident_id(&app, ZH_RESIDENT).await;
    let mut call = Call::start(&app, "CAdone", ZH_RESIDENT).await;
    call.press("1").await;
    call.press("1").await;
    call.record("https://api.twilio.com/rec/REdone").await;
    assert!(call.hangs_up());

    hotline580::auth::create_operator(&app.state.db, "alice", PASSWORD, Role::Operator)
        .await
        .expect("operator created");
    let r = app
        .client
        .post(app.url("/api/login"))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = app
        .get("/api/requests")
        .await
        .json()
        .await
        .expect("a JSON array");
    let list = list.as_array().expect("an array");
    assert_eq!(list.len(), 1, "{list:?}");
    let req = &list[0];
    assert_eq!(req["category"], "repair");
    assert_eq!(req["grade"], "yellow");
    assert_eq!(req["channel"], "voice");
    assert_eq!(req["resident"]["id"], zhang);
    assert_eq!(req["resident"]["name"], "张大爷");
    assert_eq!(req["caller_phone"], ZH_RESIDENT);
    assert_eq!(req["recording_url"], "https://api.twilio.com/rec/REdone");
    assert_eq!(req["status"], "offering", "{req}");
    // And it is on its way to the volunteer.
    let sms = twilio
        .wait_for_messages(1, std::time::Duration::from_secs(15))
        .await;
    assert_eq!(sms[0].to, VOLUNTEER);
}

/// A hotline whose script acts at its first node: a line where every stranger's call is
/// a repair (say, a building's fault line). The first webhook classifies, and dispatch
/// runs in the same transaction; a stranger has no position, so the request is escalated
/// at once (`no_volunteer`); then `9` still makes it an emergency.
async fn a_script_that_acts_at_its_first_node_and_nine_after_an_escalation(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let script = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ivr-scripts/default.toml"),
    )
    .unwrap()
    .replace("unknown = \"welcome\"", "unknown = \"fault_line\"");
    let script = format!(
        "{script}\n[nodes.fault_line]\nkind = \"classify\"\ncategory = \"repair\"\nnext = \"welcome\"\n"
    );
    std::fs::write(dir.path().join("default.toml"), script).unwrap();
    let scripts_dir = dir.path().display().to_string();
    let (app, twilio) = spawn(
        backend,
        &[
            ("HOTLINE580__IVR__SCRIPTS_DIR", scripts_dir.as_str()),
            ("HOTLINE580__OPERATORS__PHONE", OPERATORS),
            ("HOTLINE580__EMERGENCY__NUMBER", "112"),
        ],
    )
    .await;
    let mut call = Call::start(&app, "CAfault", STRANGER).await;
    assert!(call.waits_for_keys(), "{}", call.twiml);
    let r = request_of(&app, "CAfault").await;
    assert_eq!(
        (
            r.category.as_deref(),
            r.status.as_str(),
            r.escalation_reason.as_deref()
        ),
        (Some("repair"), "escalated", Some("no_volunteer")),
        "classified and dispatched with the first webhook"
    );
    // Twilio retries the first webhook: the same answer, still one request.
    let again = post_signed(
        &app,
        "/twilio/voice",
        &[("CallSid", "CAfault"), ("From", STRANGER), ("To", HOTLINE)],
    )
    .await;
    assert_eq!(again, call.twiml);
    assert_eq!(requests(&app).await.len(), 1);
    call.press("9").await;
    assert_eq!(call.dials().as_deref(), Some("112"), "{}", call.twiml);
    let r = request_of(&app, "CAfault").await;
    assert_eq!(
        (
            r.category.as_deref(),
            r.grade.as_deref(),
            r.status.as_str(),
            r.escalation_reason.as_deref()
        ),
        (
            Some("emergency"),
            Some("red"),
            "escalated",
            Some("emergency")
        ),
        "an emergency outranks an earlier escalation"
    );
    // The operators' phone hears of both escalations.
    let sms = twilio
        .wait_for_messages(2, std::time::Duration::from_secs(15))
        .await;
    assert!(sms.iter().all(|m| m.to == OPERATORS), "{sms:?}");
}

on_both_backends!(
    a_known_caller_is_greeted_by_name_and_each_menu_key_classifies,
    an_unknown_caller_records_name_and_address,
    a_wrong_address_is_recorded_anew,
    speech_chooses_the_category_in_either_language,
    star_repeats_the_prompt,
    zero_reaches_the_operators_phone_from_any_step,
    an_unanswered_operator_line_takes_a_voicemail,
    silence_repeats_slower_and_three_misses_reach_the_operator,
    without_operators_three_misses_end_in_a_voicemail,
    nine_dials_emergency_and_grades_red,
    a_retried_step_gets_the_same_twiml_and_has_its_effect_once,
    keys_one_one_and_a_recording_make_a_repair_request_seen_in_the_api,
    a_script_that_acts_at_its_first_node_and_nine_after_an_escalation,
);

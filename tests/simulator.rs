//! The demo's simulator API: the browser's pretend phones are played through
//! the real, signed webhooks, and what the simulated provider sent is read back.

mod common;
use common::{AUTH_TOKEN, Backend, TestApp};
use hotline580::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "a long enough password";

async fn simulated(backend: Backend) -> TestApp {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("HOTLINE580__TELEPHONY__PROVIDER", "simulated"),
            ("HOTLINE580__TWILIO__AUTH_TOKEN", AUTH_TOKEN),
            ("HOTLINE580__DISPATCH__QUIET_HOURS", "off"),
        ],
    )
    .await;
    hotline580::auth::create_operator(&app.state.db, "trainer", PASSWORD, Role::Operator)
        .await
        .unwrap();
    app
}

async fn login(app: &TestApp) {
    let r = app
        .client
        .post(app.url("/api/login"))
        .json(&json!({ "username": "trainer", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn exec(app: &TestApp, sql: &'static str) {
    hotline580::on_db!(&app.state.db, |c| sqlx::query(sql)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .unwrap();
}

async fn play(app: &TestApp, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url("/api/simulator/webhook"))
        .json(&json!({ "path": path, "params": params }))
        .send()
        .await
        .unwrap()
}

async fn twiml(app: &TestApp, path: &str, params: &[(&str, &str)]) -> String {
    let r = play(app, path, params).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], 200, "{v}");
    v["body"].as_str().unwrap().to_string()
}

/// The action of the answer's `<Gather>` or `<Record>`.
fn action(twiml: &str) -> String {
    let at = twiml.find("action=\"").expect("a step to answer") + 8;
    let end = twiml[at..].find('"').unwrap();
    twiml[at..at + end].replace("&amp;", "&")
}

async fn deliveries(app: &TestApp) -> Vec<Value> {
    app.get("/api/simulator/deliveries?after=0")
        .await
        .json()
        .await
        .unwrap()
}

async fn a_call_and_a_yes_played_through_the_simulator_assign_the_request(backend: Backend) {
    let app = simulated(backend).await;
    exec(&app, "INSERT INTO residents (name, phone, address, lat, lon, language, grid, created_at, updated_at) \
                VALUES ('张大爷', '+8613800000001', '解放碑1号', 29.5600, 106.5700, 'zh', '网格3', 0, 0)").await;
    exec(&app, "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
                VALUES ('近邻', '+8613900000001', 29.5610, 106.5710, 'repair', 'zh', 1, 0, 0)").await;
    login(&app).await;
    let call = [
        ("CallSid", "CAsim1"),
        ("From", "+8613800000001"),
        ("To", "+862363580580"),
    ];
    let greeting = twiml(&app, "/twilio/voice", &call).await;
    assert!(
        greeting.contains("张大爷"),
        "a known caller is greeted by name: {greeting}"
    );
    let step = |digits: &'static str| {
        let mut p = call.to_vec();
        p.push(("Digits", digits));
        p
    };
    let menu = twiml(&app, &action(&greeting), &step("1")).await;
    let record = twiml(&app, &action(&menu), &step("1")).await;
    assert!(record.contains("<Record"), "{record}");
    let mut rec = call.to_vec();
    rec.push(("RecordingUrl", "https://simulated.invalid/recordings/RE1"));
    let bye = twiml(&app, &action(&record), &rec).await;
    assert!(bye.contains("<Hangup"), "{bye}");

    // The offer reaches the volunteer's simulated phone.
    let mut offer = None;
    for _ in 0..100 {
        offer = deliveries(&app)
            .await
            .into_iter()
            .find(|d| d["to_phone"] == "+8613900000001");
        if offer.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let offer = offer.expect("the offer was delivered");
    assert_eq!(offer["kind"], "sms");

    let r = play(
        &app,
        "/twilio/sms",
        &[
            ("MessageSid", "SMsim1"),
            ("From", "+8613900000001"),
            ("To", "+862363580580"),
            ("Body", "YES"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let requests: Vec<Value> = app.get("/api/requests").await.json().await.unwrap();
    assert_eq!(requests[0]["status"], "assigned", "{:?}", requests[0]);
    assert_eq!(requests[0]["category"], "repair");
    assert!(requests[0]["lat"].as_f64().is_some());
}

async fn the_simulator_needs_a_login_plays_only_webhooks_and_opens_nothing(backend: Backend) {
    let app = simulated(backend).await;
    let r = play(&app, "/twilio/voice", &[("CallSid", "CA1")]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/api/simulator/deliveries").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let page = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/console/simulator"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()["location"], "/console/login");

    login(&app).await;
    for path in [
        "/api/login",
        "/twilio/../api/login",
        "http://evil.example/twilio/voice",
    ] {
        let r = play(&app, path, &[]).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    // The console's menu links to it; its map is the console's asset.
    let board = app.get("/console").await.text().await.unwrap();
    assert!(board.contains("href=\"/console/simulator\""), "{board}");
    let map = app.get("/console/assets/map.js").await;
    assert_eq!(map.status(), StatusCode::OK);
    assert!(map.text().await.unwrap().contains("Hotline580Map"));
    let page = app.get("/console/simulator").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    // The webhooks themselves still refuse what is not signed.
    let r = app
        .client
        .post(app.url("/twilio/voice"))
        .form(&[("CallSid", "CAx"), ("From", "+8613800000001")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

async fn there_is_no_simulator_with_the_real_provider(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("HOTLINE580__TELEPHONY__PROVIDER", "twilio"),
            ("HOTLINE580__TWILIO__ACCOUNT_SID", common::ACCOUNT_SID),
            ("HOTLINE580__TWILIO__AUTH_TOKEN", AUTH_TOKEN),
            // Nothing is sent in this test.
            ("HOTLINE580__TWILIO__API_BASE", "http://127.0.0.1:9"),
        ],
    )
    .await;
    hotline580::auth::create_operator(&app.state.db, "trainer", PASSWORD, Role::Operator)
        .await
        .unwrap();
    login(&app).await;
    let r = play(&app, "/twilio/voice", &[("CallSid", "CA1")]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/console/simulator").await.status(),
        StatusCode::NOT_FOUND
    );
    let board = app.get("/console").await.text().await.unwrap();
    assert!(board.contains("id=\"board\""), "{board}");
    assert!(!board.contains("/console/simulator"), "{board}");
}

on_both_backends!(
    a_call_and_a_yes_played_through_the_simulator_assign_the_request,
    the_simulator_needs_a_login_plays_only_webhooks_and_opens_nothing,
    there_is_no_simulator_with_the_real_provider,
);

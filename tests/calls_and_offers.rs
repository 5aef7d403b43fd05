//! Whole conversations through the contract: a resident's call becomes a
//! classified request, offered by SMS (through a fake of Twilio's REST API) to
//! the nearest volunteer, who accepts by SMS.

mod common;
mod support;

use common::{ACCOUNT_SID, AUTH_TOKEN, Backend, TestApp, post_signed};
use std::time::Duration;
use support::fake_twilio::FakeTwilio;

const RESIDENT: &str = "+8613800000001";
const NEAR: &str = "+8613900000001";
const FAR: &str = "+8613900000002";

async fn spawn(backend: Backend, twilio: &FakeTwilio, extra: &[(&str, &str)]) -> TestApp {
    let base = twilio.base_url();
    let mut env = vec![
        ("HOTLINE580__TELEPHONY__PROVIDER", "twilio"),
        ("HOTLINE580__TWILIO__ACCOUNT_SID", ACCOUNT_SID),
        ("HOTLINE580__TWILIO__AUTH_TOKEN", AUTH_TOKEN),
        ("HOTLINE580__TWILIO__API_BASE", base.as_str()),
        ("HOTLINE580__DISPATCH__QUIET_HOURS", "off"),
    ];
    env.extend_from_slice(extra);
    TestApp::spawn_with(backend, &env).await
}

async fn exec(app: &TestApp, sql: &'static str) {
    hotline580::on_db!(&app.state.db, |c| sqlx::query(sql)
        .execute(c)
        .await
        .map(|_| ()))
    .unwrap();
}

async fn seed(app: &TestApp) {
    exec(app, "INSERT INTO residents (name, phone, address, lat, lon, language, grid, created_at, updated_at) \
               VALUES ('张大爷', '+8613800000001', '解放碑1号', 29.5600, 106.5700, 'zh', '网格3', 0, 0)").await;
    exec(app, "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
               VALUES ('近邻', '+8613900000001', 29.5610, 106.5710, 'repair', 'zh', 1, 0, 0)").await;
    exec(app, "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
               VALUES ('远邻', '+8613900000002', 29.5700, 106.5800, 'repair', 'zh', 1, 0, 0)").await;
    exec(app, "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
               VALUES ('不会修', '+8613900000003', 29.5601, 106.5701, 'errands', 'zh', 1, 0, 0)").await;
}

/// The `seq` the TwiML's next step posts to.
fn next_seq(twiml: &str) -> String {
    let i = twiml
        .find("seq=")
        .unwrap_or_else(|| panic!("no next step in {twiml}"));
    twiml[i + 4..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect()
}

async fn step(app: &TestApp, call: &str, twiml: &str, params: &[(&str, &str)]) -> String {
    let path = format!("/twilio/voice/step?seq={}", next_seq(twiml));
    let mut all = vec![
        ("CallSid", call),
        ("From", RESIDENT),
        ("To", "+862363580580"),
    ];
    all.extend_from_slice(params);
    let (status, body) = post_signed(app, &path, &all).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn request_row(
    app: &TestApp,
) -> Vec<(i64, String, Option<String>, Option<String>, Option<i64>)> {
    hotline580::on_db!(&app.state.db, |c| sqlx::query_as(
        "SELECT id, status, category, recording_url, volunteer_id FROM requests ORDER BY id"
    )
    .fetch_all(c)
    .await)
    .unwrap()
}

/// Plays a known resident's call: confirm the address, choose repair, record.
async fn call_for_repair(app: &TestApp, call: &str) {
    let start = [
        ("CallSid", call),
        ("From", RESIDENT),
        ("To", "+862363580580"),
    ];
    let (status, greeting) = post_signed(app, "/twilio/voice", &start).await;
    assert_eq!(status, 200);
    assert!(greeting.contains("张大爷"), "greeted by name: {greeting}");
    // A retried first webhook gets the same answer and makes no second request.
    let (_, again) = post_signed(app, "/twilio/voice", &start).await;
    assert_eq!(again, greeting);
    let menu = step(app, call, &greeting, &[("Digits", "1")]).await;
    let record = step(app, call, &menu, &[("Digits", "1")]).await;
    assert!(record.contains("<Record"), "{record}");
    let bye = step(
        app,
        call,
        &record,
        &[
            ("RecordingUrl", "https://api.twilio.com/rec/RE1"),
            ("RecordingDuration", "7"),
        ],
    )
    .await;
    assert!(bye.contains("<Hangup") || bye.contains("<Say"), "{bye}");
}

async fn a_call_becomes_a_repair_request_offered_to_the_nearest_volunteer(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    seed(&app).await;
    call_for_repair(&app, "CA0001").await;

    let rows = request_row(&app).await;
    assert_eq!(rows.len(), 1, "one request: {rows:?}");
    assert_eq!(rows[0].2.as_deref(), Some("repair"));
    assert_eq!(rows[0].3.as_deref(), Some("https://api.twilio.com/rec/RE1"));

    // The first wave (yellow: one volunteer) goes to the nearest one with the skill.
    let offers = twilio.wait_for_messages(1, Duration::from_secs(15)).await;
    assert_eq!(offers[0].to, NEAR, "{offers:?}");
    assert!(
        !offers[0].body.contains("张大爷"),
        "an offer never names the resident: {}",
        offers[0].body
    );
    let code: String = hotline580::on_db!(&app.state.db, |c| sqlx::query_scalar(
        "SELECT code FROM offers"
    )
    .fetch_one(c)
    .await)
    .unwrap();
    assert!(
        offers[0].body.contains(&format!("YES {code}")),
        "the offer says how to answer: {}",
        offers[0].body
    );

    let (status, reply) = post_signed(
        &app,
        "/twilio/sms",
        &[
            ("MessageSid", "SM0001"),
            ("From", NEAR),
            ("Body", &format!("yes {code}")),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        reply.contains("<Message>"),
        "the winner gets the details: {reply}"
    );
    assert!(reply.contains("解放碑1号"), "{reply}");
    let rows = request_row(&app).await;
    assert_eq!(rows[0].1, "assigned");
    // The resident is told who is coming.
    let to_resident = twilio.wait_for_messages(2, Duration::from_secs(15)).await;
    assert!(
        to_resident.iter().any(|m| m.to == RESIDENT),
        "{to_resident:?}"
    );

    // The same SMS delivered twice has its effect once and no second reply.
    let (_, again) = post_signed(
        &app,
        "/twilio/sms",
        &[
            ("MessageSid", "SM0001"),
            ("From", NEAR),
            ("Body", &format!("yes {code}")),
        ],
    )
    .await;
    assert!(!again.contains("<Message>"), "{again}");
}

async fn a_decline_moves_the_offer_to_the_next_volunteer(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    seed(&app).await;
    call_for_repair(&app, "CA0002").await;
    let first = twilio.wait_for_messages(1, Duration::from_secs(15)).await;
    assert_eq!(first[0].to, NEAR);
    let (_, reply) = post_signed(
        &app,
        "/twilio/sms",
        &[("MessageSid", "SM0002"), ("From", NEAR), ("Body", "不")],
    )
    .await;
    assert!(reply.contains("<Message>"), "{reply}");
    let msgs = twilio.wait_for_messages(2, Duration::from_secs(15)).await;
    assert_eq!(
        msgs[1].to, FAR,
        "the next wave widens to the farther volunteer: {msgs:?}"
    );
}

async fn an_unanswered_offer_expires_and_moves_on(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(
        backend,
        &twilio,
        &[("HOTLINE580__DISPATCH__OFFER_TIMEOUT_SECS", "1")],
    )
    .await;
    seed(&app).await;
    call_for_repair(&app, "CA0003").await;
    let msgs = twilio.wait_for_messages(2, Duration::from_secs(20)).await;
    assert_eq!(msgs[0].to, NEAR);
    assert_eq!(msgs[1].to, FAR);
}

async fn a_provider_failing_three_times_still_delivers_the_offer(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    twilio.fail_next(3, 500);
    let app = spawn(backend, &twilio, &[]).await;
    seed(&app).await;
    call_for_repair(&app, "CA0004").await;
    let msgs = twilio.wait_for_messages(1, Duration::from_secs(30)).await;
    assert_eq!(msgs[0].to, NEAR);
}

async fn a_wrong_signature_is_refused_and_changes_nothing(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    let r = app
        .client
        .post(app.url("/twilio/voice"))
        .header("X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJl")
        .form(&[("CallSid", "CA9"), ("From", RESIDENT)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .client
        .post(app.url("/twilio/sms"))
        .form(&[("MessageSid", "SM9"), ("From", NEAR), ("Body", "YES")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(request_row(&app).await.is_empty());
}

async fn a_call_that_hangs_up_early_becomes_a_call_back(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    seed(&app).await;
    let (_, _greeting) = post_signed(
        &app,
        "/twilio/voice",
        &[("CallSid", "CA0005"), ("From", RESIDENT)],
    )
    .await;
    let (s, _) = post_signed(
        &app,
        "/twilio/status",
        &[("CallSid", "CA0005"), ("CallStatus", "completed")],
    )
    .await;
    assert_eq!(s, 200);
    let rows: Vec<(String, Option<String>)> =
        hotline580::on_db!(&app.state.db, |c| sqlx::query_as(
            "SELECT status, escalation_reason FROM requests"
        )
        .fetch_all(c)
        .await)
        .unwrap();
    assert_eq!(
        rows,
        vec![("escalated".to_string(), Some("call_back".to_string()))]
    );
}

async fn stop_means_no_more_offers(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    seed(&app).await;
    let (_, reply) = post_signed(
        &app,
        "/twilio/sms",
        &[("MessageSid", "SM0100"), ("From", NEAR), ("Body", "STOP")],
    )
    .await;
    assert!(!reply.contains("<Message>"), "{reply}");
    call_for_repair(&app, "CA0006").await;
    let msgs = twilio.wait_for_messages(1, Duration::from_secs(15)).await;
    assert_eq!(
        msgs[0].to, FAR,
        "the opted-out volunteer is skipped: {msgs:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(twilio.messages_to(NEAR).is_empty());
}

on_both_backends!(
    a_call_becomes_a_repair_request_offered_to_the_nearest_volunteer,
    a_decline_moves_the_offer_to_the_next_volunteer,
    an_unanswered_offer_expires_and_moves_on,
    a_provider_failing_three_times_still_delivers_the_offer,
    a_wrong_signature_is_refused_and_changes_nothing,
    a_call_that_hangs_up_early_becomes_a_call_back,
    stop_means_no_more_offers,
);

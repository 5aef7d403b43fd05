//! Per-number rate limits on the webhooks: over a limit the caller still gets
//! polite TwiML (never 429), and nothing is written; other numbers are not affected.

mod common;
mod support;

use common::{ACCOUNT_SID, AUTH_TOKEN, Backend, PUBLIC_URL, TestApp};
use support::fake_twilio::FakeTwilio;
use support::webhook::{Answer, post_signed};

const RESIDENT: &str = "+8613800000001";
const OTHER: &str = "+8613800000002";

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
    let app = TestApp::spawn_with(backend, &env).await;
    for sql in [
        "INSERT INTO residents (name, phone, address, lat, lon, language, grid, created_at, updated_at) \
         VALUES ('张大爷', '+8613800000001', '解放碑1号', 29.56, 106.57, 'zh', '网格3', 0, 0)",
        "INSERT INTO residents (name, phone, address, lat, lon, language, grid, created_at, updated_at) \
         VALUES ('李奶奶', '+8613800000002', '解放碑2号', 29.56, 106.57, 'zh', '网格3', 0, 0)",
    ] {
        hotline580::on_db!(&app.state.db, |c| sqlx::query(sql)
            .execute(c)
            .await
            .map(|_| ()))
        .unwrap();
    }
    app
}

async fn post(app: &TestApp, path: &str, params: &[(&str, &str)]) -> Answer {
    post_signed(
        &app.client,
        &app.address,
        PUBLIC_URL,
        AUTH_TOKEN,
        path,
        params,
    )
    .await
}

async fn sms(app: &TestApp, sid: &str, from: &str, body: &str) -> Answer {
    post(
        app,
        "/twilio/sms",
        &[("MessageSid", sid), ("From", from), ("Body", body)],
    )
    .await
}

async fn scalar(app: &TestApp, sql: &'static str) -> i64 {
    hotline580::on_db!(&app.state.db, |c| sqlx::query_scalar(sql)
        .fetch_one(c)
        .await)
    .unwrap()
}

async fn resident_sms_intake_is_limited_per_number_with_a_polite_reply(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(
        backend,
        &twilio,
        &[("HOTLINE580__LIMITS__INTAKE_PER_HOUR", "2")],
    )
    .await;
    for (i, sid) in ["SM1", "SM2"].iter().enumerate() {
        let a = sms(&app, sid, RESIDENT, &format!("水管漏水了 {i}")).await;
        assert_eq!(a.status, 200, "{a:?}");
    }
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM requests").await, 2);
    let third = sms(&app, "SM3", RESIDENT, "水管漏水了 again").await;
    assert_eq!(third.status, 200, "never 429: {third:?}");
    assert!(
        third.body.contains("<Message>") && third.body.contains("请勿重复发送"),
        "{third:?}"
    );
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM requests").await,
        2,
        "no third request"
    );
    // Another resident is not affected.
    let other = sms(&app, "SM4", OTHER, "水管漏水了").await;
    assert_eq!(other.status, 200);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM requests").await, 3);
}

async fn a_flood_of_webhooks_from_one_number_gets_polite_twiml_and_writes_nothing(
    backend: Backend,
) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(
        backend,
        &twilio,
        &[("HOTLINE580__LIMITS__WEBHOOK_PER_MINUTE", "3")],
    )
    .await;
    // Three calls from one number are answered as usual...
    for i in 0..3 {
        let a = post(
            &app,
            "/twilio/voice",
            &[("CallSid", &format!("CA{i}")), ("From", RESIDENT)],
        )
        .await;
        assert_eq!(a.status, 200);
        assert!(a.body.contains("张大爷"), "{a:?}");
    }
    // ...the fourth gets a polite goodbye that still names the emergency number.
    let a = post(
        &app,
        "/twilio/voice",
        &[("CallSid", "CA9"), ("From", RESIDENT)],
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        a.body.contains("<Hangup") && a.body.contains("120"),
        "{a:?}"
    );
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM requests").await, 3);
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM calls WHERE call_sid = 'CA9'").await,
        0
    );
    // The same number's SMS count against the same allowance: an empty answer, nothing stored.
    let a = sms(&app, "SM9", RESIDENT, "水管漏水了").await;
    assert_eq!(a.status, 200);
    assert!(!a.body.contains("<Message>"), "{a:?}");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM messages").await, 0);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM requests").await, 3);
    // Another number still gets through.
    let a = post(
        &app,
        "/twilio/voice",
        &[("CallSid", "CA10"), ("From", OTHER)],
    )
    .await;
    assert!(a.body.contains("李奶奶"), "{a:?}");
}

on_both_backends!(
    resident_sms_intake_is_limited_per_number_with_a_polite_reply,
    a_flood_of_webhooks_from_one_number_gets_polite_twiml_and_writes_nothing,
);

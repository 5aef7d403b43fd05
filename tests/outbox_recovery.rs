//! A send cut off by a crash (its outbox row left `sending`): the sender asks
//! the provider before sending again, so an SMS that did go out is recorded,
//! not sent twice; one that did not is sent and flagged `maybe_duplicate`.

mod common;
mod support;

use common::{ACCOUNT_SID, AUTH_TOKEN, Backend, TestApp};
use support::fake_twilio::FakeTwilio;

const TO: &str = "+8613900000001";
const HOTLINE: &str = "+862363580580";

async fn spawn(backend: Backend, twilio: &FakeTwilio) -> TestApp {
    let base = twilio.base_url();
    TestApp::spawn_with(
        backend,
        &[
            ("HOTLINE580__TELEPHONY__PROVIDER", "twilio"),
            ("HOTLINE580__TWILIO__ACCOUNT_SID", ACCOUNT_SID),
            ("HOTLINE580__TWILIO__AUTH_TOKEN", AUTH_TOKEN),
            ("HOTLINE580__TWILIO__API_BASE", base.as_str()),
        ],
    )
    .await
}

/// An outbox row as a crash leaves it: claimed (`sending`) a moment ago.
async fn interrupted_row(app: &TestApp, body: &str) -> i64 {
    let now = hotline580::store::now_ms();
    hotline580::on_db!(&app.state.db, |c| sqlx::query_scalar(
        "INSERT INTO outbox (kind, to_phone, from_phone, body, status, attempts, created_at, updated_at) \
         VALUES ('sms', $1, $2, $3, 'sending', 1, $4, $4) RETURNING id"
    )
    .bind(TO)
    .bind(HOTLINE)
    .bind(body)
    .bind(now)
    .fetch_one(c)
    .await)
    .unwrap()
}

async fn row(app: &TestApp, id: i64) -> (String, Option<String>, bool) {
    hotline580::on_db!(&app.state.db, |c| sqlx::query_as(
        "SELECT status, provider_sid, maybe_duplicate FROM outbox WHERE id = $1"
    )
    .bind(id)
    .fetch_one(c)
    .await)
    .unwrap()
}

async fn an_interrupted_send_that_went_out_is_recorded_not_sent_again(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio).await;
    let id = interrupted_row(&app, "【580热线】YES 17").await;
    // The provider had accepted it before the crash.
    let status = reqwest::Client::new()
        .post(format!(
            "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
            twilio.base_url()
        ))
        .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
        .form(&[("To", TO), ("From", HOTLINE), ("Body", "【580热线】YES 17")])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 201);
    let sid = twilio.messages()[0].sid.clone();

    hotline580::outbox::send(&app.state.job_deps(), id, 2)
        .await
        .unwrap();
    assert_eq!(twilio.messages().len(), 1, "not sent a second time");
    assert_eq!(row(&app, id).await, ("sent".to_string(), Some(sid), false));
}

async fn an_interrupted_send_that_did_not_go_out_is_sent_and_flagged(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio).await;
    let id = interrupted_row(&app, "【580热线】YES 18").await;
    hotline580::outbox::send(&app.state.job_deps(), id, 2)
        .await
        .unwrap();
    let msgs = twilio.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].body, "【580热线】YES 18");
    let (status, sid, flagged) = row(&app, id).await;
    assert_eq!(
        (status.as_str(), sid.as_deref(), flagged),
        ("sent", Some(msgs[0].sid.as_str()), true)
    );
}

on_both_backends!(
    an_interrupted_send_that_went_out_is_recorded_not_sent_again,
    an_interrupted_send_that_did_not_go_out_is_sent_and_flagged,
);

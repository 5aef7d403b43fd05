//! The Twilio provider against the fake Twilio REST server: what it sends,
//! and how each kind of failure comes back.

mod support;

use hotline580::config::Config;
use hotline580::domain::PhoneNumber;
use hotline580::store::Db;
use hotline580::telephony::signature::{validate, webhook_url};
use hotline580::telephony::{self, Provider, SendError, TwilioProvider};
use secrecy::SecretString;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::fake_twilio::{Failure, FakeTwilio};

const SID: &str = "AC00000000000000000000000000000001";
const TOKEN: &str = "test-auth-token";
const CALLBACK: &str = "https://hotline.example.org/twilio/status";

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::from_e164(s).unwrap()
}

fn volunteer() -> PhoneNumber {
    phone("+8613800138000")
}

fn hotline() -> PhoneNumber {
    phone("+862363580580")
}

fn provider_for(fake: &FakeTwilio, token: &str) -> TwilioProvider {
    TwilioProvider::new(&fake.base_url(), SID, SecretString::from(token)).unwrap()
}

async fn send(provider: &TwilioProvider, body: &str) -> Result<String, SendError> {
    provider
        .send_sms(&volunteer(), &hotline(), body, CALLBACK)
        .await
        .map(|sent| sent.sid)
}

#[tokio::test]
async fn an_sms_is_posted_as_a_form_with_basic_auth_and_its_sid_returned() {
    let fake = FakeTwilio::start(SID, TOKEN).await;
    let provider = provider_for(&fake, TOKEN);

    let sid = send(&provider, "Offer R17: reply YES 17 & come ✓")
        .await
        .unwrap();

    let messages = fake.wait_for_messages(1, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.sid, sid);
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert_eq!(m.account_sid, SID);
    assert_eq!(m.auth_user, SID);
    assert_eq!(m.to, "+8613800138000");
    assert_eq!(m.from, "+862363580580");
    assert_eq!(m.body, "Offer R17: reply YES 17 & come ✓");
    assert_eq!(m.status_callback.as_deref(), Some(CALLBACK));
    assert_eq!(fake.messages_to(volunteer()).len(), 1);
    assert!(fake.messages_to("+8613900139000").is_empty());
    assert_eq!(provider.name(), "twilio");
}

#[tokio::test]
async fn a_call_is_posted_with_its_twiml_url() {
    let fake = FakeTwilio::start(SID, TOKEN).await;
    let provider = provider_for(&fake, TOKEN);
    let twiml = "https://hotline.example.org/twilio/survey?request=17";

    let sent = provider
        .place_call(&volunteer(), &hotline(), twiml, CALLBACK)
        .await
        .unwrap();

    let calls = fake.wait_for_calls(1, Duration::from_secs(5)).await;
    assert_eq!(calls[0].sid, sent.sid);
    assert!(sent.sid.starts_with("CA"));
    assert_eq!(calls[0].url, twiml);
    assert_eq!(calls[0].to, "+8613800138000");
    assert_eq!(calls[0].status_callback.as_deref(), Some(CALLBACK));
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn server_errors_are_retryable_until_twilio_recovers() {
    let fake = FakeTwilio::start(SID, TOKEN).await;
    let provider = provider_for(&fake, TOKEN);
    fake.fail_next(3, 500);

    for _ in 0..3 {
        let err = send(&provider, "hello").await.unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        assert_eq!(err.retry_after(), None);
        assert!(err.message().contains("500"), "{err}");
    }
    send(&provider, "hello").await.unwrap();

    assert_eq!(fake.requests().len(), 4);
    assert_eq!(
        fake.requests().iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 500, 201]
    );
    assert_eq!(fake.messages().len(), 1);
}

#[tokio::test]
async fn a_bad_request_is_permanent_and_keeps_twilios_message_and_code() {
    let fake = FakeTwilio::start(SID, TOKEN).await;
    let provider = provider_for(&fake, TOKEN);
    fake.reject_to(
        volunteer(),
        Failure::twilio(
            400,
            21211,
            "The 'To' number +8613800138000 is not a valid phone number.",
        ),
    );

    let err = send(&provider, "hello").await.unwrap_err();

    let SendError::Permanent { message } = &err else {
        panic!("expected a permanent error, got {err:?}");
    };
    assert!(
        message.contains("The 'To' number +8613800138000 is not a valid phone number."),
        "{message}"
    );
    assert!(message.contains("21211"), "{message}");
    assert!(message.contains("400"), "{message}");
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn a_rate_limit_is_retryable_after_the_time_twilio_asks_for() {
    let fake = FakeTwilio::start(SID, TOKEN).await;
    let provider = provider_for(&fake, TOKEN);
    fake.fail_next_with(1, Failure::rate_limited(30));

    let err = send(&provider, "hello").await.unwrap_err();

    assert_eq!(
        err,
        SendError::Retryable {
            message: "Twilio 429 Too Many Requests: Too Many Requests (error 20429)".into(),
            retry_after: Some(Duration::from_secs(30)),
        }
    );
    send(&provider, "hello").await.unwrap();
}

#[tokio::test]
async fn a_wrong_auth_token_is_a_permanent_failure() {
    let fake = FakeTwilio::start(SID, TOKEN).await;
    let provider = provider_for(&fake, "not-the-token");

    let err = send(&provider, "hello").await.unwrap_err();

    assert!(!err.is_retryable(), "{err:?}");
    assert!(err.message().contains("401"), "{err}");
    assert!(err.message().contains("20003"), "{err}");
    assert!(!err.message().contains("not-the-token"), "{err}");
    assert!(fake.messages().is_empty());
    assert_eq!(fake.requests()[0].status, 401);
}

#[tokio::test]
async fn a_slow_twilio_is_a_retryable_timeout() {
    let fake = FakeTwilio::start(SID, TOKEN).await;
    let provider = provider_for(&fake, TOKEN)
        .with_timeout(Duration::from_millis(200))
        .unwrap();
    fake.set_delay(Some(Duration::from_secs(3)));

    let err = send(&provider, "hello").await.unwrap_err();

    assert!(err.is_retryable(), "{err:?}");
    assert!(err.message().contains("in time"), "{err}");
    // Twilio may have acted on it: this is why sends are recorded before they are made.
    assert_eq!(fake.messages().len(), 1);
}

#[tokio::test]
async fn an_unreachable_twilio_is_retryable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let provider = TwilioProvider::new(
        &format!("http://127.0.0.1:{port}"),
        SID,
        SecretString::from(TOKEN),
    )
    .unwrap();

    let err = send(&provider, "hello").await.unwrap_err();

    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn build_chooses_the_provider_named_in_the_settings() {
    let fake = FakeTwilio::start(SID, TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("t.db").display());
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let no_file = Path::new("/nonexistent/default.toml");
    let db = Db::connect(&db_url).await.unwrap();

    let simulated = Config::load_from(None, &env(&[]), no_file).unwrap();
    assert_eq!(telephony::build(&simulated, &db).name(), "simulated");

    let base = fake.base_url();
    let twilio = Config::load_from(
        None,
        &env(&[
            ("HOTLINE580__TELEPHONY__PROVIDER", "twilio"),
            ("HOTLINE580__TWILIO__ACCOUNT_SID", SID),
            ("HOTLINE580__TWILIO__AUTH_TOKEN", TOKEN),
            ("HOTLINE580__TWILIO__API_BASE", &base),
        ]),
        no_file,
    )
    .unwrap();
    let provider: Arc<dyn Provider> = telephony::build(&twilio, &db);
    assert_eq!(provider.name(), "twilio");
    provider
        .send_sms(&volunteer(), &hotline(), "via build", CALLBACK)
        .await
        .unwrap();
    assert_eq!(
        fake.wait_for_messages(1, Duration::from_secs(5)).await[0].body,
        "via build"
    );
    db.close().await;
}

/// The fake's status callbacks carry a signature that `validate` accepts for
/// the URL rebuilt from `server.public_url` and the request's path and query,
/// which is how the webhook extractor checks them.
#[tokio::test]
async fn status_callbacks_from_the_fake_are_signed_as_twilio_signs_them() {
    use axum::extract::{Form, OriginalUri};
    use axum::http::{HeaderMap, StatusCode};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}/", listener.local_addr().unwrap());
    type Forms = Arc<Mutex<Vec<Vec<(String, String)>>>>;
    let seen: Forms = Arc::default();
    let app = {
        let public_url = public_url.clone();
        let seen = seen.clone();
        axum::Router::new().route(
            "/twilio/status",
            axum::routing::post(
                move |OriginalUri(uri): OriginalUri,
                      headers: HeaderMap,
                      Form(form): Form<Vec<(String, String)>>| async move {
                    let url = webhook_url(
                        &public_url,
                        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
                    );
                    let signature = headers
                        .get("X-Twilio-Signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if !validate(TOKEN, &url, &form, signature) {
                        return StatusCode::FORBIDDEN;
                    }
                    seen.lock().unwrap().push(form);
                    StatusCode::NO_CONTENT
                },
            ),
        )
    };
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let fake = FakeTwilio::start(SID, TOKEN).await;
    let provider = provider_for(&fake, TOKEN);
    let callback = format!("{public_url}twilio/status?outbox=5");
    let sent = provider
        .send_sms(&volunteer(), &hotline(), "hello", &callback)
        .await
        .unwrap();

    let status = fake
        .send_status_callback(&sent.sid, "undelivered", &[("ErrorCode", "30003")])
        .await;

    assert_eq!(status, 204);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let get = |name: &str| {
        seen[0]
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("MessageSid"), Some(sent.sid.clone()));
    assert_eq!(get("MessageStatus").as_deref(), Some("undelivered"));
    assert_eq!(get("ErrorCode").as_deref(), Some("30003"));
    // A forged or altered callback is refused and changes nothing.
    let forged = reqwest::Client::new()
        .post(&callback)
        .header("X-Twilio-Signature", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
        .form(&seen[0])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let mut altered = seen[0].clone();
    altered.retain(|(k, _)| k != "ErrorCode");
    let signed_for_other_params =
        hotline580::telephony::signature::expected_signature(TOKEN, &callback, &seen[0]);
    let altered = reqwest::Client::new()
        .post(&callback)
        .header("X-Twilio-Signature", signed_for_other_params)
        .form(&altered)
        .send()
        .await
        .unwrap();
    assert_eq!(altered.status(), 403);
    server.abort();
}

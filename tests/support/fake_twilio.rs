//! A fake of Twilio's REST API for black-box tests: the Messages and Calls
//! resources on 127.0.0.1 (a port of its own), with Basic auth, Twilio-shaped
//! answers and errors, failures on demand, and signed status callbacks.
//!
//! ```ignore
//! #[path = "support/fake_twilio.rs"]
//! mod fake_twilio;            // or `mod support;` and `support::fake_twilio`
//! let twilio = fake_twilio::FakeTwilio::start("AC123", "token").await;
//! // point twilio.api_base at twilio.base_url(), run the scenario, then:
//! let sms = twilio.wait_for_messages(1, Duration::from_secs(5)).await;
//! ```
//!
//! Each request is checked in this order: Basic auth (401, Twilio error 20003),
//! the account in the path (404, 20404), failures queued with `fail_next*`,
//! failures set for a number with `reject_to`, required fields (400); then it
//! is recorded and answered 201. Every request, answered or not, is in
//! `requests()`. `GET …/Messages.json?To=&From=` lists accepted SMS newest
//! first, as Twilio does (the sender asks it after a crash cut a send off).

#![allow(dead_code)]

use axum::extract::Query;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine as _;
use std::collections::{HashMap, VecDeque};
use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// An SMS the fake accepted (`POST …/Messages.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedMessage {
    pub sid: String,
    /// The account named in the path.
    pub account_sid: String,
    /// The Basic auth user name.
    pub auth_user: String,
    pub to: String,
    pub from: String,
    pub body: String,
    pub status_callback: Option<String>,
    /// Every form field, as sent.
    pub form: Vec<(String, String)>,
}

/// A call the fake accepted (`POST …/Calls.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    pub sid: String,
    pub account_sid: String,
    pub auth_user: String,
    pub to: String,
    pub from: String,
    /// Where Twilio would fetch the call's TwiML.
    pub url: String,
    pub status_callback: Option<String>,
    pub form: Vec<(String, String)>,
}

/// Any request the fake received, with the status it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `Messages.json`, `Calls.json`, or whatever else was asked for.
    pub resource: String,
    pub account_sid: String,
    pub auth_user: Option<String>,
    pub form: Vec<(String, String)>,
    pub status: u16,
}

impl RecordedRequest {
    pub fn field(&self, name: &str) -> Option<&str> {
        field(&self.form, name)
    }
}

/// How to fail a request: a status, optionally Twilio's error code and message
/// and a `Retry-After` (seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub code: Option<i64>,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl Failure {
    /// A failure with Twilio's usual error body for `status`.
    pub fn status(status: u16) -> Self {
        let message = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error")
            .to_string();
        Self {
            status,
            code: None,
            message,
            retry_after: None,
        }
    }

    /// A Twilio error such as 400 / 21211 "The 'To' number … is not a valid phone number."
    pub fn twilio(status: u16, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Some(code),
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429 "Too Many Requests" (Twilio error 20429) asking to wait `secs`.
    pub fn rate_limited(secs: u64) -> Self {
        Self::twilio(429, 20429, "Too Many Requests").with_retry_after(secs)
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    fn into_response(self) -> Response {
        let body = twilio_error_body(self.status, self.code, &self.message);
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                secs.to_string().parse().expect("digits"),
            );
        }
        response
    }
}

/// A running fake; stops when dropped.
pub struct FakeTwilio {
    base_url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

struct Shared {
    account_sid: String,
    auth_token: String,
    inner: Mutex<Inner>,
    messages_seen: watch::Sender<usize>,
    calls_seen: watch::Sender<usize>,
}

#[derive(Default)]
struct Inner {
    messages: Vec<RecordedMessage>,
    /// When each of `messages` was accepted.
    message_times: Vec<jiff::Timestamp>,
    calls: Vec<RecordedCall>,
    requests: Vec<RecordedRequest>,
    failures: VecDeque<Failure>,
    rejected_numbers: HashMap<String, Failure>,
    delay: Option<Duration>,
    next_sid: u64,
}

impl FakeTwilio {
    /// Starts a fake that accepts Basic auth `account_sid`:`auth_token`.
    pub async fn start(account_sid: &str, auth_token: &str) -> FakeTwilio {
        let shared = Arc::new(Shared {
            account_sid: account_sid.to_string(),
            auth_token: auth_token.to_string(),
            inner: Mutex::new(Inner::default()),
            messages_seen: watch::Sender::new(0),
            calls_seen: watch::Sender::new(0),
        });
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account_sid}/{resource}",
                post(create).get(list),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Twilio");
        let addr = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake Twilio serves");
        });
        FakeTwilio {
            base_url: format!("http://{addr}"),
            shared,
            server,
        }
    }

    /// For `twilio.api_base`: `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn account_sid(&self) -> &str {
        &self.shared.account_sid
    }

    pub fn auth_token(&self) -> &str {
        &self.shared.auth_token
    }

    /// The next `n` requests fail with `status` and Twilio's error body.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.fail_next_with(n, Failure::status(status));
    }

    /// The next `n` requests fail as described.
    pub fn fail_next_with(&self, n: usize, failure: Failure) {
        let mut inner = self.lock();
        inner.failures.extend(std::iter::repeat_n(failure, n));
    }

    /// Every request `To` this number fails (e.g. 400 / 21211, or 21610
    /// "Attempt to send to unsubscribed recipient") until `clear`.
    pub fn reject_to(&self, phone: impl Display, failure: Failure) {
        self.lock()
            .rejected_numbers
            .insert(phone.to_string(), failure);
    }

    /// Answers each later request only after `delay` (it is recorded at once,
    /// as Twilio would have acted on it): for client timeouts.
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.lock().delay = delay;
    }

    /// Forgets what was recorded, queued failures, rejections and delay.
    pub fn clear(&self) {
        let mut inner = self.lock();
        let next_sid = inner.next_sid;
        *inner = Inner {
            next_sid,
            ..Inner::default()
        };
    }

    /// Accepted SMS, oldest first.
    pub fn messages(&self) -> Vec<RecordedMessage> {
        self.lock().messages.clone()
    }

    /// Accepted SMS to `phone` (E.164, a `&str` or a `PhoneNumber`), oldest first.
    pub fn messages_to(&self, phone: impl Display) -> Vec<RecordedMessage> {
        let phone = phone.to_string();
        self.lock()
            .messages
            .iter()
            .filter(|m| m.to == phone)
            .cloned()
            .collect()
    }

    /// Accepted calls, oldest first.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.lock().calls.clone()
    }

    pub fn calls_to(&self, phone: impl Display) -> Vec<RecordedCall> {
        let phone = phone.to_string();
        self.lock()
            .calls
            .iter()
            .filter(|c| c.to == phone)
            .cloned()
            .collect()
    }

    /// Every request received, failed ones included, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Waits until at least `n` SMS were accepted and returns all of them.
    ///
    /// # Panics
    /// After `timeout`, naming how many arrived and what was attempted.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<RecordedMessage> {
        let mut seen = self.shared.messages_seen.subscribe();
        if tokio::time::timeout(timeout, seen.wait_for(|&count| count >= n))
            .await
            .is_err()
        {
            panic!(
                "expected {n} SMS within {timeout:?}, got {}: {:#?}\nrequests: {:#?}",
                self.messages().len(),
                self.messages(),
                self.requests()
            );
        }
        self.messages()
    }

    /// Waits until at least `n` calls were accepted and returns all of them.
    pub async fn wait_for_calls(&self, n: usize, timeout: Duration) -> Vec<RecordedCall> {
        let mut seen = self.shared.calls_seen.subscribe();
        if tokio::time::timeout(timeout, seen.wait_for(|&count| count >= n))
            .await
            .is_err()
        {
            panic!(
                "expected {n} calls within {timeout:?}, got {}: {:#?}\nrequests: {:#?}",
                self.calls().len(),
                self.calls(),
                self.requests()
            );
        }
        self.calls()
    }

    /// Reports a new status of an accepted message or call to its
    /// `StatusCallback`, signed as Twilio signs it, and returns the answer's
    /// status. SMS statuses: `sent`, `delivered`, `undelivered`, `failed`
    /// (`ErrorCode` may be given in `extra`); calls: `ringing`, `in-progress`,
    /// `completed`, `busy`, `no-answer`, `failed`.
    ///
    /// # Panics
    /// When `sid` is unknown or was sent without a `StatusCallback`.
    pub async fn send_status_callback(
        &self,
        sid: &str,
        status: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::StatusCode {
        let (url, mut params) = {
            let inner = self.lock();
            if let Some(m) = inner.messages.iter().find(|m| m.sid == sid) {
                let url = m
                    .status_callback
                    .clone()
                    .expect("the SMS had a StatusCallback");
                (
                    url,
                    vec![
                        ("MessageSid", m.sid.clone()),
                        ("SmsSid", m.sid.clone()),
                        ("MessageStatus", status.to_string()),
                        ("SmsStatus", status.to_string()),
                        ("AccountSid", m.account_sid.clone()),
                        ("From", m.from.clone()),
                        ("To", m.to.clone()),
                        ("ApiVersion", "2010-04-01".to_string()),
                    ],
                )
            } else if let Some(c) = inner.calls.iter().find(|c| c.sid == sid) {
                let url = c
                    .status_callback
                    .clone()
                    .expect("the call had a StatusCallback");
                (
                    url,
                    vec![
                        ("CallSid", c.sid.clone()),
                        ("CallStatus", status.to_string()),
                        ("AccountSid", c.account_sid.clone()),
                        ("From", c.from.clone()),
                        ("To", c.to.clone()),
                        ("Direction", "outbound-api".to_string()),
                        ("ApiVersion", "2010-04-01".to_string()),
                    ],
                )
            } else {
                panic!("the fake Twilio sent nothing with sid {sid}");
            }
        };
        params.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        self.post_signed(&url, &params).await
    }

    /// POSTs `params` to `url` with a valid `X-Twilio-Signature`, as Twilio
    /// calls webhooks.
    pub async fn post_signed(&self, url: &str, params: &[(&str, String)]) -> reqwest::StatusCode {
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let signature = hotline580::telephony::signature::expected_signature(
            &self.shared.auth_token,
            url,
            &owned,
        );
        reqwest::Client::new()
            .post(url)
            .header("X-Twilio-Signature", signature)
            .form(&owned)
            .send()
            .await
            .expect("the webhook answers")
            .status()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().expect("fake Twilio state")
    }
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path((account_sid, resource)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let auth = basic_auth(&headers);
    let (response, delay) = {
        let mut inner = shared.inner.lock().expect("fake Twilio state");
        let response = answer(
            &shared,
            &mut inner,
            &account_sid,
            &resource,
            auth.as_ref(),
            &form,
        );
        inner.requests.push(RecordedRequest {
            resource: resource.clone(),
            account_sid: account_sid.clone(),
            auth_user: auth.map(|(user, _)| user),
            form,
            status: response.status().as_u16(),
        });
        (response, inner.delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    response
}

fn answer(
    shared: &Shared,
    inner: &mut Inner,
    account_sid: &str,
    resource: &str,
    auth: Option<&(String, String)>,
    form: &[(String, String)],
) -> Response {
    match auth {
        Some((user, password)) if *user == shared.account_sid && *password == shared.auth_token => {
        }
        _ => {
            return Failure::twilio(401, 20003, "Authenticate").into_response();
        }
    }
    let not_found = || {
        Failure::twilio(
            404,
            20404,
            format!(
                "The requested resource /2010-04-01/Accounts/{account_sid}/{resource} was not found"
            ),
        )
        .into_response()
    };
    if account_sid != shared.account_sid {
        return not_found();
    }
    if let Some(failure) = inner.failures.pop_front() {
        return failure.into_response();
    }
    let to = field(form, "To").unwrap_or("").to_string();
    if let Some(failure) = inner.rejected_numbers.get(&to) {
        return failure.clone().into_response();
    }
    let from = field(form, "From").unwrap_or("").to_string();
    let status_callback = field(form, "StatusCallback").map(str::to_string);
    let required = |name: &str, code: i64, message: &str| {
        field(form, name)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| Failure::twilio(400, code, message))
    };
    match resource {
        "Messages.json" => {
            let checked = required("To", 21604, "A 'To' phone number is required.")
                .and_then(|_| required("From", 21603, "A 'From' phone number is required."))
                .and_then(|_| required("Body", 21602, "Message body is required."));
            let body = match checked {
                Ok(body) => body,
                Err(failure) => return failure.into_response(),
            };
            inner.next_sid += 1;
            let sid = format!("SM{:032x}", inner.next_sid);
            let json = serde_json::json!({
                "sid": sid,
                "account_sid": account_sid,
                "to": to,
                "from": from,
                "body": body,
                "status": "queued",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "num_segments": "1",
                "num_media": "0",
                "error_code": null,
                "error_message": null,
                "price": null,
                "price_unit": "USD",
                "uri": format!("/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"),
            });
            inner.messages.push(RecordedMessage {
                sid,
                account_sid: account_sid.to_string(),
                auth_user: shared.account_sid.clone(),
                to,
                from,
                body,
                status_callback,
                form: form.to_vec(),
            });
            inner.message_times.push(jiff::Timestamp::now());
            shared.messages_seen.send_replace(inner.messages.len());
            (StatusCode::CREATED, Json(json)).into_response()
        }
        "Calls.json" => {
            let checked = required("To", 21201, "No 'To' number is specified")
                .and_then(|_| required("From", 21213, "No 'From' number is specified"))
                .and_then(|_| required("Url", 21205, "Url parameter is required."));
            let url = match checked {
                Ok(url) => url,
                Err(failure) => return failure.into_response(),
            };
            inner.next_sid += 1;
            let sid = format!("CA{:032x}", inner.next_sid);
            let json = serde_json::json!({
                "sid": sid,
                "account_sid": account_sid,
                "to": to,
                "from": from,
                "status": "queued",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": format!("/2010-04-01/Accounts/{account_sid}/Calls/{sid}.json"),
            });
            inner.calls.push(RecordedCall {
                sid,
                account_sid: account_sid.to_string(),
                auth_user: shared.account_sid.clone(),
                to,
                from,
                url,
                status_callback,
                form: form.to_vec(),
            });
            shared.calls_seen.send_replace(inner.calls.len());
            (StatusCode::CREATED, Json(json)).into_response()
        }
        _ => not_found(),
    }
}

/// `GET …/Messages.json`: accepted SMS, newest first, filtered by `To` and `From`.
async fn list(
    State(shared): State<Arc<Shared>>,
    Path((account_sid, resource)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match basic_auth(&headers) {
        Some((user, password)) if user == shared.account_sid && password == shared.auth_token => {}
        _ => return Failure::twilio(401, 20003, "Authenticate").into_response(),
    }
    if account_sid != shared.account_sid || resource != "Messages.json" {
        return Failure::twilio(404, 20404, "The requested resource was not found").into_response();
    }
    let inner = shared.inner.lock().expect("fake Twilio state");
    let wanted = |field: &str, value: &str| query.get(field).is_none_or(|v| v == value);
    let messages: Vec<serde_json::Value> = inner
        .messages
        .iter()
        .zip(&inner.message_times)
        .rev()
        .filter(|(m, _)| wanted("To", &m.to) && wanted("From", &m.from))
        .take(50)
        .map(|(m, at)| {
            let created = jiff::fmt::rfc2822::to_string(&at.to_zoned(jiff::tz::TimeZone::UTC))
                .expect("a printable time");
            serde_json::json!({
                "sid": m.sid, "to": m.to, "from": m.from, "body": m.body,
                "status": "sent", "date_created": created,
            })
        })
        .collect();
    Json(serde_json::json!({ "messages": messages })).into_response()
}

/// `(user, password)` from `Authorization: Basic …`.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn twilio_error_body(status: u16, code: Option<i64>, message: &str) -> serde_json::Value {
    serde_json::json!({
        "code": code,
        "message": message,
        "more_info": code.map(|c| format!("https://www.twilio.com/docs/errors/{c}")),
        "status": status,
    })
}

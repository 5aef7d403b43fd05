//! Twilio's REST API: the Messages and Calls resources, nothing more.
//!
//! One shared `reqwest` client with short timeouts, since a send runs inside a
//! job with its own time limit. Failures are sorted into retryable (429, 5xx,
//! 408, timeouts, no connection) and permanent (any other answer), keeping
//! Twilio's own error code and message for the operators.

use super::{Provider, SendError, SentMessage};
use crate::config::TwilioSettings;
use crate::domain::PhoneNumber;
use anyhow::Context as _;
use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// How long to wait for a connection, and for a whole request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct TwilioProvider {
    client: reqwest::Client,
    api_base: String,
    account_sid: String,
    auth_token: SecretString,
}

impl std::fmt::Debug for TwilioProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioProvider")
            .field("api_base", &self.api_base)
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

impl TwilioProvider {
    /// A provider for the account `account_sid` at `api_base`
    /// (`https://api.twilio.com`, a regional edge, or a fake in tests).
    pub fn new(
        api_base: &str,
        account_sid: &str,
        auth_token: SecretString,
    ) -> anyhow::Result<Self> {
        if account_sid.is_empty()
            || !account_sid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            anyhow::bail!("the Twilio account SID `{account_sid}` is not a SID such as AC0123…");
        }
        Ok(Self {
            client: client(DEFAULT_TIMEOUT)?,
            api_base: api_base.trim_end_matches('/').to_string(),
            account_sid: account_sid.to_string(),
            auth_token,
        })
    }

    /// From the `[twilio]` settings; SID and token are required.
    pub fn from_settings(settings: &TwilioSettings) -> anyhow::Result<Self> {
        let sid = settings
            .account_sid
            .as_deref()
            .filter(|s| !s.is_empty())
            .context("twilio.account_sid is required when telephony.provider is `twilio`")?;
        let token = settings
            .auth_token
            .clone()
            .filter(|t| !t.expose_secret().is_empty())
            .context("twilio.auth_token is required when telephony.provider is `twilio`")?;
        Self::new(&settings.api_base, sid, token)
    }

    /// The same provider with another connect and request timeout (tests use a short one).
    pub fn with_timeout(mut self, timeout: Duration) -> anyhow::Result<Self> {
        self.client = client(timeout)?;
        Ok(self)
    }

    fn resource_url(&self, resource: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/{resource}.json",
            self.api_base, self.account_sid
        )
    }

    async fn create(
        &self,
        resource: &'static str,
        form: &[(&str, &str)],
    ) -> Result<SentMessage, SendError> {
        let response = self
            .client
            .post(self.resource_url(resource))
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(form)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.text().await;
        if status.is_success() {
            // Twilio accepted it: a retry could send it twice, so an answer we
            // cannot read is a permanent failure for the operators to look at.
            let body = body.map_err(|e| SendError::Permanent {
                message: format!(
                    "Twilio accepted the request ({status}) but its answer could not be read: {}",
                    chain(&e)
                ),
            })?;
            return parse_created(&body).ok_or_else(|| SendError::Permanent {
                message: format!(
                    "Twilio accepted the request ({status}) but its answer names no sid: {}",
                    snippet(&body)
                ),
            });
        }
        let message = error_message(status, body.as_deref().unwrap_or(""));
        if is_retryable(status) {
            Err(SendError::Retryable {
                message,
                retry_after,
            })
        } else {
            Err(SendError::Permanent { message })
        }
    }
}

#[async_trait]
impl Provider for TwilioProvider {
    async fn send_sms(
        &self,
        to: &PhoneNumber,
        from: &PhoneNumber,
        body: &str,
        status_callback: &str,
    ) -> Result<SentMessage, SendError> {
        let mut form = vec![("To", to.as_str()), ("From", from.as_str()), ("Body", body)];
        if !status_callback.is_empty() {
            form.push(("StatusCallback", status_callback));
        }
        let result = self.create("Messages", &form).await;
        log_result("sms", to, &result);
        result
    }

    async fn place_call(
        &self,
        to: &PhoneNumber,
        from: &PhoneNumber,
        twiml_url: &str,
        status_callback: &str,
    ) -> Result<SentMessage, SendError> {
        let mut form = vec![
            ("To", to.as_str()),
            ("From", from.as_str()),
            ("Url", twiml_url),
        ];
        if !status_callback.is_empty() {
            form.push(("StatusCallback", status_callback));
        }
        let result = self.create("Calls", &form).await;
        log_result("call", to, &result);
        result
    }

    /// `GET …/Messages.json?To=…&From=…` (newest first, one page): Twilio
    /// lists a message from the moment it accepts it, whatever its status.
    async fn find_sms(
        &self,
        to: &PhoneNumber,
        from: &PhoneNumber,
        body: &str,
        since_ms: i64,
    ) -> Result<Option<SentMessage>, SendError> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("To", to.as_str())
            .append_pair("From", from.as_str())
            .append_pair("PageSize", "50")
            .finish();
        let response = self
            .client
            .get(format!("{}?{query}", self.resource_url("Messages")))
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let text = response.text().await.map_err(transport_error)?;
        if !status.is_success() {
            return Err(SendError::Retryable {
                message: error_message(status, &text),
                retry_after: None,
            });
        }
        Ok(find_in_list(&text, body, since_ms))
    }

    fn name(&self) -> &'static str {
        "twilio"
    }
}

/// The sid of the listed message with `body` created at or after `since_ms`.
fn find_in_list(list: &str, body: &str, since_ms: i64) -> Option<SentMessage> {
    let v: serde_json::Value = serde_json::from_str(list).ok()?;
    v.get("messages")?.as_array()?.iter().find_map(|m| {
        let created = m
            .get("date_created")
            .and_then(|d| d.as_str())
            .and_then(|d| jiff::fmt::rfc2822::parse(d).ok())
            .map(|z| z.timestamp().as_millisecond())?;
        (m.get("body")?.as_str()? == body && created >= since_ms)
            .then(|| {
                m.get("sid")?.as_str().map(|sid| SentMessage {
                    sid: sid.to_string(),
                })
            })
            .flatten()
    })
}

fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("hotline580/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client for Twilio")
}

fn log_result(kind: &str, to: &PhoneNumber, result: &Result<SentMessage, SendError>) {
    match result {
        Ok(sent) => {
            tracing::info!(provider = "twilio", kind, to = %to.masked(), sid = %sent.sid, "sent")
        }
        Err(e) => tracing::warn!(
            provider = "twilio",
            kind,
            to = %to.masked(),
            retryable = e.is_retryable(),
            error = %e.message(),
            "send failed"
        ),
    }
}

/// 429 and 5xx, and 408 (a timeout by another name): the contract retries these.
fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// A connection or timeout problem: we cannot know the provider refused it.
fn transport_error(e: reqwest::Error) -> SendError {
    if e.is_builder() {
        return SendError::Permanent {
            message: format!("cannot build the request to Twilio: {}", chain(&e)),
        };
    }
    let message = if e.is_timeout() {
        format!("Twilio did not answer in time: {}", chain(&e))
    } else if e.is_connect() {
        format!("cannot connect to Twilio: {}", chain(&e))
    } else {
        format!("the request to Twilio failed: {}", chain(&e))
    };
    SendError::Retryable {
        message,
        retry_after: None,
    }
}

/// `Retry-After` in seconds (what Twilio sends); an HTTP date is ignored.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

fn parse_created(body: &str) -> Option<SentMessage> {
    #[derive(serde::Deserialize)]
    struct Created {
        sid: String,
    }
    let created: Created = serde_json::from_str(body).ok()?;
    (!created.sid.is_empty()).then_some(SentMessage { sid: created.sid })
}

/// `Twilio 400: The 'To' number … is not a valid phone number. (error 21211)`,
/// from Twilio's JSON error; the body's start when it is not one.
fn error_message(status: StatusCode, body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct TwilioError {
        code: Option<i64>,
        message: Option<String>,
    }
    let status_text = match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    };
    match serde_json::from_str::<TwilioError>(body) {
        Ok(TwilioError {
            code,
            message: Some(message),
        }) => match code {
            Some(code) => format!("Twilio {status_text}: {message} (error {code})"),
            None => format!("Twilio {status_text}: {message}"),
        },
        Ok(TwilioError {
            code: Some(code), ..
        }) => format!("Twilio {status_text} (error {code})"),
        _ if body.trim().is_empty() => format!("Twilio {status_text}"),
        _ => format!("Twilio {status_text}: {}", snippet(body)),
    }
}

fn snippet(body: &str) -> String {
    const MAX: usize = 200;
    let body = body.trim();
    match body.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_string(),
    }
}

/// An error and its causes on one line (reqwest's own text says little).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn twilio_errors_keep_their_code_and_message() {
        let body = r#"{"code": 21211, "message": "The 'To' number +1555 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        assert_eq!(
            error_message(StatusCode::BAD_REQUEST, body),
            "Twilio 400 Bad Request: The 'To' number +1555 is not a valid phone number. (error 21211)"
        );
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, "<html>oops</html>"),
            "Twilio 502 Bad Gateway: <html>oops</html>"
        );
        assert_eq!(
            error_message(StatusCode::SERVICE_UNAVAILABLE, ""),
            "Twilio 503 Service Unavailable"
        );
        let long = "x".repeat(500);
        assert!(
            error_message(StatusCode::BAD_REQUEST, &long)
                .chars()
                .count()
                < 240
        );
    }

    #[test]
    fn retryable_statuses_are_429_408_and_5xx() {
        for code in [429, 408, 500, 502, 503, 504] {
            assert!(is_retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 422] {
            assert!(!is_retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static(" 7 "));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn a_listed_message_is_found_by_body_and_time() {
        let list = r#"{"messages": [
            {"sid": "SM2", "body": "other", "date_created": "Mon, 23 Nov 2026 10:00:05 +0000"},
            {"sid": "SM1", "body": "YES 17", "date_created": "Mon, 23 Nov 2026 10:00:00 +0000"}
        ]}"#;
        let at = jiff::Timestamp::from_second(1_795_428_000)
            .unwrap()
            .as_millisecond(); // 10:00:00
        assert_eq!(
            find_in_list(list, "YES 17", at).map(|m| m.sid),
            Some("SM1".into())
        );
        assert_eq!(
            find_in_list(list, "YES 17", at + 1),
            None,
            "older than the claim"
        );
        assert_eq!(find_in_list(list, "YES 1", at), None);
        assert_eq!(find_in_list("not json", "YES 17", 0), None);
    }

    #[test]
    fn a_created_resource_yields_its_sid() {
        let sid = parse_created(r#"{"sid": "SMabc", "status": "queued"}"#).unwrap();
        assert_eq!(sid.sid, "SMabc");
        assert!(parse_created(r#"{"status": "queued"}"#).is_none());
        assert!(parse_created(r#"{"sid": ""}"#).is_none());
        assert!(parse_created("not json").is_none());
    }

    #[test]
    fn urls_and_debug_output_keep_the_token_out() {
        let p = TwilioProvider::new(
            "https://api.twilio.com/",
            "AC123",
            SecretString::from("s3cret-token"),
        )
        .unwrap();
        assert_eq!(
            p.resource_url("Messages"),
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
        );
        assert!(!format!("{p:?}").contains("s3cret"));
        assert!(TwilioProvider::new("https://x", "AC/../x", SecretString::from("t")).is_err());
    }
}

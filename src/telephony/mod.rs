//! The provider boundary: sending SMS and placing calls through Twilio's REST
//! API or the simulated provider, and checking Twilio's webhook signatures.
//!
//! Everything outside this module sees only [`Provider`] (chosen once by
//! [`build`] from `telephony.provider`) and the pure functions of
//! [`signature`]; nothing else knows which provider is in use.

pub mod signature;
pub mod simulated;
pub mod twilio;

use crate::config::{Config, ProviderKind};
use crate::domain::PhoneNumber;
use crate::store::Db;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

pub use simulated::SimulatedProvider;
pub use twilio::TwilioProvider;

/// What the provider accepted: its id for the message or call (`SM…`, `CA…`),
/// which its status callbacks name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub sid: String,
}

/// Why a send did not go out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (429, 5xx, 408, a timeout, no connection);
    /// `retry_after` is the provider's `Retry-After` when it gave one.
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Trying again would fail the same way (a bad number, bad credentials, a
    /// refused request); the message is what the provider said, for operators.
    #[error("{message}")]
    Permanent { message: String },
}

impl SendError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Retryable { .. })
    }

    /// The provider's own wait, when it asked for one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Retryable { retry_after, .. } => *retry_after,
            SendError::Permanent { .. } => None,
        }
    }

    /// The text to record in `outbox.last_error` and show to operators.
    pub fn message(&self) -> &str {
        match self {
            SendError::Retryable { message, .. } | SendError::Permanent { message } => message,
        }
    }
}

/// A telephony provider: the two things we ask of one.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Sends one SMS; the provider reports its fate to `status_callback`.
    async fn send_sms(
        &self,
        to: &PhoneNumber,
        from: &PhoneNumber,
        body: &str,
        status_callback: &str,
    ) -> Result<SentMessage, SendError>;

    /// Places an outbound call whose TwiML is fetched from `twiml_url`.
    async fn place_call(
        &self,
        to: &PhoneNumber,
        from: &PhoneNumber,
        twiml_url: &str,
        status_callback: &str,
    ) -> Result<SentMessage, SendError>;

    /// An SMS the provider already accepted: to `to`, from `from`, with
    /// exactly `body`, created at or after `since_ms` (Unix ms). Asked before
    /// sending again a row whose earlier send was cut off by a crash, so a
    /// message that did go out is recorded rather than sent twice. `Ok(None)`:
    /// none found; `Err`: the provider could not tell (the caller sends
    /// anyway and counts a possible duplicate).
    async fn find_sms(
        &self,
        to: &PhoneNumber,
        from: &PhoneNumber,
        body: &str,
        since_ms: i64,
    ) -> Result<Option<SentMessage>, SendError> {
        let _ = (to, from, body, since_ms);
        Ok(None)
    }

    /// `"twilio"` or `"simulated"`, for logs and metrics.
    fn name(&self) -> &'static str;
}

/// The provider named by `telephony.provider`.
///
/// # Panics
/// When the provider cannot be set up, which a `Config` that passed
/// validation rules out (Twilio's SID and token are checked there); use
/// [`try_build`] to handle that as an error instead.
pub fn build(config: &Config, db: &Db) -> Arc<dyn Provider> {
    match try_build(config, db) {
        Ok(provider) => provider,
        Err(e) => panic!("cannot set up the telephony provider: {e:#}"),
    }
}

/// [`build`], reporting a provider that cannot be set up.
pub fn try_build(config: &Config, db: &Db) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(match config.settings.telephony.provider {
        ProviderKind::Simulated => Arc::new(SimulatedProvider::new(db.clone())),
        ProviderKind::Twilio => Arc::new(TwilioProvider::from_settings(&config.settings.twilio)?),
    })
}

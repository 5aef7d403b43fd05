//! Console and API sessions: a `tower-sessions` store over our `sessions`
//! table, the signed-cookie layer, and the `CurrentOperator` extractor that
//! every logged-in handler takes.

use super::{AppError, AppResult};
use crate::app::AppState;
use crate::config::Config;
use crate::domain::Role;
use crate::store::{Db, DbResult};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use secrecy::ExposeSecret;
use std::sync::OnceLock;
use tower_sessions::cookie::time::Duration;
use tower_sessions::cookie::{Key, SameSite};
use tower_sessions::service::SignedCookie;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, Session, SessionManagerLayer};

/// The cookie's name.
pub const COOKIE_NAME: &str = "hotline580_session";
/// A session ends after this long without a change (a login, a logout).
pub const IDLE_LIMIT: Duration = Duration::hours(12);
/// The session key holding the logged-in operator's id.
const OPERATOR_ID: &str = "operator_id";
/// The session key holding when the session was last saved (Unix ms).
const SEEN_AT: &str = "seen_at";
/// Reading a session does not extend it; a request this long after the last
/// save saves it again, so `IDLE_LIMIT` counts from the last use at a cost of
/// one write per few minutes per operator.
const TOUCH_AFTER_MS: i64 = 5 * 60 * 1000;

/// Sessions kept in the `sessions` table, so every instance sees every login
/// and a restart keeps them (with a configured `server.session_key`).
#[derive(Debug, Clone)]
pub struct DbSessionStore {
    db: Db,
}

impl DbSessionStore {
    pub fn new(db: Db) -> Self {
        DbSessionStore { db }
    }
}

fn expiry_ms(record: &Record) -> i64 {
    (record.expiry_date.unix_timestamp_nanos() / 1_000_000) as i64
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

#[async_trait::async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let now = crate::store::now_ms();
        // Logins are rare: clearing expired rows here keeps the table small
        // without a job of its own.
        let _: DbResult<()> = crate::on_db!(&self.db, |c| {
            sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
                .bind(now)
                .execute(c)
                .await
                .map(|_| ())
        });
        let data = serde_json::to_string(record)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        // An id that is already taken (vanishingly unlikely) is drawn again.
        loop {
            let id = record.id.to_string();
            let inserted = crate::on_db!(&self.db, |c| {
                sqlx::query(
                    "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&id)
                .bind(&data)
                .bind(expiry_ms(record))
                .execute(c)
                .await
                .map(|r| r.rows_affected())
            })
            .map_err(backend)?;
            if inserted == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = serde_json::to_string(record)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let id = record.id.to_string();
        crate::on_db!(&self.db, |c| {
            sqlx::query(
                "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
            )
            .bind(&id)
            .bind(&data)
            .bind(expiry_ms(record))
            .execute(c)
            .await
            .map(|_| ())
        })
        .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let id = session_id.to_string();
        let data: Option<String> = crate::on_db!(&self.db, |c| {
            sqlx::query_scalar("SELECT data FROM sessions WHERE id = $1 AND expires_at > $2")
                .bind(&id)
                .bind(crate::store::now_ms())
                .fetch_optional(c)
                .await
        })
        .map_err(backend)?;
        data.map(|d| {
            serde_json::from_str(&d).map_err(|e| session_store::Error::Decode(e.to_string()))
        })
        .transpose()
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        let id = session_id.to_string();
        crate::on_db!(&self.db, |c| {
            sqlx::query("DELETE FROM sessions WHERE id = $1")
                .bind(&id)
                .execute(c)
                .await
                .map(|_| ())
        })
        .map_err(backend)?;
        Ok(())
    }
}

/// The cookie-signing key: `server.session_key`, or one random key per
/// process (shared by every layer built in it) when that is unset or short.
fn signing_key(config: &Config) -> Key {
    static RANDOM: OnceLock<Key> = OnceLock::new();
    match &config.settings.server.session_key {
        Some(k) if k.expose_secret().len() >= 64 => Key::from(k.expose_secret().as_bytes()),
        configured => {
            if configured.is_some() {
                tracing::warn!(
                    "server.session_key is shorter than 64 characters; using a random key instead: console logins end when the service restarts"
                );
            } else {
                tracing::warn!(
                    "server.session_key is not set; using a random key: console logins end when the service restarts"
                );
            }
            RANDOM.get_or_init(Key::generate).clone()
        }
    }
}

/// The session layer for the API and the console: an HttpOnly, SameSite=Strict
/// cookie signed with the session key, `Secure` unless `server.public_url` is
/// plain http, ending after `IDLE_LIMIT` of inactivity.
pub fn layer(state: &AppState) -> SessionManagerLayer<DbSessionStore, SignedCookie> {
    let secure = !state
        .config
        .settings
        .server
        .public_url
        .starts_with("http://");
    SessionManagerLayer::new(DbSessionStore::new(state.db.clone()))
        .with_name(COOKIE_NAME)
        .with_path("/")
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(secure)
        .with_expiry(Expiry::OnInactivity(IDLE_LIMIT))
        .with_signed(signing_key(&state.config))
}

/// Marks the session as `operator_id`'s, under a new session id (so an id
/// planted before the login is worthless after it).
pub async fn log_in(session: &Session, operator_id: i64) -> AppResult<()> {
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(OPERATOR_ID, operator_id)
        .await
        .map_err(session_error)?;
    session
        .insert(SEEN_AT, crate::store::now_ms())
        .await
        .map_err(session_error)?;
    Ok(())
}

/// Whether the session `id` still exists (not logged out, not expired); a
/// long-lived response such as the event stream asks this now and then.
pub async fn is_live(db: &Db, id: &str) -> DbResult<bool> {
    let n: i64 = crate::on_db!(db, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM sessions WHERE id = $1 AND expires_at > $2"
    )
    .bind(id)
    .bind(crate::store::now_ms())
    .fetch_one(c)
    .await)?;
    Ok(n > 0)
}

/// Ends the session: its row is deleted and the cookie removed.
pub async fn log_out(session: &Session) -> AppResult<()> {
    session.flush().await.map_err(session_error)
}

fn session_error(e: tower_sessions::session::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("session: {e}"))
}

/// The operator behind the request's session. Handlers that take it run only
/// for a logged-in operator; otherwise the answer is 401 `{"error": "log in first"}`.
/// The operator is read again on every request, so a removed login ends at once.
#[derive(Debug, Clone)]
pub struct CurrentOperator {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

impl CurrentOperator {
    /// 403 unless the operator is an administrator.
    pub fn require_admin(&self) -> AppResult<()> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(AppError::forbidden("only an administrator can do this"))
        }
    }

    /// How events name this operator (`actor`).
    pub fn actor(&self) -> String {
        format!("operator:{}", self.username)
    }
}

impl FromRequestParts<AppState> for CurrentOperator {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let session = parts.extensions.get::<Session>().cloned().ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "the session layer is missing on this route"
            ))
        })?;
        let id: Option<i64> = session.get(OPERATOR_ID).await.map_err(session_error)?;
        let Some(id) = id else {
            return Err(AppError::unauthorized("log in first"));
        };
        let Some(op) = crate::auth::find_operator_by_id(&state.db, id).await? else {
            return Err(AppError::unauthorized("log in first"));
        };
        let seen_at: i64 = session
            .get(SEEN_AT)
            .await
            .map_err(session_error)?
            .unwrap_or(0);
        let now = crate::store::now_ms();
        if now - seen_at > TOUCH_AFTER_MS {
            session.insert(SEEN_AT, now).await.map_err(session_error)?;
        }
        Ok(CurrentOperator {
            id: op.id,
            role: op.role(),
            username: op.username,
        })
    }
}

/// An administrator's `CurrentOperator`: 401 without a login, 403 for an operator.
#[derive(Debug, Clone)]
pub struct Admin(pub CurrentOperator);

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let op = CurrentOperator::from_request_parts(parts, state).await?;
        op.require_admin()?;
        Ok(Admin(op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_sessions::cookie::time::OffsetDateTime;

    #[test]
    fn a_record_expiry_is_stored_in_milliseconds() {
        let record = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        };
        assert_eq!(expiry_ms(&record), 1_700_000_000_000);
    }
}

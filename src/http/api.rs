//! The operators' JSON API under `/api`: login and logout, and reading
//! requests and volunteers. Every route but `/api/login` needs a session
//! (`CurrentOperator`); request bodies must be JSON (`ApiJson`), so no simple
//! cross-site form can reach a state-changing call.

use super::session::{self, CurrentOperator};
use super::{AppError, AppResult};
use crate::app::AppState;
use crate::domain::Status;
use crate::store::ms_to_rfc3339;
use crate::store::requests::{self as store_requests, EventRow, OfferRow, RequestRow};
use crate::store::volunteers::{self as store_volunteers, VolunteerRow, split_list};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tower_sessions::Session;

/// The API's routes. The session layer and the login throttle
/// (`Extension<Arc<LoginThrottle>>`) are added by the caller, shared with the console.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/requests", get(list_requests))
        .route("/api/requests/{id}", get(show_request))
        .route("/api/volunteers", get(list_volunteers))
        .route("/api/requests/{id}/done", post(super::followup::done))
        .route("/api/stats", get(super::followup::stats))
        .route("/api/report", get(super::followup::report))
}

/// `Json` whose rejections speak our error format: a body that is not
/// `application/json` is refused with 415, a malformed one with 400 or 422.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> AppResult<Self> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(AppError::Client(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as JSON, with Content-Type: application/json".into(),
            )),
            Err(e) => Err(AppError::Client(
                e.status(),
                format!(
                    "the JSON body is not what this call takes: {}",
                    e.body_text()
                ),
            )),
        }
    }
}

// ---- login ----

/// At most this many failed logins per username within `FAILURE_WINDOW`;
/// then every attempt is refused (429) until the oldest failure ages out.
const MAX_FAILURES: usize = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Usernames tracked at once, so made-up names cannot fill the memory.
const MAX_TRACKED: usize = 10_000;

/// Failed logins per username, in this process's memory (an instance of
/// several counts on its own; a restart forgets).
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginThrottle {
    /// `Err(wait)` while `key` is locked out.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = map.get_mut(key) else {
            return Ok(());
        };
        list.retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
        if list.len() < MAX_FAILURES {
            return Ok(());
        }
        let unlock = list[list.len() - MAX_FAILURES] + FAILURE_WINDOW;
        Err(unlock.saturating_duration_since(now))
    }

    pub fn fail(&self, key: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(key) {
            map.retain(|_, l| {
                l.last()
                    .is_some_and(|t| now.duration_since(*t) < FAILURE_WINDOW)
            });
            if map.len() >= MAX_TRACKED {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, l)| l.last().copied())
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
        }
        map.entry(key.to_string()).or_default().push(now);
    }

    pub fn clear(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginReply {
    pub username: String,
    pub role: String,
}

/// A hash to verify against when the username is unknown, so an unknown
/// user takes as long to refuse as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| crate::auth::hash_password("not anyone's password").unwrap_or_default())
}

/// Checks a username and password against the throttle and the stored hash:
/// the operator, or 401 (wrong) or 429 (too many failures).
pub async fn check_login(
    state: &AppState,
    throttle: &LoginThrottle,
    username: &str,
    password: String,
) -> AppResult<crate::auth::Operator> {
    let key = username.to_string();
    if let Err(wait) = throttle.check(&key, Instant::now()) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return Err(AppError::Client(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed logins; wait {minutes} minutes"),
        ));
    }
    let operator = crate::auth::find_operator(&state.db, username).await?;
    let hash = operator
        .as_ref()
        .map(|o| o.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_string());
    // Argon2 is deliberately slow: keep it off the async workers.
    let matches =
        tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &hash))
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
    let Some(operator) = operator.filter(|_| matches) else {
        throttle.fail(&key, Instant::now());
        tracing::info!(username = %key, "failed login");
        return Err(AppError::unauthorized("wrong username or password"));
    };
    throttle.clear(&key);
    Ok(operator)
}

#[utoipa::path(post, path = "/api/login", request_body = LoginBody,
    responses((status = 200, body = LoginReply), (status = 401, description = "wrong username or password"), (status = 429, description = "too many failed logins")))]
pub async fn login(
    State(state): State<AppState>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    session: Session,
    ApiJson(body): ApiJson<LoginBody>,
) -> AppResult<Json<LoginReply>> {
    let operator = check_login(&state, &throttle, &body.username, body.password).await?;
    session::log_in(&session, operator.id).await?;
    tracing::info!(username = %operator.username, "login");
    Ok(Json(LoginReply {
        role: operator.role().as_str().to_string(),
        username: operator.username,
    }))
}

#[utoipa::path(post, path = "/api/logout", responses((status = 204, description = "logged out")))]
pub async fn logout(_op: CurrentOperator, session: Session) -> AppResult<StatusCode> {
    session::log_out(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- requests ----

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResidentJson {
    pub id: i64,
    pub name: String,
    pub phone: String,
    pub address: String,
}

/// A request as CONTRACT.md shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestJson {
    pub id: i64,
    pub status: String,
    pub category: Option<String>,
    pub grade: Option<String>,
    pub channel: String,
    pub description: Option<String>,
    pub recording_url: Option<String>,
    pub resident: Option<ResidentJson>,
    pub caller_phone: Option<String>,
    pub volunteer_id: Option<i64>,
    pub rating: Option<i64>,
    pub escalation_reason: Option<String>,
    /// For the map; beyond the contract's fields, which clients ignore.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<RequestRow> for RequestJson {
    fn from(r: RequestRow) -> Self {
        RequestJson {
            id: r.id,
            status: r.status,
            category: r.category,
            grade: r.grade,
            channel: r.channel,
            description: r.description,
            recording_url: r.recording_url,
            resident: r.resident_id.map(|id| ResidentJson {
                id,
                name: r.resident_name.unwrap_or_default(),
                phone: r.resident_phone.unwrap_or_default(),
                address: r.resident_address.unwrap_or_default(),
            }),
            caller_phone: r.caller_phone,
            volunteer_id: r.volunteer_id,
            rating: r.rating,
            escalation_reason: r.escalation_reason,
            lat: r.lat,
            lon: r.lon,
            created_at: ms_to_rfc3339(r.created_at),
            updated_at: ms_to_rfc3339(r.updated_at),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OfferJson {
    pub code: String,
    pub volunteer_id: i64,
    pub volunteer_name: String,
    pub wave: i64,
    pub status: String,
    pub sent_at: String,
    pub answered_at: Option<String>,
}

impl From<OfferRow> for OfferJson {
    fn from(o: OfferRow) -> Self {
        OfferJson {
            code: o.code,
            volunteer_id: o.volunteer_id,
            volunteer_name: o.volunteer_name,
            wave: o.wave,
            status: o.status,
            sent_at: ms_to_rfc3339(o.sent_at),
            answered_at: o.answered_at.map(ms_to_rfc3339),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventJson {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub at: String,
    pub actor: String,
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<EventRow> for EventJson {
    fn from(e: EventRow) -> Self {
        EventJson {
            id: e.id,
            at: ms_to_rfc3339(e.at),
            actor: e.actor,
            // Written by `append_event` from a JSON value; anything else is
            // shown as the text it is.
            data: serde_json::from_str(&e.data).unwrap_or(Value::String(e.data)),
            kind: e.kind,
        }
    }
}

/// One request with its offers and its timeline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestDetailJson {
    #[serde(flatten)]
    #[schema(inline)]
    pub request: RequestJson,
    pub offers: Vec<OfferJson>,
    pub events: Vec<EventJson>,
}

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Deserialize)]
pub struct ListParams {
    pub status: Option<String>,
    pub limit: Option<String>,
}

#[utoipa::path(get, path = "/api/requests",
    params(("status" = Option<String>, Query, description = "one status"), ("limit" = Option<i64>, Query, description = "at most this many (1 to 1000, default 100)")),
    responses((status = 200, body = Vec<RequestJson>)))]
pub async fn list_requests(
    _op: CurrentOperator,
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> AppResult<Json<Vec<RequestJson>>> {
    let Query(params) = params.map_err(|e| AppError::bad_request(e.body_text()))?;
    let status = match params.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(s.parse::<Status>().map_err(|_| {
            let allowed: Vec<&str> = Status::ALL.iter().map(Status::as_str).collect();
            AppError::bad_request(format!(
                "unknown status `{s}`; use one of: {}",
                allowed.join(", ")
            ))
        })?),
    };
    let limit = match params.limit.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_LIMIT,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n >= 1 => n.min(MAX_LIMIT),
            _ => {
                return Err(AppError::bad_request(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}"
                )));
            }
        },
    };
    let rows = store_requests::list_requests(&state.db, status.as_ref().map(Status::as_str), limit)
        .await?;
    Ok(Json(rows.into_iter().map(RequestJson::from).collect()))
}

#[utoipa::path(get, path = "/api/requests/{id}",
    params(("id" = i64, Path, description = "request id")),
    responses((status = 200, body = RequestDetailJson), (status = 404, description = "no such request")))]
pub async fn show_request(
    _op: CurrentOperator,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> AppResult<Json<RequestDetailJson>> {
    let Path(id) = id.map_err(|_| AppError::bad_request("a request id is a whole number"))?;
    request_detail(&state, id).await.map(Json)
}

/// One request with its offers and timeline, or 404.
pub async fn request_detail(state: &AppState, id: i64) -> AppResult<RequestDetailJson> {
    let Some(row) = store_requests::find_request(&state.db, id).await? else {
        return Err(AppError::not_found(format!("there is no request {id}")));
    };
    let offers = store_requests::request_offers(&state.db, id).await?;
    let events = store_requests::request_events(&state.db, id).await?;
    Ok(RequestDetailJson {
        request: row.into(),
        offers: offers.into_iter().map(OfferJson::from).collect(),
        events: events.into_iter().map(EventJson::from).collect(),
    })
}

// ---- volunteers ----

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VolunteerJson {
    pub id: i64,
    pub name: String,
    pub phone: String,
    pub lat: f64,
    pub lon: f64,
    pub skills: Vec<String>,
    pub languages: Vec<String>,
    pub available: bool,
    pub opted_out: bool,
    pub max_active: i64,
    pub active_jobs: i64,
    pub points: i64,
}

impl From<VolunteerRow> for VolunteerJson {
    fn from(v: VolunteerRow) -> Self {
        VolunteerJson {
            id: v.id,
            name: v.name,
            phone: v.phone,
            lat: v.lat,
            lon: v.lon,
            skills: split_list(&v.skills),
            languages: split_list(&v.languages),
            available: v.available,
            opted_out: v.opted_out,
            max_active: v.max_active,
            active_jobs: v.active_jobs,
            points: v.points,
        }
    }
}

#[utoipa::path(get, path = "/api/volunteers", responses((status = 200, body = Vec<VolunteerJson>)))]
pub async fn list_volunteers(
    _op: CurrentOperator,
    State(state): State<AppState>,
) -> AppResult<Json<Vec<VolunteerJson>>> {
    let rows = store_volunteers::list_volunteers(&state.db).await?;
    Ok(Json(rows.into_iter().map(VolunteerJson::from).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_a_username_until_the_first_ages_out() {
        let t = LoginThrottle::default();
        let start = Instant::now();
        for i in 0..MAX_FAILURES as u64 {
            assert!(t.check("alice", start + Duration::from_secs(i)).is_ok());
            t.fail("alice", start + Duration::from_secs(i));
        }
        let wait = t
            .check("alice", start + Duration::from_secs(60))
            .unwrap_err();
        assert_eq!(wait, FAILURE_WINDOW - Duration::from_secs(60));
        assert!(
            t.check("bob", start).is_ok(),
            "other usernames are not locked"
        );
        assert!(t.check("alice", start + FAILURE_WINDOW).is_ok());
    }

    #[test]
    fn a_successful_login_clears_the_failures() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            t.fail("alice", now);
        }
        assert!(t.check("alice", now).is_err());
        t.clear("alice");
        assert!(t.check("alice", now).is_ok());
    }
}

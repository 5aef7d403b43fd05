//! The demo's simulator, present only with `telephony.provider = simulated`.
//! The console's pretend phones post here; each post is signed with the
//! service's own webhook token and handed to the very Twilio webhook handlers,
//! signature check included, so a simulated call takes the real path. What
//! the service "sends" is read back from `simulated_deliveries`.

use super::session::CurrentOperator;
use super::{AppError, AppResult, api::ApiJson};
use crate::app::AppState;
use crate::config::ProviderKind;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

const SCRIPT: &str = include_str!("../../assets/simulator/simulator.js");
const STYLE: &str = include_str!("../../assets/simulator/simulator.css");
/// The offline map, served with the console's assets (`/console/assets/map.js`)
/// for the board and the simulator alike.
pub const MAP_SCRIPT: &str = include_str!("../../assets/simulator/map.js");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/simulator/simulator.js", get(script))
        .route("/console/simulator/simulator.css", get(style))
        .route("/api/simulator/webhook", post(webhook))
        .route("/api/simulator/deliveries", get(deliveries))
        .route("/api/simulator/residents", get(residents))
}

pub(crate) fn simulated_only(state: &AppState) -> AppResult<()> {
    if state.config.settings.telephony.provider == ProviderKind::Simulated {
        Ok(())
    } else {
        Err(AppError::not_found(
            "the simulator exists only when telephony.provider is `simulated` (try `hotline580 demo`)",
        ))
    }
}

/// Strict enough that a page cannot run anything it did not load from us.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; media-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn script(State(state): State<AppState>) -> AppResult<Response> {
    simulated_only(&state)?;
    Ok(asset("text/javascript; charset=utf-8", SCRIPT))
}

async fn style(State(state): State<AppState>) -> AppResult<Response> {
    simulated_only(&state)?;
    Ok(asset("text/css; charset=utf-8", STYLE))
}

#[derive(Debug, Deserialize)]
struct WebhookPost {
    /// A path the service's own TwiML named, e.g. `/twilio/voice/step?seq=3`.
    path: String,
    /// The form Twilio would send, in order.
    params: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
struct WebhookAnswer {
    status: u16,
    content_type: Option<String>,
    body: String,
}

/// Whether the path names one of our Twilio webhooks and nothing else.
fn is_webhook_path(path: &str) -> bool {
    let route = path.split('?').next().unwrap_or("");
    route.starts_with("/twilio/")
        && route
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'_' || b == b'-')
}

/// Plays one webhook as Twilio would: signed over `server.public_url` and the
/// path, answered by the same handlers as a real one.
async fn webhook(
    State(state): State<AppState>,
    _operator: CurrentOperator,
    ApiJson(post): ApiJson<WebhookPost>,
) -> AppResult<Json<WebhookAnswer>> {
    simulated_only(&state)?;
    if !is_webhook_path(&post.path) {
        return Err(AppError::bad_request(
            "path must be one of the service's /twilio/ webhooks, such as /twilio/voice",
        ));
    }
    let settings = &state.config.settings;
    let token = settings
        .twilio
        .auth_token
        .as_ref()
        .map(|t| t.expose_secret().to_string())
        .unwrap_or_default();
    let url = crate::telephony::signature::webhook_url(&settings.server.public_url, &post.path);
    let signature = crate::telephony::signature::expected_signature(&token, &url, &post.params);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(post.params.iter())
        .finish();
    let request = axum::http::Request::post(&post.path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(axum::body::Body::from(body))
        .map_err(|e| AppError::bad_request(format!("cannot build the webhook: {e}")))?;
    let response = super::webhook_routes()
        .with_state(state.clone())
        .oneshot(request)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    let status = response.status().as_u16();
    let content_type = header_text(response.headers(), header::CONTENT_TYPE);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    Ok(Json(WebhookAnswer {
        status,
        content_type,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }))
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[derive(Debug, Deserialize)]
struct After {
    #[serde(default)]
    after: i64,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct Delivery {
    id: i64,
    kind: String,
    to_phone: String,
    from_phone: String,
    body: String,
    at: i64,
}

/// What the simulated provider "sent" since `after` (an id), oldest first.
async fn deliveries(
    State(state): State<AppState>,
    _operator: CurrentOperator,
    Query(q): Query<After>,
) -> AppResult<Json<Vec<Delivery>>> {
    simulated_only(&state)?;
    let rows: Vec<Delivery> = crate::on_db!(&state.db, |c| {
        sqlx::query_as(
        "SELECT id, kind, to_phone, from_phone, body, at FROM simulated_deliveries WHERE id > $1 ORDER BY id LIMIT 500"
    )
    .bind(q.after)
    .fetch_all(c)
    .await
    })?;
    Ok(Json(rows))
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct ResidentPhone {
    id: i64,
    name: String,
    phone: String,
    language: String,
    grid: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
}

/// The residents whose phones the simulator can call from.
async fn residents(
    State(state): State<AppState>,
    _operator: CurrentOperator,
) -> AppResult<Response> {
    simulated_only(&state)?;
    let rows: Vec<ResidentPhone> = crate::on_db!(&state.db, |c| sqlx::query_as(
        "SELECT id, name, phone, language, grid, lat, lon FROM residents ORDER BY id LIMIT 2000"
    )
    .fetch_all(c)
    .await)?;
    let hotline = state.config.hotline_number.as_str().to_string();
    Ok((
        StatusCode::OK,
        Json(serde_json::json!({ "hotline": hotline, "residents": rows })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::is_webhook_path;

    #[test]
    fn only_our_webhooks_can_be_played() {
        assert!(is_webhook_path("/twilio/voice"));
        assert!(is_webhook_path("/twilio/voice/step?seq=3"));
        assert!(is_webhook_path("/twilio/voice/step/transcription?seq=4"));
        assert!(!is_webhook_path("/api/requests"));
        assert!(!is_webhook_path("/twilio/../api/login"));
        assert!(!is_webhook_path("//evil.example/twilio/voice"));
        assert!(!is_webhook_path("https://evil.example/twilio/voice"));
    }
}

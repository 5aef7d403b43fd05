//! Open311 GeoReport v2, read-only and public: services (our categories),
//! requests and one request. No name, phone number, street address or
//! resident's words ever appear; positions are rounded to 3 decimals (about
//! 100 m) and `address` is at most the resident's grid.

use crate::app::AppState;
use crate::domain::{Category, Language};
use crate::store::ms_to_rfc3339;
use crate::store::requests::{self as store_requests, PublicFilter, PublicRequestRow};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/open311/v2/services.json", get(services))
        .route("/open311/v2/requests.json", get(requests))
        // axum takes no suffix after a parameter: `{file}` is `17.json`.
        .route("/open311/v2/requests/{file}", get(one_request))
}

/// GeoReport's error shape: an array of `{code, description}`.
fn error(status: StatusCode, description: impl Into<String>) -> Response {
    (
        status,
        Json(json!([{ "code": status.as_u16(), "description": description.into() }])),
    )
        .into_response()
}

#[derive(Debug, Serialize)]
struct Service {
    service_code: &'static str,
    service_name: &'static str,
    description: String,
    metadata: bool,
    #[serde(rename = "type")]
    kind: &'static str,
    keywords: &'static str,
    group: &'static str,
}

async fn services() -> Json<Vec<Service>> {
    Json(
        Category::ALL
            .iter()
            .map(|c| Service {
                service_code: c.as_str(),
                service_name: c.label(Language::En),
                description: format!("{} / {}", c.label(Language::En), c.label(Language::Zh)),
                metadata: false,
                kind: "realtime",
                keywords: "",
                group: "",
            })
            .collect(),
    )
}

#[derive(Debug, Serialize)]
struct GeoRequest {
    service_request_id: String,
    status: &'static str,
    service_code: String,
    service_name: String,
    requested_datetime: String,
    updated_datetime: String,
    address: Option<String>,
    lat: Option<f64>,
    long: Option<f64>,
}

/// Three decimals of a degree: about 100 m, a block rather than a door.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn is_closed(status: &str) -> bool {
    matches!(status, "done" | "closed" | "cancelled")
}

impl From<PublicRequestRow> for GeoRequest {
    fn from(r: PublicRequestRow) -> Self {
        let name = r
            .category
            .parse::<Category>()
            .map(|c| c.label(Language::En).to_string())
            .unwrap_or_else(|_| r.category.clone());
        GeoRequest {
            service_request_id: r.id.to_string(),
            status: if is_closed(&r.status) {
                "closed"
            } else {
                "open"
            },
            service_code: r.category,
            service_name: name,
            requested_datetime: ms_to_rfc3339(r.created_at),
            updated_datetime: ms_to_rfc3339(r.updated_at),
            address: r.grid.filter(|g| !g.trim().is_empty()),
            lat: r.lat.map(round3),
            long: r.lon.map(round3),
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListParams {
    service_code: Option<String>,
    status: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
}

/// At most this many requests per answer (GeoReport's own default).
const MAX_RESULTS: i64 = 1000;

fn parse_time(s: &str, key: &str) -> Result<i64, String> {
    s.trim()
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| format!("{key} is a time such as 2026-11-01T00:00:00Z"))
}

async fn requests(
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let Ok(Query(p)) = params else {
        return error(StatusCode::BAD_REQUEST, "unreadable query parameters");
    };
    let category = match p
        .service_code
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(code) => match code.parse::<Category>() {
            Ok(c) => Some(c),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown service_code `{code}`; see services.json"),
                );
            }
        },
    };
    let open = match p.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("open") => Some(true),
        Some("closed") => Some(false),
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown status `{other}`; use open or closed"),
            );
        }
    };
    let from_ms = match p.start_date.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => match parse_time(s, "start_date") {
            Ok(v) => Some(v),
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        },
        None => None,
    };
    let to_ms = match p.end_date.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => match parse_time(s, "end_date") {
            Ok(v) => Some(v),
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        },
        None => None,
    };
    let filter = PublicFilter {
        id: None,
        category: category.as_ref().map(Category::as_str),
        open,
        from_ms,
        to_ms,
        limit: MAX_RESULTS,
    };
    match store_requests::public_requests(&state.db, &filter).await {
        Ok(rows) => {
            Json(rows.into_iter().map(GeoRequest::from).collect::<Vec<_>>()).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "open311 requests");
            error(StatusCode::INTERNAL_SERVER_ERROR, "try again later")
        }
    }
}

async fn one_request(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let Some(id) = file
        .strip_suffix(".json")
        .and_then(|s| s.parse::<i64>().ok())
    else {
        return error(
            StatusCode::NOT_FOUND,
            "ask for /open311/v2/requests/{id}.json with a numeric id",
        );
    };
    let filter = PublicFilter {
        id: Some(id),
        limit: 1,
        ..Default::default()
    };
    match store_requests::public_requests(&state.db, &filter).await {
        Ok(rows) if rows.is_empty() => {
            error(StatusCode::NOT_FOUND, format!("there is no request {id}"))
        }
        Ok(rows) => {
            Json(rows.into_iter().map(GeoRequest::from).collect::<Vec<_>>()).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "open311 request");
            error(StatusCode::INTERNAL_SERVER_ERROR, "try again later")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_rounded_to_about_a_hundred_metres() {
        assert_eq!(round3(29.563_049), 29.563);
        assert_eq!(round3(106.551_6), 106.552);
        assert_eq!(round3(-0.000_4), -0.0);
    }

    #[test]
    fn finished_statuses_are_closed_and_the_rest_open() {
        for s in ["done", "closed", "cancelled"] {
            assert!(is_closed(s));
        }
        for s in ["new", "offering", "assigned", "escalated"] {
            assert!(!is_closed(s));
        }
    }
}

//! The API's actions: assign, cancel, offer again, note, close, and changes
//! to a request or a volunteer; and the nearest candidates for assigning.
//! Bodies are JSON only (`ApiJson`), so no cross-site form can send them;
//! the work itself is in `dispatch::operator`.

use super::api::{ApiJson, RequestDetailJson, VolunteerJson, request_detail};
use super::session::{Admin, CurrentOperator};
use super::{AppError, AppResult};
use crate::app::AppState;
use crate::dispatch::operator::{self, ActionError, RequestPatch, VolunteerPatch};
use crate::domain::{Category, Grade};
use crate::store::volunteers as store_volunteers;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/requests/{id}", patch(patch_request))
        .route("/api/requests/{id}/assign", post(assign))
        .route("/api/requests/{id}/cancel", post(cancel))
        .route("/api/requests/{id}/reoffer", post(reoffer))
        .route("/api/requests/{id}/notes", post(add_note))
        .route("/api/requests/{id}/close", post(close))
        .route("/api/requests/{id}/candidates", get(candidates))
        .route("/api/volunteers/{id}", patch(patch_volunteer))
}

impl From<ActionError> for AppError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound(m) => AppError::not_found(m),
            ActionError::Conflict(m) => AppError::conflict(m),
            ActionError::Invalid(m) => AppError::bad_request(m),
            ActionError::Internal(e) => AppError::Internal(e),
        }
    }
}

/// A JSON body that may be empty (then `T::default()`); the content type
/// must still be `application/json`, as for every state-changing call.
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> AppResult<Self> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(AppError::Client(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as JSON, with Content-Type: application/json (an empty body or {} is fine here)".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| AppError::bad_request(e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(OptionalJson)
            .map_err(|e| {
                AppError::bad_request(format!("the JSON body is not what this call takes: {e}"))
            })
    }
}

fn request_id(id: Result<Path<i64>, PathRejection>) -> AppResult<i64> {
    id.map(|Path(id)| id)
        .map_err(|_| AppError::bad_request("a request id is a whole number"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// The volunteer who takes the request.
    pub volunteer_id: i64,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Why, for the timeline.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub text: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestPatchBody {
    /// `red`, `yellow` or `blue`.
    #[serde(default)]
    pub grade: Option<String>,
    /// `repair`, `errands`, `escort`, `companion`, `other` or `emergency`.
    #[serde(default)]
    pub category: Option<String>,
}

/// A present `null` is `Some(None)`; an absent field is `None`.
fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolunteerPatchBody {
    #[serde(default)]
    pub name: Option<String>,
    /// Categories but `emergency`.
    #[serde(default)]
    pub skills: Option<Vec<String>>,
    /// `zh`, `en`.
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    #[serde(default)]
    pub available: Option<bool>,
    #[serde(default)]
    pub max_active: Option<i64>,
    /// `22:00-07:00`, `off`, or `null` for `dispatch.quiet_hours`.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub quiet_hours: Option<Option<String>>,
}

/// A volunteer suggested for a request, nearest suitable first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CandidateJson {
    pub volunteer_id: i64,
    pub name: String,
    pub distance_m: f64,
    pub active_jobs: i64,
    /// How they answered an earlier offer of this request, if any.
    pub offer_status: Option<String>,
}

async fn answer(state: &AppState, id: i64) -> AppResult<Json<RequestDetailJson>> {
    request_detail(state, id).await.map(Json)
}

#[utoipa::path(post, path = "/api/requests/{id}/assign", request_body = AssignBody,
    params(("id" = i64, Path, description = "request id")),
    responses((status = 200, body = RequestDetailJson), (status = 409, description = "the request cannot be assigned now")))]
pub async fn assign(
    op: CurrentOperator,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    ApiJson(body): ApiJson<AssignBody>,
) -> AppResult<Json<RequestDetailJson>> {
    let id = request_id(id)?;
    operator::assign(
        &state.job_deps(),
        &state.jobs,
        id,
        body.volunteer_id,
        &op.actor(),
    )
    .await?;
    answer(&state, id).await
}

#[utoipa::path(post, path = "/api/requests/{id}/cancel", request_body = CancelBody,
    params(("id" = i64, Path, description = "request id")),
    responses((status = 200, body = RequestDetailJson), (status = 409, description = "the request is not open")))]
pub async fn cancel(
    op: CurrentOperator,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    OptionalJson(body): OptionalJson<CancelBody>,
) -> AppResult<Json<RequestDetailJson>> {
    let id = request_id(id)?;
    operator::cancel(
        &state.job_deps(),
        &state.jobs,
        id,
        body.reason.as_deref(),
        &op.actor(),
    )
    .await?;
    answer(&state, id).await
}

#[utoipa::path(post, path = "/api/requests/{id}/reoffer",
    params(("id" = i64, Path, description = "request id")),
    responses((status = 200, body = RequestDetailJson), (status = 409, description = "the request cannot be offered again now")))]
pub async fn reoffer(
    op: CurrentOperator,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    OptionalJson(_): OptionalJson<EmptyBody>,
) -> AppResult<Json<RequestDetailJson>> {
    let id = request_id(id)?;
    operator::reoffer(&state.job_deps(), &state.jobs, id, &op.actor()).await?;
    answer(&state, id).await
}

#[utoipa::path(post, path = "/api/requests/{id}/notes", request_body = NoteBody,
    params(("id" = i64, Path, description = "request id")),
    responses((status = 200, body = RequestDetailJson), (status = 400, description = "an empty or long note")))]
pub async fn add_note(
    op: CurrentOperator,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    ApiJson(body): ApiJson<NoteBody>,
) -> AppResult<Json<RequestDetailJson>> {
    let id = request_id(id)?;
    operator::note(&state.job_deps(), id, &body.text, &op.actor()).await?;
    answer(&state, id).await
}

#[utoipa::path(post, path = "/api/requests/{id}/close",
    params(("id" = i64, Path, description = "request id")),
    responses((status = 200, body = RequestDetailJson), (status = 409, description = "the request is not escalated")))]
pub async fn close(
    op: CurrentOperator,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    OptionalJson(_): OptionalJson<EmptyBody>,
) -> AppResult<Json<RequestDetailJson>> {
    let id = request_id(id)?;
    operator::close(&state.job_deps(), &state.jobs, id, &op.actor()).await?;
    answer(&state, id).await
}

fn word<T: std::str::FromStr>(
    value: Option<&str>,
    what: &str,
    allowed: &str,
) -> AppResult<Option<T>> {
    value
        .map(|v| {
            v.parse::<T>().map_err(|_| {
                AppError::bad_request(format!("unknown {what} `{v}`; use one of: {allowed}"))
            })
        })
        .transpose()
}

#[utoipa::path(patch, path = "/api/requests/{id}", request_body = RequestPatchBody,
    params(("id" = i64, Path, description = "request id")),
    responses((status = 200, body = RequestDetailJson), (status = 409, description = "the request is not open")))]
pub async fn patch_request(
    op: CurrentOperator,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    ApiJson(body): ApiJson<RequestPatchBody>,
) -> AppResult<Json<RequestDetailJson>> {
    let id = request_id(id)?;
    let patch = RequestPatch {
        grade: word::<Grade>(body.grade.as_deref(), "grade", "red, yellow, blue")?,
        category: word::<Category>(
            body.category.as_deref(),
            "category",
            "repair, errands, escort, companion, other, emergency",
        )?,
    };
    operator::update_request(&state.job_deps(), &state.jobs, id, &patch, &op.actor()).await?;
    answer(&state, id).await
}

#[utoipa::path(get, path = "/api/requests/{id}/candidates",
    params(("id" = i64, Path, description = "request id")),
    responses((status = 200, body = Vec<CandidateJson>)))]
pub async fn candidates(
    _op: CurrentOperator,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> AppResult<Json<Vec<CandidateJson>>> {
    let id = request_id(id)?;
    let list = operator::candidates(&state.job_deps(), id).await?;
    Ok(Json(
        list.into_iter()
            .map(|s| CandidateJson {
                volunteer_id: s.volunteer_id,
                name: s.name,
                distance_m: s.distance_m,
                active_jobs: s.active_jobs,
                offer_status: s.offered,
            })
            .collect(),
    ))
}

#[utoipa::path(patch, path = "/api/volunteers/{id}", request_body = VolunteerPatchBody,
    params(("id" = i64, Path, description = "volunteer id")),
    responses((status = 200, body = VolunteerJson), (status = 403, description = "only administrators edit volunteers")))]
pub async fn patch_volunteer(
    Admin(op): Admin,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    ApiJson(body): ApiJson<VolunteerPatchBody>,
) -> AppResult<Json<VolunteerJson>> {
    let Path(id) = id.map_err(|_| AppError::bad_request("a volunteer id is a whole number"))?;
    let patch = VolunteerPatch {
        name: body.name,
        skills: body.skills,
        languages: body.languages,
        available: body.available,
        max_active: body.max_active,
        quiet_hours: body.quiet_hours,
    };
    if patch.name.is_none()
        && patch.skills.is_none()
        && patch.languages.is_none()
        && patch.available.is_none()
        && patch.max_active.is_none()
        && patch.quiet_hours.is_none()
    {
        return Err(AppError::bad_request(
            "nothing to change: send name, skills, languages, available, max_active or quiet_hours",
        ));
    }
    operator::update_volunteer(&state.job_deps(), &state.jobs, id, &patch, &op.actor()).await?;
    let v = store_volunteers::list_volunteers(&state.db)
        .await?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| AppError::not_found(format!("there is no volunteer {id}")))?;
    Ok(Json(v.into()))
}

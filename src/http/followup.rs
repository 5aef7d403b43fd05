//! Follow-up over HTTP: an operator's `POST /api/requests/{id}/done`, the
//! satisfaction call's TwiML (`/twilio/survey`, signed like every webhook),
//! and the figures (`GET /api/stats`).

use super::session::CurrentOperator;
use super::twilio::TwilioForm;
use super::{AppError, AppResult};
use crate::app::AppState;
use crate::dispatch::messages;
use crate::domain::{Category, Language};
use crate::followup::rating::{self, SURVEY_ANSWER_PATH};
use crate::followup::stats::{Period, Stats, parse_date};
use crate::ivr::{self, Action, Speak};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

/// The survey call's webhooks (merged beside the other `/twilio/*` routes).
pub fn twilio_routes() -> Router<AppState> {
    Router::new()
        .route(rating::SURVEY_PATH, post(survey))
        .route(SURVEY_ANSWER_PATH, post(survey_answer))
}

/// What `POST /api/requests/{id}/done` answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DoneJson {
    pub id: i64,
    /// Always `done`.
    pub status: String,
    pub volunteer_id: i64,
    pub points_earned: i64,
}

/// `POST /api/requests/{id}/done`: an operator marks an assigned job done.
/// The volunteer earns the points and is thanked by SMS; the resident is asked.
#[utoipa::path(post, path = "/api/requests/{id}/done",
    params(("id" = i64, Path, description = "request id")),
    responses((status = 200, body = DoneJson), (status = 409, description = "the request is not an accepted, unfinished job")))]
pub async fn done(
    op: CurrentOperator,
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> AppResult<Json<DoneJson>> {
    json_only(&headers)?;
    let Path(id) = id.map_err(|_| AppError::bad_request("a request id is a whole number"))?;
    let deps = state.job_deps();
    let mut tx = state.db.begin().await?;
    let status: Option<String> = crate::on_tx!(&mut tx, |c| sqlx::query_scalar(
        "SELECT status FROM requests WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)?;
    let Some(status) = status else {
        tx.rollback().await?;
        return Err(AppError::not_found(format!("there is no request {id}")));
    };
    let finished = crate::followup::complete(&state.jobs, &mut tx, &deps, id, &op.actor()).await?;
    let Some(f) = finished else {
        tx.rollback().await?;
        return Err(AppError::conflict(format!(
            "request {id} is {status}; only a job a volunteer has accepted and not yet finished can be marked done"
        )));
    };
    crate::followup::thank_by_sms(&state.jobs, &mut tx, &deps, &f).await?;
    tx.commit().await?;
    Ok(Json(DoneJson {
        id,
        status: "done".into(),
        volunteer_id: f.volunteer_id,
        points_earned: f.earned,
    }))
}

/// A state-changing call must say it is JSON (a body is optional here), so no
/// simple cross-site form can make it.
fn json_only(headers: &HeaderMap) -> AppResult<()> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
        .unwrap_or(false);
    if is_json {
        Ok(())
    } else {
        Err(AppError::Client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the call as JSON, with Content-Type: application/json".into(),
        ))
    }
}

fn twiml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

fn say(text: String, lang: Language) -> Action {
    Action::Speak(Speak::Say {
        text,
        language: lang.speech_code().to_string(),
        voice: None,
        rate: Some(85),
    })
}

fn request_param(form: &TwilioForm) -> Option<i64> {
    form.query.get("request").and_then(|r| r.parse().ok())
}

async fn survey_facts(state: &AppState, id: i64) -> anyhow::Result<Option<(Language, Category)>> {
    let row: Option<(String, Option<String>)> = crate::on_db!(&state.db, |c| sqlx::query_as(
        "SELECT language, category FROM requests WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|(l, c)| {
        (
            l.parse().unwrap_or(Language::Zh),
            c.and_then(|c| c.parse().ok()).unwrap_or(Category::Other),
        )
    }))
}

fn question(id: i64, lang: Language, category: Category) -> Vec<Action> {
    vec![
        Action::Gather {
            prompt: vec![Speak::Say {
                text: messages::survey_question(lang, category),
                language: lang.speech_code().to_string(),
                voice: None,
                rate: Some(85),
            }],
            language: lang.speech_code().to_string(),
            timeout_secs: 8,
            action: format!("{SURVEY_ANSWER_PATH}?request={id}"),
            hints: None,
        },
        say(messages::survey_goodbye(lang), lang),
        Action::Hangup,
    ]
}

/// `POST /twilio/survey?request=N`: the satisfaction call asks for a key 1 to 5.
async fn survey(State(state): State<AppState>, form: TwilioForm) -> Response {
    let Some(id) = request_param(&form) else {
        return twiml(ivr::render(&[Action::Hangup]));
    };
    match survey_facts(&state, id).await {
        Ok(Some((lang, category))) => twiml(ivr::render(&question(id, lang, category))),
        Ok(None) => twiml(ivr::render(&[Action::Hangup])),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "survey call");
            twiml(ivr::render(&[Action::Hangup]))
        }
    }
}

/// `POST /twilio/survey/answer?request=N`: the key pressed. A repeated
/// delivery finds the rating stored and gets the same thanks.
async fn survey_answer(State(state): State<AppState>, form: TwilioForm) -> Response {
    match survey_answer_inner(&state, &form).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "survey answer");
            twiml(ivr::render(&[Action::Hangup]))
        }
    }
}

async fn survey_answer_inner(state: &AppState, form: &TwilioForm) -> anyhow::Result<Response> {
    let Some(id) = request_param(form) else {
        return Ok(twiml(ivr::render(&[Action::Hangup])));
    };
    let Some((lang, category)) = survey_facts(state, id).await? else {
        return Ok(twiml(ivr::render(&[Action::Hangup])));
    };
    let digit = form
        .get("Digits")
        .and_then(crate::dispatch::commands::parse_rating);
    let deps = state.job_deps();
    let mut tx = state.db.begin().await?;
    let rated = match rating::question_state(&mut tx, id).await? {
        Ok(Some(stored)) => Some(stored),
        Ok(None) => match digit {
            Some(r) => {
                rating::rate(&state.jobs, &mut tx, &deps, id, r, "resident").await?;
                Some(r)
            }
            None => None,
        },
        Err(()) => {
            tx.rollback().await?;
            return Ok(twiml(ivr::render(&[Action::Hangup])));
        }
    };
    tx.commit().await?;
    Ok(twiml(ivr::render(&match rated {
        Some(r) => vec![say(messages::survey_thanks(lang, r), lang), Action::Hangup],
        // No key or a wrong one: the question again.
        None => question(id, lang, category),
    })))
}

#[derive(Debug, serde::Deserialize)]
pub struct StatsParams {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// `GET /api/stats?from=YYYY-MM-DD&to=YYYY-MM-DD`: the figures of the
/// requests received on those local days (both included).
#[utoipa::path(get, path = "/api/stats",
    params(("from" = String, Query, description = "first local day, e.g. 2026-11-01"), ("to" = String, Query, description = "last local day, included")),
    responses((status = 200, body = Stats), (status = 400, description = "a missing or malformed date")))]
pub async fn stats(
    _op: CurrentOperator,
    State(state): State<AppState>,
    params: Result<Query<StatsParams>, QueryRejection>,
) -> AppResult<Json<Stats>> {
    let Query(params) = params.map_err(|e| AppError::bad_request(e.body_text()))?;
    let date = |name: &str, v: Option<&String>| -> AppResult<jiff::civil::Date> {
        let v = v.ok_or_else(|| {
            AppError::bad_request(format!(
                "give `{name}` as a date such as 2026-11-01 (from and to are both needed)"
            ))
        })?;
        parse_date(v).map_err(|e| AppError::bad_request(format!("{name}: {e}")))
    };
    let from = date("from", params.from.as_ref())?;
    let to = date("to", params.to.as_ref())?;
    let cfg = &state.config;
    let period = Period::days(from, to, &cfg.tz, &cfg.settings.timezone)
        .map_err(|e| AppError::bad_request(e.to_string()))?;
    Ok(Json(
        crate::followup::stats::for_period(&state.db, cfg, &period).await?,
    ))
}

#[derive(Debug, serde::Deserialize)]
pub struct ReportParams {
    pub week: Option<String>,
    pub format: Option<String>,
}

/// `GET /api/report?week=2026-W47&format=text|csv|html`: the weekly report
/// of `hotline580 report`, as a file to download.
pub async fn report(
    _op: CurrentOperator,
    State(state): State<AppState>,
    params: Result<Query<ReportParams>, QueryRejection>,
) -> AppResult<Response> {
    use crate::followup::report::{Format, render};
    let Query(params) = params.map_err(|e| AppError::bad_request(e.body_text()))?;
    let week = params
        .week
        .ok_or_else(|| AppError::bad_request("give `week` such as 2026-W47"))?;
    let format: Format = params
        .format
        .as_deref()
        .unwrap_or("text")
        .parse()
        .map_err(AppError::bad_request)?;
    let cfg = &state.config;
    let period = Period::iso_week(&week, &cfg.tz, &cfg.settings.timezone)
        .map_err(|e| AppError::bad_request(e.to_string()))?;
    // The label is rebuilt from the parsed week, so nothing sent ends up in a header.
    let iso = period.from.iso_week_date();
    let label = format!("{}-W{:02}", iso.year(), iso.week());
    let stats = crate::followup::stats::for_period(&state.db, cfg, &period).await?;
    let (kind, ext) = match format {
        Format::Text => ("text/plain; charset=utf-8", "txt"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Html => ("text/html; charset=utf-8", "html"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"hotline580-{label}.{ext}\""),
            ),
        ],
        render(&stats, &label, format),
    )
        .into_response())
}

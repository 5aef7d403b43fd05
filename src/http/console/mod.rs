//! `/console`: the operators' web console. Pages are rendered on the server
//! with `askama` (every value escaped); a little plain JavaScript, served as a
//! file built into the binary, keeps them live over `/api/events` and calls
//! the JSON API for actions. Forms (login, logout, language) carry a CSRF
//! token kept in the session; every page carries a Content-Security-Policy
//! that allows no inline script.

pub mod i18n;

use super::api::{LoginThrottle, check_login};
use super::session::{self, CurrentOperator};
use super::{AppError, AppResult};
use crate::app::AppState;
use crate::config::ProviderKind;
use crate::dispatch::operator;
use crate::domain::{Category, Grade, Language, Role};
use crate::store::requests::{self as store_requests, RequestRow};
use crate::store::volunteers::{self as store_volunteers, split_list};
use askama::Template;
use axum::extract::{Form, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use i18n::{LANG_COOKIE, Texts};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::Session;

/// No inline script or style, nothing from elsewhere but recordings (played
/// from the provider's https URLs) and, when configured, the map's tiles; no framing.
fn csp(tiles_origin: Option<&str>) -> String {
    let img = match tiles_origin {
        Some(origin) => format!("img-src 'self' data: {origin}"),
        None => "img-src 'self' data:".to_string(),
    };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; {img}; \
         media-src 'self' https:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// The session key holding the CSRF token of the console's forms.
const CSRF_KEY: &str = "csrf";
/// Before a login there is no session (and none is made for every visitor of
/// the login page): its form's token is checked against this cookie instead,
/// which another site can neither read nor set (double submit).
const LOGIN_CSRF_COOKIE: &str = "hotline580_login_csrf";

const CONSOLE_JS: &str = include_str!("../../../console/assets/console.js");
const CONSOLE_CSS: &str = include_str!("../../../console/assets/console.css");

pub fn routes(config: &crate::config::Config) -> Router<AppState> {
    let policy = csp(config.settings.console.map_tiles_origin().as_deref());
    // The origin was checked at load (a URL's origin has no `;`, quote or space).
    let policy = HeaderValue::from_str(&policy).expect("a CSP is a valid header value");
    Router::new()
        .route("/console", get(board))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/login", get(login_page).post(login_form))
        .route("/console/logout", post(logout_form))
        .route("/console/lang", post(set_lang))
        .route("/console/requests/{id}", get(request_page))
        .route("/console/volunteers", get(volunteers_page))
        .route("/console/figures", get(figures_page))
        .route("/console/simulator", get(simulator_page))
        .route("/console/assets/{file}", get(asset))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            policy,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.js" => (CONSOLE_JS, "text/javascript; charset=utf-8"),
        "console.css" => (CONSOLE_CSS, "text/css; charset=utf-8"),
        // The same file the simulator loads: one map for both pages.
        "map.js" => (
            crate::http::simulator::MAP_SCRIPT,
            "text/javascript; charset=utf-8",
        ),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

// ---- who and in which language ----

/// A logged-in operator on a console page; without a login the browser is
/// sent (303) to `/console/login`.
pub struct ConsoleOperator(pub CurrentOperator);

impl FromRequestParts<AppState> for ConsoleOperator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match CurrentOperator::from_request_parts(parts, state).await {
            Ok(op) => Ok(ConsoleOperator(op)),
            Err(AppError::Client(StatusCode::UNAUTHORIZED, _)) => {
                Err(Redirect::to("/console/login").into_response())
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn page_language(headers: &HeaderMap) -> Language {
    i18n::choose(
        cookie(headers, LANG_COOKIE).as_deref(),
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The session's CSRF token, made on first use.
async fn csrf_token(session: &Session) -> AppResult<String> {
    let err =
        |e: tower_sessions::session::Error| AppError::Internal(anyhow::anyhow!("session: {e}"));
    if let Some(t) = session.get::<String>(CSRF_KEY).await.map_err(err)? {
        return Ok(t);
    }
    let token = new_token();
    session.insert(CSRF_KEY, &token).await.map_err(err)?;
    Ok(token)
}

fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two tokens in constant time; an empty one never matches.
fn same_token(expected: &str, sent: &str) -> bool {
    let (a, b) = (expected.as_bytes(), sent.as_bytes());
    !a.is_empty()
        && a.len() == b.len()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a form's token is the session's.
async fn csrf_ok(session: &Session, sent: &str) -> bool {
    let Ok(Some(expected)) = session.get::<String>(CSRF_KEY).await else {
        return false;
    };
    same_token(&expected, sent)
}

fn login_csrf_cookie(token: &str) -> String {
    format!(
        "{LOGIN_CSRF_COOKIE}={token}; Path=/console/login; Max-Age=3600; SameSite=Strict; HttpOnly"
    )
}

fn csrf_refused(lang: Language) -> Response {
    let msg = if lang == Language::Zh {
        "页面已过期，请返回刷新后再试。"
    } else {
        "This form has expired; go back, reload the page and try again."
    };
    (StatusCode::FORBIDDEN, Html(format!("<!doctype html><meta charset=utf-8><p>{msg}</p><p><a href=\"/console\">/console</a></p>"))).into_response()
}

/// What every page's frame shows.
pub struct Frame {
    pub t: &'static Texts,
    pub csrf: String,
    pub username: String,
    pub is_admin: bool,
    pub nav: &'static str,
    pub path: String,
    /// The simulator's link is shown only where the simulator exists.
    pub simulated: bool,
}

async fn frame(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    op: &CurrentOperator,
    nav: &'static str,
    path: String,
) -> AppResult<Frame> {
    Ok(Frame {
        t: i18n::texts(page_language(headers)),
        csrf: csrf_token(session).await?,
        username: op.username.clone(),
        is_admin: op.role == Role::Admin,
        nav,
        path,
        simulated: state.config.settings.telephony.provider == ProviderKind::Simulated,
    })
}

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => AppError::Internal(anyhow::anyhow!("template: {e}")).into_response(),
    }
}

// ---- login, logout, language ----

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    t: &'static Texts,
    csrf: String,
    error: Option<String>,
    username: String,
}

async fn login_page(headers: HeaderMap) -> Response {
    let t = i18n::texts(page_language(&headers));
    let token = new_token();
    let page = render(&LoginPage {
        t,
        csrf: token.clone(),
        error: None,
        username: String::new(),
    });
    ([(header::SET_COOKIE, login_csrf_cookie(&token))], page).into_response()
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

async fn login_form(
    State(state): State<AppState>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> AppResult<Response> {
    let lang = page_language(&headers);
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !same_token(&expected, &form.csrf) {
        return Ok(csrf_refused(lang));
    }
    match check_login(&state, &throttle, form.username.trim(), form.password).await {
        Ok(operator) => {
            session::log_in(&session, operator.id).await?;
            tracing::info!(username = %operator.username, "console login");
            Ok(Redirect::to("/console").into_response())
        }
        Err(AppError::Client(status, msg)) => {
            let t = i18n::texts(lang);
            let error = match (lang, status) {
                (Language::Zh, StatusCode::UNAUTHORIZED) => "用户名或密码不对。".to_string(),
                (Language::Zh, StatusCode::TOO_MANY_REQUESTS) => {
                    "登录失败次数太多，请稍后再试。".to_string()
                }
                _ => msg,
            };
            let mut r = render(&LoginPage {
                t,
                csrf: form.csrf,
                error: Some(error),
                username: form.username,
            });
            *r.status_mut() = status;
            Ok(r)
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout_form(
    session: Session,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> AppResult<Response> {
    if !csrf_ok(&session, &form.csrf).await {
        return Ok(csrf_refused(page_language(&headers)));
    }
    session::log_out(&session).await?;
    Ok(Redirect::to("/console/login").into_response())
}

#[derive(Debug, Deserialize)]
struct LangForm {
    #[serde(default)]
    csrf: String,
    lang: String,
    #[serde(default)]
    back: String,
}

async fn set_lang(
    session: Session,
    headers: HeaderMap,
    Form(form): Form<LangForm>,
) -> AppResult<Response> {
    if !csrf_ok(&session, &form.csrf).await {
        return Ok(csrf_refused(page_language(&headers)));
    }
    let lang: Language = form
        .lang
        .parse()
        .map_err(|_| AppError::bad_request("choose zh or en"))?;
    // Only back to a console page: never an open redirect.
    let back = if form.back.starts_with("/console") && !form.back.starts_with("//") {
        form.back
    } else {
        "/console".to_string()
    };
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Strict; HttpOnly",
        lang.as_str()
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&back)).into_response())
}

// ---- shared view pieces ----

fn local_time(state: &AppState, ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned(state.config.tz.clone())
                .strftime("%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

fn age(t: &Texts, since_ms: i64, now_ms: i64) -> String {
    let mins = ((now_ms - since_ms).max(0) / 60_000) as u64;
    if mins < 60 {
        format!("{} {}", mins.max(1), t.minutes)
    } else if mins < 48 * 60 {
        format!("{} {}", mins / 60, t.hours)
    } else {
        format!("{} {}", mins / 1440, t.days)
    }
}

/// Past its clock: not accepted within its grade's `sla.*_accept_secs`, or
/// not done within `sla.done_secs`, both from intake.
fn overdue(state: &AppState, r: &RequestRow, now_ms: i64) -> bool {
    let sla = &state.config.settings.sla;
    let limit_secs = match r.status.as_str() {
        "new" | "offering" | "escalated" => {
            let grade = r
                .grade
                .as_deref()
                .and_then(|g| g.parse::<Grade>().ok())
                .unwrap_or(Grade::Blue);
            sla.accept_secs(grade)
        }
        "assigned" => sla.done_secs,
        _ => return false,
    };
    now_ms - r.created_at > (limit_secs as i64) * 1000
}

fn grade_class(g: Option<&str>) -> &'static str {
    match g {
        Some("red") => "red",
        Some("yellow") => "yellow",
        Some("blue") => "blue",
        _ => "none",
    }
}

fn shorten(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

// ---- the board ----

pub struct Card {
    pub id: i64,
    pub grade: &'static str,
    pub grade_label: &'static str,
    pub category: String,
    pub who: String,
    pub description: String,
    pub age: String,
    pub overdue: bool,
    pub reason: &'static str,
    pub volunteer: Option<String>,
}

pub struct Column {
    pub status: &'static str,
    pub label: &'static str,
    pub cards: Vec<Card>,
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage {
    f: Frame,
    map: MapConfig,
    columns: Vec<Column>,
    red_count: usize,
}

/// The statuses shown on the board, most pressing first.
const BOARD: [&str; 5] = ["escalated", "new", "offering", "assigned", "done"];
const PER_COLUMN: i64 = 200;

async fn board(
    ConsoleOperator(op): ConsoleOperator,
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> AppResult<Response> {
    let f = frame(&state, &session, &headers, &op, "board", "/console".into()).await?;
    let lang: Language = f.t.lang.parse().unwrap_or(Language::Zh);
    let names: HashMap<i64, String> = store_volunteers::list_volunteers(&state.db)
        .await?
        .into_iter()
        .map(|v| (v.id, v.name))
        .collect();
    let now = crate::store::now_ms();
    let mut columns = Vec::new();
    let mut red_count = 0;
    for status in BOARD {
        let rows = store_requests::list_requests(&state.db, Some(status), PER_COLUMN).await?;
        let mut cards: Vec<Card> = rows
            .into_iter()
            .map(|r| {
                let who = r
                    .resident_name
                    .clone()
                    .or_else(|| r.caller_phone.clone())
                    .unwrap_or_default();
                Card {
                    id: r.id,
                    grade: grade_class(r.grade.as_deref()),
                    grade_label: i18n::grade_label(r.grade.as_deref(), lang),
                    category: i18n::category_label(r.category.as_deref(), lang),
                    who,
                    description: shorten(r.description.as_deref().unwrap_or(""), 90),
                    age: age(f.t, r.created_at, now),
                    overdue: overdue(&state, &r, now),
                    reason: if r.status == "escalated" {
                        i18n::reason_label(r.escalation_reason.as_deref(), lang)
                    } else {
                        ""
                    },
                    volunteer: r.volunteer_id.and_then(|v| names.get(&v).cloned()),
                }
            })
            .collect();
        // Red first, then the oldest: what waits longest is most pressing.
        cards.sort_by_key(|c| (c.grade != "red", c.id));
        if status != "done" {
            red_count += cards.iter().filter(|c| c.grade == "red").count();
        }
        columns.push(Column {
            status,
            label: i18n::status_label(status, lang),
            cards,
        });
    }
    Ok(render(&BoardPage {
        f,
        map: MapConfig::of(&state),
        columns,
        red_count,
    }))
}

// ---- one request ----

pub struct Line {
    pub at: String,
    pub label: &'static str,
    pub kind: String,
    pub actor: String,
    pub text: String,
}

pub struct OfferLine {
    pub code: String,
    pub volunteer: String,
    pub wave: i64,
    pub status: String,
    pub sent: String,
    pub answered: String,
}

pub struct SentLine {
    pub at: String,
    pub kind: String,
    pub to: String,
    pub body: String,
    pub status: String,
    pub error: String,
}

pub struct CandidateLine {
    pub id: i64,
    pub name: String,
    pub distance: String,
    pub active_jobs: i64,
    pub offered: String,
}

pub struct Choice {
    pub value: &'static str,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage {
    f: Frame,
    id: i64,
    status: String,
    status_label: &'static str,
    grade: &'static str,
    grade_label: &'static str,
    category: String,
    channel: &'static str,
    reason: &'static str,
    overdue: bool,
    resident_name: String,
    resident_phone: String,
    resident_address: String,
    caller_phone: String,
    description: String,
    recording_url: Option<String>,
    volunteer: Option<String>,
    rating: Option<i64>,
    created: String,
    updated: String,
    is_open: bool,
    can_assign: bool,
    can_reoffer: bool,
    can_done: bool,
    can_close: bool,
    candidates: Vec<CandidateLine>,
    others: Vec<(i64, String)>,
    grades: Vec<Choice>,
    grade_set: bool,
    categories: Vec<Choice>,
    category_set: bool,
    offers: Vec<OfferLine>,
    events: Vec<Line>,
    sent: Vec<SentLine>,
}

/// An event's data as one readable line, e.g. `status: assigned, volunteer_id: 3`.
fn data_text(data: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(data) {
        Ok(serde_json::Value::Object(map)) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Ok(other) => other.to_string(),
        Err(_) => data.to_string(),
    }
}

async fn request_page(
    ConsoleOperator(op): ConsoleOperator,
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> AppResult<Response> {
    let Ok(Path(id)) = id else {
        return Err(AppError::not_found("there is no such request"));
    };
    let f = frame(
        &state,
        &session,
        &headers,
        &op,
        "board",
        format!("/console/requests/{id}"),
    )
    .await?;
    let lang: Language = f.t.lang.parse().unwrap_or(Language::Zh);
    let Some(r) = store_requests::find_request(&state.db, id).await? else {
        return Err(AppError::not_found(format!("there is no request {id}")));
    };
    let now = crate::store::now_ms();
    let volunteers = store_volunteers::list_volunteers(&state.db).await?;
    let names: HashMap<i64, String> = volunteers.iter().map(|v| (v.id, v.name.clone())).collect();
    let offers = store_requests::request_offers(&state.db, id).await?;
    let events = store_requests::request_events(&state.db, id).await?;
    let sent = store_requests::request_outbox(&state.db, id).await?;
    let is_open = matches!(
        r.status.as_str(),
        "new" | "offering" | "assigned" | "escalated"
    );
    let can_assign = matches!(r.status.as_str(), "new" | "offering" | "escalated");
    let candidates = if can_assign {
        operator::candidates(&state.job_deps(), id)
            .await
            .map_err(AppError::from)?
    } else {
        Vec::new()
    };
    let suggested: Vec<i64> = candidates.iter().map(|c| c.volunteer_id).collect();
    let offered_word = |s: &str| i18n::offer_status_label(s, lang);
    let grade_now = r.grade.clone();
    let category_now = r.category.clone();
    Ok(render(&RequestPage {
        id,
        status_label: i18n::status_label(&r.status, lang),
        grade: grade_class(r.grade.as_deref()),
        grade_label: i18n::grade_label(r.grade.as_deref(), lang),
        category: i18n::category_label(r.category.as_deref(), lang),
        channel: i18n::channel_label(&r.channel, lang),
        reason: if r.status == "escalated" {
            i18n::reason_label(r.escalation_reason.as_deref(), lang)
        } else {
            ""
        },
        overdue: overdue(&state, &r, now),
        resident_name: r.resident_name.clone().unwrap_or_default(),
        resident_phone: r.resident_phone.clone().unwrap_or_default(),
        resident_address: r.resident_address.clone().unwrap_or_default(),
        caller_phone: r.caller_phone.clone().unwrap_or_default(),
        description: r.description.clone().unwrap_or_default(),
        recording_url: r
            .recording_url
            .clone()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        volunteer: r.volunteer_id.and_then(|v| names.get(&v).cloned()),
        rating: r.rating,
        created: local_time(&state, r.created_at),
        updated: local_time(&state, r.updated_at),
        is_open,
        can_assign,
        can_reoffer: matches!(r.status.as_str(), "new" | "escalated"),
        can_done: r.status == "assigned",
        can_close: r.status == "escalated",
        candidates: candidates
            .iter()
            .map(|c| CandidateLine {
                id: c.volunteer_id,
                name: c.name.clone(),
                distance: if c.distance_m < 1000.0 {
                    format!("{} m", c.distance_m as i64)
                } else {
                    format!("{:.1} km", c.distance_m / 1000.0)
                },
                active_jobs: c.active_jobs,
                offered: c.offered.as_deref().map(offered_word).unwrap_or_default(),
            })
            .collect(),
        others: volunteers
            .iter()
            .filter(|v| !suggested.contains(&v.id) && !v.opted_out)
            .map(|v| (v.id, v.name.clone()))
            .collect(),
        grade_set: grade_now.is_some(),
        category_set: category_now.is_some(),
        grades: Grade::ALL
            .iter()
            .map(|g| Choice {
                value: g.as_str(),
                label: i18n::grade_label(Some(g.as_str()), lang).to_string(),
                selected: grade_now.as_deref() == Some(g.as_str()),
            })
            .collect(),
        categories: Category::ALL
            .iter()
            .map(|c| Choice {
                value: c.as_str(),
                label: i18n::category_label(Some(c.as_str()), lang),
                selected: category_now.as_deref() == Some(c.as_str()),
            })
            .collect(),
        offers: offers
            .into_iter()
            .map(|o| OfferLine {
                code: o.code,
                volunteer: o.volunteer_name,
                wave: o.wave,
                status: offered_word(&o.status),
                sent: local_time(&state, o.sent_at),
                answered: o
                    .answered_at
                    .map(|a| local_time(&state, a))
                    .unwrap_or_default(),
            })
            .collect(),
        events: events
            .into_iter()
            .map(|e| Line {
                at: local_time(&state, e.at),
                label: i18n::event_label(&e.kind, lang),
                kind: e.kind,
                actor: e.actor,
                text: data_text(&e.data),
            })
            .collect(),
        sent: sent
            .into_iter()
            .map(|m| SentLine {
                at: local_time(&state, m.created_at),
                kind: m.kind,
                to: m.to_phone,
                body: m.body,
                status: m.status,
                error: m.last_error.unwrap_or_default(),
            })
            .collect(),
        status: r.status,
        f,
    }))
}

// ---- volunteers ----

pub struct VolunteerLine {
    pub id: i64,
    pub name: String,
    pub phone: String,
    pub skills: String,
    pub skills_raw: String,
    pub languages: String,
    pub available: bool,
    pub opted_out: bool,
    pub active_jobs: i64,
    pub max_active: i64,
    pub points: i64,
    pub quiet_hours: String,
    pub search: String,
}

#[derive(Template)]
#[template(path = "volunteers.html")]
struct VolunteersPage {
    f: Frame,
    volunteers: Vec<VolunteerLine>,
    skills: Vec<Choice>,
}

async fn volunteers_page(
    ConsoleOperator(op): ConsoleOperator,
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> AppResult<Response> {
    let f = frame(
        &state,
        &session,
        &headers,
        &op,
        "volunteers",
        "/console/volunteers".into(),
    )
    .await?;
    let lang: Language = f.t.lang.parse().unwrap_or(Language::Zh);
    let quiet: HashMap<i64, Option<String>> = store_requests::volunteer_quiet_hours(&state.db)
        .await?
        .into_iter()
        .collect();
    let volunteers = store_volunteers::list_volunteers(&state.db)
        .await?
        .into_iter()
        .map(|v| {
            let skills: Vec<String> = split_list(&v.skills)
                .iter()
                .map(|s| i18n::category_label(Some(s), lang))
                .collect();
            let skills = skills.join(", ");
            VolunteerLine {
                search: format!("{} {} {} {}", v.name, v.phone, skills, v.skills).to_lowercase(),
                id: v.id,
                quiet_hours: quiet.get(&v.id).cloned().flatten().unwrap_or_default(),
                skills,
                skills_raw: split_list(&v.skills).join(","),
                languages: split_list(&v.languages).join(", "),
                name: v.name,
                phone: v.phone,
                available: v.available,
                opted_out: v.opted_out,
                active_jobs: v.active_jobs,
                max_active: v.max_active,
                points: v.points,
            }
        })
        .collect();
    let skills = Category::ALL
        .iter()
        .filter(|c| c.is_skill())
        .map(|c| Choice {
            value: c.as_str(),
            label: i18n::category_label(Some(c.as_str()), lang),
            selected: false,
        })
        .collect();
    Ok(render(&VolunteersPage {
        f,
        volunteers,
        skills,
    }))
}

// ---- figures ----

#[derive(Template)]
#[template(path = "figures.html")]
struct FiguresPage {
    f: Frame,
    from: String,
    to: String,
    /// This ISO week, e.g. `2026-W47`, for the report download.
    week: String,
}

async fn figures_page(
    ConsoleOperator(op): ConsoleOperator,
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> AppResult<Response> {
    let f = frame(
        &state,
        &session,
        &headers,
        &op,
        "figures",
        "/console/figures".into(),
    )
    .await?;
    let today = jiff::Timestamp::now()
        .to_zoned(state.config.tz.clone())
        .date();
    let week_ago = today
        .checked_sub(jiff::Span::new().days(6))
        .unwrap_or(today);
    let iso = today.iso_week_date();
    Ok(render(&FiguresPage {
        f,
        from: week_ago.to_string(),
        to: today.to_string(),
        week: format!("{}-W{:02}", iso.year(), iso.week()),
    }))
}

// ---- the simulator (its phones' script lives in http::simulator) ----

#[derive(Template)]
#[template(path = "simulator.html")]
struct SimulatorPage {
    f: Frame,
    map: MapConfig,
}

/// The map's tile server (empty: plain background) and the text its licence asks for.
struct MapConfig {
    tiles: String,
    attribution: String,
}

impl MapConfig {
    fn of(state: &AppState) -> MapConfig {
        let c = &state.config.settings.console;
        MapConfig {
            tiles: c.map_tiles.clone(),
            attribution: c.map_attribution.clone(),
        }
    }
}

async fn simulator_page(
    ConsoleOperator(op): ConsoleOperator,
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> AppResult<Response> {
    crate::http::simulator::simulated_only(&state)?;
    let f = frame(
        &state,
        &session,
        &headers,
        &op,
        "simulator",
        "/console/simulator".into(),
    )
    .await?;
    Ok(render(&SimulatorPage {
        f,
        map: MapConfig::of(&state),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_adds_only_the_tile_origin_to_img_src() {
        let base = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             media-src 'self' https:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'";
        assert_eq!(csp(None), base);
        assert_eq!(
            csp(Some("https://tiles.example")),
            base.replace("data:;", "data: https://tiles.example;")
        );
    }

    #[test]
    fn event_data_reads_as_one_line() {
        assert_eq!(
            data_text(r#"{"status":"assigned","volunteer_id":3,"reason":null}"#),
            "status: assigned, volunteer_id: 3"
        );
        assert_eq!(data_text("not json"), "not json");
    }

    #[test]
    fn ages_are_minutes_then_hours_then_days() {
        let t = &i18n::EN;
        assert_eq!(age(t, 0, 30_000), "1 min");
        assert_eq!(age(t, 0, 59 * 60_000), "59 min");
        assert_eq!(age(t, 0, 3 * 3_600_000), "3 h");
        assert_eq!(age(t, 0, 72 * 3_600_000), "3 d");
    }
}

//! Twilio's webhooks: the voice IVR steps, inbound SMS, and status callbacks.
//! Every request's signature is checked first (403, nothing changes); each
//! `CallSid` step and each `MessageSid` has its effect once.

use crate::app::AppState;
use crate::domain::{Category, EscalationReason, Grade, Language, PhoneNumber};
use crate::ivr::{self, Action, CallState, Effect, Input, KnownCaller, Speak, StepContext};
use crate::store::call_intake::{NewCall, Recorded, insert_new_calls};
use crate::store::{EventInput, Tx, append_event, now_ms};
use axum::Router;
use axum::extract::{FromRequest, OriginalUri, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secrecy::ExposeSecret;
use serde_json::json;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/twilio/voice", post(voice_start))
        .route("/twilio/voice/step", post(voice_step))
        .route("/twilio/voice/step/transcription", post(transcription))
        .route("/twilio/sms", post(sms))
        .route("/twilio/status", post(status))
        .route("/twilio/say", post(say))
}

const STEP_BASE: &str = "/twilio/voice/step";

/// A signed Twilio form, parsed once. Handlers receive it or never run.
pub struct TwilioForm {
    pub params: Vec<(String, String)>,
    pub query: HashMap<String, String>,
}

impl TwilioForm {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

pub struct Rejected(StatusCode, &'static str);

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

impl FromRequest<AppState> for TwilioForm {
    type Rejection = Rejected;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let uri = req
            .extensions()
            .get::<OriginalUri>()
            .map(|u| u.0.clone())
            .unwrap_or_else(|| req.uri().clone());
        let signature = req
            .headers()
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
            .await
            .map_err(|_| Rejected(StatusCode::PAYLOAD_TOO_LARGE, "body too large"))?;
        let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let query: HashMap<String, String> = uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let twilio = &state.config.settings.twilio;
        if twilio.validate_signatures {
            let token = twilio
                .auth_token
                .as_ref()
                .map(|t| t.expose_secret().to_string())
                .unwrap_or_default();
            let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let url = crate::telephony::signature::webhook_url(
                &state.config.settings.server.public_url,
                path_and_query,
            );
            if token.is_empty()
                || !crate::telephony::signature::validate(&token, &url, &params, &signature)
            {
                metrics::counter!("hotline580_webhook_rejected_total").increment(1);
                return Err(Rejected(StatusCode::FORBIDDEN, "invalid Twilio signature"));
            }
        }
        // No phone or provider sends NUL, and PostgreSQL cannot store it in
        // text: refuse it clearly instead of failing mid-transaction (a 5xx
        // that Twilio would retry for ever).
        let has_nul = |s: &String| s.contains('\0');
        if params.iter().any(|(k, v)| has_nul(k) || has_nul(v))
            || query.iter().any(|(k, v)| has_nul(k) || has_nul(v))
        {
            return Err(Rejected(
                StatusCode::BAD_REQUEST,
                "form fields may not contain NUL characters",
            ));
        }
        Ok(TwilioForm { params, query })
    }
}

fn twiml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

fn empty_response() -> Response {
    twiml(r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#.to_string())
}

/// Over the per-number call limit: a polite goodbye that still names the emergency number.
fn too_many_calls(state: &AppState) -> Response {
    let n = &state.config.settings.emergency.number;
    twiml(ivr::render(&[
        Action::Speak(Speak::Say {
            text: format!(
                "您好，这个号码刚才已经打过很多次了，请稍后再打。紧急情况请拨打{n}。Hello, we have had many calls from this number just now; please call again later. In an emergency call {n}."
            ),
            language: "zh-CN".into(),
            voice: None,
            rate: Some(85),
        }),
        Action::Hangup,
    ]))
}

/// Something went wrong on our side mid-call: never a dead end, never silence.
fn apology() -> Response {
    twiml(ivr::render(&[
        Action::Speak(Speak::Say {
            text: "对不起，系统暂时出了问题，请稍后再打。Sorry, we have a problem; please call again shortly.".into(),
            language: "zh-CN".into(),
            voice: None,
            rate: Some(85),
        }),
        Action::Hangup,
    ]))
}

fn phone(state: &AppState, raw: Option<&str>) -> Option<PhoneNumber> {
    PhoneNumber::parse(raw?, &state.config.settings.telephony.default_region).ok()
}

fn context(state: &AppState) -> StepContext {
    let cfg = &state.config;
    let local = jiff::Zoned::now().with_time_zone(cfg.tz.clone()).datetime();
    StepContext {
        staffed: cfg.operators_phone.is_some() && cfg.staffed.is_staffed(local),
        operators_phone: cfg.operators_phone.as_ref().map(|p| p.to_string()),
        emergency_number: cfg.settings.emergency.number.clone(),
        action_base: STEP_BASE.to_string(),
    }
}

async fn stored_step(tx: &mut Tx, call_sid: &str, step: &str) -> sqlx::Result<Option<String>> {
    crate::on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT twiml FROM call_steps WHERE call_sid = $1 AND step = $2"
    )
    .bind(call_sid)
    .bind(step)
    .fetch_optional(c)
    .await)
}

async fn store_step(tx: &mut Tx, call_sid: &str, step: &str, twiml: &str) -> sqlx::Result<()> {
    crate::on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO call_steps (call_sid, step, twiml, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
    )
    .bind(call_sid)
    .bind(step)
    .bind(twiml)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|_| ())
    })
}

/// `POST /twilio/voice`: a new call creates its request (`new`) and gets the greeting.
async fn voice_start(State(state): State<AppState>, form: TwilioForm) -> Response {
    match voice_start_inner(&state, &form).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "voice webhook failed");
            apology()
        }
    }
}

async fn voice_start_inner(state: &AppState, form: &TwilioForm) -> anyhow::Result<Response> {
    let Some(call_sid) = form
        .get("CallSid")
        .filter(|s| !s.is_empty() && s.len() <= 64)
    else {
        return Ok((StatusCode::BAD_REQUEST, "CallSid is missing").into_response());
    };
    let caller = phone(state, form.get("From"));
    if let Some(p) = &caller
        && !state.limits.webhook_allowed(p)
    {
        return Ok(too_many_calls(state)); // nothing stored: a flood writes nothing
    }
    // A read outside any write transaction: writers wait for nobody's lookups.
    let resident: Option<(i64, String, String, String)> = match &caller {
        Some(p) => crate::on_db!(&state.db, |c| sqlx::query_as(
            "SELECT id, name, language, address FROM residents WHERE phone = $1"
        )
        .bind(p.as_str())
        .fetch_optional(c)
        .await)?,
        None => None,
    };
    let known = resident
        .as_ref()
        .map(|(_, name, lang, address)| KnownCaller {
            name: name.clone(),
            language: lang.parse().unwrap_or(Language::Zh),
            address: Some(address.clone()).filter(|a| !a.is_empty()),
        });
    let language = known.as_ref().map(|k| k.language).unwrap_or(Language::Zh);
    let result = ivr::step(
        &state.script,
        &CallState::default(),
        &Input::Start { known },
        &context(state),
    );
    let body = ivr::render(&result.actions);
    let call = NewCall {
        call_sid: call_sid.to_string(),
        from: form.get("From").unwrap_or("").to_string(),
        caller_phone: caller
            .as_ref()
            .map(|p| p.as_str().to_string())
            .or_else(|| form.get("From").map(str::to_string)),
        resident_id: resident.as_ref().map(|r| r.0),
        language: language.as_str().to_string(),
        state: serde_json::to_string(&result.state)?,
        seq: result.state.seq.to_string(),
        twiml: body.clone(),
    };
    let recorded = if result.effects.is_empty() {
        // The common case: stored with the calls arriving beside it.
        state.intake.record(call).await?
    } else {
        // A script whose first node already acts (classifies, transfers): the
        // call and what it set off commit together.
        let mut tx = state.db.begin().await?;
        let recorded = insert_new_calls(&mut tx, &[&call]).await?.remove(0);
        if let Recorded::New { request_id } = recorded {
            apply_effects(state, &mut tx, request_id, &result.effects).await?;
        }
        tx.commit().await?;
        recorded
    };
    Ok(match recorded {
        Recorded::New { .. } => {
            metrics::counter!("hotline580_calls_total").increment(1);
            twiml(body)
        }
        Recorded::Retried { twiml: prev } => twiml(prev), // Twilio retried: same answer
    })
}

/// `POST /twilio/voice/step?seq=N`: the next step of a call.
async fn voice_step(State(state): State<AppState>, form: TwilioForm) -> Response {
    match voice_step_inner(&state, &form).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "voice step failed");
            apology()
        }
    }
}

async fn voice_step_inner(state: &AppState, form: &TwilioForm) -> anyhow::Result<Response> {
    let Some(call_sid) = form.get("CallSid").filter(|s| !s.is_empty()) else {
        return Ok((StatusCode::BAD_REQUEST, "CallSid is missing").into_response());
    };
    let seq: u64 = form
        .query
        .get("seq")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut tx = state.db.begin().await?;
    let row: Option<(i64, String)> = crate::on_tx!(&mut tx, |c| sqlx::query_as(
        "SELECT request_id, state FROM calls WHERE call_sid = $1"
    )
    .bind(call_sid)
    .fetch_optional(c)
    .await)?;
    let Some((request_id, state_json)) = row else {
        tx.rollback().await?;
        return Ok(apology());
    };
    let call_state: CallState = serde_json::from_str(&state_json).unwrap_or_default();
    if seq < call_state.seq as u64 {
        // A retried step: the answer it got the first time, and nothing else.
        let prev = stored_step(&mut tx, call_sid, &(seq + 1).to_string()).await?;
        tx.rollback().await?;
        return Ok(prev.map(twiml).unwrap_or_else(apology));
    }
    let input = Input::from_twilio(|k| form.get(k));
    let result = ivr::step(&state.script, &call_state, &input, &context(state));
    let body = ivr::render(&result.actions);
    crate::on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE calls SET state = $2, updated_at = $3 WHERE call_sid = $1"
    )
    .bind(call_sid)
    .bind(serde_json::to_string(&result.state)?)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|_| ()))?;
    apply_effects(state, &mut tx, request_id, &result.effects).await?;
    store_step(&mut tx, call_sid, &result.state.seq.to_string(), &body).await?;
    tx.commit().await?;
    Ok(twiml(body))
}

/// What the IVR learned, stored in the step's transaction.
async fn apply_effects(
    state: &AppState,
    tx: &mut Tx,
    request_id: i64,
    effects: &[Effect],
) -> anyhow::Result<()> {
    let now = now_ms();
    for effect in effects {
        match effect {
            Effect::Classified { category, grade } => {
                classify(state, tx, request_id, *category, *grade).await?
            }
            Effect::Emergency => {
                let changed = set(tx, request_id, "UPDATE requests SET category = 'emergency', grade = 'red', status = 'escalated', \
                    escalation_reason = 'emergency', classified_at = COALESCE(classified_at, $2), updated_at = $2 WHERE id = $1 \
                    AND (status IN ('new', 'offering') OR (status = 'escalated' AND COALESCE(escalation_reason, '') <> 'emergency'))", now).await?;
                if changed > 0 {
                    append_event(tx, EventInput { request_id: Some(request_id), kind: "request.status", actor: "resident", data: json!({ "status": "escalated", "escalation_reason": "emergency" }) }).await?;
                    append_event(
                        tx,
                        EventInput {
                            request_id: Some(request_id),
                            kind: "alert",
                            actor: "resident",
                            data: json!({ "reason": "emergency" }),
                        },
                    )
                    .await?;
                    notify_operators(state, tx, request_id, EscalationReason::Emergency).await?;
                    crate::followup::clocks::start(&state.jobs, tx, &state.config, request_id)
                        .await?;
                }
            }
            Effect::OperatorRequested => {
                append_event(
                    tx,
                    EventInput {
                        request_id: Some(request_id),
                        kind: "call.operator",
                        actor: "resident",
                        data: json!({}),
                    },
                )
                .await?;
            }
            Effect::Voicemail { recording_url } => {
                crate::on_tx!(tx, |c| {
                    sqlx::query("UPDATE requests SET recording_url = COALESCE(recording_url, $2), updated_at = $3 WHERE id = $1")
                    .bind(request_id).bind(recording_url).bind(now).execute(c).await.map(|_| ())
                })?;
                let changed = set(tx, request_id, "UPDATE requests SET status = 'escalated', escalation_reason = 'call_back', updated_at = $2 WHERE id = $1 AND status = 'new'", now).await?;
                append_event(
                    tx,
                    EventInput {
                        request_id: Some(request_id),
                        kind: "call.voicemail",
                        actor: "resident",
                        data: json!({ "recording_url": recording_url }),
                    },
                )
                .await?;
                if changed > 0 {
                    append_event(tx, EventInput { request_id: Some(request_id), kind: "request.status", actor: "system", data: json!({ "status": "escalated", "escalation_reason": "call_back" }) }).await?;
                    crate::followup::clocks::start(&state.jobs, tx, &state.config, request_id)
                        .await?;
                }
            }
            Effect::NameRecording { url } => {
                crate::on_tx!(tx, |c| sqlx::query(
                    "UPDATE requests SET caller_name = $2, updated_at = $3 WHERE id = $1"
                )
                .bind(request_id)
                .bind(url)
                .bind(now)
                .execute(c)
                .await
                .map(|_| ()))?;
            }
            Effect::NewAddressRecording { url } => {
                crate::on_tx!(tx, |c| sqlx::query(
                    "UPDATE requests SET address = $2, updated_at = $3 WHERE id = $1"
                )
                .bind(request_id)
                .bind(url)
                .bind(now)
                .execute(c)
                .await
                .map(|_| ()))?;
            }
            Effect::Description {
                recording_url,
                transcription,
            } => {
                crate::on_tx!(tx, |c| {
                    sqlx::query("UPDATE requests SET recording_url = $2, transcription = COALESCE($3, transcription), \
                    description = COALESCE($3, description), updated_at = $4 WHERE id = $1")
                    .bind(request_id).bind(recording_url).bind(transcription.as_deref()).bind(now).execute(c).await.map(|_| ())
                })?;
                append_event(
                    tx,
                    EventInput {
                        request_id: Some(request_id),
                        kind: "request.updated",
                        actor: "resident",
                        data: json!({ "recording_url": recording_url }),
                    },
                )
                .await?;
            }
            Effect::AddressConfirmed | Effect::LanguageChosen { .. } | Effect::Finished => {}
        }
    }
    Ok(())
}

async fn set(tx: &mut Tx, request_id: i64, sql: &'static str, now: i64) -> sqlx::Result<u64> {
    crate::on_tx!(tx, |c| sqlx::query(sql)
        .bind(request_id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
}

/// Classification: `offering` with the dispatch job, in this transaction.
async fn classify(
    state: &AppState,
    tx: &mut Tx,
    request_id: i64,
    category: Category,
    grade: Grade,
) -> anyhow::Result<()> {
    let changed = crate::on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE requests SET category = $2, grade = $3, status = 'offering', classified_at = $4, updated_at = $4 \
         WHERE id = $1 AND status = 'new'"
    )
    .bind(request_id)
    .bind(category.as_str())
    .bind(grade.as_str())
    .bind(now_ms())
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if changed == 0 {
        return Ok(());
    }
    append_event(tx, EventInput { request_id: Some(request_id), kind: "request.status", actor: "resident", data: json!({ "status": "offering", "category": category.as_str(), "grade": grade.as_str() }) }).await?;
    if grade == Grade::Red {
        append_event(
            tx,
            EventInput {
                request_id: Some(request_id),
                kind: "alert",
                actor: "system",
                data: json!({ "reason": "red" }),
            },
        )
        .await?;
    }
    crate::followup::clocks::start(&state.jobs, tx, &state.config, request_id).await?;
    crate::dispatch::cascade::start(&state.job_deps(), &state.jobs, tx, request_id).await
}

async fn notify_operators(
    state: &AppState,
    tx: &mut Tx,
    request_id: i64,
    reason: EscalationReason,
) -> anyhow::Result<()> {
    if let Some(ops) = &state.config.operators_phone {
        let body = format!(
            "hotline580: 请求 #{request_id} 需要处理（{}）/ request #{request_id} needs an operator ({})",
            reason.as_str(),
            reason.as_str()
        );
        crate::outbox::queue(
            &state.jobs,
            tx,
            &state.config.hotline_number,
            crate::outbox::Outgoing::sms(ops, &body, Some(request_id)),
        )
        .await?;
    }
    Ok(())
}

/// `transcribeCallback`: the text of a recording, attached to its request.
async fn transcription(State(state): State<AppState>, form: TwilioForm) -> Response {
    let (Some(call_sid), Some(text)) = (form.get("CallSid"), form.get("TranscriptionText")) else {
        return empty_response();
    };
    let what = form
        .query
        .get("what")
        .map(String::as_str)
        .unwrap_or("description");
    let sql = match what {
        "description" | "voicemail" => {
            "UPDATE requests SET transcription = $2, description = $2, updated_at = $3 WHERE id = (SELECT request_id FROM calls WHERE call_sid = $1)"
        }
        "name" => {
            "UPDATE requests SET caller_name = $2, updated_at = $3 WHERE id = (SELECT request_id FROM calls WHERE call_sid = $1)"
        }
        _ => {
            "UPDATE requests SET address = $2, updated_at = $3 WHERE id = (SELECT request_id FROM calls WHERE call_sid = $1)"
        }
    };
    let r = crate::on_db!(&state.db, |c| sqlx::query(sql)
        .bind(call_sid)
        .bind(text)
        .bind(now_ms())
        .execute(c)
        .await
        .map(|_| ()));
    if let Err(e) = r {
        tracing::error!(error = %e, "storing a transcription");
    }
    empty_response()
}

/// `POST /twilio/sms`: a volunteer's command or a resident's request.
async fn sms(State(state): State<AppState>, form: TwilioForm) -> Response {
    match sms_inner(&state, &form).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "sms webhook failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response() // Twilio retries
        }
    }
}

async fn sms_inner(state: &AppState, form: &TwilioForm) -> anyhow::Result<Response> {
    let (Some(sid), Some(from)) = (
        form.get("MessageSid").filter(|s| !s.is_empty()),
        phone(state, form.get("From")),
    ) else {
        return Ok((
            StatusCode::BAD_REQUEST,
            "MessageSid and a valid From are required",
        )
            .into_response());
    };
    if !state.limits.webhook_allowed(&from) {
        return Ok(empty_response()); // polite, and no SMS of ours to feed a flood
    }
    let body = form.get("Body").unwrap_or("");
    let mut tx = state.db.begin().await?;
    let claimed = crate::on_tx!(&mut tx, |c| {
        sqlx::query(
        "INSERT INTO messages (message_sid, from_phone, body, received_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
    )
    .bind(sid)
    .bind(from.as_str())
    .bind(body)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if claimed == 0 {
        tx.rollback().await?;
        return Ok(empty_response()); // a retried MessageSid: no second effect, no second reply
    }
    let intake_allowed = || state.limits.intake_allowed(&from);
    let handled = crate::dispatch::sms::handle(
        &state.job_deps(),
        &state.jobs,
        &mut tx,
        &from,
        body,
        &intake_allowed,
    )
    .await?;
    if let Some(request_id) = handled.request_id {
        crate::on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE messages SET request_id = $2 WHERE message_sid = $1"
        )
        .bind(sid)
        .bind(request_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    tx.commit().await?;
    Ok(match handled.reply {
        Some(text) => twiml(ivr_message(&text)),
        None => empty_response(),
    })
}

fn ivr_message(text: &str) -> String {
    use quick_xml::Writer;
    use quick_xml::events::{BytesDecl, BytesText, Event};
    let mut w = Writer::new(Vec::new());
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = w.create_element("Response").write_inner_content(|w| {
        w.create_element("Message")
            .write_text_content(BytesText::new(text))?;
        Ok(())
    });
    String::from_utf8(w.into_inner()).unwrap_or_default()
}

/// `POST /twilio/status`: delivery of our messages and calls, and the end of inbound calls.
async fn status(State(state): State<AppState>, form: TwilioForm) -> Response {
    let deps = state.job_deps();
    if let (Some(sid), Some(st)) = (form.get("MessageSid"), form.get("MessageStatus")) {
        if let Err(e) = crate::outbox::record_status(&deps, sid, st, form.get("ErrorCode")).await {
            tracing::error!(error = %e, "recording a message status");
        }
        return empty_response();
    }
    if let (Some(call_sid), Some(st)) = (form.get("CallSid"), form.get("CallStatus")) {
        let ended = matches!(
            st,
            "completed" | "busy" | "no-answer" | "failed" | "canceled"
        );
        if ended && let Err(e) = call_ended(&state, call_sid, st).await {
            tracing::error!(error = %format!("{e:#}"), "recording a call's end");
        }
        if let Err(e) = crate::outbox::record_status(&deps, call_sid, st, None).await {
            tracing::error!(error = %e, "recording a call status");
        }
    }
    empty_response()
}

/// An inbound call that ended before classification becomes a call-back request.
async fn call_ended(state: &AppState, call_sid: &str, call_status: &str) -> anyhow::Result<()> {
    let mut tx = state.db.begin().await?;
    let request_id: Option<i64> = crate::on_tx!(&mut tx, |c| sqlx::query_scalar(
        "SELECT request_id FROM calls WHERE call_sid = $1"
    )
    .bind(call_sid)
    .fetch_optional(c)
    .await)?
    .flatten();
    crate::on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE calls SET status = $2, updated_at = $3 WHERE call_sid = $1"
    )
    .bind(call_sid)
    .bind(call_status)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|_| ()))?;
    if let Some(request_id) = request_id {
        let changed = set(&mut tx, request_id, "UPDATE requests SET status = 'escalated', escalation_reason = 'call_back', updated_at = $2 WHERE id = $1 AND status = 'new'", now_ms()).await?;
        if changed > 0 {
            append_event(&mut tx, EventInput { request_id: Some(request_id), kind: "request.status", actor: "system", data: json!({ "status": "escalated", "escalation_reason": "call_back", "call_status": call_status }) }).await?;
            append_event(
                &mut tx,
                EventInput {
                    request_id: Some(request_id),
                    kind: "alert",
                    actor: "system",
                    data: json!({ "reason": "call_back" }),
                },
            )
            .await?;
            crate::followup::clocks::start(&state.jobs, &mut tx, &state.config, request_id).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// `POST /twilio/say?text=…&lang=…`: the TwiML of an outbound notification call.
async fn say(form: TwilioForm) -> Response {
    let text = form.query.get("text").cloned().unwrap_or_default();
    let lang: Language = form
        .query
        .get("lang")
        .and_then(|l| l.parse().ok())
        .unwrap_or(Language::Zh);
    let speak = Speak::Say {
        text,
        language: lang.speech_code().to_string(),
        voice: None,
        rate: Some(85),
    };
    twiml(ivr::render(&[
        Action::Speak(speak.clone()),
        Action::Speak(speak),
        Action::Hangup,
    ]))
}

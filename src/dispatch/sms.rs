//! Inbound SMS: a volunteer's command (accept, decline, done, off/on,
//! stop/start, points, help) or, from anyone else, a resident's request.
//! Returns the reply to send back in the webhook's TwiML.

use super::assignment::{Assignee, first_language, settle_assignment};
use super::cascade::{self, escalate, load_request};
use super::commands::{self, Command, OfferCode};
use super::{keywords, messages};
use crate::domain::{Category, EscalationReason, Language, PhoneNumber};
use crate::jobs::JobDeps;
use crate::store::{EventInput, Tx, append_event, now_ms};
use riverqueue::Client;
use serde_json::json;

#[derive(Debug, Clone, sqlx::FromRow)]
struct Volunteer {
    id: i64,
    name: String,
    phone: String,
    languages: String,
}

impl Volunteer {
    fn lang(&self) -> Language {
        first_language(&self.languages)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct OfferRow {
    id: i64,
    request_id: i64,
    code: String,
}

async fn find_volunteer(tx: &mut Tx, phone: &PhoneNumber) -> sqlx::Result<Option<Volunteer>> {
    crate::on_tx!(tx, |c| sqlx::query_as::<_, Volunteer>(
        "SELECT id, name, phone, languages FROM volunteers WHERE phone = $1"
    )
    .bind(phone.as_str())
    .fetch_optional(c)
    .await)
}

async fn pending_of(tx: &mut Tx, volunteer_id: i64) -> sqlx::Result<Vec<OfferRow>> {
    crate::on_tx!(tx, |c| {
        sqlx::query_as::<_, OfferRow>(
        "SELECT id, request_id, code FROM offers WHERE volunteer_id = $1 AND status = 'pending' ORDER BY id"
    )
    .bind(volunteer_id)
    .fetch_all(c)
    .await
    })
}

async fn offer_by_code(
    tx: &mut Tx,
    volunteer_id: i64,
    code: &OfferCode,
) -> sqlx::Result<Option<(OfferRow, String)>> {
    let row: Option<(i64, i64, String, String)> = crate::on_tx!(tx, |c| sqlx::query_as(
        "SELECT id, request_id, code, status FROM offers WHERE volunteer_id = $1 AND code = $2"
    )
    .bind(volunteer_id)
    .bind(code.as_str())
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|(id, request_id, code, status)| {
        (
            OfferRow {
                id,
                request_id,
                code,
            },
            status,
        )
    }))
}

fn code_of(o: &OfferRow) -> OfferCode {
    OfferCode::parse(&o.code).unwrap_or_else(|_| OfferCode::from_number(0))
}

/// What one inbound SMS came to: the reply, and the request it concerns (the
/// message is linked to it, so the request's page shows it).
#[derive(Debug, Default)]
pub struct Handled {
    pub reply: Option<String>,
    pub request_id: Option<i64>,
}

/// Handles one inbound SMS inside `tx` (which also holds the `MessageSid` claim).
/// `intake_allowed` is asked once before a resident's text opens a request
/// (the per-number limit); when it says no, nothing but a polite reply follows.
pub async fn handle(
    deps: &JobDeps,
    client: &Client,
    tx: &mut Tx,
    from: &PhoneNumber,
    body: &str,
    intake_allowed: &(dyn Fn() -> bool + Sync),
) -> anyhow::Result<Handled> {
    let Some(v) = find_volunteer(tx, from).await? else {
        return resident_text(deps, client, tx, from, body, intake_allowed).await;
    };
    let lang = v.lang();
    let mut about = None;
    let reply = match commands::parse(body) {
        Command::Accept { code } => match pick(tx, &v, code.as_ref(), lang).await? {
            Ok(offer) => {
                about = Some(offer.request_id);
                accept(deps, client, tx, &v, &offer).await?
            }
            Err(reply) => reply,
        },
        Command::Decline { code } => match pick(tx, &v, code.as_ref(), lang).await? {
            Ok(offer) => {
                about = Some(offer.request_id);
                answer(client, tx, &v, &offer, "declined").await?;
                messages::declined(lang, &code_of(&offer))
            }
            Err(reply) => reply,
        },
        Command::Done { code } => done(deps, client, tx, &v, code.as_ref(), &mut about).await?,
        Command::Off => {
            set_flag(
                tx,
                &v,
                "UPDATE volunteers SET available = FALSE, updated_at = $2 WHERE id = $1",
                "off",
            )
            .await?;
            for offer in pending_of(tx, v.id).await? {
                answer(client, tx, &v, &offer, "declined").await?;
            }
            messages::paused(lang)
        }
        Command::On => {
            set_flag(
                tx,
                &v,
                "UPDATE volunteers SET available = TRUE, updated_at = $2 WHERE id = $1",
                "on",
            )
            .await?;
            messages::resumed(lang)
        }
        Command::Stop => {
            set_flag(
                tx,
                &v,
                "UPDATE volunteers SET opted_out = TRUE, updated_at = $2 WHERE id = $1",
                "stop",
            )
            .await?;
            for offer in pending_of(tx, v.id).await? {
                answer(client, tx, &v, &offer, "declined").await?;
            }
            // Twilio itself confirms an opt-out to the sender; a reply of ours would not arrive.
            return Ok(Handled::default());
        }
        Command::Start => {
            set_flag(
                tx,
                &v,
                "UPDATE volunteers SET opted_out = FALSE, updated_at = $2 WHERE id = $1",
                "start",
            )
            .await?;
            messages::opted_in(lang)
        }
        Command::Points => crate::followup::points_reply(tx, &deps.config.tz, v.id, lang).await?,
        Command::Help => messages::help(lang),
        Command::Unknown(_) => messages::unknown_command(lang),
    };
    Ok(Handled {
        reply: Some(reply),
        request_id: about,
    })
}

/// The offer a bare word or a code refers to, or the reply explaining why there is none.
async fn pick(
    tx: &mut Tx,
    v: &Volunteer,
    code: Option<&OfferCode>,
    lang: Language,
) -> anyhow::Result<Result<OfferRow, String>> {
    if let Some(code) = code {
        return Ok(match offer_by_code(tx, v.id, code).await? {
            Some((offer, status)) if status == "pending" => Ok(offer),
            Some((_, _)) => Err(messages::taken(lang, code)),
            None => Err(messages::no_such_offer(lang, code)),
        });
    }
    let pending = pending_of(tx, v.id).await?;
    Ok(match pending.len() {
        0 => Err(messages::nothing_pending(lang)),
        1 => Ok(pending.into_iter().next().expect("one")),
        _ => Err(messages::which_offer(
            lang,
            &pending.iter().map(code_of).collect::<Vec<_>>(),
        )),
    })
}

async fn set_flag(tx: &mut Tx, v: &Volunteer, sql: &'static str, what: &str) -> anyhow::Result<()> {
    crate::on_tx!(tx, |c| sqlx::query(sql)
        .bind(v.id)
        .bind(now_ms())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    append_event(
        tx,
        EventInput {
            request_id: None,
            kind: "volunteer.updated",
            actor: &format!("volunteer:{}", v.id),
            data: json!({ "volunteer_id": v.id, "command": what }),
        },
    )
    .await?;
    Ok(())
}

/// A decline (or OFF/STOP): the offer is answered and the cascade moves on at once.
async fn answer(
    client: &Client,
    tx: &mut Tx,
    v: &Volunteer,
    offer: &OfferRow,
    status: &str,
) -> anyhow::Result<()> {
    let changed = crate::on_tx!(tx, |c| sqlx::query(
        "UPDATE offers SET status = $2, answered_at = $3 WHERE id = $1 AND status = 'pending'"
    )
    .bind(offer.id)
    .bind(status)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if changed == 1 {
        append_event(
            tx,
            EventInput {
                request_id: Some(offer.request_id),
                kind: "offer.answered",
                actor: &format!("volunteer:{}", v.id),
                data: json!({ "offer_id": offer.id, "status": status }),
            },
        )
        .await?;
        cascade::next_wave_if_idle(client, tx, offer.request_id).await?;
    }
    Ok(())
}

/// The first valid acceptance wins, decided by a conditional update and the
/// unique index on accepted offers; everyone after is told it is taken.
async fn accept(
    deps: &JobDeps,
    client: &Client,
    tx: &mut Tx,
    v: &Volunteer,
    offer: &OfferRow,
) -> anyhow::Result<String> {
    let lang = v.lang();
    let code = code_of(offer);
    let now = now_ms();
    // Acceptances of one request queue on its row first. Without this lock, on
    // PostgreSQL two acceptors each hold their own offer's row, wait on each other
    // through the unique index and the withdrawal of pending offers, and deadlock
    // (the loser got a 500). SQLite's write transactions are already serial.
    crate::on_tx!(tx, |c| sqlx::query(
        "UPDATE requests SET updated_at = updated_at WHERE id = $1"
    )
    .bind(offer.request_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let won = crate::on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE offers SET status = 'accepted', answered_at = $2 WHERE id = $1 AND status = 'pending' \
         AND NOT EXISTS (SELECT 1 FROM offers o WHERE o.request_id = $3 AND o.status = 'accepted')"
    )
    .bind(offer.id)
    .bind(now)
    .bind(offer.request_id)
    .execute(c).await.map(|r| r.rows_affected())
    })? == 1;
    let assigned = won
        && crate::on_tx!(tx, |c| {
            sqlx::query(
            "UPDATE requests SET status = 'assigned', volunteer_id = $2, accepted_at = $3, updated_at = $3 \
             WHERE id = $1 AND status IN ('offering', 'escalated')"
        )
        .bind(offer.request_id)
        .bind(v.id)
        .bind(now)
        .execute(c).await.map(|r| r.rows_affected())
        })? == 1;
    if !assigned {
        if won {
            // The request was cancelled or closed meanwhile: undo the acceptance.
            crate::on_tx!(tx, |c| sqlx::query(
                "UPDATE offers SET status = 'withdrawn' WHERE id = $1"
            )
            .bind(offer.id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        }
        return Ok(messages::taken(lang, &code));
    }
    let actor = format!("volunteer:{}", v.id);
    append_event(
        tx,
        EventInput {
            request_id: Some(offer.request_id),
            kind: "offer.answered",
            actor: &actor,
            data: json!({ "offer_id": offer.id, "status": "accepted" }),
        },
    )
    .await?;
    append_event(
        tx,
        EventInput {
            request_id: Some(offer.request_id),
            kind: "request.status",
            actor: &actor,
            data: json!({ "status": "assigned", "volunteer_id": v.id }),
        },
    )
    .await?;

    // The others are withdrawn with a thank-you; the resident is told who is coming.
    let assignee = Assignee {
        id: v.id,
        name: v.name.clone(),
        phone: v.phone.clone(),
        lang,
    };
    settle_assignment(deps, client, tx, offer.request_id, &assignee, &code).await
}

/// `DONE`: the job the word or code names is completed by follow-up (points,
/// the rating question); the reply thanks the volunteer.
async fn done(
    deps: &JobDeps,
    client: &Client,
    tx: &mut Tx,
    v: &Volunteer,
    code: Option<&OfferCode>,
    about: &mut Option<i64>,
) -> anyhow::Result<String> {
    let lang = v.lang();
    // A job a clock escalated stays the volunteer's until it is done.
    let jobs: Vec<(i64, String)> = crate::on_tx!(tx, |c| {
        sqlx::query_as(
        "SELECT r.id, o.code FROM requests r JOIN offers o ON o.request_id = r.id AND o.status = 'accepted' \
         WHERE r.volunteer_id = $1 AND (r.status = 'assigned' OR (r.status = 'escalated' AND r.done_at IS NULL)) ORDER BY r.id"
    )
    .bind(v.id)
    .fetch_all(c)
    .await
    })?;
    let job = match code {
        Some(code) => jobs.iter().find(|(_, c)| c == code.as_str()),
        None if jobs.len() == 1 => jobs.first(),
        None if jobs.is_empty() => return Ok(messages::nothing_pending(lang)),
        None => {
            let codes: Vec<OfferCode> = jobs
                .iter()
                .filter_map(|(_, c)| OfferCode::parse(c).ok())
                .collect();
            return Ok(messages::which_offer(lang, &codes));
        }
    };
    let Some((request_id, _)) = job.cloned() else {
        return Ok(messages::no_such_offer(
            lang,
            code.expect("a code was given"),
        ));
    };
    *about = Some(request_id);
    let actor = format!("volunteer:{}", v.id);
    match crate::followup::complete(client, tx, deps, request_id, &actor).await? {
        Some(f) => Ok(messages::done(lang, &f.code, f.earned, f.balance)),
        None => Ok(messages::nothing_pending(lang)),
    }
}

/// A text from a number that is no volunteer: a resident's request by SMS.
async fn resident_text(
    deps: &JobDeps,
    client: &Client,
    tx: &mut Tx,
    from: &PhoneNumber,
    body: &str,
    intake_allowed: &(dyn Fn() -> bool + Sync),
) -> anyhow::Result<Handled> {
    // While a rating question is open, the reply is its answer, not a new
    // request, and the intake limit does not apply to it.
    if let Some((request_id, reply)) =
        crate::followup::rating::resident_reply(client, tx, deps, from, body).await?
    {
        return Ok(Handled {
            reply: Some(reply),
            request_id: Some(request_id),
        });
    }
    if !intake_allowed() {
        let lang: Option<String> = crate::on_tx!(tx, |c| sqlx::query_scalar(
            "SELECT language FROM residents WHERE phone = $1"
        )
        .bind(from.as_str())
        .fetch_optional(c)
        .await)?;
        let lang = lang.and_then(|l| l.parse().ok()).unwrap_or(Language::Zh);
        return Ok(Handled {
            reply: Some(messages::intake_slow_down(
                lang,
                &deps.config.settings.emergency.number,
            )),
            request_id: None,
        });
    }
    let resident: Option<(i64, String, Option<f64>, Option<f64>)> =
        crate::on_tx!(tx, |c| sqlx::query_as(
            "SELECT id, language, lat, lon FROM residents WHERE phone = $1"
        )
        .bind(from.as_str())
        .fetch_optional(c)
        .await)?;
    let now = now_ms();
    let text = body.trim();
    let (resident_id, lang) = match &resident {
        Some((id, l, _, _)) => (Some(*id), l.parse().unwrap_or(Language::Zh)),
        None => (None, Language::Zh),
    };
    let category = keywords::classify(text);
    let (status, category, reason): (&str, Option<Category>, Option<EscalationReason>) =
        match (&resident, category) {
            (None, c) => ("escalated", c, Some(EscalationReason::UnknownSender)),
            (Some(_), Some(Category::Emergency)) => (
                "escalated",
                Some(Category::Emergency),
                Some(EscalationReason::Emergency),
            ),
            (Some(_), Some(c)) => ("offering", Some(c), None),
            (Some(_), None) => (
                "escalated",
                Some(Category::Other),
                Some(EscalationReason::NoKeyword),
            ),
        };
    let grade = category.map(|c| c.default_grade());
    let request_id: i64 = crate::on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO requests (status, category, grade, channel, language, description, resident_id, caller_phone, \
         escalation_reason, classified_at, created_at, updated_at) \
         VALUES ($1, $2, $3, 'sms', $4, $5, $6, $7, $8, $9, $9, $9) RETURNING id"
    )
    .bind(status)
    .bind(category.map(|c| c.as_str()))
    .bind(grade.map(|g| g.as_str()))
    .bind(lang.as_str())
    .bind(text)
    .bind(resident_id)
    .bind(from.as_str())
    .bind(reason.map(|r| r.as_str()))
    .bind(now)
    .fetch_one(c)
    .await
    })?;
    append_event(
        tx,
        EventInput {
            request_id: Some(request_id),
            kind: "request.created",
            actor: "resident",
            data: json!({ "channel": "sms", "status": status }),
        },
    )
    .await?;
    crate::followup::clocks::start(client, tx, &deps.config, request_id).await?;
    if status == "offering" {
        cascade::start(deps, client, tx, request_id).await?;
        return Ok(Handled {
            reply: None,
            request_id: Some(request_id),
        });
    }
    let req = load_request(tx, request_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("request vanished"))?;
    // `escalate` sets the same status again; it adds the alert and the operators' SMS.
    escalate(
        client,
        tx,
        deps,
        &req,
        reason.unwrap_or(EscalationReason::NoKeyword),
        "system",
    )
    .await?;
    let reply = match reason {
        Some(EscalationReason::UnknownSender) => Some(messages::unknown_sender(
            lang,
            &deps.config.settings.emergency.number,
        )),
        _ => None,
    };
    Ok(Handled {
        reply,
        request_id: Some(request_id),
    })
}

//! Ratings: asking the resident after `done` (an SMS to a mobile, a keypad
//! survey call to a landline or to a resident who prefers calls), storing the
//! answer, opening a revisit for a low rating or a complaint in words, and
//! closing unrated when nobody answers in time.

use crate::dispatch::cascade::{escalate, load_request};
use crate::dispatch::messages;
use crate::domain::{Category, EscalationReason, Language, PhoneNumber};
use crate::jobs::JobDeps;
use crate::outbox::{self, Kind, Outgoing};
use crate::store::{EventInput, Tx, append_event, now_ms};
use riverqueue::Client;
use serde_json::json;

/// The path of the survey call's TwiML; Twilio fetches it with `?request=N`.
pub const SURVEY_PATH: &str = "/twilio/survey";
/// Where the survey's keypad answer is posted.
pub const SURVEY_ANSWER_PATH: &str = "/twilio/survey/answer";

/// Whether a resident is asked by a call: they said so, or the number is a
/// fixed line and they said nothing.
pub fn by_call(contact: Option<&str>, phone: &PhoneNumber) -> bool {
    match contact {
        Some("call") => true,
        Some(_) => false,
        None => !phone.is_mobile(),
    }
}

/// Puts the rating question to the resident of a request just done.
/// A request with no number to reach is left to close unrated.
pub async fn ask(
    client: &Client,
    tx: &mut Tx,
    deps: &JobDeps,
    request_id: i64,
) -> anyhow::Result<()> {
    let Some(req) = load_request(tx, request_id).await? else {
        return Ok(());
    };
    let Some(phone) = req
        .resident_phone
        .as_deref()
        .or(req.caller_phone.as_deref())
        .and_then(|p| PhoneNumber::from_e164(p).ok())
    else {
        return Ok(());
    };
    let contact: Option<String> = crate::on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT contact FROM residents WHERE phone = $1"
    )
    .bind(phone.as_str())
    .fetch_optional(c)
    .await)?
    .flatten();
    let lang: Language = req.language.parse().unwrap_or(Language::Zh);
    let category: Category = req
        .category
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(Category::Other);
    let call = by_call(contact.as_deref(), &phone);
    let (kind, body) = if call {
        let url = format!(
            "{}{SURVEY_PATH}?request={request_id}",
            deps.config.settings.server.public_url.trim_end_matches('/')
        );
        (Kind::Call, url)
    } else {
        (Kind::Sms, messages::rating_question(lang, category))
    };
    outbox::queue(
        client,
        tx,
        &deps.config.hotline_number,
        Outgoing {
            kind,
            to: &phone,
            body: &body,
            request_id: Some(request_id),
            offer_id: None,
        },
    )
    .await?;
    let now = now_ms();
    crate::on_tx!(tx, |c| sqlx::query(
        "UPDATE requests SET rating_asked_at = $2 WHERE id = $1"
    )
    .bind(request_id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    append_event(
        tx,
        EventInput {
            request_id: Some(request_id),
            kind: "request.updated",
            actor: "system",
            data: json!({ "rating_asked": if call { "call" } else { "sms" } }),
        },
    )
    .await?;
    Ok(())
}

/// The request whose rating question is open for this phone, with its language.
pub async fn open_question(
    tx: &mut Tx,
    phone: &PhoneNumber,
) -> sqlx::Result<Option<(i64, Language)>> {
    let row: Option<(i64, String)> = crate::on_tx!(tx, |c| sqlx::query_as(
        "SELECT r.id, r.language FROM requests r LEFT JOIN residents p ON p.id = r.resident_id \
         WHERE r.status = 'done' AND r.rating IS NULL AND r.rating_asked_at IS NOT NULL \
         AND (r.caller_phone = $1 OR p.phone = $1) ORDER BY r.done_at DESC, r.id DESC LIMIT 1"
    )
    .bind(phone.as_str())
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|(id, l)| (id, l.parse().unwrap_or(Language::Zh))))
}

/// The rating question's state for a request: `Ok(None)` while open,
/// `Ok(Some(r))` once rated `r`, `Err(())` when there is nothing to rate.
pub async fn question_state(tx: &mut Tx, request_id: i64) -> sqlx::Result<Result<Option<u8>, ()>> {
    let row: Option<(String, Option<i64>)> = crate::on_tx!(tx, |c| sqlx::query_as(
        "SELECT status, rating FROM requests WHERE id = $1"
    )
    .bind(request_id)
    .fetch_optional(c)
    .await)?;
    Ok(match row {
        Some((_, Some(r))) => Ok(Some(r.clamp(1, 5) as u8)),
        Some((status, None)) if status == "done" => Ok(None),
        _ => Err(()),
    })
}

/// Stores a rating 1 to 5. 3 to 5 close the request; 1 or 2 reopen it for an
/// operator (`escalated`, `revisit`, the rating kept). `false` when the
/// question was no longer open (nothing changes).
pub async fn rate(
    client: &Client,
    tx: &mut Tx,
    deps: &JobDeps,
    request_id: i64,
    rating: u8,
    actor: &str,
) -> anyhow::Result<bool> {
    let now = now_ms();
    let low = rating <= 2;
    let sql = if low {
        "UPDATE requests SET rating = $2, rated_at = $3, updated_at = $3 \
         WHERE id = $1 AND status = 'done' AND rating IS NULL"
    } else {
        "UPDATE requests SET rating = $2, rated_at = $3, status = 'closed', closed_at = $3, updated_at = $3 \
         WHERE id = $1 AND status = 'done' AND rating IS NULL"
    };
    let changed = crate::on_tx!(tx, |c| sqlx::query(sql)
        .bind(request_id)
        .bind(i64::from(rating))
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if changed == 0 {
        return Ok(false);
    }
    if low {
        append_event(
            tx,
            EventInput {
                request_id: Some(request_id),
                kind: "request.updated",
                actor,
                data: json!({ "rating": rating }),
            },
        )
        .await?;
        revisit(client, tx, deps, request_id, actor).await?;
    } else {
        append_event(
            tx,
            EventInput {
                request_id: Some(request_id),
                kind: "request.status",
                actor,
                data: json!({ "status": "closed", "rating": rating }),
            },
        )
        .await?;
    }
    metrics::counter!("hotline580_ratings_total").increment(1);
    Ok(true)
}

/// A resident's words instead of a rating: kept on the request, which goes
/// back to an operator as a revisit.
pub async fn complaint(
    client: &Client,
    tx: &mut Tx,
    deps: &JobDeps,
    request_id: i64,
    words: &str,
) -> anyhow::Result<bool> {
    let changed = crate::on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE requests SET complaint = $2, updated_at = $3 WHERE id = $1 AND status = 'done' AND rating IS NULL"
    )
    .bind(request_id)
    .bind(words)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if changed == 0 {
        return Ok(false);
    }
    append_event(
        tx,
        EventInput {
            request_id: Some(request_id),
            kind: "request.updated",
            actor: "resident",
            data: json!({ "complaint": words }),
        },
    )
    .await?;
    revisit(client, tx, deps, request_id, "resident").await?;
    Ok(true)
}

async fn revisit(
    client: &Client,
    tx: &mut Tx,
    deps: &JobDeps,
    request_id: i64,
    actor: &str,
) -> anyhow::Result<()> {
    let req = load_request(tx, request_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("request {request_id} vanished"))?;
    escalate(client, tx, deps, &req, EscalationReason::Revisit, actor).await
}

/// The `rating_timeout` job: a request still waiting for its rating closes unrated.
pub async fn close_unrated(deps: &JobDeps, request_id: i64) -> anyhow::Result<()> {
    let mut tx = deps.db.begin().await?;
    let now = now_ms();
    let changed = crate::on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE requests SET status = 'closed', closed_at = $2, updated_at = $2 \
         WHERE id = $1 AND status = 'done' AND rating IS NULL"
    )
    .bind(request_id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if changed == 0 {
        tx.rollback().await?;
        return Ok(());
    }
    append_event(
        &mut tx,
        EventInput {
            request_id: Some(request_id),
            kind: "request.status",
            actor: "system",
            data: json!({ "status": "closed", "rating": null, "unrated": true }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A text from a resident whose rating question is open: the rating, or a
/// complaint. `None` when no question is open (it is a new request).
pub async fn resident_reply(
    client: &Client,
    tx: &mut Tx,
    deps: &JobDeps,
    from: &PhoneNumber,
    body: &str,
) -> anyhow::Result<Option<(i64, String)>> {
    let Some((request_id, lang)) = open_question(tx, from).await? else {
        return Ok(None);
    };
    Ok(Some((
        request_id,
        match crate::dispatch::commands::parse_rating(body) {
            Some(r) => {
                rate(client, tx, deps, request_id, r, "resident").await?;
                messages::rating_thanks(lang, r)
            }
            None => {
                complaint(client, tx, deps, request_id, body.trim()).await?;
                messages::complaint_received(lang)
            }
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_lines_and_residents_who_prefer_calls_are_called() {
        let mobile = PhoneNumber::parse("13800138000", "CN").unwrap();
        let landline = PhoneNumber::parse("023 6311 1111", "CN").unwrap();
        assert!(!by_call(None, &mobile));
        assert!(by_call(None, &landline));
        assert!(by_call(Some("call"), &mobile));
        assert!(!by_call(Some("sms"), &landline));
    }
}

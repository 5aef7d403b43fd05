//! The outbox: every SMS and call is a row written in the transaction of the
//! change that causes it, with a River job that sends it. The sender records
//! the provider's id and the delivery status; a row whose send was under way
//! at a crash is marked `maybe_duplicate` when it is sent again, so duplicates
//! are counted, not hidden.

use crate::domain::PhoneNumber;
use crate::jobs::{JobDeps, SendOutbox};
use crate::store::{DbResult, EventInput, Tx, append_event, now_ms};
use crate::telephony::SendError;
use riverqueue::{Client, InsertOpts};
use serde_json::json;

/// After this many attempts a retryable failure is given up as failed.
const MAX_ATTEMPTS: i64 = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sms,
    Call,
}

/// A message to send: written now, delivered by a job.
pub struct Outgoing<'a> {
    pub kind: Kind,
    pub to: &'a PhoneNumber,
    pub body: &'a str,
    pub request_id: Option<i64>,
    pub offer_id: Option<i64>,
}

impl<'a> Outgoing<'a> {
    /// An SMS that answers no particular offer (most of them).
    pub fn sms(to: &'a PhoneNumber, body: &'a str, request_id: Option<i64>) -> Self {
        Outgoing {
            kind: Kind::Sms,
            to,
            body,
            request_id,
            offer_id: None,
        }
    }
}

/// Writes an outbox row and its send job inside `tx`.
pub async fn queue(
    client: &Client,
    tx: &mut Tx,
    from: &PhoneNumber,
    msg: Outgoing<'_>,
) -> anyhow::Result<i64> {
    let now = now_ms();
    let kind = match msg.kind {
        Kind::Sms => "sms",
        Kind::Call => "call",
    };
    let id: i64 = crate::on_tx!(tx, |c| {
        sqlx::query_scalar(
            "INSERT INTO outbox (kind, to_phone, from_phone, body, request_id, offer_id, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7) RETURNING id",
        )
        .bind(kind)
        .bind(msg.to.as_str())
        .bind(from.as_str())
        .bind(msg.body)
        .bind(msg.request_id)
        .bind(msg.offer_id)
        .bind(now)
        .fetch_one(c)
        .await
    })?;
    crate::jobs::enqueue(
        client,
        tx,
        SendOutbox { outbox_id: id },
        InsertOpts::default().with_max_attempts(MAX_ATTEMPTS as i32 + 2),
    )
    .await?;
    Ok(id)
}

#[derive(sqlx::FromRow)]
struct Row {
    kind: String,
    to_phone: String,
    from_phone: String,
    body: String,
    request_id: Option<i64>,
    offer_id: Option<i64>,
    status: String,
    attempts: i64,
    updated_at: i64,
}

/// The send worker. An `Err` asks River to retry later.
pub async fn send(deps: &JobDeps, outbox_id: i64, _attempt: i32) -> anyhow::Result<()> {
    let db = &deps.db;
    // Claim the row: queued → sending. A row found already `sending` was being
    // sent when an instance died: it may have gone out, so say so.
    let mut tx = db.begin().await?;
    let row: Option<Row> = crate::on_tx!(&mut tx, |c| {
        sqlx::query_as::<_, Row>(
            "SELECT kind, to_phone, from_phone, body, request_id, offer_id, status, attempts, updated_at FROM outbox WHERE id = $1",
        )
        .bind(outbox_id)
        .fetch_optional(c)
        .await
    })?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(());
    };
    if !matches!(row.status.as_str(), "queued" | "sending") {
        tx.rollback().await?;
        return Ok(()); // sent or failed already: a retried job does nothing
    }
    let in_doubt = row.status == "sending";
    let to = PhoneNumber::from_e164(&row.to_phone)?;
    let from = PhoneNumber::from_e164(&row.from_phone)?;
    // A send cut off by a crash may have reached the provider: ask it first
    // (no lock is held; the job's claim keeps other instances off this row).
    // The claim was at `updated_at`; a minute's slack covers clock skew.
    let mut already: Option<String> = None;
    if in_doubt && row.kind == "sms" {
        tx.rollback().await?;
        match deps
            .provider
            .find_sms(&to, &from, &row.body, row.updated_at - 60_000)
            .await
        {
            Ok(found) => already = found.map(|m| m.sid),
            Err(e) => {
                tracing::warn!(outbox_id, error = %e, "cannot ask the provider whether an interrupted send went out")
            }
        }
        tx = db.begin().await?;
    }
    if let Some(sid) = already {
        crate::on_tx!(&mut tx, |c| {
            sqlx::query("UPDATE outbox SET status = 'sent', provider_sid = $2, last_error = NULL, updated_at = $3 WHERE id = $1 AND status = 'sending'")
                .bind(outbox_id)
                .bind(&sid)
                .bind(now_ms())
                .execute(c).await.map(|r| r.rows_affected())
        })?;
        tx.commit().await?;
        metrics::counter!("hotline580_outbox_duplicate_avoided_total").increment(1);
        tracing::info!(
            outbox_id,
            "an interrupted send had gone out; recorded, not sent again"
        );
        return Ok(());
    }
    let maybe_dup = in_doubt;
    crate::on_tx!(&mut tx, |c| {
        sqlx::query(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, \
             maybe_duplicate = (maybe_duplicate OR $2), updated_at = $3 WHERE id = $1",
        )
        .bind(outbox_id)
        .bind(maybe_dup)
        .bind(now_ms())
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    if maybe_dup {
        metrics::counter!("hotline580_outbox_maybe_duplicate_total").increment(1);
    }

    // No lock or transaction is held during the network call.
    let callback = format!(
        "{}/twilio/status",
        deps.config.settings.server.public_url.trim_end_matches('/')
    );
    let result = match row.kind.as_str() {
        "call" => {
            deps.provider
                .place_call(&to, &from, &row.body, &callback)
                .await
        }
        _ => {
            deps.provider
                .send_sms(&to, &from, &row.body, &callback)
                .await
        }
    };
    match result {
        Ok(sent) => {
            let mut tx = db.begin().await?;
            crate::on_tx!(&mut tx, |c| {
                sqlx::query("UPDATE outbox SET status = 'sent', provider_sid = $2, last_error = NULL, updated_at = $3 WHERE id = $1")
                    .bind(outbox_id)
                    .bind(&sent.sid)
                    .bind(now_ms())
                    .execute(c).await.map(|r| r.rows_affected())
            })?;
            tx.commit().await?;
            metrics::counter!("hotline580_outbox_sent_total").increment(1);
            Ok(())
        }
        Err(SendError::Retryable { message, .. }) if row.attempts + 1 < MAX_ATTEMPTS => {
            let mut tx = db.begin().await?;
            crate::on_tx!(&mut tx, |c| {
                sqlx::query("UPDATE outbox SET status = 'queued', last_error = $2, updated_at = $3 WHERE id = $1")
                    .bind(outbox_id)
                    .bind(&message)
                    .bind(now_ms())
                    .execute(c).await.map(|r| r.rows_affected())
            })?;
            tx.commit().await?;
            tracing::warn!(outbox_id, to = %to.masked(), error = %message, "send failed; will retry");
            Err(anyhow::anyhow!("provider: {message}"))
        }
        Err(e) => {
            let message = e.message().to_string();
            tracing::warn!(outbox_id, to = %to.masked(), error = %message, "send failed for good");
            mark_failed(deps, outbox_id, row.request_id, row.offer_id, &message).await
        }
    }
}

/// A message that will not arrive: shown on the timeline; an offer that cannot
/// reach its volunteer counts as a decline at once.
pub async fn mark_failed(
    deps: &JobDeps,
    outbox_id: i64,
    request_id: Option<i64>,
    offer_id: Option<i64>,
    message: &str,
) -> anyhow::Result<()> {
    let mut tx = deps.db.begin().await?;
    let changed = crate::on_tx!(&mut tx, |c| {
        sqlx::query("UPDATE outbox SET status = 'failed', last_error = $2, updated_at = $3 WHERE id = $1 AND status <> 'failed'")
            .bind(outbox_id)
            .bind(message)
            .bind(now_ms())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    })?;
    if changed == 0 {
        tx.rollback().await?;
        return Ok(());
    }
    append_event(
        &mut tx,
        EventInput {
            request_id,
            kind: "message.failed",
            actor: "system",
            data: json!({ "outbox_id": outbox_id, "offer_id": offer_id, "error": message }),
        },
    )
    .await?;
    tx.commit().await?;
    metrics::counter!("hotline580_outbox_failed_total").increment(1);
    if let Some(offer_id) = offer_id {
        crate::dispatch::offer_undeliverable(deps, offer_id).await?;
    }
    Ok(())
}

/// `/twilio/status` for an outbound message or call: records delivery.
pub async fn record_status(
    deps: &JobDeps,
    sid: &str,
    status: &str,
    error: Option<&str>,
) -> DbResult<()> {
    let row: Option<(i64, Option<i64>, Option<i64>)> = crate::on_db!(&deps.db, |c| {
        sqlx::query_as("SELECT id, request_id, offer_id FROM outbox WHERE provider_sid = $1")
            .bind(sid)
            .fetch_optional(c)
            .await
    })?;
    let Some((id, request_id, offer_id)) = row else {
        return Ok(());
    };
    match status {
        "delivered" | "sent" | "completed" | "answered" => {
            crate::on_db!(&deps.db, |c| {
                sqlx::query("UPDATE outbox SET status = 'delivered', updated_at = $2 WHERE id = $1 AND status IN ('sent', 'sending')")
                    .bind(id)
                    .bind(now_ms())
                    .execute(c)
                    .await
                    .map(|_| ())
            })?;
        }
        "failed" | "undelivered" | "busy" | "no-answer" | "canceled" => {
            let msg = format!(
                "the provider reports `{status}`{}",
                error.map(|e| format!(" (error {e})")).unwrap_or_default()
            );
            if let Err(e) = mark_failed(deps, id, request_id, offer_id, &msg).await {
                tracing::error!(error = %format!("{e:#}"), "recording a failed delivery");
            }
        }
        _ => {}
    }
    Ok(())
}

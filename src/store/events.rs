//! The append-only `events` log. Every state change calls `append_event` in
//! the same transaction as the change; the timeline, the live stream and the
//! statistics read from it.

use super::{DbResult, Tx, now_ms};
use serde_json::Value;

/// One thing that happened.
#[derive(Debug, Clone)]
pub struct EventInput<'a> {
    pub request_id: Option<i64>,
    pub kind: &'a str,
    pub actor: &'a str,
    pub data: Value,
}

/// Appends an event inside `tx` and returns its id. On PostgreSQL the
/// transaction's commit sends `NOTIFY hotline580_events` with its newest event,
/// which tells every instance's live stream (only committed events are announced).
pub async fn append_event(tx: &mut Tx, ev: EventInput<'_>) -> DbResult<i64> {
    let data = ev.data.to_string();
    let at = now_ms();
    let id: i64 = crate::on_tx!(tx, |c| {
        sqlx::query_scalar("INSERT INTO events (request_id, type, at, actor, data) VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(ev.request_id)
            .bind(ev.kind)
            .bind(at)
            .bind(ev.actor)
            .bind(&data)
            .fetch_one(c)
            .await
    })?;
    tx.wrote_event(id);
    Ok(id)
}

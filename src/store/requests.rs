//! Reading requests for the operators: the list, one request, its offers and
//! its timeline. Changes to requests live with the code that makes them.

use super::{Db, DbResult};

/// A request with its resident (when known), as the API shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestRow {
    pub id: i64,
    pub status: String,
    pub category: Option<String>,
    pub grade: Option<String>,
    pub channel: String,
    pub description: Option<String>,
    pub recording_url: Option<String>,
    pub resident_id: Option<i64>,
    pub resident_name: Option<String>,
    pub resident_phone: Option<String>,
    pub resident_address: Option<String>,
    pub caller_phone: Option<String>,
    pub volunteer_id: Option<i64>,
    pub rating: Option<i64>,
    pub escalation_reason: Option<String>,
    /// Where help is needed: the address given in the call, else the resident's.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! select_requests {
    () => {
        "SELECT r.id, r.status, r.category, r.grade, r.channel, r.description, r.recording_url, \
     r.resident_id, p.name AS resident_name, p.phone AS resident_phone, p.address AS resident_address, \
     r.caller_phone, r.volunteer_id, r.rating, r.escalation_reason, \
     COALESCE(r.lat, p.lat) AS lat, COALESCE(r.lon, p.lon) AS lon, r.created_at, r.updated_at \
     FROM requests r LEFT JOIN residents p ON p.id = r.resident_id"
    };
}

/// Requests newest first (ids grow with creation), of one status or all, at most `limit`.
pub async fn list_requests(db: &Db, status: Option<&str>, limit: i64) -> DbResult<Vec<RequestRow>> {
    crate::on_db!(db, |c| {
        sqlx::query_as::<_, RequestRow>(concat!(
            select_requests!(),
            " WHERE ($1 IS NULL OR r.status = $1) ORDER BY r.id DESC LIMIT $2"
        ))
        .bind(status)
        .bind(limit)
        .fetch_all(c)
        .await
    })
}

pub async fn find_request(db: &Db, id: i64) -> DbResult<Option<RequestRow>> {
    crate::on_db!(db, |c| {
        sqlx::query_as::<_, RequestRow>(concat!(select_requests!(), " WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(c)
            .await
    })
}

/// An offer of a request to a volunteer, with the volunteer's name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OfferRow {
    pub code: String,
    pub volunteer_id: i64,
    pub volunteer_name: String,
    pub wave: i64,
    pub status: String,
    pub sent_at: i64,
    pub answered_at: Option<i64>,
}

/// A request's offers, oldest first.
pub async fn request_offers(db: &Db, request_id: i64) -> DbResult<Vec<OfferRow>> {
    crate::on_db!(db, |c| {
        sqlx::query_as::<_, OfferRow>(
            "SELECT o.code, o.volunteer_id, v.name AS volunteer_name, o.wave, o.status, o.sent_at, o.answered_at \
             FROM offers o JOIN volunteers v ON v.id = o.volunteer_id \
             WHERE o.request_id = $1 ORDER BY o.sent_at, o.id",
        )
        .bind(request_id)
        .fetch_all(c)
        .await
    })
}

/// One row of a request's timeline; `data` is the stored JSON text.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub at: i64,
    pub actor: String,
    pub data: String,
}

/// A request's events, oldest first.
pub async fn request_events(db: &Db, request_id: i64) -> DbResult<Vec<EventRow>> {
    crate::on_db!(db, |c| {
        sqlx::query_as::<_, EventRow>(
            "SELECT id, type, at, actor, data FROM events WHERE request_id = $1 ORDER BY id",
        )
        .bind(request_id)
        .fetch_all(c)
        .await
    })
}

/// What Open311 may show of a request: no name, number, address or words.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PublicRequestRow {
    pub id: i64,
    pub status: String,
    pub category: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub grid: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Filters of the public list; `None` is no filter.
#[derive(Debug, Clone, Default)]
pub struct PublicFilter<'a> {
    pub id: Option<i64>,
    pub category: Option<&'a str>,
    /// Only open (`Some(true)`) or only closed (`Some(false)`) requests.
    pub open: Option<bool>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: i64,
}

/// Classified requests for Open311, newest first. `done`, `closed` and
/// `cancelled` are closed; every other status is open.
pub async fn public_requests(db: &Db, f: &PublicFilter<'_>) -> DbResult<Vec<PublicRequestRow>> {
    crate::on_db!(db, |c| {
        sqlx::query_as::<_, PublicRequestRow>(
            "SELECT r.id, r.status, r.category, COALESCE(r.lat, p.lat) AS lat, COALESCE(r.lon, p.lon) AS lon, \
             p.grid, r.created_at, r.updated_at \
             FROM requests r LEFT JOIN residents p ON p.id = r.resident_id \
             WHERE r.category IS NOT NULL AND ($1 IS NULL OR r.id = $1) AND ($2 IS NULL OR r.category = $2) \
             AND ($3 IS NULL OR ($3 = (r.status NOT IN ('done', 'closed', 'cancelled')))) \
             AND ($4 IS NULL OR r.created_at >= $4) AND ($5 IS NULL OR r.created_at < $5) \
             ORDER BY r.id DESC LIMIT $6",
        )
        .bind(f.id)
        .bind(f.category)
        .bind(f.open)
        .bind(f.from_ms)
        .bind(f.to_ms)
        .bind(f.limit)
        .fetch_all(c)
        .await
    })
}

/// A message or call sent about a request (the outbox), for its timeline.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SentRow {
    pub kind: String,
    pub to_phone: String,
    pub body: String,
    pub status: String,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// What was sent about a request, and the SMS received about it (kind and
/// status `received`, the sender in `to_phone`), oldest first.
pub async fn request_outbox(db: &Db, request_id: i64) -> DbResult<Vec<SentRow>> {
    crate::on_db!(db, |c| {
        sqlx::query_as::<_, SentRow>(
            "SELECT kind, to_phone, body, status, last_error, created_at FROM ( \
               SELECT kind, to_phone, body, status, last_error, created_at, 1 AS side, id AS seq FROM outbox WHERE request_id = $1 \
               UNION ALL \
               SELECT 'received', from_phone, body, 'received', NULL, received_at, 0, 0 FROM messages WHERE request_id = $1 \
             ) m ORDER BY created_at, side, seq",
        )
        .bind(request_id)
        .fetch_all(c)
        .await
    })
}

/// Volunteers' quiet hours by id (`None`: the default), for the console.
pub async fn volunteer_quiet_hours(db: &Db) -> DbResult<Vec<(i64, Option<String>)>> {
    crate::on_db!(db, |c| {
        sqlx::query_as::<_, (i64, Option<String>)>("SELECT id, quiet_hours FROM volunteers")
            .fetch_all(c)
            .await
    })
}

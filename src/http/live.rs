//! `GET /api/events`: the `events` table as server-sent events, live.
//!
//! One watcher per process learns the newest event id: on PostgreSQL from
//! `LISTEN hotline580_events` (`append_event` notifies at commit, so every
//! instance hears every instance's events), on SQLite by polling the table
//! every `POLL` (a second process on the same file is seen too). It runs only
//! while someone is listening. Each client reads the rows after its last id,
//! so `Last-Event-ID` resumes a dropped connection without a gap.

use super::session::CurrentOperator;
use super::{AppError, AppResult};
use crate::app::AppState;
use crate::store::{Db, DbResult, ms_to_rfc3339};
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::Stream;
use serde_json::json;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower_sessions::Session;

/// How often SQLite is asked for new events.
const POLL: Duration = Duration::from_millis(250);
/// On PostgreSQL, a poll this often as well, in case a notification was missed
/// while the listener reconnected.
const PG_FALLBACK_POLL: Duration = Duration::from_secs(5);
/// How often a stream checks that the session behind it still exists: a
/// logout (or an expired login) ends the stream within this time.
const SESSION_CHECK: Duration = Duration::from_secs(3);
/// Rows read per query by one client.
const BATCH: i64 = 200;

/// The process's watcher of new events, shared by every client.
#[derive(Clone)]
pub struct LiveEvents {
    db: Db,
    stop: CancellationToken,
    sender: Arc<Mutex<Option<watch::Sender<i64>>>>,
}

impl LiveEvents {
    pub fn new(db: Db, stop: CancellationToken) -> Self {
        LiveEvents {
            db,
            stop,
            sender: Arc::new(Mutex::new(None)),
        }
    }

    /// A receiver of the newest event id; starts the watcher when it is idle.
    fn subscribe(&self) -> watch::Receiver<i64> {
        let mut slot = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slot.as_ref() {
            return s.subscribe();
        }
        let (tx, rx) = watch::channel(0);
        *slot = Some(tx.clone());
        let me = self.clone();
        tokio::spawn(async move { me.watch(tx).await });
        rx
    }

    /// Ends the watcher when nobody listens any more; true when it should stop.
    fn nobody_listens(&self, tx: &watch::Sender<i64>) -> bool {
        let mut slot = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        if tx.receiver_count() == 0 || self.stop.is_cancelled() {
            *slot = None;
            return true;
        }
        false
    }

    async fn watch(self, tx: watch::Sender<i64>) {
        let mut listener = None;
        if let Db::Postgres(pool) = &self.db {
            listener = connect_listener(pool).await;
        }
        loop {
            if self.nobody_listens(&tx) {
                return;
            }
            let wait = match (&self.db, listener.as_mut()) {
                (Db::Postgres(_), Some(l)) => {
                    tokio::select! {
                        n = l.recv() => match n {
                            Ok(n) => {
                                if let Ok(id) = n.payload().parse::<i64>() {
                                    tx.send_if_modified(|v| if id > *v { *v = id; true } else { false });
                                }
                                continue;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "listening for events; reconnecting");
                                listener = None;
                                POLL
                            }
                        },
                        _ = tokio::time::sleep(PG_FALLBACK_POLL) => Duration::ZERO,
                        _ = self.stop.cancelled() => return,
                    }
                }
                (Db::Postgres(pool), None) => {
                    listener = connect_listener(pool).await;
                    POLL
                }
                (Db::Sqlite(_), _) => POLL,
            };
            match max_event_id(&self.db).await {
                Ok(id) => {
                    tx.send_if_modified(|v| {
                        if id > *v {
                            *v = id;
                            true
                        } else {
                            false
                        }
                    });
                }
                Err(e) if self.db_closed(&e) => return,
                Err(e) => tracing::warn!(error = %e, "reading the newest event"),
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.stop.cancelled() => {}
            }
        }
    }

    fn db_closed(&self, e: &sqlx::Error) -> bool {
        if matches!(e, sqlx::Error::PoolClosed) {
            let mut slot = self.sender.lock().unwrap_or_else(|p| p.into_inner());
            *slot = None;
            return true;
        }
        false
    }
}

async fn connect_listener(pool: &sqlx::PgPool) -> Option<sqlx::postgres::PgListener> {
    let mut l = sqlx::postgres::PgListener::connect_with(pool).await.ok()?;
    l.listen("hotline580_events").await.ok()?;
    Some(l)
}

async fn max_event_id(db: &Db) -> DbResult<i64> {
    crate::on_db!(db, |c| sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(MAX(id), 0) FROM events"
    )
    .fetch_one(c)
    .await)
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct LiveRow {
    id: i64,
    request_id: Option<i64>,
    #[sqlx(rename = "type")]
    kind: String,
    at: i64,
}

async fn events_after(db: &Db, after: i64) -> DbResult<Vec<LiveRow>> {
    crate::on_db!(db, |c| sqlx::query_as::<_, LiveRow>(
        "SELECT id, request_id, type, at FROM events WHERE id > $1 ORDER BY id LIMIT $2"
    )
    .bind(after)
    .bind(BATCH)
    .fetch_all(c)
    .await)
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/events", get(events))
}

struct Client {
    db: Db,
    last: i64,
    rx: watch::Receiver<i64>,
    queue: VecDeque<LiveRow>,
    stop: CancellationToken,
    /// The session the stream was opened with, checked every `SESSION_CHECK`.
    session_id: String,
    check: tokio::time::Interval,
}

fn to_event(r: &LiveRow) -> Event {
    Event::default().id(r.id.to_string()).data(
        json!({ "type": r.kind, "request_id": r.request_id, "at": ms_to_rfc3339(r.at) })
            .to_string(),
    )
}

/// The next event for one client, waiting for one when there is none.
async fn next(mut c: Client) -> Option<(Result<Event, Infallible>, Client)> {
    loop {
        if let Some(r) = c.queue.pop_front() {
            let ev = to_event(&r);
            return Some((Ok(ev), c));
        }
        match events_after(&c.db, c.last).await {
            Ok(rows) if !rows.is_empty() => {
                c.last = rows.last().map(|r| r.id).unwrap_or(c.last);
                c.queue.extend(rows);
                continue;
            }
            Ok(_) => {}
            // The browser reconnects with Last-Event-ID and resumes.
            Err(_) => return None,
        }
        tokio::select! {
            r = c.rx.changed() => if r.is_err() { return None },
            _ = c.stop.cancelled() => return None,
            _ = c.check.tick() => match super::session::is_live(&c.db, &c.session_id).await {
                Ok(true) => {}
                // Logged out: the stream ends; a reconnect gets 401.
                Ok(false) => return None,
                Err(_) => return None,
            },
        }
    }
}

/// Server-sent events: each has `id:` (the events row's id) and `data:`
/// `{"type", "request_id", "at"}`. Without `Last-Event-ID` the stream starts
/// with the next event.
#[utoipa::path(get, path = "/api/events",
    params(("Last-Event-ID" = Option<i64>, Header, description = "resume after this event id")),
    responses((status = 200, content_type = "text/event-stream", description = "a live stream of events")))]
pub async fn events(
    _op: CurrentOperator,
    session: Session,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // A logged-in request always carries its session's id.
    let session_id = session
        .id()
        .ok_or_else(|| AppError::unauthorized("log in first"))?
        .to_string();
    let mut check = tokio::time::interval(SESSION_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is at once; the session was just read.
    check.reset();
    // Subscribe before reading, so an event committed in between still wakes us.
    let rx = state.live.subscribe();
    let last = match headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
    {
        Some(id) => id,
        None => max_event_id(&state.db).await?,
    };
    let client = Client {
        db: state.db.clone(),
        last,
        rx,
        queue: VecDeque::new(),
        stop: state.shutdown.clone(),
        session_id,
        check,
    };
    Ok(Sse::new(futures::stream::unfold(client, next)).keep_alive(KeepAlive::default()))
}

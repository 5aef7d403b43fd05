//! Group commit for new calls. A storm brings many first webhooks at once, and
//! each was its own write transaction (nine statements and a commit): writers
//! queued for SQLite's one write lock or for PostgreSQL's fsync one by one.
//! Here a writer task takes every new call waiting, writes them all with a few
//! statements in one transaction, and answers each webhook only after the
//! commit, so nothing a caller was told is ever lost.

use super::{Db, DbResult, Tx, now_ms};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Mutex, mpsc, oneshot};

/// The first webhook of a call, ready to store: the greeting already rendered.
#[derive(Debug, Clone)]
pub struct NewCall {
    pub call_sid: String,
    /// `From` as Twilio sent it (`calls.from_phone`).
    pub from: String,
    /// The caller's number in E.164 when it parsed, else as sent (`requests.caller_phone`).
    pub caller_phone: Option<String>,
    pub resident_id: Option<i64>,
    pub language: String,
    /// The IVR state after the greeting, as JSON.
    pub state: String,
    /// The step key a retried next step is answered from (the state's `seq`).
    pub seq: String,
    pub twiml: String,
}

/// What became of a new call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Its request was created.
    New { request_id: i64 },
    /// Twilio retried a call we already answered: the answer it got then.
    Retried { twiml: String },
}

/// Calls at most in one transaction: a bound on the statement's size, not a wait.
const MAX_BATCH: usize = 128;

/// The handle webhooks use; cheap to clone.
#[derive(Clone)]
pub struct CallIntake {
    queue: mpsc::Sender<Pending>,
    /// The most calls written in one transaction so far (also the metric
    /// `hotline580_new_call_batch_size`): shows whether calls are grouped.
    largest_batch: Arc<AtomicUsize>,
}

struct Pending {
    call: NewCall,
    reply: oneshot::Sender<anyhow::Result<Recorded>>,
}

impl CallIntake {
    /// Starts the writer tasks; they end when the last handle is dropped.
    pub fn start(db: Db) -> CallIntake {
        let (queue, rx) = mpsc::channel(4 * MAX_BATCH);
        let rx = Arc::new(Mutex::new(rx));
        // SQLite writes one transaction at a time anyway; on PostgreSQL a second
        // writer builds its batch while the first waits for its commit's fsync.
        let writers = if db.is_postgres() { 2 } else { 1 };
        let largest_batch = Arc::new(AtomicUsize::new(0));
        for _ in 0..writers {
            tokio::spawn(writer(db.clone(), rx.clone(), largest_batch.clone()));
        }
        CallIntake {
            queue,
            largest_batch,
        }
    }

    /// The most calls one transaction has held since the start.
    pub fn largest_batch(&self) -> usize {
        self.largest_batch.load(Ordering::Relaxed)
    }

    /// Stores a new call with the calls arriving beside it; returns after the commit.
    pub async fn record(&self, call: NewCall) -> anyhow::Result<Recorded> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { call, reply })
            .await
            .map_err(|_| anyhow::anyhow!("the call intake has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the call intake stopped before answering"))?
    }
}

/// Takes whatever is waiting (at least one call) and writes it as one batch.
async fn writer(db: Db, rx: Arc<Mutex<mpsc::Receiver<Pending>>>, largest: Arc<AtomicUsize>) {
    loop {
        let batch = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            batch
        };
        largest.fetch_max(batch.len(), Ordering::Relaxed);
        metrics::histogram!("hotline580_new_call_batch_size").record(batch.len() as f64);
        write_batch(&db, batch).await;
    }
}

/// Answers each waiting webhook with what became of its call.
async fn write_batch(db: &Db, batch: Vec<Pending>) {
    let calls: Vec<&NewCall> = batch.iter().map(|p| &p.call).collect();
    let results = write_together(db, &calls).await;
    for (p, r) in batch.into_iter().zip(results) {
        let _ = p.reply.send(r);
    }
}

/// Writes `calls` in one transaction; when that fails, each call alone, so one
/// bad call cannot take the others down with it. Results are in `calls`' order.
pub async fn write_together(db: &Db, calls: &[&NewCall]) -> Vec<anyhow::Result<Recorded>> {
    match write_alone(db, calls).await {
        Ok(results) => results.into_iter().map(Ok).collect(),
        Err(e) if calls.len() == 1 => vec![Err(e)],
        Err(e) => {
            tracing::warn!(calls = calls.len(), error = %format!("{e:#}"), "a batch of new calls failed; writing each alone");
            let mut results = Vec::with_capacity(calls.len());
            for call in calls {
                results.push(write_alone(db, &[*call]).await.map(|mut v| v.remove(0)));
            }
            results
        }
    }
}

/// One transaction for `calls`.
async fn write_alone(db: &Db, calls: &[&NewCall]) -> anyhow::Result<Vec<Recorded>> {
    let mut tx = db.begin().await?;
    let results = insert_new_calls(&mut tx, calls).await?;
    tx.commit().await?;
    Ok(results)
}

/// Stores new calls inside `tx`: for each, its request (`new`), the request's
/// `request.created` event, the call and its greeting (for Twilio's retries).
/// A `CallSid` stored before, or earlier in `calls`, is a retry: it gets the
/// stored answer and creates nothing. Results are in the order of `calls`.
pub async fn insert_new_calls(tx: &mut Tx, calls: &[&NewCall]) -> DbResult<Vec<Recorded>> {
    let sids: Vec<&str> = calls.iter().map(|c| c.call_sid.as_str()).collect();
    let mut answered: HashMap<String, String> = stored_greetings(tx, &sids).await?;
    let mut results: Vec<Option<Recorded>> = vec![None; calls.len()];
    let mut fresh: Vec<usize> = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        match answered.get(&c.call_sid) {
            Some(twiml) => {
                results[i] = Some(Recorded::Retried {
                    twiml: twiml.clone(),
                })
            }
            None => {
                answered.insert(c.call_sid.clone(), c.twiml.clone());
                fresh.push(i);
            }
        }
    }
    if !fresh.is_empty() {
        let ids = request_ids(tx, fresh.len()).await?;
        let now = now_ms();
        let rows: Vec<serde_json::Value> = fresh
            .iter()
            .zip(&ids)
            .map(|(&i, &id)| {
                let c = calls[i];
                json!({
                    "id": id,
                    "call_sid": c.call_sid,
                    "from": c.from,
                    "caller_phone": c.caller_phone,
                    "resident_id": c.resident_id,
                    "language": c.language,
                    "state": c.state,
                    "seq": c.seq,
                    "twiml": c.twiml,
                    "at": now,
                    "event": json!({ "channel": "voice", "call_sid": c.call_sid }).to_string(),
                })
            })
            .collect();
        insert_rows(tx, &serde_json::Value::Array(rows).to_string()).await?;
        for (&i, &id) in fresh.iter().zip(&ids) {
            results[i] = Some(Recorded::New { request_id: id });
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every call has a result"))
        .collect())
}

/// The greetings already stored for these calls (Twilio retried them).
async fn stored_greetings(tx: &mut Tx, sids: &[&str]) -> DbResult<HashMap<String, String>> {
    let rows: Vec<(String, String)> = match tx {
        Tx::Sqlite(t) => {
            sqlx::query_as(
                "SELECT call_sid, twiml FROM call_steps WHERE step = 'start' \
                 AND call_sid IN (SELECT value FROM json_each($1))",
            )
            .bind(serde_json::to_string(sids).unwrap_or_default())
            .fetch_all(&mut **t)
            .await?
        }
        Tx::Postgres(t) => sqlx::query_as(
            "SELECT call_sid, twiml FROM call_steps WHERE step = 'start' AND call_sid = ANY($1)",
        )
        .bind(sids)
        .fetch_all(&mut **t)
        .await?,
    };
    Ok(rows.into_iter().collect())
}

/// `n` new request ids. On SQLite the transaction holds the database's only
/// write lock, so the next ids are ours (what SQLite itself would pick); on
/// PostgreSQL they come from the column's sequence.
async fn request_ids(tx: &mut Tx, n: usize) -> DbResult<Vec<i64>> {
    match tx {
        Tx::Sqlite(t) => {
            let max: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM requests")
                .fetch_one(&mut **t)
                .await?;
            Ok((1..=n as i64).map(|k| max + k).collect())
        }
        Tx::Postgres(t) => sqlx::query_scalar(
            "SELECT nextval(pg_get_serial_sequence('requests', 'id')) FROM generate_series(1, $1)",
        )
        .bind(n as i64)
        .fetch_all(&mut **t)
        .await,
    }
}

/// The requests, their events, the calls and their greetings, from one JSON array.
async fn insert_rows(tx: &mut Tx, rows: &str) -> DbResult<()> {
    let newest_event: Option<i64> = match tx {
        Tx::Sqlite(t) => {
            let c = &mut **t;
            sqlx::query(
                "INSERT INTO requests (id, status, channel, language, resident_id, caller_phone, created_at, updated_at) \
                 SELECT value->>'id', 'new', 'voice', value->>'language', value->>'resident_id', \
                 value->>'caller_phone', value->>'at', value->>'at' FROM json_each($1)",
            )
            .bind(rows)
            .execute(&mut *c)
            .await?;
            sqlx::query(
                "INSERT INTO events (request_id, type, at, actor, data) \
                 SELECT value->>'id', 'request.created', value->>'at', 'resident', value->>'event' FROM json_each($1)",
            )
            .bind(rows)
            .execute(&mut *c)
            .await?;
            sqlx::query(
                "INSERT INTO calls (call_sid, request_id, from_phone, state, created_at, updated_at) \
                 SELECT value->>'call_sid', value->>'id', value->>'from', value->>'state', value->>'at', value->>'at' \
                 FROM json_each($1)",
            )
            .bind(rows)
            .execute(&mut *c)
            .await?;
            sqlx::query(
                "INSERT INTO call_steps (call_sid, step, twiml, created_at) \
                 SELECT value->>'call_sid', 'start', value->>'twiml', value->>'at' FROM json_each($1) \
                 UNION ALL \
                 SELECT value->>'call_sid', value->>'seq', value->>'twiml', value->>'at' FROM json_each($1) WHERE true \
                 ON CONFLICT DO NOTHING",
            )
            .bind(rows)
            .execute(&mut *c)
            .await?;
            None // announced on PostgreSQL only
        }
        Tx::Postgres(t) => {
            // One statement: PostgreSQL checks the foreign keys at its end.
            sqlx::query_scalar(
                "WITH x AS (SELECT * FROM json_to_recordset($1::json) AS x(id bigint, call_sid text, \"from\" text, \
                 caller_phone text, resident_id bigint, language text, state text, seq text, twiml text, at bigint, event text)), \
                 r AS (INSERT INTO requests (id, status, channel, language, resident_id, caller_phone, created_at, updated_at) \
                       SELECT id, 'new', 'voice', language, resident_id, caller_phone, at, at FROM x), \
                 c AS (INSERT INTO calls (call_sid, request_id, from_phone, state, created_at, updated_at) \
                       SELECT call_sid, id, \"from\", state, at, at FROM x), \
                 s AS (INSERT INTO call_steps (call_sid, step, twiml, created_at) \
                       SELECT call_sid, 'start', twiml, at FROM x UNION ALL SELECT call_sid, seq, twiml, at FROM x \
                       ON CONFLICT DO NOTHING), \
                 e AS (INSERT INTO events (request_id, type, at, actor, data) \
                       SELECT id, 'request.created', at, 'resident', event FROM x RETURNING id) \
                 SELECT max(id) FROM e",
            )
            .bind(rows)
            .fetch_one(&mut **t)
            .await?
        }
    };
    if let Some(id) = newest_event {
        tx.wrote_event(id);
    }
    Ok(())
}

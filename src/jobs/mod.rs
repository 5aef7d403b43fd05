//! The River client's setup and its workers. Everything that must happen
//! later (a send, an offer's expiry, the next wave) is a River job inserted in
//! the transaction of the change that causes it, so a restart resumes it.

use crate::config::Config;
use crate::store::{Db, Tx};
use crate::telephony::Provider;
use riverqueue::{Client, InsertOpts, JobArgs, QueueConfig, WorkContext, WorkOutcome, Workers};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// What workers need; shared by every worker closure.
#[derive(Clone)]
pub struct JobDeps {
    pub db: Db,
    pub config: Arc<Config>,
    pub provider: Arc<dyn Provider>,
    /// The running client, for work started outside a job (a failed-delivery callback).
    pub jobs: Arc<std::sync::OnceLock<Client>>,
}

/// Deliver one `outbox` row through the provider.
#[derive(Clone, Debug, Deserialize, Serialize, JobArgs)]
#[river(kind = "send_outbox")]
pub struct SendOutbox {
    pub outbox_id: i64,
}

/// Offer a request to the next wave of volunteers.
#[derive(Clone, Debug, Deserialize, Serialize, JobArgs)]
#[river(kind = "dispatch_wave")]
pub struct DispatchWave {
    pub request_id: i64,
    /// The wave this job starts; a stale job (the request moved on) does nothing.
    pub wave: i64,
}

/// An offer's deadline.
#[derive(Clone, Debug, Deserialize, Serialize, JobArgs)]
#[river(kind = "offer_expiry")]
pub struct OfferExpiry {
    pub offer_id: i64,
}

/// One SLA clock of a request, due at its deadline.
#[derive(Clone, Debug, Deserialize, Serialize, JobArgs)]
#[river(kind = "sla_clock")]
pub struct SlaClock {
    pub request_id: i64,
    pub clock: crate::followup::Clock,
}

/// The end of the wait for a resident's rating.
#[derive(Clone, Debug, Deserialize, Serialize, JobArgs)]
#[river(kind = "rating_timeout")]
pub struct RatingTimeout {
    pub request_id: i64,
}

/// Retries in seconds, not River's quartic minutes: an offer SMS that waits
/// long is worth little. Doubling from 1 s, capped at 5 minutes.
#[derive(Clone, Copy, Debug)]
struct SecondsRetry;

impl riverqueue::RetryPolicy for SecondsRetry {
    fn next_retry(
        &self,
        job: &riverqueue::JobRow,
        _error: &riverqueue::WorkError,
        _now: jiff::Timestamp,
    ) -> Duration {
        let attempt = job.attempt.clamp(1, 20) as u32;
        Duration::from_secs((1u64 << (attempt - 1)).min(300))
    }
}

/// Builds the job queue's client with every worker registered (every instance
/// registers every kind, so any instance can run any job).
pub fn build_client(deps: JobDeps) -> anyhow::Result<Client> {
    let mut workers = Workers::new();
    let d = deps.clone();
    workers.add_fn(move |_ctx: WorkContext, job: riverqueue::Job<SendOutbox>| {
        let d = d.clone();
        async move {
            crate::outbox::send(&d, job.args.outbox_id, job.row.attempt)
                .await
                .map(|_| WorkOutcome::Complete)
        }
    })?;
    let d = deps.clone();
    workers.add_fn(
        move |ctx: WorkContext, job: riverqueue::Job<DispatchWave>| {
            let d = d.clone();
            async move {
                let client = ctx
                    .client()
                    .ok_or_else(|| anyhow::anyhow!("no client"))?
                    .clone();
                crate::dispatch::run_wave(&d, &client, job.args.request_id, job.args.wave)
                    .await
                    .map(|_| WorkOutcome::Complete)
            }
        },
    )?;
    let d = deps.clone();
    workers.add_fn(move |ctx: WorkContext, job: riverqueue::Job<OfferExpiry>| {
        let d = d.clone();
        async move {
            let client = ctx
                .client()
                .ok_or_else(|| anyhow::anyhow!("no client"))?
                .clone();
            crate::dispatch::expire_offer(&d, &client, job.args.offer_id)
                .await
                .map(|_| WorkOutcome::Complete)
        }
    })?;
    let d = deps.clone();
    workers.add_fn(move |ctx: WorkContext, job: riverqueue::Job<SlaClock>| {
        let d = d.clone();
        async move {
            let client = ctx
                .client()
                .ok_or_else(|| anyhow::anyhow!("no client"))?
                .clone();
            crate::followup::clocks::run(&d, &client, job.args.request_id, job.args.clock)
                .await
                .map(|_| WorkOutcome::Complete)
        }
    })?;
    let d = deps.clone();
    workers.add_fn(
        move |_ctx: WorkContext, job: riverqueue::Job<RatingTimeout>| {
            let d = d.clone();
            async move {
                crate::followup::rating::close_unrated(&d, job.args.request_id)
                    .await
                    .map(|_| WorkOutcome::Complete)
            }
        },
    )?;

    let lease = Duration::from_secs(deps.config.settings.jobs.lease_secs.max(2));
    let maintenance = riverqueue::MaintenanceConfig::default()
        .with_rescue_after(lease)
        .with_scheduler_interval(Duration::from_millis(500))
        .with_elect_interval(Duration::from_secs(2));
    // PostgreSQL wakes the client at once with LISTEN/NOTIFY; SQLite has no
    // such wake-up for jobs inserted in our own transactions, so it polls
    // often: a queued offer SMS waits at most this long before it is sent.
    let (builder, poll) = match &deps.db {
        Db::Sqlite(pool) => (Client::builder(pool.clone()), Duration::from_millis(20)),
        Db::Postgres(pool) => (Client::builder(pool.clone()), Duration::from_millis(100)),
    };
    let client = builder
        .workers(workers)
        .queue(
            "default",
            QueueConfig::new(16)
                .with_fetch_cooldown(Duration::from_millis(20))
                .with_fetch_poll_interval(poll),
        )
        // Every job finishes well inside the lease, so a rescue means a dead instance.
        .job_timeout(lease.mul_f64(0.8))
        .retry_policy(SecondsRetry)
        .default_max_attempts(20)
        .maintenance(maintenance)
        .build()?;
    Ok(client)
}

/// Inserts a job inside the caller's transaction: it exists only if the change does.
pub async fn enqueue<A: JobArgs + Send>(
    client: &Client,
    tx: &mut Tx,
    args: A,
    opts: InsertOpts,
) -> anyhow::Result<()> {
    match tx {
        Tx::Sqlite(t) => {
            client.insert(args).opts(opts).tx(t.transaction()).await?;
        }
        Tx::Postgres(t) => {
            client.insert(args).opts(opts).tx(t.transaction()).await?;
        }
    }
    Ok(())
}

/// Options for a job due at `at_ms` (Unix ms).
pub fn at(at_ms: i64) -> InsertOpts {
    match jiff::Timestamp::from_millisecond(at_ms) {
        Ok(t) => InsertOpts::default().with_scheduled_at(t),
        Err(_) => InsertOpts::default(),
    }
}

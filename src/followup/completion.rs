//! Completion: a request becomes `done` (the volunteer's `DONE` or an
//! operator), the volunteer earns points in the ledger, the resident is asked
//! for a rating and the rating's deadline is set, all in one transaction.

use super::{points, rating};
use crate::dispatch::commands::OfferCode;
use crate::domain::{Category, Grade, Language, PhoneNumber};
use crate::jobs::{JobDeps, RatingTimeout};
use crate::store::{EventInput, Tx, append_event, now_ms};
use riverqueue::Client;
use serde_json::json;

/// A request that was just marked done, and what its volunteer earned.
#[derive(Debug, Clone)]
pub struct Finished {
    pub request_id: i64,
    pub volunteer_id: i64,
    pub volunteer_phone: String,
    pub volunteer_language: Language,
    /// The accepted offer's code, which the volunteer knows the job by.
    pub code: OfferCode,
    pub earned: i64,
    pub balance: i64,
}

#[derive(sqlx::FromRow)]
struct Job {
    volunteer_id: Option<i64>,
    category: Option<String>,
    grade: Option<String>,
    code: Option<String>,
    phone: Option<String>,
    languages: Option<String>,
}

/// Marks `request_id` done for `actor` (`volunteer:7`, `operator:alice`).
/// `None` when it is not an assigned job still to be done (nothing changes).
pub async fn complete(
    client: &Client,
    tx: &mut Tx,
    deps: &JobDeps,
    request_id: i64,
    actor: &str,
) -> anyhow::Result<Option<Finished>> {
    let now = now_ms();
    // An assigned job (again, after a revisit sent it back out), or one escalated
    // by a clock while its volunteer still holds it. A revisit's new answer
    // replaces the old rating on the request; the old one stays in the events.
    let changed = crate::on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE requests SET status = 'done', done_at = $2, rating = NULL, rated_at = NULL, updated_at = $2 \
         WHERE id = $1 AND volunteer_id IS NOT NULL \
         AND (status = 'assigned' OR (status = 'escalated' AND done_at IS NULL))"
    )
    .bind(request_id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if changed == 0 {
        return Ok(None);
    }
    let job: Job = crate::on_tx!(tx, |c| sqlx::query_as::<_, Job>(
        "SELECT r.volunteer_id, r.category, r.grade, o.code, v.phone, v.languages \
         FROM requests r LEFT JOIN offers o ON o.request_id = r.id AND o.status = 'accepted' \
         LEFT JOIN volunteers v ON v.id = r.volunteer_id WHERE r.id = $1"
    )
    .bind(request_id)
    .fetch_one(c)
    .await)?;
    let volunteer_id = job
        .volunteer_id
        .ok_or_else(|| anyhow::anyhow!("request {request_id} has no volunteer"))?;
    append_event(
        tx,
        EventInput {
            request_id: Some(request_id),
            kind: "request.status",
            actor,
            data: json!({ "status": "done", "volunteer_id": volunteer_id }),
        },
    )
    .await?;

    let category: Category = job
        .category
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(Category::Other);
    let grade: Grade = job
        .grade
        .as_deref()
        .and_then(|g| g.parse().ok())
        .unwrap_or(Grade::Blue);
    // A job earns its points once, however often it is finished.
    let inserted = crate::on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO points_ledger (volunteer_id, request_id, points, reason, at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT DO NOTHING"
    )
    .bind(volunteer_id)
    .bind(request_id)
    .bind(points::for_job(category, grade))
    .bind(format!("job {} {}", category.as_str(), grade.as_str()))
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    let earned = if inserted == 1 {
        points::for_job(category, grade)
    } else {
        0
    };
    let balance = balance(tx, volunteer_id).await?;
    // The cached sum follows the ledger in the same transaction.
    crate::on_tx!(tx, |c| sqlx::query(
        "UPDATE volunteers SET points = $2, updated_at = $3 WHERE id = $1"
    )
    .bind(volunteer_id)
    .bind(balance)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    append_event(
        tx,
        EventInput {
            request_id: Some(request_id),
            kind: "volunteer.updated",
            actor: "system",
            data: json!({ "volunteer_id": volunteer_id, "points_earned": earned, "points": balance }),
        },
    )
    .await?;

    rating::ask(client, tx, deps, request_id).await?;
    let wait_ms = (deps.config.settings.followup.rating_wait_secs as i64).saturating_mul(1000);
    crate::jobs::enqueue(
        client,
        tx,
        RatingTimeout { request_id },
        crate::jobs::at(now.saturating_add(wait_ms)),
    )
    .await?;
    metrics::counter!("hotline580_requests_done_total").increment(1);

    let volunteer_language = job
        .languages
        .as_deref()
        .and_then(|l| l.split(';').next())
        .and_then(|l| l.parse().ok())
        .unwrap_or(Language::Zh);
    Ok(Some(Finished {
        request_id,
        volunteer_id,
        volunteer_phone: job.phone.unwrap_or_default(),
        volunteer_language,
        code: job
            .code
            .as_deref()
            .and_then(|c| OfferCode::parse(c).ok())
            .unwrap_or_else(|| OfferCode::from_number(request_id.clamp(10, 999_999) as u32)),
        earned,
        balance,
    }))
}

/// A volunteer's points: the ledger's sum.
pub async fn balance(tx: &mut Tx, volunteer_id: i64) -> sqlx::Result<i64> {
    crate::on_tx!(tx, |c| sqlx::query_scalar::<_, i64>(
        "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM points_ledger WHERE volunteer_id = $1"
    )
    .bind(volunteer_id)
    .fetch_one(c)
    .await)
}

/// The answer to `POINTS`: the balance, and this month's points and rank.
pub async fn points_reply(
    tx: &mut Tx,
    tz: &jiff::tz::TimeZone,
    volunteer_id: i64,
    lang: Language,
) -> anyhow::Result<String> {
    let total = balance(tx, volunteer_id).await?;
    let (start, end) = points::month_bounds(tz, now_ms())?;
    let totals: Vec<(i64, i64)> = crate::on_tx!(tx, |c| sqlx::query_as(
        "SELECT volunteer_id, CAST(SUM(points) AS BIGINT) FROM points_ledger \
         WHERE at >= $1 AND at < $2 GROUP BY volunteer_id"
    )
    .bind(start)
    .bind(end)
    .fetch_all(c)
    .await)?;
    Ok(crate::dispatch::messages::points(
        lang,
        total,
        points::month_rank(&totals, volunteer_id),
    ))
}

/// An operator's "done": the volunteer is thanked by SMS (a volunteer's own
/// `DONE` is thanked in the reply instead).
pub async fn thank_by_sms(
    client: &Client,
    tx: &mut Tx,
    deps: &JobDeps,
    f: &Finished,
) -> anyhow::Result<()> {
    let Ok(to) = PhoneNumber::from_e164(&f.volunteer_phone) else {
        return Ok(());
    };
    let body = crate::dispatch::messages::done(f.volunteer_language, &f.code, f.earned, f.balance);
    crate::outbox::queue(
        client,
        tx,
        &deps.config.hotline_number,
        crate::outbox::Outgoing::sms(&to, &body, Some(f.request_id)),
    )
    .await?;
    Ok(())
}

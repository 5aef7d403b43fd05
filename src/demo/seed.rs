//! Writes a generated neighbourhood into the database: people through the
//! same upserts as `import`, the month of history as finished requests with
//! their offers, timelines and points, so the console's figures have a past.

use super::neighbourhood::{Neighbourhood, PastOutcome, PastRequest};
use crate::dispatch::commands::OfferCode;
use crate::store::{Db, DbResult, Tx};
use serde_json::json;

/// What `seed` wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedSummary {
    pub residents: usize,
    pub volunteers: usize,
    pub past_requests: usize,
}

pub async fn seed(db: &Db, n: &Neighbourhood) -> anyhow::Result<SeedSummary> {
    let quiet = |_: usize| {};
    crate::import::import_residents(db, &n.residents, false, &quiet).await?;
    crate::import::import_volunteers(db, &n.volunteers, &quiet).await?;
    let resident_ids = ids_by_phone(db, "residents").await?;
    let volunteer_ids = ids_by_phone(db, "volunteers").await?;
    let mut tx = db.begin().await?;
    for p in &n.past {
        let resident = &n.residents[p.resident];
        let resident_id = resident_ids[resident.phone.as_str()];
        let volunteer_id = p
            .volunteer
            .map(|v| volunteer_ids[n.volunteers[v].phone.as_str()]);
        insert_past(&mut tx, p, resident, resident_id, volunteer_id).await?;
    }
    crate::on_tx!(&mut tx, |c| {
        sqlx::query(
        "UPDATE volunteers SET points = COALESCE((SELECT SUM(points) FROM points_ledger l WHERE l.volunteer_id = volunteers.id), 0)"
    )
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok(SeedSummary {
        residents: n.residents.len(),
        volunteers: n.volunteers.len(),
        past_requests: n.past.len(),
    })
}

async fn ids_by_phone(
    db: &Db,
    table: &'static str,
) -> DbResult<std::collections::HashMap<String, i64>> {
    let sql = match table {
        "residents" => "SELECT phone, id FROM residents",
        _ => "SELECT phone, id FROM volunteers",
    };
    let rows: Vec<(String, i64)> = crate::on_db!(db, |c| sqlx::query_as(sql).fetch_all(c).await)?;
    Ok(rows.into_iter().collect())
}

async fn event(
    tx: &mut Tx,
    request_id: i64,
    kind: &str,
    at: i64,
    actor: &str,
    data: serde_json::Value,
) -> DbResult<()> {
    let data = data.to_string();
    crate::on_tx!(tx, |c| sqlx::query(
        "INSERT INTO events (request_id, type, at, actor, data) VALUES ($1, $2, $3, $4, $5)"
    )
    .bind(request_id)
    .bind(kind)
    .bind(at)
    .bind(actor)
    .bind(&data)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

async fn insert_past(
    tx: &mut Tx,
    p: &PastRequest,
    resident: &crate::import::ResidentRow,
    resident_id: i64,
    volunteer_id: Option<i64>,
) -> anyhow::Result<()> {
    let created = p.created_at;
    let classified = created + 90_000;
    let accepted = classified + p.accepted_after_ms;
    let done = classified + p.done_after_ms;
    let (status, rating, reason, closed_at) = match p.outcome {
        PastOutcome::Rated(r) if r <= 2 => ("escalated", Some(r), Some("revisit"), None),
        PastOutcome::Rated(r) => ("closed", Some(r), None, Some(done + 3_600_000)),
        PastOutcome::Unrated => ("closed", None, None, Some(done + 86_400_000)),
        PastOutcome::EscalatedThenHelped(r) => (
            "closed",
            Some(r),
            Some("no_volunteer"),
            Some(done + 3_600_000),
        ),
        PastOutcome::Cancelled => ("cancelled", None, None, Some(classified + 600_000)),
    };
    let helped = volunteer_id.is_some();
    let position = resident.position;
    let request_id: i64 = crate::on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO requests (status, category, grade, channel, language, description, resident_id, caller_phone, \
         lat, lon, volunteer_id, rating, escalation_reason, wave, classified_at, accepted_at, done_at, closed_at, created_at, updated_at, \
         rating_asked_at, rated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14, $15, $16, $17, $18, $19, $20, $21) RETURNING id"
    )
    .bind(status)
    .bind(p.category.as_str())
    .bind(p.grade.as_str())
    .bind(if p.voice { "voice" } else { "sms" })
    .bind(resident.language.as_str())
    .bind(&p.description)
    .bind(resident_id)
    .bind(resident.phone.as_str())
    .bind(position.map(|g| g.lat))
    .bind(position.map(|g| g.lon))
    .bind(volunteer_id)
    .bind(rating)
    .bind(reason)
    .bind(classified)
    .bind(helped.then_some(accepted))
    .bind(helped.then_some(done))
    .bind(closed_at)
    .bind(created)
    .bind(closed_at.unwrap_or(done))
    .bind(helped.then_some(done + 60_000))
    .bind(rating.map(|_| done + 3_000_000))
    .fetch_one(c)
    .await
    })?;
    let channel = if p.voice { "voice" } else { "sms" };
    event(
        tx,
        request_id,
        "request.created",
        created,
        "resident",
        json!({ "channel": channel, "status": "offering", "history": true }),
    )
    .await?;
    if let Some(vid) = volunteer_id {
        let offer_id: i64 = crate::on_tx!(tx, |c| {
            sqlx::query_scalar(
            "INSERT INTO offers (request_id, volunteer_id, wave, code, status, sent_at, expires_at, answered_at) \
             VALUES ($1, $2, 1, $3, 'accepted', $4, $5, $6) RETURNING id"
        )
        .bind(request_id)
        .bind(vid)
        .bind(format!("history-{request_id}"))
        .bind(classified)
        .bind(classified + 180_000)
        .bind(accepted)
        .fetch_one(c)
        .await
        })?;
        // The same numbering as live offers, so codes never collide with them.
        let code = OfferCode::from_number((offer_id + 10) as u32);
        crate::on_tx!(tx, |c| sqlx::query(
            "UPDATE offers SET code = $2 WHERE id = $1"
        )
        .bind(offer_id)
        .bind(code.as_str())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        let actor = format!("volunteer:{vid}");
        event(
            tx,
            request_id,
            "offer.sent",
            classified,
            "system",
            json!({ "offer_id": offer_id, "code": code.as_str(), "volunteer_id": vid, "wave": 1 }),
        )
        .await?;
        event(
            tx,
            request_id,
            "offer.answered",
            accepted,
            &actor,
            json!({ "offer_id": offer_id, "answer": "accepted" }),
        )
        .await?;
        event(
            tx,
            request_id,
            "request.status",
            accepted,
            &actor,
            json!({ "status": "assigned" }),
        )
        .await?;
        event(
            tx,
            request_id,
            "request.status",
            done,
            &actor,
            json!({ "status": "done" }),
        )
        .await?;
        crate::on_tx!(tx, |c| {
            sqlx::query(
            "INSERT INTO points_ledger (volunteer_id, request_id, points, reason, at) VALUES ($1, $2, $3, $5, $4)"
        )
        .bind(vid)
        .bind(request_id)
        .bind(crate::followup::points::for_job(p.category, p.grade))
        .bind(done)
        .bind(format!("job {} {}", p.category.as_str(), p.grade.as_str()))
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        })?;
    }
    if let Some(r) = rating {
        event(
            tx,
            request_id,
            "request.rated",
            done + 3_000_000,
            "resident",
            json!({ "rating": r }),
        )
        .await?;
    }
    let last = closed_at.unwrap_or(done + 3_000_000);
    let data = match reason {
        Some(r) => json!({ "status": status, "reason": r }),
        None => json!({ "status": status }),
    };
    event(tx, request_id, "request.status", last, "system", data).await?;
    Ok(())
}

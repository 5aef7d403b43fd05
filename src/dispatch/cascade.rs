//! The offer cascade against the database: waves of offers, expiries, the
//! first acceptance winning (decided by the database), and escalation when
//! nobody is left. Each change, its events, its outbox rows and its follow-up
//! jobs commit together.

use super::matching::{self, Candidate, Need};
use super::messages;
use crate::domain::{Category, EscalationReason, GeoPoint, Grade, Language, PhoneNumber};
use crate::jobs::{DispatchWave, JobDeps, OfferExpiry};
use crate::outbox::{self, Kind, Outgoing};
use crate::store::{EventInput, Tx, append_event, now_ms};
use riverqueue::{Client, InsertOpts};
use serde_json::json;

/// What dispatch needs to know about a request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestForDispatch {
    pub id: i64,
    pub status: String,
    pub category: Option<String>,
    pub grade: Option<String>,
    pub language: String,
    pub description: Option<String>,
    pub wave: i64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub grid: Option<String>,
    pub resident_name: Option<String>,
    pub resident_phone: Option<String>,
    pub address: Option<String>,
    pub caller_phone: Option<String>,
}

const REQUEST_SQL: &str = "SELECT r.id, r.status, r.category, r.grade, r.language, \
     COALESCE(r.transcription, r.description) AS description, r.wave, \
     COALESCE(r.lat, p.lat) AS lat, COALESCE(r.lon, p.lon) AS lon, p.grid, \
     COALESCE(p.name, r.caller_name) AS resident_name, p.phone AS resident_phone, \
     COALESCE(r.address, p.address) AS address, r.caller_phone \
     FROM requests r LEFT JOIN residents p ON p.id = r.resident_id WHERE r.id = $1";

/// The same, read outside a transaction (for views that change nothing).
pub async fn read_request(
    db: &crate::store::Db,
    id: i64,
) -> sqlx::Result<Option<RequestForDispatch>> {
    crate::on_db!(db, |c| sqlx::query_as::<_, RequestForDispatch>(REQUEST_SQL)
        .bind(id)
        .fetch_optional(c)
        .await)
}

pub async fn load_request(tx: &mut Tx, id: i64) -> sqlx::Result<Option<RequestForDispatch>> {
    crate::on_tx!(tx, |c| sqlx::query_as::<_, RequestForDispatch>(REQUEST_SQL)
        .bind(id)
        .fetch_optional(c)
        .await)
}

/// A volunteer chosen for a wave, with what the offer needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VolunteerRow {
    pub id: i64,
    pub lat: f64,
    pub lon: f64,
    pub skills: String,
    pub languages: String,
    pub available: bool,
    pub opted_out: bool,
    pub max_active: i64,
    pub quiet_hours: Option<String>,
    pub last_offered_at: Option<i64>,
    pub active_jobs: i64,
    pub already_offered: i64,
    pub phone: String,
}

/// Volunteers inside the wave's bounding box (served by the position index).
/// `already_offered`: asked in this round, or holding a pending offer from an
/// earlier one (an offer an escalation left open).
async fn candidates_near(
    tx: &mut Tx,
    request_id: i64,
    bbox: (f64, f64, f64, f64),
) -> sqlx::Result<Vec<VolunteerRow>> {
    let (lat_min, lat_max, lon_min, lon_max) = bbox;
    crate::on_tx!(tx, |c| {
        sqlx::query_as::<_, VolunteerRow>(
            "SELECT v.id, v.lat, v.lon, v.skills, v.languages, v.available, v.opted_out, v.max_active, \
             v.quiet_hours, v.last_offered_at, v.phone, \
             (SELECT COUNT(*) FROM requests q WHERE q.volunteer_id = v.id AND q.status = 'assigned') AS active_jobs, \
             (SELECT COUNT(*) FROM offers o WHERE o.volunteer_id = v.id AND o.request_id = $5 \
               AND (o.status = 'pending' OR o.offer_round = (SELECT r.offer_round FROM requests r WHERE r.id = $5))) AS already_offered \
             FROM volunteers v \
             WHERE v.lat BETWEEN $1 AND $2 AND v.lon BETWEEN $3 AND $4 AND v.available AND NOT v.opted_out",
        )
        .bind(lat_min)
        .bind(lat_max)
        .bind(lon_min)
        .bind(lon_max)
        .bind(request_id)
        .fetch_all(c)
        .await
    })
}

/// The first search radius; it doubles up to the wave's radius.
const FIRST_RING_M: f64 = 250.0;

/// The best `size` volunteers for `need` (within `need.radius_m`), best first, with
/// their distance: the query the offer cascade runs for each wave, then the pure ranking.
///
/// It looks in a small box first and doubles it only when needed, so a dense city loads
/// tens of volunteers, not thousands. The answer is exactly the full radius's: a smaller
/// ring's answer is kept only when every chosen volunteer is in a distance step nearer
/// than any volunteer outside that ring can be (the ranking orders by those steps first).
pub async fn choose(
    tx: &mut Tx,
    request_id: i64,
    need: &Need,
    default_quiet: Option<crate::config::ClockRange>,
    size: usize,
) -> sqlx::Result<Vec<(VolunteerRow, f64)>> {
    let mut radius = FIRST_RING_M.min(need.radius_m);
    loop {
        let full = radius >= need.radius_m;
        let ring = Need {
            radius_m: radius,
            ..need.clone()
        };
        let rows = candidates_near(tx, request_id, ring.position.bounding_box(radius)).await?;
        let cands: Vec<Candidate> = rows
            .iter()
            .filter_map(|v| to_candidate(v, default_quiet))
            .collect();
        let ranked = matching::rank(&ring, &cands, size);
        let outside_step = (radius / matching::DISTANCE_BUCKET_M).floor();
        let exact = ranked.len() == size
            && ranked
                .iter()
                .all(|(_, d)| (d / matching::DISTANCE_BUCKET_M).floor() < outside_step);
        if full || exact {
            return Ok(ranked
                .into_iter()
                .filter_map(|(id, d)| rows.iter().find(|r| r.id == id).map(|r| (r.clone(), d)))
                .collect());
        }
        radius = (radius * 2.0).min(need.radius_m);
    }
}

fn to_candidate(
    v: &VolunteerRow,
    default_quiet: Option<crate::config::ClockRange>,
) -> Option<Candidate> {
    let quiet_hours = match v.quiet_hours.as_deref() {
        None => default_quiet,
        Some("off") => None,
        Some(s) => crate::config::ClockRange::parse(s).ok().or(default_quiet),
    };
    Some(Candidate {
        id: v.id,
        position: GeoPoint::new(v.lat, v.lon).ok()?,
        skills: v.skills.split(';').filter_map(|s| s.parse().ok()).collect(),
        languages: v
            .languages
            .split(';')
            .filter_map(|s| s.parse().ok())
            .collect(),
        available: v.available,
        opted_out: v.opted_out,
        active_jobs: v.active_jobs.max(0) as u32,
        max_active: v.max_active.max(0) as u32,
        quiet_hours,
        last_offered_at: v.last_offered_at,
        already_offered: v.already_offered > 0,
    })
}

async fn pending_offers(tx: &mut Tx, request_id: i64) -> sqlx::Result<i64> {
    crate::on_tx!(tx, |c| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM offers WHERE request_id = $1 AND status = 'pending'"
    )
    .bind(request_id)
    .fetch_one(c)
    .await)
}

/// Starts dispatch for a newly classified request, inside the classification's
/// transaction: the first wave is chosen and its offers queued right here, so
/// the first SMS is one job away from the caller's key press rather than two.
pub async fn start(
    deps: &JobDeps,
    client: &Client,
    tx: &mut Tx,
    request_id: i64,
) -> anyhow::Result<()> {
    offer_wave(deps, client, tx, request_id, 1).await
}

/// The `dispatch_wave` job: offers the request to the next wave, widening the
/// radius until someone is found or the wave limit is reached.
pub async fn run_wave(
    deps: &JobDeps,
    client: &Client,
    request_id: i64,
    wave: i64,
) -> anyhow::Result<()> {
    let mut tx = deps.db.begin().await?;
    offer_wave(deps, client, &mut tx, request_id, wave).await?;
    tx.commit().await?;
    Ok(())
}

/// Offers the request to wave `wave` (or the first wider one that finds
/// somebody) inside `tx`; escalates it when nobody is left to ask.
async fn offer_wave(
    deps: &JobDeps,
    client: &Client,
    tx: &mut Tx,
    request_id: i64,
    wave: i64,
) -> anyhow::Result<()> {
    let settings = &deps.config.settings.dispatch;
    let Some(req) = load_request(tx, request_id).await? else {
        return Ok(());
    };
    // Stale job: the request has moved on (accepted, cancelled, or a later wave ran).
    let dispatchable = req.status == "offering" || (req.status == "escalated" && req.wave > 0);
    if !dispatchable || req.wave >= wave {
        return Ok(());
    }
    let category: Category = req
        .category
        .as_deref()
        .unwrap_or("other")
        .parse()
        .unwrap_or(Category::Other);
    let grade: Grade = req
        .grade
        .as_deref()
        .unwrap_or("blue")
        .parse()
        .unwrap_or(Grade::Blue);
    let language: Language = req.language.parse().unwrap_or(Language::Zh);
    let position = match (req.lat, req.lon) {
        (Some(lat), Some(lon)) => GeoPoint::new(lat, lon).ok(),
        _ => None,
    };
    let now = now_ms();
    let local = jiff::Timestamp::from_millisecond(now)?
        .to_zoned(deps.config.tz.clone())
        .datetime();
    let max_waves = i64::from(settings.max_waves);
    let mut chosen: Vec<(VolunteerRow, f64)> = Vec::new();
    let mut this_wave = wave;
    if let Some(position) = position {
        // Empty waves are skipped at once: the radius widens until someone is found.
        while this_wave <= max_waves {
            let radius_m = settings.radius_m(this_wave as u32);
            let need = Need {
                category,
                grade,
                position,
                language,
                radius_m,
                local_time: local.time(),
            };
            let size = settings.wave_sizes.size(grade, this_wave as u32) as usize;
            chosen = choose(tx, request_id, &need, deps.config.quiet_hours, size).await?;
            if !chosen.is_empty() {
                break;
            }
            let widest = settings.radius_m(max_waves as u32);
            if radius_m >= widest {
                break; // the radius stops growing: nobody further waves would find
            }
            this_wave += 1;
        }
    }
    if chosen.is_empty() {
        let still_pending = pending_offers(tx, request_id).await?;
        if still_pending == 0 && req.status == "offering" {
            escalate(
                client,
                tx,
                deps,
                &req,
                EscalationReason::NoVolunteer,
                "system",
            )
            .await?;
        }
        return Ok(());
    }
    crate::on_tx!(tx, |c| sqlx::query(
        "UPDATE requests SET wave = $2, updated_at = $3 WHERE id = $1"
    )
    .bind(request_id)
    .bind(this_wave)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let timeout_ms = (settings.offer_timeout_secs as i64) * 1000;
    let expires_at = now + timeout_ms;
    let deadline = jiff::Timestamp::from_millisecond(expires_at)?
        .to_zoned(deps.config.tz.clone())
        .time();
    let withhold: Vec<&str> = [
        req.resident_name.as_deref(),
        req.resident_phone.as_deref(),
        req.caller_phone.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (v, distance_m) in &chosen {
        let (offer_id, code) = super::assignment::insert_offer(
            tx,
            super::assignment::NewOffer {
                request_id,
                volunteer_id: v.id,
                wave: this_wave,
                status: "pending",
                distance_m: Some(*distance_m),
                sent_at: now,
                expires_at,
            },
        )
        .await?;
        crate::on_tx!(tx, |c| sqlx::query(
            "UPDATE volunteers SET last_offered_at = $2 WHERE id = $1"
        )
        .bind(v.id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        let vlang: Language = v
            .languages
            .split(';')
            .next()
            .and_then(|l| l.parse().ok())
            .unwrap_or(Language::Zh);
        let body = messages::offer(
            vlang,
            &messages::OfferText {
                category,
                description: req.description.as_deref().unwrap_or(""),
                distance_m: *distance_m,
                area: req.grid.as_deref(),
                code: &code,
                deadline,
                withhold: &withhold,
            },
        );
        let to = PhoneNumber::from_e164(&v.phone)?;
        outbox::queue(
            client,
            tx,
            &deps.config.hotline_number,
            Outgoing {
                kind: Kind::Sms,
                to: &to,
                body: &body,
                request_id: Some(request_id),
                offer_id: Some(offer_id),
            },
        )
        .await?;
        crate::jobs::enqueue(
            client,
            tx,
            OfferExpiry { offer_id },
            crate::jobs::at(expires_at),
        )
        .await?;
        append_event(
            tx,
            EventInput {
                request_id: Some(request_id),
                kind: "offer.sent",
                actor: "system",
                data: json!({ "offer_id": offer_id, "code": code.as_str(), "volunteer_id": v.id, "wave": this_wave, "distance_m": distance_m.round() }),
            },
        )
        .await?;
    }
    metrics::counter!("hotline580_offers_sent_total").increment(chosen.len() as u64);
    Ok(())
}

/// Escalates a request for the operators: status, events row, an SMS to `operators.phone`.
pub async fn escalate(
    client: &Client,
    tx: &mut Tx,
    deps: &JobDeps,
    req: &RequestForDispatch,
    reason: EscalationReason,
    actor: &str,
) -> anyhow::Result<()> {
    crate::on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE requests SET status = 'escalated', escalation_reason = $2, updated_at = $3 WHERE id = $1"
    )
    .bind(req.id)
    .bind(reason.as_str())
    .bind(now_ms())
    .execute(c).await.map(|r| r.rows_affected())
    })?;
    append_event(
        tx,
        EventInput {
            request_id: Some(req.id),
            kind: "request.status",
            actor,
            data: json!({ "status": "escalated", "escalation_reason": reason.as_str() }),
        },
    )
    .await?;
    append_event(
        tx,
        EventInput {
            request_id: Some(req.id),
            kind: "alert",
            actor,
            data: json!({ "reason": reason.as_str() }),
        },
    )
    .await?;
    if let Some(ops) = deps.config.operators_phone.clone() {
        let body = messages::escalation(
            Language::Zh,
            &messages::EscalationText {
                request_id: req.id,
                reason,
                category: req
                    .category
                    .as_deref()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(Category::Other),
                grade: req
                    .grade
                    .as_deref()
                    .and_then(|g| g.parse().ok())
                    .unwrap_or(Grade::Blue),
                area: req.grid.as_deref(),
            },
        );
        outbox::queue(
            client,
            tx,
            &deps.config.hotline_number,
            Outgoing::sms(&ops, &body, Some(req.id)),
        )
        .await?;
    }
    Ok(())
}

/// Moves on when a request has no pending offer left: the next wave at once.
pub async fn next_wave_if_idle(
    client: &Client,
    tx: &mut Tx,
    request_id: i64,
) -> anyhow::Result<()> {
    if pending_offers(tx, request_id).await? > 0 {
        return Ok(());
    }
    let Some(req) = load_request(tx, request_id).await? else {
        return Ok(());
    };
    if req.status == "offering"
        || req.status == "escalated" && req.wave > 0 && req_has_sla_reason(tx, request_id).await?
    {
        crate::jobs::enqueue(
            client,
            tx,
            DispatchWave {
                request_id,
                wave: req.wave + 1,
            },
            InsertOpts::default(),
        )
        .await?;
    }
    Ok(())
}

async fn req_has_sla_reason(tx: &mut Tx, request_id: i64) -> sqlx::Result<bool> {
    let r: Option<String> = crate::on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT escalation_reason FROM requests WHERE id = $1"
    )
    .bind(request_id)
    .fetch_one(c)
    .await)?;
    Ok(r.as_deref() == Some("sla"))
}

/// The `offer_expiry` job: a still-pending offer expires and the cascade moves on.
pub async fn expire_offer(deps: &JobDeps, client: &Client, offer_id: i64) -> anyhow::Result<()> {
    close_pending_offer(deps, client, offer_id, "expired").await
}

/// An offer SMS that cannot be delivered counts as a decline at once.
pub async fn offer_undeliverable(deps: &JobDeps, offer_id: i64) -> anyhow::Result<()> {
    let client = deps
        .jobs
        .get()
        .ok_or_else(|| anyhow::anyhow!("the job queue is not running"))?;
    close_pending_offer(deps, client, offer_id, "failed").await
}

/// Ends a still-pending offer with `status` (`expired` or `failed`) and moves the
/// cascade on; an offer already answered is left alone.
async fn close_pending_offer(
    deps: &JobDeps,
    client: &Client,
    offer_id: i64,
    status: &'static str,
) -> anyhow::Result<()> {
    let mut tx = deps.db.begin().await?;
    let request_id: Option<i64> = crate::on_tx!(&mut tx, |c| {
        sqlx::query_scalar(
            "UPDATE offers SET status = $3, answered_at = $2 WHERE id = $1 AND status = 'pending' RETURNING request_id",
        )
        .bind(offer_id)
        .bind(now_ms())
        .bind(status)
        .fetch_optional(c)
        .await
    })?;
    let Some(request_id) = request_id else {
        tx.rollback().await?;
        return Ok(());
    };
    append_event(
        &mut tx,
        EventInput {
            request_id: Some(request_id),
            kind: "offer.answered",
            actor: "system",
            data: json!({ "offer_id": offer_id, "status": status }),
        },
    )
    .await?;
    next_wave_if_idle(client, &mut tx, request_id).await?;
    tx.commit().await?;
    Ok(())
}

//! What operators do to requests and volunteers: assign, cancel, offer again,
//! note, close, change grade or category, edit a volunteer; and the nearest
//! suitable volunteers for a request. Each action is one transaction with an
//! `events` row naming the operator; a change the request's status does not
//! allow is refused with a sentence saying what can be done instead.

use super::assignment::{
    Assignee, NewOffer, first_language, insert_offer, settle_assignment, withdraw_pending_offers,
};
use super::cascade::{self, load_request};
use super::commands::OfferCode;
use super::matching::{self, Candidate, Need};
use super::messages;
use crate::config::ClockRange;
use crate::domain::{Category, GeoPoint, Grade, Language, PhoneNumber};
use crate::jobs::JobDeps;
use crate::outbox::{self, Outgoing};
use crate::store::{EventInput, Tx, append_event, now_ms};
use riverqueue::Client;
use serde_json::{Value, json};

/// Why an action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No such request or volunteer.
    #[error("{0}")]
    NotFound(String),
    /// The request's state does not allow it now.
    #[error("{0}")]
    Conflict(String),
    /// The input is wrong.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ActionError {
    fn from(e: sqlx::Error) -> Self {
        ActionError::Internal(e.into())
    }
}

pub type ActionResult<T> = Result<T, ActionError>;

/// Statuses in which a request is still open.
const OPEN: [&str; 4] = ["new", "offering", "assigned", "escalated"];

async fn status_of(tx: &mut Tx, id: i64) -> ActionResult<String> {
    let s: Option<String> = crate::on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT status FROM requests WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)?;
    s.ok_or_else(|| ActionError::NotFound(format!("there is no request {id}")))
}

async fn event(
    tx: &mut Tx,
    request_id: Option<i64>,
    kind: &str,
    actor: &str,
    data: Value,
) -> ActionResult<()> {
    append_event(
        tx,
        EventInput {
            request_id,
            kind,
            actor,
            data,
        },
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct VolunteerBrief {
    id: i64,
    name: String,
    phone: String,
    languages: String,
    opted_out: bool,
}

async fn volunteer_brief(tx: &mut Tx, id: i64) -> ActionResult<VolunteerBrief> {
    let v: Option<VolunteerBrief> = crate::on_tx!(tx, |c| sqlx::query_as::<_, VolunteerBrief>(
        "SELECT id, name, phone, languages, opted_out FROM volunteers WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)?;
    v.ok_or_else(|| ActionError::NotFound(format!("there is no volunteer {id}")))
}

/// Assigns a request to a volunteer chosen by an operator: the volunteer's
/// offer (an existing one, or a new one) becomes the accepted one, the other
/// open offers are withdrawn with a thank-you, the volunteer gets the details
/// by SMS and the resident is told who is coming.
pub async fn assign(
    deps: &JobDeps,
    client: &Client,
    request_id: i64,
    volunteer_id: i64,
    actor: &str,
) -> ActionResult<()> {
    let mut tx = deps.db.begin().await?;
    let status = status_of(&mut tx, request_id).await?;
    match status.as_str() {
        "new" | "offering" | "escalated" => {}
        "assigned" => {
            return Err(ActionError::Conflict(format!(
                "request {request_id} is already assigned; cancel it first or leave it with its volunteer"
            )));
        }
        other => {
            return Err(ActionError::Conflict(format!(
                "request {request_id} is {other}; only an open request can be assigned"
            )));
        }
    }
    let v = volunteer_brief(&mut tx, volunteer_id).await?;
    if v.opted_out {
        return Err(ActionError::Conflict(format!(
            "{} has opted out of messages (STOP); choose another volunteer",
            v.name
        )));
    }
    let now = now_ms();
    // The volunteer may hold offers for this request already (any answer, one
    // per round): the pending one, else the newest, becomes the accepted one.
    let existing: Option<(i64, String)> = crate::on_tx!(&mut tx, |c| sqlx::query_as(
        "SELECT id, code FROM offers WHERE request_id = $1 AND volunteer_id = $2 \
         ORDER BY CASE WHEN status = 'pending' THEN 0 ELSE 1 END, id DESC LIMIT 1"
    )
    .bind(request_id)
    .bind(volunteer_id)
    .fetch_optional(c)
    .await)?;
    let code = match existing {
        Some((offer_id, code)) => {
            crate::on_tx!(&mut tx, |c| sqlx::query(
                "UPDATE offers SET status = 'accepted', answered_at = $2 WHERE id = $1"
            )
            .bind(offer_id)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            OfferCode::parse(&code).unwrap_or_else(|_| OfferCode::from_number(0))
        }
        None => {
            let wave: i64 = crate::on_tx!(&mut tx, |c| sqlx::query_scalar(
                "SELECT wave FROM requests WHERE id = $1"
            )
            .bind(request_id)
            .fetch_one(c)
            .await)?;
            insert_offer(
                &mut tx,
                NewOffer {
                    request_id,
                    volunteer_id,
                    wave,
                    status: "accepted",
                    distance_m: None,
                    sent_at: now,
                    expires_at: now,
                },
            )
            .await?
            .1
        }
    };
    let changed = crate::on_tx!(&mut tx, |c| {
        sqlx::query(
        "UPDATE requests SET status = 'assigned', volunteer_id = $2, accepted_at = $3, updated_at = $3, \
         escalation_reason = NULL WHERE id = $1 AND status IN ('new', 'offering', 'escalated')"
    )
    .bind(request_id)
    .bind(volunteer_id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if changed != 1 {
        return Err(ActionError::Conflict(format!(
            "request {request_id} changed meanwhile; reload it and try again"
        )));
    }
    event(
        &mut tx,
        Some(request_id),
        "request.status",
        actor,
        json!({ "status": "assigned", "volunteer_id": volunteer_id, "code": code.as_str() }),
    )
    .await?;
    let assignee = Assignee {
        id: v.id,
        name: v.name.clone(),
        phone: v.phone.clone(),
        lang: first_language(&v.languages),
    };
    let details = settle_assignment(deps, client, &mut tx, request_id, &assignee, &code).await?;
    let to = PhoneNumber::from_e164(&v.phone).map_err(anyhow::Error::from)?;
    outbox::queue(
        client,
        &mut tx,
        &deps.config.hotline_number,
        Outgoing::sms(&to, &details, Some(request_id)),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Cancels an open request: pending offers are withdrawn with a thank-you and
/// a volunteer holding it is told not to go.
pub async fn cancel(
    deps: &JobDeps,
    client: &Client,
    request_id: i64,
    reason: Option<&str>,
    actor: &str,
) -> ActionResult<()> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let mut tx = deps.db.begin().await?;
    let status = status_of(&mut tx, request_id).await?;
    if !OPEN.contains(&status.as_str()) {
        return Err(ActionError::Conflict(format!(
            "request {request_id} is {status} already; only an open request can be cancelled"
        )));
    }
    let now = now_ms();
    let holder: Option<(String, String, String)> = crate::on_tx!(&mut tx, |c| sqlx::query_as(
        "SELECT o.code, v.phone, v.languages FROM requests r \
         JOIN offers o ON o.request_id = r.id AND o.status = 'accepted' \
         JOIN volunteers v ON v.id = o.volunteer_id WHERE r.id = $1 AND r.status = 'assigned'"
    )
    .bind(request_id)
    .fetch_optional(c)
    .await)?;
    crate::on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE requests SET status = 'cancelled', closed_at = $2, updated_at = $2 WHERE id = $1"
    )
    .bind(request_id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    event(
        &mut tx,
        Some(request_id),
        "request.status",
        actor,
        json!({ "status": "cancelled", "from": status, "reason": reason }),
    )
    .await?;
    withdraw_pending_offers(deps, client, &mut tx, request_id).await?;
    if let Some((code, phone, langs)) = holder {
        let code = OfferCode::parse(&code).unwrap_or_else(|_| OfferCode::from_number(0));
        let body = messages::job_cancelled(first_language(&langs), &code);
        let to = PhoneNumber::from_e164(&phone).map_err(anyhow::Error::from)?;
        outbox::queue(
            client,
            &mut tx,
            &deps.config.hotline_number,
            Outgoing::sms(&to, &body, Some(request_id)),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Offers an escalated request again: a new round of offers from the first
/// wave. Volunteers who declined or let an earlier offer expire may be asked
/// again (the operator presses it because circumstances changed); one still
/// holding a pending offer is not asked twice.
pub async fn reoffer(
    deps: &JobDeps,
    client: &Client,
    request_id: i64,
    actor: &str,
) -> ActionResult<()> {
    let mut tx = deps.db.begin().await?;
    let status = status_of(&mut tx, request_id).await?;
    match status.as_str() {
        "escalated" | "new" => {}
        "offering" => {
            return Err(ActionError::Conflict(format!(
                "request {request_id} is being offered already; wait for answers, or assign it yourself"
            )));
        }
        other => {
            return Err(ActionError::Conflict(format!(
                "request {request_id} is {other}; only an escalated request can be offered again"
            )));
        }
    }
    let req = load_request(&mut tx, request_id)
        .await?
        .ok_or_else(|| ActionError::NotFound(format!("there is no request {request_id}")))?;
    if req.category.is_none() {
        return Err(ActionError::Conflict(format!(
            "request {request_id} has no category yet; set one first"
        )));
    }
    if req.category.as_deref() == Some("emergency") {
        return Err(ActionError::Conflict(
            "an emergency is not offered to volunteers; assign someone yourself or close it".into(),
        ));
    }
    if req.lat.is_none() || req.lon.is_none() {
        return Err(ActionError::Conflict(format!(
            "request {request_id} has no position, so nobody nearby can be found; assign a volunteer yourself"
        )));
    }
    crate::on_tx!(&mut tx, |c| {
        sqlx::query(
        "UPDATE requests SET status = 'offering', escalation_reason = NULL, wave = 0, offer_round = offer_round + 1, updated_at = $2 WHERE id = $1"
    )
    .bind(request_id)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    event(
        &mut tx,
        Some(request_id),
        "request.status",
        actor,
        json!({ "status": "offering", "from": status, "reoffer": true }),
    )
    .await?;
    cascade::start(deps, client, &mut tx, request_id).await?;
    tx.commit().await?;
    Ok(())
}

/// The longest note kept, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Adds an operator's note to a request's timeline.
pub async fn note(deps: &JobDeps, request_id: i64, text: &str, actor: &str) -> ActionResult<()> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ActionError::Invalid(
            "the note is empty; write something".into(),
        ));
    }
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(ActionError::Invalid(format!(
            "a note is at most {MAX_NOTE_CHARS} characters; shorten it"
        )));
    }
    let mut tx = deps.db.begin().await?;
    status_of(&mut tx, request_id).await?;
    crate::on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE requests SET updated_at = $2 WHERE id = $1"
    )
    .bind(request_id)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    event(
        &mut tx,
        Some(request_id),
        "request.updated",
        actor,
        json!({ "note": text }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Closes an escalation (a revisit included): the operator has dealt with it.
pub async fn close(
    deps: &JobDeps,
    client: &Client,
    request_id: i64,
    actor: &str,
) -> ActionResult<()> {
    let mut tx = deps.db.begin().await?;
    let status = status_of(&mut tx, request_id).await?;
    if status != "escalated" {
        return Err(ActionError::Conflict(format!(
            "request {request_id} is {status}; only an escalated request (a revisit included) is closed here{}",
            if OPEN.contains(&status.as_str()) {
                ". Cancel it instead if it is no longer needed"
            } else {
                ""
            }
        )));
    }
    let reason: Option<String> = crate::on_tx!(&mut tx, |c| sqlx::query_scalar(
        "SELECT escalation_reason FROM requests WHERE id = $1"
    )
    .bind(request_id)
    .fetch_one(c)
    .await)?;
    let now = now_ms();
    crate::on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE requests SET status = 'closed', closed_at = $2, updated_at = $2 WHERE id = $1"
    )
    .bind(request_id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    event(
        &mut tx,
        Some(request_id),
        "request.status",
        actor,
        json!({ "status": "closed", "from": "escalated", "escalation_reason": reason }),
    )
    .await?;
    // Offers left open by an `sla` escalation end with it.
    withdraw_pending_offers(deps, client, &mut tx, request_id).await?;
    tx.commit().await?;
    Ok(())
}

/// A change of grade and/or category.
#[derive(Debug, Clone, Default)]
pub struct RequestPatch {
    pub grade: Option<Grade>,
    pub category: Option<Category>,
}

/// Changes a request's grade or category. A request turned red raises an alert;
/// a new grade of a request waiting for acceptance reschedules its acceptance
/// clock (a red request must be accepted sooner than a blue one).
pub async fn update_request(
    deps: &JobDeps,
    client: &Client,
    request_id: i64,
    patch: &RequestPatch,
    actor: &str,
) -> ActionResult<()> {
    if patch.grade.is_none() && patch.category.is_none() {
        return Err(ActionError::Invalid(
            "nothing to change: send `grade` and/or `category`".into(),
        ));
    }
    let mut tx = deps.db.begin().await?;
    let status = status_of(&mut tx, request_id).await?;
    if !OPEN.contains(&status.as_str()) {
        return Err(ActionError::Conflict(format!(
            "request {request_id} is {status}; only an open request can be changed"
        )));
    }
    let (old_grade, old_category): (Option<String>, Option<String>) = crate::on_tx!(
        &mut tx,
        |c| sqlx::query_as("SELECT grade, category FROM requests WHERE id = $1")
            .bind(request_id)
            .fetch_one(c)
            .await
    )?;
    let grade = patch
        .grade
        .map(|g| g.as_str().to_string())
        .or(old_grade.clone());
    let category = patch
        .category
        .map(|c| c.as_str().to_string())
        .or(old_category.clone());
    crate::on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE requests SET grade = $2, category = $3, updated_at = $4 WHERE id = $1"
    )
    .bind(request_id)
    .bind(&grade)
    .bind(&category)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let mut data = serde_json::Map::new();
    if grade != old_grade {
        data.insert("grade".into(), json!({ "from": old_grade, "to": grade }));
    }
    if category != old_category {
        data.insert(
            "category".into(),
            json!({ "from": old_category, "to": category }),
        );
    }
    if data.is_empty() {
        tx.rollback().await?;
        return Ok(());
    }
    event(
        &mut tx,
        Some(request_id),
        "request.updated",
        actor,
        Value::Object(data),
    )
    .await?;
    // Only an `offering` request runs an acceptance clock; one escalated
    // before it was offered is with the operators already.
    if grade != old_grade && status == "offering" {
        crate::followup::clocks::regrade(client, &mut tx, &deps.config, request_id).await?;
    }
    if grade.as_deref() == Some("red") && old_grade.as_deref() != Some("red") {
        event(
            &mut tx,
            Some(request_id),
            "alert",
            actor,
            json!({ "reason": "red" }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A change to a volunteer; absent fields are kept. `quiet_hours`:
/// `Some(None)` returns to `dispatch.quiet_hours`.
#[derive(Debug, Clone, Default)]
pub struct VolunteerPatch {
    pub name: Option<String>,
    pub skills: Option<Vec<String>>,
    pub languages: Option<Vec<String>>,
    pub available: Option<bool>,
    pub max_active: Option<i64>,
    pub quiet_hours: Option<Option<String>>,
}

/// Checks and normalises quiet hours: `off`, or a range such as `22:00-07:00`.
pub fn parse_quiet_hours(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        return Ok("off".into());
    }
    let r = ClockRange::parse(s)?;
    Ok(format!(
        "{:02}:{:02}-{:02}:{:02}",
        r.start.hour(),
        r.start.minute(),
        r.end.hour(),
        r.end.minute()
    ))
}

fn parse_list<T: std::str::FromStr>(
    items: &[String],
    what: &str,
    allowed: &str,
    keep: impl Fn(&T) -> bool,
) -> ActionResult<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let item = item.trim();
        if item.parse::<T>().ok().filter(|v| keep(v)).is_none() {
            return Err(ActionError::Invalid(format!(
                "`{item}` is not a {what}; use {allowed}"
            )));
        }
        if !out.iter().any(|o| o == item) {
            out.push(item.to_string());
        }
    }
    Ok(out.join(";"))
}

/// Edits a volunteer. Switching one off declines their pending offers, as
/// their own `OFF` would, so the cascade moves on at once.
pub async fn update_volunteer(
    deps: &JobDeps,
    client: &Client,
    volunteer_id: i64,
    patch: &VolunteerPatch,
    actor: &str,
) -> ActionResult<()> {
    let name = match &patch.name {
        Some(n) if n.trim().is_empty() => {
            return Err(ActionError::Invalid("the name is empty; write one".into()));
        }
        Some(n) => Some(n.trim().to_string()),
        None => None,
    };
    let skills = match &patch.skills {
        Some(list) => {
            let s = parse_list::<Category>(
                list,
                "skill",
                "repair, errands, escort, companion or other",
                Category::is_skill,
            )?;
            if s.is_empty() {
                return Err(ActionError::Invalid(
                    "a volunteer needs at least one skill".into(),
                ));
            }
            Some(s)
        }
        None => None,
    };
    let languages = match &patch.languages {
        Some(list) => {
            let l = parse_list::<Language>(list, "language", "zh or en", |_| true)?;
            Some(if l.is_empty() { "zh".to_string() } else { l })
        }
        None => None,
    };
    if let Some(m) = patch.max_active
        && !(1..=50).contains(&m)
    {
        return Err(ActionError::Invalid(
            "max_active is a whole number from 1 to 50".into(),
        ));
    }
    let quiet = match &patch.quiet_hours {
        Some(Some(q)) => Some(Some(parse_quiet_hours(q).map_err(|e| {
            ActionError::Invalid(format!(
                "quiet_hours: {e}; use a range such as 22:00-07:00, `off`, or null for the default"
            ))
        })?)),
        Some(None) => Some(None),
        None => None,
    };
    let mut tx = deps.db.begin().await?;
    let exists: Option<i64> = crate::on_tx!(&mut tx, |c| sqlx::query_scalar(
        "SELECT id FROM volunteers WHERE id = $1"
    )
    .bind(volunteer_id)
    .fetch_optional(c)
    .await)?;
    if exists.is_none() {
        return Err(ActionError::NotFound(format!(
            "there is no volunteer {volunteer_id}"
        )));
    }
    let now = now_ms();
    crate::on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE volunteers SET name = COALESCE($2, name), skills = COALESCE($3, skills), \
         languages = COALESCE($4, languages), available = COALESCE($5, available), \
         max_active = COALESCE($6, max_active), \
         quiet_hours = CASE WHEN $7 THEN $8 ELSE quiet_hours END, updated_at = $9 WHERE id = $1"
    )
    .bind(volunteer_id)
    .bind(&name)
    .bind(&skills)
    .bind(&languages)
    .bind(patch.available)
    .bind(patch.max_active)
    .bind(quiet.is_some())
    .bind(quiet.clone().flatten())
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let mut changed = serde_json::Map::new();
    changed.insert("volunteer_id".into(), json!(volunteer_id));
    if let Some(n) = &name {
        changed.insert("name".into(), json!(n));
    }
    if let Some(s) = &skills {
        changed.insert("skills".into(), json!(s));
    }
    if let Some(l) = &languages {
        changed.insert("languages".into(), json!(l));
    }
    if let Some(a) = patch.available {
        changed.insert("available".into(), json!(a));
    }
    if let Some(m) = patch.max_active {
        changed.insert("max_active".into(), json!(m));
    }
    if let Some(q) = &quiet {
        changed.insert("quiet_hours".into(), json!(q));
    }
    event(
        &mut tx,
        None,
        "volunteer.updated",
        actor,
        Value::Object(changed),
    )
    .await?;
    if patch.available == Some(false) {
        let pending: Vec<(i64, i64)> = crate::on_tx!(&mut tx, |c| {
            sqlx::query_as(
            "SELECT id, request_id FROM offers WHERE volunteer_id = $1 AND status = 'pending' ORDER BY id"
        )
        .bind(volunteer_id)
        .fetch_all(c)
        .await
        })?;
        for (offer_id, request_id) in pending {
            crate::on_tx!(&mut tx, |c| {
                sqlx::query(
                "UPDATE offers SET status = 'declined', answered_at = $2 WHERE id = $1 AND status = 'pending'"
            )
            .bind(offer_id)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
            })?;
            event(
                &mut tx,
                Some(request_id),
                "offer.answered",
                actor,
                json!({ "offer_id": offer_id, "status": "declined", "volunteer_switched_off": true }),
            )
            .await?;
            cascade::next_wave_if_idle(client, &mut tx, request_id).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// One volunteer suggested for a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub volunteer_id: i64,
    pub name: String,
    pub distance_m: f64,
    pub active_jobs: i64,
    pub offered: Option<String>,
}

/// How many volunteers the candidates list shows.
pub const CANDIDATES_SHOWN: usize = 10;

#[derive(Debug, Clone, sqlx::FromRow)]
struct CandidateRow {
    id: i64,
    name: String,
    lat: f64,
    lon: f64,
    skills: String,
    languages: String,
    available: bool,
    opted_out: bool,
    max_active: i64,
    quiet_hours: Option<String>,
    last_offered_at: Option<i64>,
    active_jobs: i64,
    offer_status: Option<String>,
}

/// The nearest suitable volunteers for a request, best first, within the
/// cascade's widest radius, by the cascade's own ranking. Unlike the cascade
/// it keeps volunteers offered this request before (an operator may phone
/// one who let the offer expire), showing how they answered.
pub async fn candidates(deps: &JobDeps, request_id: i64) -> ActionResult<Vec<Suggestion>> {
    let settings = &deps.config.settings.dispatch;
    // Only reads: no write transaction (on SQLite that would take the write lock).
    let req = cascade::read_request(&deps.db, request_id)
        .await?
        .ok_or_else(|| ActionError::NotFound(format!("there is no request {request_id}")))?;
    let Some(position) = req
        .lat
        .zip(req.lon)
        .and_then(|(a, b)| GeoPoint::new(a, b).ok())
    else {
        return Ok(Vec::new());
    };
    let category: Category = req
        .category
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(Category::Other);
    // Emergencies are nobody's skill: suggest people for the errand it became.
    let category = if category == Category::Emergency {
        Category::Other
    } else {
        category
    };
    let grade: Grade = req
        .grade
        .as_deref()
        .and_then(|g| g.parse().ok())
        .unwrap_or(Grade::Blue);
    let radius_m = settings.radius_m(settings.max_waves);
    let (lat_min, lat_max, lon_min, lon_max) = position.bounding_box(radius_m);
    let rows: Vec<CandidateRow> = crate::on_db!(&deps.db, |c| {
        sqlx::query_as::<_, CandidateRow>(
        "SELECT v.id, v.name, v.lat, v.lon, v.skills, v.languages, v.available, v.opted_out, v.max_active, \
         v.quiet_hours, v.last_offered_at, \
         (SELECT COUNT(*) FROM requests q WHERE q.volunteer_id = v.id AND q.status = 'assigned') AS active_jobs, \
         (SELECT o.status FROM offers o WHERE o.volunteer_id = v.id AND o.request_id = $5) AS offer_status \
         FROM volunteers v \
         WHERE v.lat BETWEEN $1 AND $2 AND v.lon BETWEEN $3 AND $4 AND v.available AND NOT v.opted_out"
    )
    .bind(lat_min)
    .bind(lat_max)
    .bind(lon_min)
    .bind(lon_max)
    .bind(request_id)
    .fetch_all(c)
    .await
    })?;
    let local = jiff::Timestamp::now()
        .to_zoned(deps.config.tz.clone())
        .datetime();
    let need = Need {
        category,
        grade,
        position,
        language: req.language.parse().unwrap_or(Language::Zh),
        radius_m,
        local_time: local.time(),
    };
    let cands: Vec<Candidate> = rows
        .iter()
        .filter_map(|v| {
            let quiet_hours = match v.quiet_hours.as_deref() {
                None => deps.config.quiet_hours,
                Some("off") => None,
                Some(s) => ClockRange::parse(s).ok().or(deps.config.quiet_hours),
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
                already_offered: false,
            })
        })
        .collect();
    let ranked = matching::rank(&need, &cands, CANDIDATES_SHOWN);
    Ok(ranked
        .into_iter()
        .filter_map(|(id, d)| {
            rows.iter().find(|r| r.id == id).map(|r| Suggestion {
                volunteer_id: id,
                name: r.name.clone(),
                distance_m: d.round(),
                active_jobs: r.active_jobs,
                offered: r.offer_status.clone(),
            })
        })
        .collect())
}

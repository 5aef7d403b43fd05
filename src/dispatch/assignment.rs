//! What follows an assignment, whoever made it (a volunteer's `YES` or an
//! operator): the other open offers are withdrawn with a thank-you, the
//! resident is told who is coming, and the volunteer's details text is made.
//! Also the offer rows and withdrawals that operators' actions share with the
//! cascade.

use super::cascade::load_request;
use super::commands::OfferCode;
use super::messages;
use crate::domain::{Category, Language, PhoneNumber};
use crate::jobs::JobDeps;
use crate::outbox::{self, Kind, Outgoing};
use crate::store::{Tx, now_ms};
use riverqueue::Client;

/// The volunteer who now holds a request.
#[derive(Debug, Clone)]
pub struct Assignee {
    pub id: i64,
    pub name: String,
    pub phone: String,
    pub lang: Language,
}

/// A volunteer's first listed language (their messages' language).
pub fn first_language(languages: &str) -> Language {
    languages
        .split(';')
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(Language::Zh)
}

/// A new offer row.
#[derive(Debug, Clone)]
pub struct NewOffer<'a> {
    pub request_id: i64,
    pub volunteer_id: i64,
    pub wave: i64,
    /// `pending` for the cascade, `accepted` for an operator's assignment.
    pub status: &'a str,
    pub distance_m: Option<f64>,
    pub sent_at: i64,
    pub expires_at: i64,
}

/// Inserts an offer row, in the request's current round, and gives it its code: the offer's id shifted past the
/// one-digit answers ("1" = yes). Returns the id and the code.
pub async fn insert_offer(tx: &mut Tx, o: NewOffer<'_>) -> sqlx::Result<(i64, OfferCode)> {
    let NewOffer {
        request_id,
        volunteer_id,
        wave,
        status,
        distance_m,
        sent_at,
        expires_at,
    } = o;
    let answered_at = (status != "pending").then_some(sent_at);
    let offer_id: i64 = crate::on_tx!(tx, |c| {
        sqlx::query_scalar(
            "INSERT INTO offers (request_id, volunteer_id, wave, code, status, distance_m, sent_at, expires_at, answered_at, offer_round) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, (SELECT offer_round FROM requests WHERE id = $1)) RETURNING id",
        )
        .bind(request_id)
        .bind(volunteer_id)
        .bind(wave)
        .bind(format!("new-{request_id}-{volunteer_id}"))
        .bind(status)
        .bind(distance_m)
        .bind(sent_at)
        .bind(expires_at)
        .bind(answered_at)
        .fetch_one(c)
        .await
    })?;
    let code = OfferCode::from_number((offer_id + 10) as u32);
    crate::on_tx!(tx, |c| sqlx::query(
        "UPDATE offers SET code = $2 WHERE id = $1"
    )
    .bind(offer_id)
    .bind(code.as_str())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok((offer_id, code))
}

/// Withdraws every pending offer of a request and thanks each volunteer by SMS.
/// Returns how many were withdrawn.
pub async fn withdraw_pending_offers(
    deps: &JobDeps,
    client: &Client,
    tx: &mut Tx,
    request_id: i64,
) -> anyhow::Result<usize> {
    let pending: Vec<(i64, String, String, String)> = crate::on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT o.id, o.code, v.phone, v.languages FROM offers o JOIN volunteers v ON v.id = o.volunteer_id \
             WHERE o.request_id = $1 AND o.status = 'pending' ORDER BY o.id",
        )
        .bind(request_id)
        .fetch_all(c)
        .await
    })?;
    crate::on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE offers SET status = 'withdrawn', answered_at = $2 WHERE request_id = $1 AND status = 'pending'",
        )
        .bind(request_id)
        .bind(now_ms())
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    let from = &deps.config.hotline_number;
    for (offer_id, code, phone, langs) in &pending {
        let code = OfferCode::parse(code).unwrap_or_else(|_| OfferCode::from_number(0));
        let body = messages::withdrawn(first_language(langs), &code);
        let to = PhoneNumber::from_e164(phone)?;
        outbox::queue(
            client,
            tx,
            from,
            Outgoing {
                kind: Kind::Sms,
                to: &to,
                body: &body,
                request_id: Some(request_id),
                offer_id: Some(*offer_id),
            },
        )
        .await?;
    }
    Ok(pending.len())
}

/// After a request became `assigned` to `v` under offer `code` (inside `tx`):
/// the other open offers are withdrawn with a thank-you and the resident is
/// told who is coming (SMS to a mobile, a call to a landline or a resident who
/// prefers calls). Returns the details text for the volunteer.
pub async fn settle_assignment(
    deps: &JobDeps,
    client: &Client,
    tx: &mut Tx,
    request_id: i64,
    v: &Assignee,
    code: &OfferCode,
) -> anyhow::Result<String> {
    withdraw_pending_offers(deps, client, tx, request_id).await?;
    let from = &deps.config.hotline_number;
    let req = load_request(tx, request_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("request vanished"))?;
    let category: Category = req
        .category
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(Category::Other);
    let resident_phone = req
        .resident_phone
        .as_deref()
        .or(req.caller_phone.as_deref())
        .and_then(|p| PhoneNumber::from_e164(p).ok());
    let details = match &resident_phone {
        Some(phone) => messages::assignment(
            v.lang,
            &messages::AssignmentText {
                code,
                category,
                resident_name: req.resident_name.as_deref().unwrap_or(""),
                address: req.address.as_deref().unwrap_or(""),
                phone,
                description: req.description.as_deref().unwrap_or(""),
            },
        ),
        None => messages::taken(v.lang, code),
    };
    if let Some(phone) = resident_phone {
        let rlang: Language = req.language.parse().unwrap_or(Language::Zh);
        let vphone = PhoneNumber::from_e164(&v.phone).ok();
        let text = messages::volunteer_coming(rlang, category, &v.name, vphone.as_ref());
        let contact: Option<String> = crate::on_tx!(tx, |c| sqlx::query_scalar(
            "SELECT contact FROM residents WHERE phone = $1"
        )
        .bind(phone.as_str())
        .fetch_optional(c)
        .await)?
        .flatten();
        let by_call =
            contact.as_deref() == Some("call") || (contact.is_none() && !phone.is_mobile());
        if by_call {
            let url = format!(
                "{}/twilio/say?text={}&lang={}",
                deps.config.settings.server.public_url.trim_end_matches('/'),
                urlencode(&text),
                rlang.as_str()
            );
            outbox::queue(
                client,
                tx,
                from,
                Outgoing {
                    kind: Kind::Call,
                    to: &phone,
                    body: &url,
                    request_id: Some(req.id),
                    offer_id: None,
                },
            )
            .await?;
        } else {
            outbox::queue(client, tx, from, Outgoing::sms(&phone, &text, Some(req.id))).await?;
        }
    }
    Ok(details)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

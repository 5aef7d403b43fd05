//! SLA clocks. The arithmetic is pure (when each clock falls due, whether a
//! request kept it); the clocks themselves are River jobs scheduled at intake,
//! in the intake's transaction, and each checks the request when it runs.

use crate::config::{Config, SlaSettings};
use crate::dispatch::cascade::{RequestForDispatch, load_request};
use crate::dispatch::messages;
use crate::domain::{Category, EscalationReason, Grade, Language, Status};
use crate::jobs::{JobDeps, SlaClock};
use crate::outbox::{self, Outgoing};
use crate::store::{EventInput, Tx, append_event, now_ms};
use riverqueue::Client;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The clocks a request runs against, all from its intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// Accepted by a volunteer within the grade's `sla.*_accept_secs`.
    Accept,
    /// Done within `sla.done_secs`.
    Done,
    /// Still not done after `sla.second_level_secs`: the second level is told.
    SecondLevel,
}

impl Clock {
    pub fn as_str(&self) -> &'static str {
        match self {
            Clock::Accept => "accept",
            Clock::Done => "done",
            Clock::SecondLevel => "second_level",
        }
    }
}

/// When each clock of a request falls due (Unix ms). An `offered` request
/// runs the acceptance clock too; one escalated at intake (an emergency, an
/// unknown sender) only the done clocks. The second level runs only when
/// there is a second level to tell.
pub fn schedule(
    sla: &SlaSettings,
    grade: Grade,
    intake_ms: i64,
    offered: bool,
    second_level: bool,
) -> Vec<(Clock, i64)> {
    let after = |secs: u64| intake_ms.saturating_add((secs as i64).saturating_mul(1000));
    let mut due = Vec::with_capacity(3);
    if offered {
        due.push((Clock::Accept, after(sla.accept_secs(grade))));
    }
    due.push((Clock::Done, after(sla.done_secs)));
    if second_level {
        due.push((Clock::SecondLevel, after(sla.second_level_secs)));
    }
    due
}

/// What a clock that fell due does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The clock was kept (or the request is over): nothing happens.
    Kept,
    /// Breached: the request becomes `escalated` (`sla`) and operators are told.
    Escalate,
    /// Breached, but the request is already with the operators for another
    /// reason: they are told again, its reason stays.
    Remind,
}

/// The request as a clock sees it when it falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub status: Status,
    /// Escalated by a clock already (`sla`).
    pub sla_escalated: bool,
    pub accepted: bool,
    pub done: bool,
}

pub fn verdict(clock: Clock, f: Facts) -> Verdict {
    let breached = match clock {
        // Escalated by a clock already: a second acceptance clock (after a
        // regrade) adds nothing.
        Clock::Accept => !f.accepted && f.status.is_open() && !f.sla_escalated,
        Clock::Done | Clock::SecondLevel => !f.done && f.status.is_open(),
    };
    match (breached, f.status) {
        (false, _) => Verdict::Kept,
        (true, Status::Escalated) => Verdict::Remind,
        (true, _) => Verdict::Escalate,
    }
}

/// Whether a clock job runs before its deadline under the request's current
/// grade: the grade was lowered after intake, and [`regrade`] scheduled the
/// later clock that will judge it.
pub fn not_due_yet(
    sla: &SlaSettings,
    clock: Clock,
    grade: Grade,
    intake_ms: i64,
    now_ms: i64,
) -> bool {
    let secs = match clock {
        Clock::Accept => sla.accept_secs(grade),
        Clock::Done => sla.done_secs,
        Clock::SecondLevel => sla.second_level_secs,
    };
    // A second of slack: a job may start a moment before its stored deadline.
    now_ms + 1000 < intake_ms.saturating_add((secs as i64).saturating_mul(1000))
}

/// Whether a handled request kept its clocks: accepted within its grade's
/// acceptance clock (when a volunteer accepted it) and done within `sla.done_secs`.
pub fn within_clock(
    sla: &SlaSettings,
    grade: Grade,
    intake_ms: i64,
    accepted_at: Option<i64>,
    done_at: Option<i64>,
) -> bool {
    let Some(done_at) = done_at else {
        return false;
    };
    let accept_ok = accepted_at
        .map(|a| a - intake_ms <= sla.accept_secs(grade) as i64 * 1000)
        .unwrap_or(true);
    accept_ok && done_at - intake_ms <= sla.done_secs as i64 * 1000
}

/// Schedules a request's clocks inside the transaction that classified it.
pub async fn start(
    client: &Client,
    tx: &mut Tx,
    config: &Config,
    request_id: i64,
) -> anyhow::Result<()> {
    let row: Option<(String, Option<String>, i64)> = crate::on_tx!(tx, |c| sqlx::query_as(
        "SELECT status, grade, created_at FROM requests WHERE id = $1"
    )
    .bind(request_id)
    .fetch_optional(c)
    .await)?;
    let Some((status, grade, created_at)) = row else {
        return Ok(());
    };
    let grade: Grade = grade
        .as_deref()
        .unwrap_or("blue")
        .parse()
        .unwrap_or(Grade::Blue);
    let offered = status == Status::Offering.as_str();
    for (clock, at) in schedule(
        &config.settings.sla,
        grade,
        created_at,
        offered,
        config.second_level_phone.is_some(),
    ) {
        crate::jobs::enqueue(
            client,
            tx,
            SlaClock { request_id, clock },
            crate::jobs::at(at),
        )
        .await?;
    }
    Ok(())
}

/// Schedules the acceptance clock of a request's new grade; call it in the
/// transaction that changes the grade. A clock of the old grade that falls due
/// earlier does nothing ([`not_due_yet`]).
pub async fn regrade(
    client: &Client,
    tx: &mut Tx,
    config: &Config,
    request_id: i64,
) -> anyhow::Result<()> {
    let row: Option<(Option<String>, i64, Option<i64>)> = crate::on_tx!(tx, |c| sqlx::query_as(
        "SELECT grade, created_at, accepted_at FROM requests WHERE id = $1"
    )
    .bind(request_id)
    .fetch_optional(c)
    .await)?;
    let Some((Some(grade), created_at, None)) = row else {
        return Ok(());
    };
    let grade: Grade = grade.parse()?;
    let at = created_at.saturating_add(config.settings.sla.accept_secs(grade) as i64 * 1000);
    let clock = Clock::Accept;
    crate::jobs::enqueue(
        client,
        tx,
        SlaClock { request_id, clock },
        crate::jobs::at(at),
    )
    .await
}

#[derive(sqlx::FromRow)]
struct ClockFacts {
    status: String,
    escalation_reason: Option<String>,
    grade: Option<String>,
    created_at: i64,
    accepted_at: Option<i64>,
    done_at: Option<i64>,
}

/// The `sla_clock` job: checks the request now and escalates a breach. Open
/// offers stay open, so a volunteer may still accept.
pub async fn run(
    deps: &JobDeps,
    client: &Client,
    request_id: i64,
    clock: Clock,
) -> anyhow::Result<()> {
    let mut tx = deps.db.begin().await?;
    let facts: Option<ClockFacts> = crate::on_tx!(&mut tx, |c| {
        sqlx::query_as::<_, ClockFacts>(
        "SELECT status, escalation_reason, grade, created_at, accepted_at, done_at FROM requests WHERE id = $1"
    )
    .bind(request_id)
    .fetch_optional(c)
    .await
    })?;
    let Some(facts) = facts else {
        tx.rollback().await?;
        return Ok(());
    };
    let status: Status = facts.status.parse()?;
    let grade: Grade = facts
        .grade
        .as_deref()
        .and_then(|g| g.parse().ok())
        .unwrap_or(Grade::Blue);
    let v = verdict(
        clock,
        Facts {
            status,
            sla_escalated: status == Status::Escalated
                && facts.escalation_reason.as_deref() == Some(EscalationReason::Sla.as_str()),
            accepted: facts.accepted_at.is_some(),
            done: facts.done_at.is_some(),
        },
    );
    let early = not_due_yet(
        &deps.config.settings.sla,
        clock,
        grade,
        facts.created_at,
        now_ms(),
    );
    if v == Verdict::Kept || early {
        tx.rollback().await?;
        return Ok(());
    }
    let req = load_request(&mut tx, request_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("request {request_id} vanished"))?;
    if v == Verdict::Escalate {
        crate::on_tx!(&mut tx, |c| {
            sqlx::query(
            "UPDATE requests SET status = 'escalated', escalation_reason = 'sla', updated_at = $2 WHERE id = $1"
        )
        .bind(request_id)
        .bind(now_ms())
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        })?;
        append_event(
            &mut tx,
            EventInput {
                request_id: Some(request_id),
                kind: "request.status",
                actor: "system",
                data: json!({ "status": "escalated", "escalation_reason": "sla", "clock": clock.as_str() }),
            },
        )
        .await?;
    }
    append_event(
        &mut tx,
        EventInput {
            request_id: Some(request_id),
            kind: "alert",
            actor: "system",
            data: json!({ "reason": "sla", "clock": clock.as_str() }),
        },
    )
    .await?;
    let text = escalation_text(&req);
    let config = &deps.config;
    let (to, body) = match clock {
        Clock::SecondLevel => (
            config.second_level_phone.clone(),
            messages::second_level(
                Language::Zh,
                &text,
                config.settings.sla.second_level_secs / 3600,
            ),
        ),
        _ => (
            config.operators_phone.clone(),
            messages::escalation(Language::Zh, &text),
        ),
    };
    if let Some(to) = to {
        outbox::queue(
            client,
            &mut tx,
            &config.hotline_number,
            Outgoing::sms(&to, &body, Some(request_id)),
        )
        .await?;
    }
    tx.commit().await?;
    metrics::counter!("hotline580_sla_breaches_total", "clock" => clock.as_str()).increment(1);
    Ok(())
}

fn escalation_text(req: &RequestForDispatch) -> messages::EscalationText<'_> {
    messages::EscalationText {
        request_id: req.id,
        reason: EscalationReason::Sla,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sla() -> SlaSettings {
        crate::config::Config::defaults().settings.sla
    }

    #[test]
    fn clocks_fall_due_after_their_grade_s_delay_from_intake() {
        let t0 = 1_000_000;
        let red = schedule(&sla(), Grade::Red, t0, true, true);
        assert_eq!(
            red,
            vec![
                (Clock::Accept, t0 + 900_000),
                (Clock::Done, t0 + 86_400_000),
                (Clock::SecondLevel, t0 + 259_200_000),
            ]
        );
        let blue = schedule(&sla(), Grade::Blue, t0, true, false);
        assert_eq!(
            blue,
            vec![
                (Clock::Accept, t0 + 28_800_000),
                (Clock::Done, t0 + 86_400_000)
            ]
        );
        // Escalated at intake: nobody is asked to accept, but it must still be done.
        let emergency = schedule(&sla(), Grade::Red, t0, false, false);
        assert_eq!(emergency, vec![(Clock::Done, t0 + 86_400_000)]);
    }

    fn f(status: Status, accepted: bool, done: bool) -> Facts {
        Facts {
            status,
            sla_escalated: false,
            accepted,
            done,
        }
    }

    #[test]
    fn an_acceptance_keeps_the_accept_clock_but_not_the_done_clock() {
        let v = verdict;
        assert_eq!(
            v(Clock::Accept, f(Status::Offering, false, false)),
            Verdict::Escalate
        );
        assert_eq!(
            v(Clock::Accept, f(Status::Assigned, true, false)),
            Verdict::Kept
        );
        assert_eq!(
            v(Clock::Done, f(Status::Assigned, true, false)),
            Verdict::Escalate
        );
        assert_eq!(
            v(Clock::SecondLevel, f(Status::Assigned, true, false)),
            Verdict::Escalate
        );
        assert_eq!(v(Clock::Done, f(Status::Done, true, true)), Verdict::Kept);
        assert_eq!(v(Clock::Done, f(Status::Closed, true, true)), Verdict::Kept);
    }

    #[test]
    fn finished_requests_breach_nothing_and_escalated_ones_are_reminded() {
        for clock in [Clock::Accept, Clock::Done, Clock::SecondLevel] {
            assert_eq!(
                verdict(clock, f(Status::Cancelled, false, false)),
                Verdict::Kept
            );
            assert_eq!(
                verdict(clock, f(Status::Closed, false, false)),
                Verdict::Kept
            );
            assert_eq!(
                verdict(clock, f(Status::Escalated, false, false)),
                Verdict::Remind
            );
        }
        // A second acceptance clock adds nothing to a request a clock escalated;
        // the done clocks still remind.
        let by_clock = Facts {
            sla_escalated: true,
            ..f(Status::Escalated, false, false)
        };
        assert_eq!(verdict(Clock::Accept, by_clock), Verdict::Kept);
        assert_eq!(verdict(Clock::Done, by_clock), Verdict::Remind);
    }

    #[test]
    fn a_clock_of_a_lowered_grade_waits_for_the_new_deadline() {
        let s = sla();
        // Intake at 0 as red (15 min), lowered to blue (8 h): the red job at 15 min is early.
        assert!(not_due_yet(&s, Clock::Accept, Grade::Blue, 0, 900_000));
        assert!(!not_due_yet(&s, Clock::Accept, Grade::Red, 0, 900_000));
        assert!(!not_due_yet(&s, Clock::Accept, Grade::Blue, 0, 28_800_000));
        assert!(!not_due_yet(&s, Clock::Done, Grade::Blue, 0, 86_400_000));
        assert!(not_due_yet(&s, Clock::Done, Grade::Blue, 0, 3_600_000));
    }

    #[test]
    fn within_clock_needs_both_a_timely_acceptance_and_a_timely_done() {
        let s = sla();
        let h = 3_600_000;
        assert!(within_clock(&s, Grade::Yellow, 0, Some(h), Some(5 * h)));
        assert!(!within_clock(
            &s,
            Grade::Yellow,
            0,
            Some(3 * h),
            Some(5 * h)
        ));
        assert!(!within_clock(&s, Grade::Blue, 0, Some(h), Some(25 * h)));
        assert!(within_clock(&s, Grade::Blue, 0, Some(8 * h), Some(24 * h)));
        assert!(!within_clock(&s, Grade::Red, 0, None, None));
        assert!(within_clock(&s, Grade::Red, 0, None, Some(h)));
    }
}

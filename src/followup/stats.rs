//! The figures for a period, per category, grade and grid: computed by a pure
//! function over one row per request received in the period (the rows are
//! read by [`load`]), so the API and the weekly report cannot disagree.

use super::clocks::within_clock;
use crate::config::{Config, SlaSettings};
use crate::domain::Grade;
use crate::store::Db;
use jiff::civil::{Date, ISOWeekDate, Weekday};
use serde::Serialize;

/// One request received in the period, as the figures need it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StatRow {
    pub category: Option<String>,
    pub grade: Option<String>,
    pub grid: Option<String>,
    pub created_at: i64,
    pub accepted_at: Option<i64>,
    pub done_at: Option<i64>,
    pub rating: Option<i64>,
    /// Escalated at least once (for any reason).
    pub escalated: i64,
}

/// The figures of one group of requests. Times are seconds; shares are 0 to 1
/// (`None` when there is nothing to divide by).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Figures {
    pub received: u64,
    /// Reached `done` (a volunteer or an operator finished it).
    pub handled: u64,
    /// Handled, accepted within its grade's clock and done within `sla.done_secs`.
    pub handled_on_time: u64,
    pub median_accept_secs: Option<f64>,
    pub median_done_secs: Option<f64>,
    pub rated: u64,
    /// Rated 4 or 5.
    pub satisfied: u64,
    /// Rated among handled.
    pub share_rated: Option<f64>,
    /// Satisfied among rated.
    pub satisfaction: Option<f64>,
    pub escalations: u64,
}

/// A group's name (`repair`, `red`, a grid; `null` for requests with no grid) and figures.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Group {
    pub key: Option<String>,
    #[serde(flatten)]
    pub figures: Figures,
}

/// One local day's figures (the requests received that day).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Day {
    #[schema(value_type = String, format = Date)]
    pub date: Date,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The figures of a period: all requests, and per category, grade, grid and day.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Stats {
    #[schema(value_type = String, format = Date)]
    pub from: Date,
    #[schema(value_type = String, format = Date)]
    pub to: Date,
    pub timezone: String,
    pub total: Figures,
    pub by_category: Vec<Group>,
    pub by_grade: Vec<Group>,
    pub by_grid: Vec<Group>,
    /// Every day of the period, days with nothing received included (for charts).
    pub by_day: Vec<Day>,
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The figures of a group of rows.
pub fn figures(sla: &SlaSettings, rows: &[&StatRow]) -> Figures {
    let handled: Vec<&&StatRow> = rows.iter().filter(|r| r.done_at.is_some()).collect();
    let on_time = handled
        .iter()
        .filter(|r| {
            let grade: Grade = r
                .grade
                .as_deref()
                .and_then(|g| g.parse().ok())
                .unwrap_or(Grade::Blue);
            within_clock(sla, grade, r.created_at, r.accepted_at, r.done_at)
        })
        .count() as u64;
    let secs = |from: i64, to: i64| (to - from) as f64 / 1000.0;
    let rated: Vec<i64> = rows.iter().filter_map(|r| r.rating).collect();
    let satisfied = rated.iter().filter(|r| **r >= 4).count() as u64;
    let handled_n = handled.len() as u64;
    Figures {
        received: rows.len() as u64,
        handled: handled_n,
        handled_on_time: on_time,
        median_accept_secs: median(
            rows.iter()
                .filter_map(|r| r.accepted_at.map(|a| secs(r.created_at, a)))
                .collect(),
        ),
        median_done_secs: median(
            handled
                .iter()
                .filter_map(|r| r.done_at.map(|d| secs(r.created_at, d)))
                .collect(),
        ),
        rated: rated.len() as u64,
        satisfied,
        share_rated: ratio(rated.len() as u64, handled_n),
        satisfaction: ratio(satisfied, rated.len() as u64),
        escalations: rows.iter().filter(|r| r.escalated > 0).count() as u64,
    }
}

fn groups(
    sla: &SlaSettings,
    rows: &[StatRow],
    key: impl Fn(&StatRow) -> Option<String>,
    order: impl Fn(&Option<String>) -> (usize, Option<String>),
) -> Vec<Group> {
    let mut keys: Vec<Option<String>> = rows.iter().map(&key).collect();
    keys.sort_by_key(|k| order(k));
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let members: Vec<&StatRow> = rows.iter().filter(|r| key(r) == k).collect();
            Group {
                figures: figures(sla, &members),
                key: k,
            }
        })
        .collect()
}

/// The figures of the rows of a period.
pub fn compute(sla: &SlaSettings, period: &Period, rows: &[StatRow]) -> Stats {
    use crate::domain::Category;
    let all: Vec<&StatRow> = rows.iter().collect();
    // Categories and grades in the contract's order; grids by name, "no grid" last.
    let word_order = |words: Vec<&'static str>| {
        move |k: &Option<String>| {
            let i = k
                .as_deref()
                .and_then(|k| words.iter().position(|w| *w == k))
                .unwrap_or(words.len());
            (i, k.clone())
        }
    };
    Stats {
        from: period.from,
        to: period.to,
        timezone: period.timezone.clone(),
        total: figures(sla, &all),
        by_category: groups(
            sla,
            rows,
            |r| r.category.clone(),
            word_order(Category::ALL.iter().map(|c| c.as_str()).collect()),
        ),
        by_grade: groups(
            sla,
            rows,
            |r| r.grade.clone(),
            word_order(Grade::ALL.iter().map(|g| g.as_str()).collect()),
        ),
        by_grid: groups(
            sla,
            rows,
            |r| r.grid.clone().filter(|g| !g.trim().is_empty()),
            |k| (usize::from(k.is_none()), k.clone()),
        ),
        by_day: days(sla, period, rows),
    }
}

/// One entry per local day of the period, from the day starts the period holds.
fn days(sla: &SlaSettings, period: &Period, rows: &[StatRow]) -> Vec<Day> {
    let mut out = Vec::with_capacity(period.day_starts_ms.len());
    let mut date = period.from;
    for (i, start) in period.day_starts_ms.iter().enumerate() {
        let end = period
            .day_starts_ms
            .get(i + 1)
            .copied()
            .unwrap_or(period.end_ms);
        let of_day: Vec<&StatRow> = rows
            .iter()
            .filter(|r| r.created_at >= *start && r.created_at < end)
            .collect();
        out.push(Day {
            date,
            figures: figures(sla, &of_day),
        });
        match date.tomorrow() {
            Ok(next) => date = next,
            Err(_) => break,
        }
    }
    out
}

/// A period of local calendar days, `from` to `to` inclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub from: Date,
    pub to: Date,
    pub timezone: String,
    /// `[start, end)` in Unix ms.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Where each local day of the period starts, in Unix ms (days differ in
    /// length where clocks change).
    pub day_starts_ms: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("`{0}` is not a date; write it as YYYY-MM-DD, such as 2026-11-01")]
    BadDate(String),
    #[error("`{0}` is not a week; write it as YYYY-Www, such as 2026-W47")]
    BadWeek(String),
    #[error("the period ends ({to}) before it starts ({from})")]
    Backwards { from: Date, to: Date },
}

pub fn parse_date(s: &str) -> Result<Date, PeriodError> {
    let t = s.trim();
    let ok_shape = t.len() == 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-';
    t.parse::<Date>()
        .ok()
        .filter(|_| ok_shape)
        .ok_or_else(|| PeriodError::BadDate(s.to_string()))
}

impl Period {
    /// The local days `from` to `to` inclusive, in `tz`.
    pub fn days(
        from: Date,
        to: Date,
        tz: &jiff::tz::TimeZone,
        tz_name: &str,
    ) -> Result<Period, PeriodError> {
        if to < from {
            return Err(PeriodError::Backwards { from, to });
        }
        let bad = |d: Date| PeriodError::BadDate(d.to_string());
        let start = from.to_zoned(tz.clone()).map_err(|_| bad(from))?;
        let next = to.tomorrow().map_err(|_| bad(to))?;
        let end = next.to_zoned(tz.clone()).map_err(|_| bad(to))?;
        let mut day_starts_ms = Vec::new();
        let mut day = from;
        while day <= to {
            let start = day.to_zoned(tz.clone()).map_err(|_| bad(day))?;
            day_starts_ms.push(start.timestamp().as_millisecond());
            day = day.tomorrow().map_err(|_| bad(day))?;
        }
        Ok(Period {
            from,
            to,
            timezone: tz_name.to_string(),
            start_ms: start.timestamp().as_millisecond(),
            end_ms: end.timestamp().as_millisecond(),
            day_starts_ms,
        })
    }

    /// An ISO week such as `2026-W47`: Monday to Sunday.
    pub fn iso_week(
        week: &str,
        tz: &jiff::tz::TimeZone,
        tz_name: &str,
    ) -> Result<Period, PeriodError> {
        let bad = || PeriodError::BadWeek(week.to_string());
        let (y, w) = week.trim().split_once(['-']).ok_or_else(bad)?;
        let w = w.strip_prefix(['W', 'w']).ok_or_else(bad)?;
        if y.len() != 4 || w.is_empty() || w.len() > 2 {
            return Err(bad());
        }
        let year: i16 = y.parse().map_err(|_| bad())?;
        let number: i8 = w.parse().map_err(|_| bad())?;
        let monday = ISOWeekDate::new(year, number, Weekday::Monday)
            .map_err(|_| bad())?
            .date();
        let sunday = ISOWeekDate::new(year, number, Weekday::Sunday)
            .map_err(|_| bad())?
            .date();
        Self::days(monday, sunday, tz, tz_name)
    }
}

/// One row per request received in the period.
pub async fn load(db: &Db, period: &Period) -> sqlx::Result<Vec<StatRow>> {
    crate::on_db!(db, |c| {
        sqlx::query_as::<_, StatRow>(
        "SELECT r.category, r.grade, p.grid, r.created_at, r.accepted_at, r.done_at, r.rating, \
         CAST(CASE WHEN r.escalation_reason IS NOT NULL OR EXISTS (SELECT 1 FROM events e \
           WHERE e.request_id = r.id AND e.type = 'request.status' AND e.data LIKE '%\"status\":\"escalated\"%') \
         THEN 1 ELSE 0 END AS BIGINT) AS escalated \
         FROM requests r LEFT JOIN residents p ON p.id = r.resident_id \
         WHERE r.created_at >= $1 AND r.created_at < $2 ORDER BY r.id"
    )
    .bind(period.start_ms)
    .bind(period.end_ms)
    .fetch_all(c)
    .await
    })
}

/// The figures of a period, read from the database.
pub async fn for_period(db: &Db, config: &Config, period: &Period) -> sqlx::Result<Stats> {
    let rows = load(db, period).await?;
    Ok(compute(&config.settings.sla, period, &rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn row(category: &str, grade: &str, grid: Option<&str>) -> StatRow {
        StatRow {
            category: Some(category.into()),
            grade: Some(grade.into()),
            grid: grid.map(str::to_string),
            created_at: 0,
            accepted_at: None,
            done_at: None,
            rating: None,
            escalated: 0,
        }
    }

    fn period() -> Period {
        let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        Period::days(
            Date::constant(2026, 1, 1),
            Date::constant(2026, 1, 31),
            &tz,
            "Asia/Shanghai",
        )
        .unwrap()
    }

    fn any_row() -> impl proptest::strategy::Strategy<Value = StatRow> {
        use proptest::prelude::*;
        (
            prop::sample::select(vec!["repair", "errands", "companion", "emergency"]),
            prop::sample::select(vec!["red", "yellow", "blue"]),
            prop::option::of(prop::sample::select(vec!["网格1", "网格2"])),
            prop::option::of(0i64..50 * H),
            prop::option::of(0i64..80 * H),
            prop::option::of(1i64..=5),
            0i64..2,
        )
            .prop_map(|(c, g, grid, accepted, done, rating, escalated)| StatRow {
                category: Some(c.into()),
                grade: Some(g.into()),
                grid: grid.map(str::to_string),
                created_at: 0,
                accepted_at: accepted,
                done_at: done,
                // Only a handled request can be rated.
                rating: done.and(rating),
                escalated,
            })
    }

    proptest::proptest! {
        #[test]
        fn every_breakdown_adds_up_to_the_total(rows in proptest::collection::vec(any_row(), 0..40)) {
            let s = compute(&Config::defaults().settings.sla, &period(), &rows);
            let t = &s.total;
            proptest::prop_assert_eq!(t.received as usize, rows.len());
            proptest::prop_assert!(t.handled_on_time <= t.handled && t.handled <= t.received);
            proptest::prop_assert!(t.satisfied <= t.rated && t.rated <= t.handled);
            for groups in [&s.by_category, &s.by_grade, &s.by_grid] {
                let sum = |f: fn(&Figures) -> u64| groups.iter().map(|g| f(&g.figures)).sum::<u64>();
                proptest::prop_assert_eq!(sum(|f| f.received), t.received);
                proptest::prop_assert_eq!(sum(|f| f.handled), t.handled);
                proptest::prop_assert_eq!(sum(|f| f.handled_on_time), t.handled_on_time);
                proptest::prop_assert_eq!(sum(|f| f.rated), t.rated);
                proptest::prop_assert_eq!(sum(|f| f.satisfied), t.satisfied);
                proptest::prop_assert_eq!(sum(|f| f.escalations), t.escalations);
            }
        }
    }

    #[test]
    fn days_follow_local_midnights_across_a_clock_change() {
        // Berlin springs forward on 2026-03-29: that day is 23 hours long.
        let tz = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let p = Period::days(
            Date::constant(2026, 3, 28),
            Date::constant(2026, 3, 30),
            &tz,
            "Europe/Berlin",
        )
        .unwrap();
        assert_eq!(p.day_starts_ms.len(), 3);
        assert_eq!(p.day_starts_ms[2] - p.day_starts_ms[1], 23 * H);
        // 23:30 local on the 29th is 21:30 UTC: still the 29th, not the 30th.
        let mut late = row("repair", "yellow", None);
        late.created_at = p.day_starts_ms[2] - H / 2;
        let mut early = row("errands", "blue", None);
        early.created_at = p.day_starts_ms[0];
        let stats = compute(&Config::defaults().settings.sla, &p, &[late, early]);
        let per_day: Vec<(String, u64)> = stats
            .by_day
            .iter()
            .map(|d| (d.date.to_string(), d.figures.received))
            .collect();
        assert_eq!(
            per_day,
            [
                ("2026-03-28".to_string(), 1),
                ("2026-03-29".to_string(), 1),
                ("2026-03-30".to_string(), 0)
            ]
        );
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn figures_count_handled_on_time_rated_satisfied_and_escalated() {
        let sla = Config::defaults().settings.sla;
        let mut a = row("repair", "yellow", Some("网格3"));
        (a.accepted_at, a.done_at, a.rating) = (Some(H / 2), Some(5 * H), Some(5));
        let mut b = row("repair", "yellow", Some("网格3"));
        (b.accepted_at, b.done_at, b.rating, b.escalated) = (Some(3 * H), Some(6 * H), Some(4), 1);
        let mut c = row("errands", "blue", None);
        (c.accepted_at, c.done_at, c.rating, c.escalated) = (Some(H), Some(30 * H), Some(2), 1);
        let d = row("repair", "yellow", Some("网格3"));
        let rows = vec![a, b, c, d];
        let s = compute(&sla, &period(), &rows);
        assert_eq!(
            s.total,
            Figures {
                received: 4,
                handled: 3,
                handled_on_time: 1,
                median_accept_secs: Some(3600.0),
                median_done_secs: Some(6.0 * 3600.0),
                rated: 3,
                satisfied: 2,
                share_rated: Some(1.0),
                satisfaction: Some(2.0 / 3.0),
                escalations: 2,
            }
        );
        let keys = |g: &[Group]| g.iter().map(|g| g.key.clone()).collect::<Vec<_>>();
        assert_eq!(
            keys(&s.by_category),
            vec![Some("repair".into()), Some("errands".into())]
        );
        assert_eq!(
            keys(&s.by_grade),
            vec![Some("yellow".into()), Some("blue".into())]
        );
        assert_eq!(keys(&s.by_grid), vec![Some("网格3".into()), None]);
        assert_eq!(s.by_grid[0].figures.received, 3);
        assert_eq!(s.by_grid[0].figures.share_rated, Some(1.0));
        assert_eq!(s.by_category[1].figures.satisfaction, Some(0.0));
    }

    #[test]
    fn nothing_received_gives_zeros_and_no_shares() {
        let s = compute(&Config::defaults().settings.sla, &period(), &[]);
        assert_eq!(s.total.received, 0);
        assert_eq!(s.total.share_rated, None);
        assert_eq!(s.total.median_done_secs, None);
        assert!(s.by_category.is_empty());
    }

    #[test]
    fn a_period_is_whole_local_days() {
        let p = period();
        let start: jiff::Timestamp = "2025-12-31T16:00:00Z".parse().unwrap();
        let end: jiff::Timestamp = "2026-01-31T16:00:00Z".parse().unwrap();
        assert_eq!(
            (p.start_ms, p.end_ms),
            (start.as_millisecond(), end.as_millisecond())
        );
    }

    #[test]
    fn an_iso_week_runs_monday_to_sunday() {
        let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        let w = Period::iso_week("2026-W47", &tz, "Asia/Shanghai").unwrap();
        assert_eq!(
            (w.from, w.to),
            (Date::constant(2026, 11, 16), Date::constant(2026, 11, 22))
        );
        let w = Period::iso_week("2026-W01", &tz, "Asia/Shanghai").unwrap();
        assert_eq!(w.from, Date::constant(2025, 12, 29));
        for bad in ["2026-47", "2026-W54", "W47", "2026-W", "26-W47", "2026-Wxx"] {
            assert!(
                Period::iso_week(bad, &tz, "Asia/Shanghai").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn dates_must_be_written_in_full() {
        assert_eq!(
            parse_date("2026-11-01").unwrap(),
            Date::constant(2026, 11, 1)
        );
        for bad in [
            "2026-11-31",
            "2026-1-1",
            "yesterday",
            "",
            "2026/11/01",
            "20261101",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        assert!(matches!(
            Period::days(
                Date::constant(2026, 2, 1),
                Date::constant(2026, 1, 1),
                &tz,
                "x"
            ),
            Err(PeriodError::Backwards { .. })
        ));
    }
}

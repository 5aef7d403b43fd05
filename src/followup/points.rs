//! Points, pure: what a finished job earns by category and grade, and a
//! volunteer's rank among this month's totals. The ledger holds the truth;
//! these only compute.

use crate::domain::{Category, Grade};

/// Points for one finished job: a base by how much the job asks of a
/// volunteer, plus a bonus for urgency.
pub fn for_job(category: Category, grade: Grade) -> i64 {
    let base = match category {
        Category::Repair | Category::Escort | Category::Emergency => 10,
        Category::Errands | Category::Companion => 6,
        Category::Other => 5,
    };
    let urgency = match grade {
        Grade::Red => 5,
        Grade::Yellow => 2,
        Grade::Blue => 0,
    };
    base + urgency
}

/// A volunteer's standing this month: points, rank (1 is best; equal totals
/// share a rank) and how many volunteers earned points. `None` when the
/// volunteer earned nothing this month.
pub fn month_rank(totals: &[(i64, i64)], volunteer_id: i64) -> Option<(i64, u32, u32)> {
    let mine = totals
        .iter()
        .find(|(id, _)| *id == volunteer_id)
        .map(|(_, p)| *p)
        .filter(|p| *p > 0)?;
    let earners = totals.iter().filter(|(_, p)| *p > 0).count() as u32;
    let ahead = totals.iter().filter(|(_, p)| *p > mine).count() as u32;
    Some((mine, ahead + 1, earners))
}

/// The local calendar month holding `now_ms`, as Unix-ms bounds `[start, end)`.
pub fn month_bounds(tz: &jiff::tz::TimeZone, now_ms: i64) -> anyhow::Result<(i64, i64)> {
    let local = jiff::Timestamp::from_millisecond(now_ms)?.to_zoned(tz.clone());
    let first = local.date().first_of_month();
    let next = first.checked_add(jiff::Span::new().months(1))?;
    let start = first.to_zoned(tz.clone())?.timestamp().as_millisecond();
    let end = next.to_zoned(tz.clone())?.timestamp().as_millisecond();
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urgent_and_demanding_jobs_earn_more() {
        assert_eq!(for_job(Category::Repair, Grade::Yellow), 12);
        assert_eq!(for_job(Category::Repair, Grade::Red), 15);
        assert_eq!(for_job(Category::Errands, Grade::Blue), 6);
        assert_eq!(for_job(Category::Other, Grade::Blue), 5);
        for c in Category::ALL {
            assert!(for_job(*c, Grade::Red) > for_job(*c, Grade::Yellow));
            assert!(for_job(*c, Grade::Yellow) > for_job(*c, Grade::Blue));
            assert!(for_job(*c, Grade::Blue) > 0);
        }
    }

    #[test]
    fn equal_totals_share_a_rank_and_nobody_without_points_is_ranked() {
        let totals = [(1, 30), (2, 50), (3, 30), (4, 0), (5, 10)];
        assert_eq!(month_rank(&totals, 2), Some((50, 1, 4)));
        assert_eq!(month_rank(&totals, 1), Some((30, 2, 4)));
        assert_eq!(month_rank(&totals, 3), Some((30, 2, 4)));
        assert_eq!(month_rank(&totals, 5), Some((10, 4, 4)));
        assert_eq!(month_rank(&totals, 4), None);
        assert_eq!(month_rank(&totals, 9), None);
    }

    #[test]
    fn a_month_is_the_local_calendar_month() {
        let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        // 2026-11-30T20:00Z is 2026-12-01 04:00 in Shanghai: December there.
        let now = "2026-11-30T20:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        let (start, end) = month_bounds(&tz, now).unwrap();
        let s: jiff::Timestamp = "2026-11-30T16:00:00Z".parse().unwrap();
        let e: jiff::Timestamp = "2026-12-31T16:00:00Z".parse().unwrap();
        assert_eq!((start, end), (s.as_millisecond(), e.as_millisecond()));
    }
}

//! Which volunteers to offer a request to, and in what order: a pure ranking over
//! candidates already loaded (the database narrows them first with
//! [`GeoPoint::bounding_box`](crate::domain::GeoPoint::bounding_box) and the same radius).
//!
//! A candidate is kept when they are available, not opted out, below their `max_active`
//! jobs, have the request's category as a skill, have not been offered this request yet,
//! are outside their quiet hours (ignored for a red request), and are within the radius.
//!
//! Order: great-circle distance first, but measured in [`DISTANCE_BUCKET_M`] steps, so that
//! two volunteers a few metres apart count as equally near (positions are a home address or a
//! grid cell's centre, not a live fix, and a 40 m difference is noise on foot). Within a step:
//! a volunteer who speaks the resident's language, then the one offered least recently (never
//! offered first), then the exact distance, then the id, so the order is total and stable.

use crate::config::ClockRange;
use crate::domain::{Category, GeoPoint, Grade, Language, VolunteerId};
use jiff::civil::Time;
use std::cmp::Ordering;

/// Distances within the same step of this many metres are treated as ties.
pub const DISTANCE_BUCKET_M: f64 = 100.0;

/// One volunteer as the ranking sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: VolunteerId,
    pub position: GeoPoint,
    pub skills: Vec<Category>,
    pub languages: Vec<Language>,
    /// Not paused with `OFF`.
    pub available: bool,
    /// Opted out with `STOP`.
    pub opted_out: bool,
    pub active_jobs: u32,
    pub max_active: u32,
    /// The volunteer's own quiet hours or the default; `None` when off.
    pub quiet_hours: Option<ClockRange>,
    /// When this volunteer last received any offer, in Unix milliseconds.
    pub last_offered_at: Option<i64>,
    /// Already offered this request in this round (an operator's "offer again"
    /// starts a new one), or holding a pending offer for it.
    pub already_offered: bool,
}

/// What the request needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Need {
    pub category: Category,
    pub grade: Grade,
    pub position: GeoPoint,
    /// The resident's language.
    pub language: Language,
    /// This wave's search radius.
    pub radius_m: f64,
    /// The community's wall-clock time now (`timezone`), for quiet hours.
    pub local_time: Time,
}

/// Whether `c` may be offered `need`, ignoring distance.
pub fn eligible(need: &Need, c: &Candidate) -> bool {
    c.available
        && !c.opted_out
        && c.active_jobs < c.max_active
        && !c.already_offered
        && c.skills.contains(&need.category)
        && (need.grade == Grade::Red || !c.quiet_hours.is_some_and(|q| q.contains(need.local_time)))
}

struct Ranked<'a> {
    bucket: u64,
    language_miss: bool,
    distance_m: f64,
    c: &'a Candidate,
}

impl Ranked<'_> {
    fn cmp(&self, o: &Self) -> Ordering {
        self.bucket
            .cmp(&o.bucket)
            .then(self.language_miss.cmp(&o.language_miss))
            // `None < Some(_)`: never offered comes first, then the oldest offer.
            .then(self.c.last_offered_at.cmp(&o.c.last_offered_at))
            .then(self.distance_m.total_cmp(&o.distance_m))
            .then(self.c.id.cmp(&o.c.id))
    }
}

/// The best `limit` candidates for `need`, best first, each with their distance in metres.
pub fn rank(need: &Need, candidates: &[Candidate], limit: usize) -> Vec<(VolunteerId, f64)> {
    if limit == 0 {
        return Vec::new();
    }
    let (lat_min, lat_max, lon_min, lon_max) = need.position.bounding_box(need.radius_m);
    let mut kept: Vec<Ranked<'_>> = candidates
        .iter()
        .filter(|c| {
            // The box is a cheap first cut before the exact great-circle distance.
            let p = c.position;
            (lat_min..=lat_max).contains(&p.lat)
                && (lon_min..=lon_max).contains(&p.lon)
                && eligible(need, c)
        })
        .filter_map(|c| {
            let d = need.position.distance_m(&c.position);
            (d <= need.radius_m).then(|| Ranked {
                bucket: (d / DISTANCE_BUCKET_M) as u64,
                language_miss: !c.languages.contains(&need.language),
                distance_m: d,
                c,
            })
        })
        .collect();
    if kept.len() > limit {
        kept.select_nth_unstable_by(limit - 1, Ranked::cmp);
        kept.truncate(limit);
    }
    kept.sort_unstable_by(Ranked::cmp);
    kept.into_iter().map(|r| (r.c.id, r.distance_m)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CENTRE: (f64, f64) = (29.5630, 106.5516);

    fn at_north(m: f64) -> GeoPoint {
        GeoPoint::new(CENTRE.0 + m / 111_195.0, CENTRE.1).unwrap()
    }

    fn need() -> Need {
        Need {
            category: Category::Repair,
            grade: Grade::Yellow,
            position: at_north(0.0),
            language: Language::Zh,
            radius_m: 2_000.0,
            local_time: Time::constant(12, 0, 0, 0),
        }
    }

    fn cand(id: i64, metres: f64) -> Candidate {
        Candidate {
            id,
            position: at_north(metres),
            skills: vec![Category::Repair, Category::Errands],
            languages: vec![Language::Zh],
            available: true,
            opted_out: false,
            active_jobs: 0,
            max_active: 2,
            quiet_hours: Some(ClockRange::parse("22:00-07:00").unwrap()),
            last_offered_at: None,
            already_offered: false,
        }
    }

    fn ids(v: &[(i64, f64)]) -> Vec<i64> {
        v.iter().map(|x| x.0).collect()
    }

    #[test]
    fn nearest_comes_first_with_its_distance() {
        let cs = [cand(1, 1500.0), cand(2, 300.0), cand(3, 800.0)];
        let r = rank(&need(), &cs, 10);
        assert_eq!(ids(&r), [2, 3, 1]);
        assert!((r[0].1 - 300.0).abs() < 1.0, "{}", r[0].1);
    }

    #[test]
    fn the_limit_is_respected() {
        let cs: Vec<_> = (0..20).map(|i| cand(i, i as f64 * 50.0)).collect();
        assert_eq!(ids(&rank(&need(), &cs, 3)), [0, 1, 2]);
        assert!(rank(&need(), &cs, 0).is_empty());
    }

    #[test]
    fn unavailable_volunteers_are_skipped() {
        let mut c = cand(1, 100.0);
        c.available = false;
        assert!(rank(&need(), &[c], 5).is_empty());
    }

    #[test]
    fn opted_out_volunteers_are_skipped() {
        let mut c = cand(1, 100.0);
        c.opted_out = true;
        assert!(rank(&need(), &[c], 5).is_empty());
    }

    #[test]
    fn volunteers_at_their_job_limit_are_skipped() {
        let mut full = cand(1, 100.0);
        full.active_jobs = 2;
        let mut room = cand(2, 200.0);
        room.active_jobs = 1;
        assert_eq!(ids(&rank(&need(), &[full, room], 5)), [2]);
    }

    #[test]
    fn volunteers_without_the_skill_are_skipped() {
        let mut c = cand(1, 100.0);
        c.skills = vec![Category::Companion];
        assert!(rank(&need(), &[c], 5).is_empty());
    }

    #[test]
    fn volunteers_already_offered_this_request_are_skipped() {
        let mut c = cand(1, 100.0);
        c.already_offered = true;
        assert!(rank(&need(), &[c], 5).is_empty());
    }

    #[test]
    fn quiet_hours_hold_back_all_but_red_requests() {
        let mut n = need();
        n.local_time = Time::constant(23, 30, 0, 0);
        let mut off = cand(2, 200.0);
        off.quiet_hours = None;
        let cs = [cand(1, 100.0), off];
        assert_eq!(ids(&rank(&n, &cs, 5)), [2]);
        n.grade = Grade::Red;
        assert_eq!(ids(&rank(&n, &cs, 5)), [1, 2]);
        n.grade = Grade::Yellow;
        n.local_time = Time::constant(7, 0, 0, 0);
        assert_eq!(
            ids(&rank(&n, &cs, 5)),
            [1, 2],
            "07:00 is outside 22:00-07:00"
        );
    }

    #[test]
    fn volunteers_outside_the_radius_are_skipped() {
        let cs = [cand(1, 1_990.0), cand(2, 2_010.0), cand(3, 50_000.0)];
        assert_eq!(ids(&rank(&need(), &cs, 5)), [1]);
    }

    #[test]
    fn within_a_100_m_step_language_match_wins() {
        let mut en = cand(1, 310.0);
        en.languages = vec![Language::En];
        let zh = cand(2, 390.0);
        assert_eq!(ids(&rank(&need(), &[en.clone(), zh.clone()], 5)), [2, 1]);
        // A whole step nearer beats the language.
        let zh_far = cand(3, 420.0);
        assert_eq!(ids(&rank(&need(), &[en, zh_far], 5)), [1, 3]);
    }

    #[test]
    fn within_a_step_the_least_recently_offered_comes_first() {
        let mut recent = cand(1, 510.0);
        recent.last_offered_at = Some(2_000);
        let mut older = cand(2, 550.0);
        older.last_offered_at = Some(1_000);
        let never = cand(3, 590.0);
        assert_eq!(ids(&rank(&need(), &[recent, older, never], 5)), [3, 2, 1]);
    }

    #[test]
    fn full_ties_fall_back_to_exact_distance_then_id() {
        let cs = [cand(9, 560.0), cand(4, 520.0), cand(5, 520.0)];
        assert_eq!(ids(&rank(&need(), &cs, 5)), [4, 5, 9]);
    }

    #[test]
    fn emergencies_find_nobody_because_it_is_no_skill() {
        let mut n = need();
        n.category = Category::Emergency;
        assert!(rank(&n, &[cand(1, 10.0)], 5).is_empty());
    }

    fn arb_candidate() -> impl Strategy<Value = Candidate> {
        (
            (0i64..60, -3_000.0f64..3_000.0, -3_000.0f64..3_000.0),
            (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
            (0u32..4, 0u32..4, prop::option::of(0i64..5), any::<bool>()),
            (0u8..24, any::<bool>(), any::<bool>()),
        )
            .prop_map(
                |(
                    (id, dn, de),
                    (avail, out, offered, en),
                    (jobs, max, last, has_quiet),
                    (qh, repair, zh),
                )| {
                    Candidate {
                        id,
                        position: GeoPoint::new(
                            CENTRE.0 + dn / 111_195.0,
                            CENTRE.1 + de / 96_700.0,
                        )
                        .unwrap(),
                        skills: if repair {
                            vec![Category::Repair]
                        } else {
                            vec![Category::Escort]
                        },
                        languages: match (zh, en) {
                            (true, true) => vec![Language::Zh, Language::En],
                            (true, false) => vec![Language::Zh],
                            (false, true) => vec![Language::En],
                            (false, false) => vec![],
                        },
                        available: avail,
                        opted_out: out,
                        active_jobs: jobs,
                        max_active: max,
                        quiet_hours: has_quiet.then(|| ClockRange {
                            start: Time::constant(qh as i8, 0, 0, 0),
                            end: Time::constant(((qh + 9) % 24) as i8, 0, 0, 0),
                        }),
                        last_offered_at: last,
                        already_offered: offered,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn every_result_obeys_every_rule_in_order(
            mut cs in prop::collection::vec(arb_candidate(), 0..80),
            limit in 0usize..12,
            hour in 0i8..24,
            red in any::<bool>(),
            radius in 100.0f64..4_000.0,
        ) {
            // Ids are unique among candidates, as they are in the database.
            for (i, c) in cs.iter_mut().enumerate() { c.id = i as i64; }
            let n = Need {
                grade: if red { Grade::Red } else { Grade::Blue },
                local_time: Time::constant(hour, 30, 0, 0),
                radius_m: radius,
                ..need()
            };
            let r = rank(&n, &cs, limit);
            prop_assert!(r.len() <= limit);
            let mut seen = std::collections::HashSet::new();
            for (id, d) in &r {
                prop_assert!(seen.insert(*id), "id {id} twice");
                let c = &cs[*id as usize];
                prop_assert!(c.available && !c.opted_out && !c.already_offered);
                prop_assert!(c.active_jobs < c.max_active);
                prop_assert!(c.skills.contains(&n.category));
                prop_assert!(red || !c.quiet_hours.is_some_and(|q| q.contains(n.local_time)));
                prop_assert!(*d <= radius);
                prop_assert!((n.position.distance_m(&c.position) - d).abs() < 1e-6);
            }
            for w in r.windows(2) {
                let (a, b) = (&cs[w[0].0 as usize], &cs[w[1].0 as usize]);
                let (ba, bb) = ((w[0].1 / DISTANCE_BUCKET_M) as u64, (w[1].1 / DISTANCE_BUCKET_M) as u64);
                prop_assert!(ba <= bb, "sorted by distance step");
                if ba == bb {
                    let (la, lb) = (a.languages.contains(&n.language), b.languages.contains(&n.language));
                    prop_assert!(la >= lb, "language match first within a step");
                    if la == lb {
                        prop_assert!(a.last_offered_at <= b.last_offered_at);
                    }
                }
            }
            // Nothing eligible and nearer was left out: the result is the true top `limit`.
            let all = rank(&n, &cs, usize::MAX);
            prop_assert_eq!(&all[..r.len()], &r[..]);
            prop_assert_eq!(r.len(), all.len().min(limit));
        }
    }
}

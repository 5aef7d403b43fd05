//! A made-up neighbourhood for the demo: residents, volunteers and a month of
//! past requests around one district of Chongqing (the demo hotline number is a
//! Chongqing one). Pure and deterministic: the same seed gives the same people,
//! so a training session can be repeated and the tests can count what is made.

use crate::domain::{Category, GeoPoint, Grade, Language, PhoneNumber};
use crate::import::{ResidentRow, VolunteerRow};

/// The middle of the demo district (Yuzhong, Chongqing).
pub const CENTRE: (f64, f64) = (29.5560, 106.5720);

/// The district's grids (网格): each residents' block has its own.
pub const GRIDS: [(&str, f64, f64); 6] = [
    ("解放碑", 29.5580, 106.5770),
    ("七星岗", 29.5560, 106.5620),
    ("两路口", 29.5530, 106.5500),
    ("上清寺", 29.5640, 106.5530),
    ("大坪", 29.5420, 106.5230),
    ("石油路", 29.5380, 106.5330),
];

const STREETS: [&str; 8] = [
    "民族路",
    "中山一路",
    "枇杷山正街",
    "人和街",
    "大坪正街",
    "石油路",
    "和平路",
    "领事巷",
];

const SURNAMES: [&str; 24] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "唐",
];
const ELDER_GIVEN: [&str; 20] = [
    "秀英", "桂兰", "玉兰", "淑珍", "凤英", "建国", "国强", "志华", "德明", "秀兰", "文华", "素芬",
    "宝山", "永福", "金花", "翠英", "长林", "树森", "桂芳", "明德",
];
const YOUNG_GIVEN: [&str; 20] = [
    "晓东", "丽娜", "子涵", "浩然", "欣怡", "俊杰", "雨桐", "志强", "思远", "佳怡", "宇航", "婷婷",
    "嘉豪", "梓萱", "明轩", "诗雨", "博文", "一鸣", "可欣", "天宇",
];
const ENGLISH_NAMES: [&str; 12] = [
    "Margaret Lee",
    "John Chen",
    "Helen Wong",
    "David Smith",
    "Mary Brown",
    "Peter Zhang",
    "Susan Taylor",
    "Robert Liu",
    "Anna Müller",
    "James Wilson",
    "Grace Ho",
    "Thomas Martin",
];

/// What happened to a past request, as the figures count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PastOutcome {
    /// Done and rated.
    Rated(i64),
    /// Done; the resident never answered the rating question.
    Unrated,
    /// Nobody accepted in time: escalated, then an operator found help.
    EscalatedThenHelped(i64),
    /// The resident called it off.
    Cancelled,
}

/// One request of the past month, already finished.
#[derive(Debug, Clone)]
pub struct PastRequest {
    /// Index into `Neighbourhood::residents`.
    pub resident: usize,
    /// Index into `Neighbourhood::volunteers`; `None` when cancelled before anyone came.
    pub volunteer: Option<usize>,
    pub category: Category,
    pub grade: Grade,
    pub voice: bool,
    pub description: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub accepted_after_ms: i64,
    pub done_after_ms: i64,
    pub outcome: PastOutcome,
}

#[derive(Debug, Clone)]
pub struct Neighbourhood {
    pub residents: Vec<ResidentRow>,
    pub volunteers: Vec<VolunteerRow>,
    pub past: Vec<PastRequest>,
}

/// SplitMix64: a few lines, and the same sequence on every platform and
/// every version of every crate, which is what a repeatable demo needs.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// A point within `radius_m` of `(lat, lon)`.
    fn near(&mut self, lat: f64, lon: f64, radius_m: f64) -> GeoPoint {
        let r = radius_m * self.unit().sqrt();
        let angle = self.unit() * std::f64::consts::TAU;
        let dlat = r * angle.cos() / 111_320.0;
        let dlon = r * angle.sin() / (111_320.0 * lat.to_radians().cos());
        GeoPoint::new(lat + dlat, lon + dlon).expect("near the district centre")
    }
}

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

impl Neighbourhood {
    /// `now_ms` anchors the month of history: every past request ends before it.
    pub fn generate(
        seed: u64,
        residents: usize,
        volunteers: usize,
        past: usize,
        now_ms: i64,
    ) -> Neighbourhood {
        let mut dice = Dice(seed);
        let residents: Vec<ResidentRow> = (0..residents)
            .map(|i| make_resident(&mut dice, i))
            .collect();
        let volunteers: Vec<VolunteerRow> = (0..volunteers)
            .map(|i| make_volunteer(&mut dice, i))
            .collect();
        let mut past: Vec<PastRequest> = (0..past)
            .map(|_| make_past(&mut dice, &residents, &volunteers, now_ms))
            .collect();
        // Ids then follow time, as they do for live requests.
        past.sort_by_key(|p| p.created_at);
        Neighbourhood {
            residents,
            volunteers,
            past,
        }
    }
}

fn chinese_name(dice: &mut Dice, given: &[&str]) -> String {
    format!("{}{}", dice.pick(&SURNAMES), dice.pick(given))
}

fn make_resident(dice: &mut Dice, i: usize) -> ResidentRow {
    let english = dice.chance(0.08);
    let name = if english {
        dice.pick(&ENGLISH_NAMES).to_string()
    } else {
        chinese_name(dice, &ELDER_GIVEN)
    };
    let (grid, glat, glon) = GRIDS[i % GRIDS.len()];
    let position = dice.near(glat, glon, 450.0);
    // One in six has only a fixed line at home: they are called, not texted.
    let landline = dice.chance(1.0 / 6.0);
    let phone = if landline {
        format!("+8623{:08}", 63_000_000 + i)
    } else {
        format!("+86138{:08}", 23_000_000 + i)
    };
    let address = format!(
        "重庆市渝中区{}{}号{}栋{}室",
        dice.pick(&STREETS),
        1 + dice.below(200),
        1 + dice.below(12),
        101 + 100 * dice.below(8) + dice.below(4)
    );
    ResidentRow {
        line: i as u64 + 2,
        name,
        phone: PhoneNumber::from_e164(&phone).expect("a valid demo number"),
        address,
        position: Some(position),
        language: if english { Language::En } else { Language::Zh },
        grid: Some(grid.to_string()),
        contact: None,
    }
}

const SKILLS: [Category; 5] = [
    Category::Repair,
    Category::Errands,
    Category::Escort,
    Category::Companion,
    Category::Other,
];

fn make_volunteer(dice: &mut Dice, i: usize) -> VolunteerRow {
    let english = dice.chance(0.1);
    let name = if english {
        dice.pick(&ENGLISH_NAMES).to_string()
    } else {
        chinese_name(dice, &YOUNG_GIVEN)
    };
    let position = dice.near(CENTRE.0, CENTRE.1, 3_000.0);
    let mut skills: Vec<Category> = SKILLS
        .iter()
        .copied()
        .filter(|_| dice.chance(0.4))
        .collect();
    if skills.is_empty() {
        skills.push(*dice.pick(&SKILLS));
    }
    let languages = if english {
        vec![Language::En, Language::Zh]
    } else if dice.chance(0.2) {
        vec![Language::Zh, Language::En]
    } else {
        vec![Language::Zh]
    };
    VolunteerRow {
        line: i as u64 + 2,
        name,
        phone: PhoneNumber::from_e164(&format!("+86139{:08}", 23_000_000 + i))
            .expect("a valid demo number"),
        position,
        skills,
        languages,
        max_active: 1 + (dice.chance(0.3) as i64),
    }
}

fn describe(category: Category, english: bool) -> &'static str {
    match (category, english) {
        (Category::Repair, false) => "厨房水管漏水",
        (Category::Repair, true) => "The kitchen tap is leaking",
        (Category::Errands, false) => "帮忙去药房取降压药",
        (Category::Errands, true) => "Please fetch my blood pressure pills",
        (Category::Escort, false) => "明早陪我去医院复查",
        (Category::Escort, true) => "Take me to the clinic tomorrow morning",
        (Category::Companion, false) => "一个人在家，想有人来坐坐",
        (Category::Companion, true) => "I live alone and would like a visit",
        (_, false) => "电视没有信号了",
        (_, true) => "My television has no signal",
    }
}

fn make_past(
    dice: &mut Dice,
    residents: &[ResidentRow],
    volunteers: &[VolunteerRow],
    now_ms: i64,
) -> PastRequest {
    let resident = dice.below(residents.len());
    let category = *dice.pick(&[
        Category::Repair,
        Category::Repair,
        Category::Errands,
        Category::Errands,
        Category::Errands,
        Category::Escort,
        Category::Companion,
        Category::Companion,
        Category::Other,
    ]);
    let grade = if dice.chance(0.06) {
        Grade::Red
    } else {
        category.default_grade()
    };
    // Spread over the 30 days before today, between 07:00 and 19:00 local
    // time (Chongqing is UTC+8 all year).
    const UTC8_MS: i64 = 8 * 3_600_000;
    let today = (now_ms + UTC8_MS).div_euclid(DAY_MS) * DAY_MS - UTC8_MS;
    let day = 1 + dice.below(30) as i64;
    let created_at = today - day * DAY_MS + (7 * 60 + dice.below(12 * 60) as i64) * MINUTE_MS;
    let accepted_after_ms = match grade {
        Grade::Red => (2 + dice.below(10) as i64) * MINUTE_MS,
        _ => (3 + dice.below(90) as i64) * MINUTE_MS,
    };
    let done_after_ms = accepted_after_ms + (20 + dice.below(300) as i64) * MINUTE_MS;
    let roll = dice.unit();
    let outcome = if roll < 0.02 {
        PastOutcome::Cancelled
    } else if roll < 0.05 {
        PastOutcome::EscalatedThenHelped(4 + dice.below(2) as i64)
    } else if roll < 0.17 {
        PastOutcome::Unrated
    } else {
        // 98% of those rated are satisfied, as the platforms this learns from report.
        let r = dice.unit();
        PastOutcome::Rated(if r < 0.01 {
            2
        } else if r < 0.02 {
            3
        } else if r < 0.25 {
            4
        } else {
            5
        })
    };
    let volunteer = match outcome {
        PastOutcome::Cancelled => None,
        _ => Some(nearest_with_skill(
            residents, volunteers, resident, category,
        )),
    };
    let english = residents[resident].language == Language::En;
    PastRequest {
        resident,
        volunteer,
        category,
        grade,
        voice: dice.chance(0.8),
        description: describe(category, english).to_string(),
        created_at,
        accepted_after_ms,
        done_after_ms,
        outcome,
    }
}

/// The history should look like the dispatcher made it: the nearest volunteer
/// with the skill did the job.
fn nearest_with_skill(
    residents: &[ResidentRow],
    volunteers: &[VolunteerRow],
    resident: usize,
    category: Category,
) -> usize {
    let at = residents[resident]
        .position
        .expect("demo residents have a position");
    let key = |v: &VolunteerRow| v.position.distance_m(&at);
    volunteers
        .iter()
        .enumerate()
        .filter(|(_, v)| v.skills.contains(&category))
        .min_by(|a, b| key(a.1).total_cmp(&key(b.1)))
        .or_else(|| {
            volunteers
                .iter()
                .enumerate()
                .min_by(|a, b| key(a.1).total_cmp(&key(b.1)))
        })
        .map(|(i, _)| i)
        .expect("the demo has volunteers")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;

    #[test]
    fn the_same_seed_makes_the_same_neighbourhood() {
        let a = Neighbourhood::generate(7, 50, 80, 100, NOW);
        let b = Neighbourhood::generate(7, 50, 80, 100, NOW);
        let names = |n: &Neighbourhood| {
            n.residents
                .iter()
                .map(|r| r.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&a), names(&b));
        let c = Neighbourhood::generate(8, 50, 80, 100, NOW);
        assert_ne!(names(&a), names(&c));
    }

    #[test]
    fn phones_are_unique_and_valid() {
        let n = Neighbourhood::generate(1, 400, 400, 10, NOW);
        let mut phones: Vec<&str> = n
            .residents
            .iter()
            .map(|r| r.phone.as_str())
            .chain(n.volunteers.iter().map(|v| v.phone.as_str()))
            .collect();
        let count = phones.len();
        phones.sort();
        phones.dedup();
        assert_eq!(phones.len(), count);
        assert!(n.residents.iter().any(|r| !r.phone.is_mobile()));
        assert!(n.residents.iter().any(|r| r.phone.is_mobile()));
    }

    #[test]
    fn everyone_lives_in_the_district() {
        let n = Neighbourhood::generate(3, 300, 300, 0, NOW);
        let centre = GeoPoint::new(CENTRE.0, CENTRE.1).unwrap();
        for r in &n.residents {
            assert!(r.position.unwrap().distance_m(&centre) < 6_000.0);
            assert!(r.grid.is_some());
        }
        for v in &n.volunteers {
            assert!(v.position.distance_m(&centre) <= 3_001.0);
            assert!(!v.skills.is_empty());
        }
        // Both languages are spoken.
        assert!(n.residents.iter().any(|r| r.language == Language::En));
        assert!(n.residents.iter().any(|r| r.language == Language::Zh));
    }

    #[test]
    fn the_history_lies_in_the_past_month_and_is_mostly_satisfied() {
        let n = Neighbourhood::generate(580, 200, 300, 240, NOW);
        assert_eq!(n.past.len(), 240);
        let mut rated = 0;
        let mut satisfied = 0;
        for p in &n.past {
            assert!(p.created_at < NOW && p.created_at > NOW - 31 * DAY_MS);
            let local_hour = (p.created_at + 8 * 3_600_000).rem_euclid(DAY_MS) / 3_600_000;
            assert!((7..19).contains(&local_hour), "{local_hour}");
            assert!(p.created_at + p.done_after_ms < NOW);
            assert!(p.accepted_after_ms < p.done_after_ms);
            if let PastOutcome::Rated(r) | PastOutcome::EscalatedThenHelped(r) = p.outcome {
                rated += 1;
                satisfied += (r >= 4) as i32;
            }
            if let Some(v) = p.volunteer {
                // The helper came with the skill when anyone near had it.
                assert!(n.volunteers[v].skills.contains(&p.category));
            }
        }
        assert!(
            n.past
                .windows(2)
                .all(|w| w[0].created_at <= w[1].created_at)
        );
        assert!(rated > 150, "{rated}");
        assert!(satisfied * 100 / rated >= 90, "{satisfied}/{rated}");
    }
}

//! Clock ranges ("22:00-07:00") and staffed hours ("Mon-Fri 08:30-17:30"), pure.

use super::HoursSetting;
use jiff::civil::{Date, DateTime, Time, Weekday};

/// A daily range of wall-clock time; it may wrap past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockRange {
    pub start: Time,
    pub end: Time,
}

impl ClockRange {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (a, b) = s
            .trim()
            .split_once('-')
            .ok_or_else(|| format!("`{s}` is not a range such as 22:00-07:00"))?;
        let t = |x: &str| {
            Time::strptime("%H:%M", x.trim())
                .map_err(|_| format!("`{x}` is not a time such as 07:00"))
        };
        Ok(Self {
            start: t(a)?,
            end: t(b)?,
        })
    }

    pub fn contains(&self, t: Time) -> bool {
        if self.start <= self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct HoursRule {
    days: Vec<Weekday>,
    range: ClockRange,
}

/// When `operators.phone` is staffed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffedHours {
    always: bool,
    rules: Vec<HoursRule>,
    closed: Vec<Date>,
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

fn day(s: &str) -> Result<Weekday, String> {
    let l = s.trim().to_ascii_lowercase();
    DAYS.iter()
        .find(|(n, _)| l.starts_with(n))
        .map(|(_, d)| *d)
        .ok_or_else(|| format!("`{s}` is not a weekday such as Mon"))
}

fn days(spec: &str) -> Result<Vec<Weekday>, String> {
    let mut out = Vec::new();
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (mut d, end) = (day(a)?, day(b)?);
                loop {
                    out.push(d);
                    if d == end {
                        break;
                    }
                    d = d.next();
                }
            }
            None => out.push(day(part)?),
        }
    }
    Ok(out)
}

impl StaffedHours {
    pub fn parse(hours: &HoursSetting, closed: &[String]) -> Result<Self, (&'static str, String)> {
        let closed = closed
            .iter()
            .map(|d| {
                d.trim().parse::<Date>().map_err(|_| {
                    (
                        "operators.closed_dates",
                        format!("`{d}` is not a date such as 2026-10-01"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (always, rules) = match hours {
            HoursSetting::Word(w) if w.trim() == "always" => (true, vec![]),
            HoursSetting::Word(w) => (
                false,
                vec![Self::rule(w).map_err(|e| ("operators.hours", e))?],
            ),
            HoursSetting::Rules(rs) => (
                false,
                rs.iter()
                    .map(|r| Self::rule(r))
                    .collect::<Result<_, _>>()
                    .map_err(|e| ("operators.hours", e))?,
            ),
        };
        Ok(Self {
            always,
            rules,
            closed,
        })
    }

    fn rule(s: &str) -> Result<HoursRule, String> {
        let (d, r) = s.trim().split_once(' ').ok_or_else(|| {
            format!("`{s}` is not `always` or a rule such as \"Mon-Fri 08:30-17:30\"")
        })?;
        Ok(HoursRule {
            days: days(d)?,
            range: ClockRange::parse(r)?,
        })
    }

    /// Whether a person answers `operators.phone` at this local time.
    pub fn is_staffed(&self, local: DateTime) -> bool {
        if self.closed.contains(&local.date()) {
            return false;
        }
        self.always
            || self
                .rules
                .iter()
                .any(|r| r.days.contains(&local.weekday()) && r.range.contains(local.time()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn rules(v: &[&str]) -> HoursSetting {
        HoursSetting::Rules(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn quiet_hours_wrap_past_midnight() {
        let q = ClockRange::parse("22:00-07:00").unwrap();
        assert!(q.contains(Time::constant(23, 0, 0, 0)));
        assert!(q.contains(Time::constant(6, 59, 0, 0)));
        assert!(!q.contains(Time::constant(7, 0, 0, 0)));
        assert!(!q.contains(Time::constant(12, 0, 0, 0)));
    }

    #[test]
    fn staffed_hours_follow_weekdays_and_holidays() {
        let h = StaffedHours::parse(
            &rules(&["Mon-Fri 08:30-17:30", "Sat 09:00-12:00"]),
            &["2026-10-01".into()],
        )
        .unwrap();
        // 2026-11-23 is a Monday.
        assert!(h.is_staffed(date(2026, 11, 23).at(9, 0, 0, 0)));
        assert!(!h.is_staffed(date(2026, 11, 23).at(18, 0, 0, 0)));
        assert!(h.is_staffed(date(2026, 11, 28).at(10, 0, 0, 0)));
        assert!(!h.is_staffed(date(2026, 11, 29).at(10, 0, 0, 0)));
        // 2026-10-01 is a Thursday, but a holiday.
        assert!(!h.is_staffed(date(2026, 10, 1).at(10, 0, 0, 0)));
    }

    #[test]
    fn always_is_always_but_for_holidays() {
        let h = StaffedHours::parse(&HoursSetting::Word("always".into()), &["2026-10-01".into()])
            .unwrap();
        assert!(h.is_staffed(date(2026, 11, 29).at(3, 0, 0, 0)));
        assert!(!h.is_staffed(date(2026, 10, 1).at(10, 0, 0, 0)));
    }

    #[test]
    fn bad_rules_name_the_key() {
        let e = StaffedHours::parse(&rules(&["Funday 08:00-09:00"]), &[]).unwrap_err();
        assert_eq!(e.0, "operators.hours");
        let e = StaffedHours::parse(&HoursSetting::Word("always".into()), &["tomorrow".into()])
            .unwrap_err();
        assert_eq!(e.0, "operators.closed_dates");
    }
}

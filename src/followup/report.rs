//! The figures as a report: plain text (the default), CSV, or printable HTML.
//! Pure: a [`Stats`] in, a document out. HTML is written with an XML writer
//! that escapes every text, so a grid's name cannot break the page.

use super::stats::{Figures, Stats};
use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Csv,
    Html,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Format::Text),
            "csv" => Ok(Format::Csv),
            "html" => Ok(Format::Html),
            other => Err(format!(
                "unknown format `{other}` (expected text, csv or html)"
            )),
        }
    }
}

/// `hotline580 report --week 2026-W47`: reads the week's figures and renders them.
pub async fn weekly(
    config: &crate::config::Config,
    week: &str,
    format: Format,
) -> anyhow::Result<String> {
    let period = super::stats::Period::iso_week(week, &config.tz, &config.settings.timezone)?;
    let db = crate::store::Db::connect(&config.settings.database.url).await?;
    db.migrate().await?;
    let stats = super::stats::for_period(&db, config, &period).await;
    db.close().await;
    Ok(render(&stats?, week.trim(), format))
}

/// Every line of the report: section (`all`, `category`, `grade`, `grid`), key, figures.
pub fn lines(stats: &Stats) -> Vec<(&'static str, String, &Figures)> {
    let mut out = vec![("all", String::new(), &stats.total)];
    for (section, groups) in [
        ("category", &stats.by_category),
        ("grade", &stats.by_grade),
        ("grid", &stats.by_grid),
    ] {
        for g in groups {
            out.push((
                section,
                g.key.clone().unwrap_or_else(|| "(none)".into()),
                &g.figures,
            ));
        }
    }
    out
}

/// A duration for people: `45m`, `5h30m`, `2d3h`.
pub fn duration(secs: f64) -> String {
    let m = (secs / 60.0).round() as i64;
    match m {
        m if m < 60 => format!("{m}m"),
        m if m < 24 * 60 => match m % 60 {
            0 => format!("{}h", m / 60),
            r => format!("{}h{r}m", m / 60),
        },
        m => match (m / 60) % 24 {
            0 => format!("{}d", m / 1440),
            h => format!("{}d{h}h", m / 1440),
        },
    }
}

fn percent(share: Option<f64>) -> String {
    share
        .map(|s| format!("{:.0}%", s * 100.0))
        .unwrap_or_else(|| "-".into())
}

fn opt_duration(secs: Option<f64>) -> String {
    secs.map(duration).unwrap_or_else(|| "-".into())
}

const HEADINGS: [&str; 12] = [
    "group",
    "key",
    "received",
    "handled",
    "on time",
    "median to accept",
    "median to done",
    "rated",
    "satisfied",
    "rated %",
    "satisfied %",
    "escalations",
];

fn cells(section: &str, key: &str, f: &Figures) -> [String; 12] {
    [
        section.to_string(),
        key.to_string(),
        f.received.to_string(),
        f.handled.to_string(),
        f.handled_on_time.to_string(),
        opt_duration(f.median_accept_secs),
        opt_duration(f.median_done_secs),
        f.rated.to_string(),
        f.satisfied.to_string(),
        percent(f.share_rated),
        percent(f.satisfaction),
        f.escalations.to_string(),
    ]
}

fn title(stats: &Stats, label: &str) -> String {
    format!(
        "hotline580 figures {label}: {} to {} ({})",
        stats.from, stats.to, stats.timezone
    )
}

pub fn render(stats: &Stats, label: &str, format: Format) -> String {
    match format {
        Format::Text => text(stats, label),
        Format::Csv => csv(stats),
        Format::Html => html(stats, label),
    }
}

/// Columns padded to their widest cell.
pub fn text(stats: &Stats, label: &str) -> String {
    let mut table: Vec<[String; 12]> = vec![HEADINGS.map(str::to_string)];
    table.extend(lines(stats).iter().map(|(s, k, f)| cells(s, k, f)));
    let widths: Vec<usize> = (0..12)
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!("{}\n\n", title(stats, label));
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// One row per line; times in seconds and shares as fractions, for spreadsheets.
pub fn csv(stats: &Stats) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "group",
        "key",
        "received",
        "handled",
        "handled_on_time",
        "median_accept_secs",
        "median_done_secs",
        "rated",
        "satisfied",
        "share_rated",
        "satisfaction",
        "escalations",
    ]);
    let num = |v: Option<f64>| {
        v.map(|v| {
            format!("{v:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        })
        .unwrap_or_default()
    };
    for (section, key, f) in lines(stats) {
        let _ = w.write_record([
            section.to_string(),
            key,
            f.received.to_string(),
            f.handled.to_string(),
            f.handled_on_time.to_string(),
            num(f.median_accept_secs),
            num(f.median_done_secs),
            f.rated.to_string(),
            f.satisfied.to_string(),
            num(f.share_rated),
            num(f.satisfaction),
            f.escalations.to_string(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

const PRINT_CSS: &str = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
th,td{border:1px solid #444;padding:.25em .5em;text-align:right}th:first-child,td:nth-child(-n+2){text-align:left}\
@media print{body{margin:0}@page{size:A4 landscape;margin:1cm}}";

/// A printable page (A4 landscape).
pub fn html(stats: &Stats, label: &str) -> String {
    fn el(w: &mut Writer<Vec<u8>>, name: &str, text: &str) -> std::io::Result<()> {
        w.create_element(name)
            .write_text_content(BytesText::new(text))
            .map(|_| ())
    }
    let heading = title(stats, label);
    let write = || -> std::io::Result<Vec<u8>> {
        let mut w = Writer::new(Vec::new());
        w.write_event(Event::DocType(BytesText::from_escaped("html")))?;
        let mut root = BytesStart::new("html");
        root.push_attribute(("lang", "zh"));
        w.write_event(Event::Start(root))?;
        w.write_event(Event::Start(BytesStart::new("head")))?;
        let mut meta = BytesStart::new("meta");
        meta.push_attribute(("charset", "utf-8"));
        w.write_event(Event::Empty(meta))?;
        el(&mut w, "title", &heading)?;
        el(&mut w, "style", PRINT_CSS)?;
        w.write_event(Event::End(BytesEnd::new("head")))?;
        w.write_event(Event::Start(BytesStart::new("body")))?;
        el(&mut w, "h1", &heading)?;
        w.write_event(Event::Start(BytesStart::new("table")))?;
        w.write_event(Event::Start(BytesStart::new("tr")))?;
        for h in HEADINGS {
            el(&mut w, "th", h)?;
        }
        w.write_event(Event::End(BytesEnd::new("tr")))?;
        for (section, key, f) in lines(stats) {
            w.write_event(Event::Start(BytesStart::new("tr")))?;
            for c in cells(section, &key, f) {
                el(&mut w, "td", &c)?;
            }
            w.write_event(Event::End(BytesEnd::new("tr")))?;
        }
        w.write_event(Event::End(BytesEnd::new("table")))?;
        w.write_event(Event::End(BytesEnd::new("body")))?;
        w.write_event(Event::End(BytesEnd::new("html")))?;
        Ok(w.into_inner())
    };
    String::from_utf8(write().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::followup::stats::{Group, Stats};
    use jiff::civil::Date;

    fn figures(received: u64) -> Figures {
        Figures {
            received,
            handled: 2,
            handled_on_time: 1,
            median_accept_secs: Some(2700.0),
            median_done_secs: Some(19_800.0),
            rated: 2,
            satisfied: 1,
            share_rated: Some(1.0),
            satisfaction: Some(0.5),
            escalations: 1,
        }
    }

    fn stats() -> Stats {
        Stats {
            from: Date::constant(2026, 1, 5),
            to: Date::constant(2026, 1, 11),
            timezone: "Asia/Shanghai".into(),
            total: figures(3),
            by_category: vec![Group {
                key: Some("repair".into()),
                figures: figures(3),
            }],
            by_grade: vec![],
            by_grid: vec![
                Group {
                    key: Some("楼<7>&\"".into()),
                    figures: figures(2),
                },
                Group {
                    key: None,
                    figures: figures(1),
                },
            ],
            by_day: vec![],
        }
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(2700.0), "45m");
        assert_eq!(duration(19_800.0), "5h30m");
        assert_eq!(duration(7200.0), "2h");
        assert_eq!(duration(97_200.0), "1d3h");
    }

    #[test]
    fn text_lists_every_group_with_its_figures() {
        let t = text(&stats(), "2026-W02");
        assert!(
            t.starts_with("hotline580 figures 2026-W02: 2026-01-05 to 2026-01-11 (Asia/Shanghai)"),
            "{t}"
        );
        let all = t.lines().find(|l| l.starts_with("all")).unwrap();
        let cols: Vec<&str> = all.split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "all", "3", "2", "1", "45m", "5h30m", "2", "1", "100%", "50%", "1"
            ]
        );
        assert!(
            t.lines()
                .any(|l| l.starts_with("grid") && l.contains("(none)"))
        );
    }

    #[test]
    fn csv_has_a_header_and_exact_numbers() {
        let c = csv(&stats());
        let mut lines = c.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("group,key,received,handled,handled_on_time")
        );
        assert_eq!(lines.next().unwrap(), "all,,3,2,1,2700,19800,2,1,1,0.5,1");
        assert!(c.contains("\"楼<7>&\"\"\""), "quoted as CSV: {c}");
    }

    #[test]
    fn html_escapes_every_text_and_prints() {
        let h = html(&stats(), "2026-W02");
        assert!(h.starts_with("<!DOCTYPE html>"), "{h}");
        assert!(
            h.contains("楼&lt;7&gt;&amp;&quot;") || h.contains("楼&lt;7&gt;&amp;\""),
            "{h}"
        );
        assert!(!h.contains("楼<7>"), "{h}");
        assert!(h.contains("@media print"));
        assert!(h.contains("<td>45m</td>"));
    }

    #[test]
    fn formats_are_named_as_the_command_line_names_them() {
        assert_eq!("csv".parse::<Format>(), Ok(Format::Csv));
        assert_eq!("HTML".parse::<Format>(), Ok(Format::Html));
        assert!("pdf".parse::<Format>().is_err());
    }
}

//! Pure CSV reading: every row validated, every problem named with the line a
//! text editor shows (the header is line 1).

use crate::domain::{Category, GeoPoint, Language, PhoneNumber};
use std::collections::HashMap;
use std::io::Read;

#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file cannot be read: {0}")]
    Io(String),
    #[error("line 1: the header {0}")]
    Header(String),
    #[error("{} bad row(s); nothing was written", .0.len())]
    Rows(Vec<RowError>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct VolunteerRow {
    pub line: u64,
    pub name: String,
    pub phone: PhoneNumber,
    pub position: GeoPoint,
    pub skills: Vec<Category>,
    pub languages: Vec<Language>,
    pub max_active: i64,
}

impl VolunteerRow {
    pub fn skills_text(&self) -> String {
        self.skills
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(";")
    }
    pub fn languages_text(&self) -> String {
        self.languages
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(";")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResidentRow {
    pub line: u64,
    pub name: String,
    pub phone: PhoneNumber,
    pub address: String,
    pub position: Option<GeoPoint>,
    pub language: Language,
    pub grid: Option<String>,
    pub contact: Option<String>,
}

struct Table {
    columns: HashMap<String, usize>,
    records: Vec<(u64, csv::StringRecord)>,
    errors: Vec<RowError>,
}

fn read_table(
    input: impl Read,
    required: &[&str],
    optional: &[&str],
) -> Result<Table, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| ImportError::Header(format!("cannot be read: {e}")))?
        .clone();
    let mut columns = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        let h = h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase();
        if !required.contains(&h.as_str()) && !optional.contains(&h.as_str()) {
            return Err(ImportError::Header(format!(
                "has an unknown column `{h}` (expected {})",
                required.join(",")
            )));
        }
        if columns.insert(h.clone(), i).is_some() {
            return Err(ImportError::Header(format!("names the column `{h}` twice")));
        }
    }
    let missing: Vec<&str> = required
        .iter()
        .filter(|c| !columns.contains_key(**c))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::Header(format!(
            "lacks the column(s) {} (expected {})",
            missing.join(", "),
            required.join(",")
        )));
    }
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                if record.iter().all(|f| f.is_empty()) {
                    continue; // a blank line
                }
                if record.len() != headers.len() {
                    errors.push(RowError {
                        line,
                        message: format!(
                            "has {} fields, the header has {}",
                            record.len(),
                            headers.len()
                        ),
                    });
                    continue;
                }
                records.push((line, record.clone()));
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                match e.kind() {
                    csv::ErrorKind::Io(_) => return Err(ImportError::Io(e.to_string())),
                    csv::ErrorKind::Utf8 { .. } => errors.push(RowError {
                        line,
                        message: "is not valid UTF-8 text".into(),
                    }),
                    _ => errors.push(RowError {
                        line,
                        message: format!("cannot be read: {e}"),
                    }),
                }
            }
        }
    }
    Ok(Table {
        columns,
        records,
        errors,
    })
}

impl Table {
    fn get<'a>(&self, r: &'a csv::StringRecord, col: &str) -> &'a str {
        self.columns.get(col).and_then(|i| r.get(*i)).unwrap_or("")
    }
}

fn coordinate(text: &str, name: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .map_err(|_| format!("{name} `{text}` is not a number"))
}

fn position(lat: &str, lon: &str) -> Result<GeoPoint, String> {
    let p = GeoPoint::new(coordinate(lat, "lat")?, coordinate(lon, "lon")?)
        .map_err(|e| e.to_string())?;
    Ok(p)
}

fn languages(text: &str) -> Result<Vec<Language>, String> {
    if text.is_empty() {
        return Ok(vec![Language::Zh]);
    }
    let mut out = Vec::new();
    for part in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let l: Language = part
            .parse()
            .map_err(|_| format!("unknown language `{part}` (expected zh or en)"))?;
        if !out.contains(&l) {
            out.push(l);
        }
    }
    Ok(out)
}

fn check_duplicates<T>(
    rows: &[T],
    phone: impl Fn(&T) -> (&PhoneNumber, u64),
    errors: &mut Vec<RowError>,
) {
    let mut seen: HashMap<&PhoneNumber, u64> = HashMap::new();
    for r in rows {
        let (p, line) = phone(r);
        if let Some(first) = seen.get(p) {
            errors.push(RowError {
                line,
                message: format!("phone {p} is already on line {first}"),
            });
        } else {
            seen.insert(p, line);
        }
    }
}

/// Reads `volunteers.csv`: `name,phone,lat,lon,skills,languages,max_active`.
pub fn parse_volunteers(input: impl Read, region: &str) -> Result<Vec<VolunteerRow>, ImportError> {
    const COLS: [&str; 7] = [
        "name",
        "phone",
        "lat",
        "lon",
        "skills",
        "languages",
        "max_active",
    ];
    let table = read_table(input, &COLS, &[])?;
    let mut errors = table.errors.clone();
    let mut rows = Vec::with_capacity(table.records.len());
    for (line, r) in &table.records {
        let row = (|| -> Result<VolunteerRow, String> {
            let name = table.get(r, "name").to_string();
            if name.is_empty() {
                return Err("name is empty".into());
            }
            let phone_text = table.get(r, "phone");
            let phone =
                PhoneNumber::parse(phone_text, region).map_err(|e| format!("bad phone: {e}"))?;
            let position = position(table.get(r, "lat"), table.get(r, "lon"))?;
            let mut skills = Vec::new();
            for part in table
                .get(r, "skills")
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let c: Category = part
                    .parse()
                    .map_err(|_| format!("unknown skill `{part}` (expected repair, errands, escort, companion or other)"))?;
                if !c.is_skill() {
                    return Err(format!(
                        "`{part}` cannot be a skill (emergencies go to the emergency number)"
                    ));
                }
                if !skills.contains(&c) {
                    skills.push(c);
                }
            }
            if skills.is_empty() {
                return Err("skills is empty (expected e.g. repair;errands)".into());
            }
            let languages = languages(table.get(r, "languages"))?;
            let max_text = table.get(r, "max_active");
            let max_active = if max_text.is_empty() {
                1
            } else {
                match max_text.parse::<i64>() {
                    Ok(n) if (1..=100).contains(&n) => n,
                    _ => {
                        return Err(format!(
                            "max_active `{max_text}` is not a whole number from 1 to 100"
                        ));
                    }
                }
            };
            Ok(VolunteerRow {
                line: *line,
                name,
                phone,
                position,
                skills,
                languages,
                max_active,
            })
        })();
        match row {
            Ok(v) => rows.push(v),
            Err(message) => errors.push(RowError {
                line: *line,
                message,
            }),
        }
    }
    check_duplicates(&rows, |r| (&r.phone, r.line), &mut errors);
    finish(rows, errors)
}

/// Reads `residents.csv`: `name,phone,address,lat,lon,language,grid[,contact]`.
/// Returns the rows and whether the file has the `contact` column.
pub fn parse_residents(
    input: impl Read,
    region: &str,
) -> Result<(Vec<ResidentRow>, bool), ImportError> {
    const COLS: [&str; 7] = ["name", "phone", "address", "lat", "lon", "language", "grid"];
    let table = read_table(input, &COLS, &["contact"])?;
    let has_contact = table.columns.contains_key("contact");
    let mut errors = table.errors.clone();
    let mut rows = Vec::with_capacity(table.records.len());
    for (line, r) in &table.records {
        let row = (|| -> Result<ResidentRow, String> {
            let name = table.get(r, "name").to_string();
            if name.is_empty() {
                return Err("name is empty".into());
            }
            let phone = PhoneNumber::parse(table.get(r, "phone"), region)
                .map_err(|e| format!("bad phone: {e}"))?;
            let (lat, lon) = (table.get(r, "lat"), table.get(r, "lon"));
            let position = match (lat.is_empty(), lon.is_empty()) {
                (true, true) => None,
                (false, false) => Some(position(lat, lon)?),
                _ => return Err("give both lat and lon, or neither".into()),
            };
            let language = match table.get(r, "language") {
                "" => Language::Zh,
                l => l
                    .parse()
                    .map_err(|_| format!("unknown language `{l}` (expected zh or en)"))?,
            };
            let grid = Some(table.get(r, "grid").to_string()).filter(|g| !g.is_empty());
            let contact = match table.get(r, "contact") {
                "" => None,
                c @ ("sms" | "call") => Some(c.to_string()),
                c => return Err(format!("unknown contact `{c}` (expected sms or call)")),
            };
            Ok(ResidentRow {
                line: *line,
                name,
                phone,
                address: table.get(r, "address").to_string(),
                position,
                language,
                grid,
                contact,
            })
        })();
        match row {
            Ok(v) => rows.push(v),
            Err(message) => errors.push(RowError {
                line: *line,
                message,
            }),
        }
    }
    check_duplicates(&rows, |r| (&r.phone, r.line), &mut errors);
    finish(rows, errors).map(|rows| (rows, has_contact))
}

fn finish<T>(rows: Vec<T>, mut errors: Vec<RowError>) -> Result<Vec<T>, ImportError> {
    if errors.is_empty() {
        Ok(rows)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(ImportError::Rows(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "name,phone,lat,lon,skills,languages,max_active\n";

    fn errors(r: Result<Vec<VolunteerRow>, ImportError>) -> Vec<RowError> {
        match r {
            Err(ImportError::Rows(e)) => e,
            other => panic!("expected row errors, got {other:?}"),
        }
    }

    #[test]
    fn a_good_file_reads_every_row_with_defaults() {
        let csv = format!(
            "{HEADER}王芳,13800138001,29.56,106.55,repair;errands,zh;en,2\nLi Wei,+8613800138002,29.57,106.56,companion,,\n"
        );
        let rows = parse_volunteers(csv.as_bytes(), "CN").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].skills, vec![Category::Repair, Category::Errands]);
        assert_eq!(rows[0].max_active, 2);
        assert_eq!(rows[1].languages, vec![Language::Zh]);
        assert_eq!(rows[1].max_active, 1);
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn every_bad_row_is_named_by_its_line() {
        let csv = format!(
            "{HEADER}A,13800138001,29.5,106.5,repair,zh,1\nB,notaphone,29.5,106.5,repair,zh,1\nC,13800138003,95,106.5,repair,zh,1\nD,13800138004,29.5,106.5,plumbing,zh,1\nE,13800138001,29.5,106.5,repair,zh,1\nF,13800138006,29.5,106.5,emergency,zh,1\nG,13800138007,29.5,106.5,repair,fr,1\nH,13800138008,29.5,106.5,repair,zh,0\n"
        );
        let e = errors(parse_volunteers(csv.as_bytes(), "CN"));
        let lines: Vec<u64> = e.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 8, 9]);
        assert!(e[0].message.contains("bad phone"));
        assert!(e[1].message.contains("latitude"));
        assert!(e[2].message.contains("unknown skill `plumbing`"));
        assert!(e[3].message.contains("already on line 2"));
        assert!(e[4].message.contains("cannot be a skill"));
        assert!(e[5].message.contains("unknown language"));
        assert!(e[6].message.contains("max_active"));
    }

    #[test]
    fn a_wrong_header_is_refused() {
        let r = parse_volunteers("name,phone\nA,1\n".as_bytes(), "CN");
        assert!(matches!(r, Err(ImportError::Header(m)) if m.contains("lat")));
        let r = parse_volunteers(
            "name,phone,lat,lon,skills,languages,max_active,colour\n".as_bytes(),
            "CN",
        );
        assert!(matches!(r, Err(ImportError::Header(m)) if m.contains("colour")));
    }

    #[test]
    fn a_short_row_and_invalid_utf8_are_reported() {
        let mut bytes = format!("{HEADER}A,13800138001,29.5\n").into_bytes();
        bytes.extend_from_slice(b"B,13800138002,29.5,106.5,repair,\xff\xfe,1\n");
        let e = errors(parse_volunteers(&bytes[..], "CN"));
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].line, 2);
        assert_eq!(e[1].line, 3);
    }

    #[test]
    fn residents_read_optional_contact_and_empty_positions() {
        let csv = "name,phone,address,lat,lon,language,grid,contact\n张大爷,02363580001,解放碑1号,,,,A1,call\nMrs Lee,13800138009,2 Road,29.5,106.5,en,,\n";
        let (rows, has_contact) = parse_residents(csv.as_bytes(), "CN").unwrap();
        assert!(has_contact);
        assert_eq!(rows[0].contact.as_deref(), Some("call"));
        assert_eq!(rows[0].position, None);
        assert_eq!(rows[1].language, Language::En);
        let csv = "name,phone,address,lat,lon,language,grid\nX,13800138009,a,29.5,,zh,\n";
        match parse_residents(csv.as_bytes(), "CN") {
            Err(ImportError::Rows(e)) => assert!(e[0].message.contains("both lat and lon")),
            other => panic!("{other:?}"),
        }
    }
}

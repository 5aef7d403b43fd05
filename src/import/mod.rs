//! `hotline580 import volunteers|residents FILE.csv`: reads and validates every
//! row first (pure), reporting each bad row by its line; then upserts all rows
//! by phone in one transaction, or writes nothing.

mod rows;

pub use rows::{
    ImportError, ResidentRow, RowError, VolunteerRow, parse_residents, parse_volunteers,
};

use crate::store::{Db, DbResult, Tx, now_ms};
use std::collections::HashSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportSummary {
    pub inserted: usize,
    pub updated: usize,
}

/// Rows per multi-row INSERT: well under both databases' bind limits.
const BATCH: usize = 400;

async fn existing_phones(db: &Db, table: &'static str) -> DbResult<HashSet<String>> {
    let sql = match table {
        "volunteers" => "SELECT phone FROM volunteers",
        _ => "SELECT phone FROM residents",
    };
    let phones: Vec<String> = crate::on_db!(db, |c| sqlx::query_scalar(sql).fetch_all(c).await)?;
    Ok(phones.into_iter().collect())
}

/// Upserts volunteers by phone. Availability, opt-out, quiet hours and points are kept.
pub async fn import_volunteers(
    db: &Db,
    rows: &[VolunteerRow],
    progress: &dyn Fn(usize),
) -> DbResult<ImportSummary> {
    let existing = existing_phones(db, "volunteers").await?;
    let mut tx = db.begin().await?;
    let now = now_ms();
    let mut done = 0;
    for chunk in rows.chunks(BATCH) {
        crate::on_tx!(&mut tx, |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(&r.name)
                    .push_bind(r.phone.as_str())
                    .push_bind(r.position.lat)
                    .push_bind(r.position.lon)
                    .push_bind(r.skills_text())
                    .push_bind(r.languages_text())
                    .push_bind(r.max_active)
                    .push_bind(now)
                    .push_bind(now);
            });
            qb.push(
                " ON CONFLICT (phone) DO UPDATE SET name = excluded.name, lat = excluded.lat, lon = excluded.lon, \
                 skills = excluded.skills, languages = excluded.languages, max_active = excluded.max_active, \
                 updated_at = excluded.updated_at",
            );
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
        done += chunk.len();
        progress(done);
    }
    tx.commit().await?;
    let inserted = rows
        .iter()
        .filter(|r| !existing.contains(r.phone.as_str()))
        .count();
    Ok(ImportSummary {
        inserted,
        updated: rows.len() - inserted,
    })
}

/// Upserts residents by phone; `contact` is overwritten only when the file has that column.
pub async fn import_residents(
    db: &Db,
    rows: &[ResidentRow],
    has_contact: bool,
    progress: &dyn Fn(usize),
) -> DbResult<ImportSummary> {
    let existing = existing_phones(db, "residents").await?;
    let mut tx: Tx = db.begin().await?;
    let now = now_ms();
    let mut done = 0;
    for chunk in rows.chunks(BATCH) {
        crate::on_tx!(&mut tx, |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO residents (name, phone, address, lat, lon, language, grid, contact, created_at, updated_at) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(&r.name)
                    .push_bind(r.phone.as_str())
                    .push_bind(&r.address)
                    .push_bind(r.position.map(|p| p.lat))
                    .push_bind(r.position.map(|p| p.lon))
                    .push_bind(r.language.as_str())
                    .push_bind(r.grid.as_deref())
                    .push_bind(r.contact.as_deref())
                    .push_bind(now)
                    .push_bind(now);
            });
            qb.push(
                " ON CONFLICT (phone) DO UPDATE SET name = excluded.name, address = excluded.address, \
                 lat = excluded.lat, lon = excluded.lon, language = excluded.language, grid = excluded.grid, \
                 updated_at = excluded.updated_at",
            );
            if has_contact {
                qb.push(", contact = excluded.contact");
            }
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
        done += chunk.len();
        progress(done);
    }
    tx.commit().await?;
    let inserted = rows
        .iter()
        .filter(|r| !existing.contains(r.phone.as_str()))
        .count();
    Ok(ImportSummary {
        inserted,
        updated: rows.len() - inserted,
    })
}

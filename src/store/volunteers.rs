//! Reading volunteers for the operators.

use super::{Db, DbResult};

/// A volunteer with how many jobs they hold now.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VolunteerRow {
    pub id: i64,
    pub name: String,
    pub phone: String,
    pub lat: f64,
    pub lon: f64,
    /// `;`-separated categories.
    pub skills: String,
    /// `;`-separated languages.
    pub languages: String,
    pub available: bool,
    pub opted_out: bool,
    pub max_active: i64,
    /// Requests assigned to them and not yet done.
    pub active_jobs: i64,
    pub points: i64,
}

/// Every volunteer, by id.
pub async fn list_volunteers(db: &Db) -> DbResult<Vec<VolunteerRow>> {
    crate::on_db!(db, |c| {
        sqlx::query_as::<_, VolunteerRow>(
            "SELECT v.id, v.name, v.phone, v.lat, v.lon, v.skills, v.languages, v.available, v.opted_out, \
             v.max_active, \
             (SELECT COUNT(*) FROM requests r WHERE r.volunteer_id = v.id AND r.status = 'assigned') AS active_jobs, \
             v.points \
             FROM volunteers v ORDER BY v.id",
        )
        .fetch_all(c)
        .await
    })
}

/// Splits a stored `;`-separated list, dropping empty entries.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

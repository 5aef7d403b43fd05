//! Maintenance commands on the database: `purge` (personal data of long-closed
//! requests) and `backup` (a consistent copy of a SQLite database while the
//! service runs).
//!
//! A purged request keeps its anonymous figures (category, grade, channel,
//! status, times, rating, wave, volunteer, escalation reason, and the grid its
//! resident lived in) and loses everything that names, reaches or locates a
//! person: description, recording and transcription, caller's number and name,
//! address and position, complaint, the link to the resident. Its calls,
//! messages and outbox rows lose their numbers and texts, its stored IVR
//! answers (which greet the caller by name) are deleted, and its events keep
//! only the words of the whitelist below.

use super::{Db, DbResult, Tx, now_ms};
use serde_json::{Map, Value};
use std::path::Path;

/// What a purge removed (or, with `--dry-run`, would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub requests: u64,
    pub calls: u64,
    pub call_steps: u64,
    pub messages: u64,
    pub outbox: u64,
    pub events: u64,
}

impl std::fmt::Display for PurgeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests, {} calls ({} stored IVR steps), {} messages, {} outbox rows, {} events",
            self.requests, self.calls, self.call_steps, self.messages, self.outbox, self.events
        )
    }
}

/// Reads an age such as `180d`, `26w` or `12h` into milliseconds.
pub fn parse_age(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let bad = || format!("`{text}` is not an age such as 180d, 26w or 12h");
    let unit = t.chars().last().ok_or_else(bad)?;
    let n: i64 = t[..t.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let hour = 3_600_000i64;
    let ms = match unit {
        'h' => n.checked_mul(hour),
        'd' => n.checked_mul(24 * hour),
        'w' => n.checked_mul(7 * 24 * hour),
        _ => None,
    }
    .ok_or_else(bad)?;
    if ms <= 0 {
        return Err(format!("`{text}`: the age must be at least 1h"));
    }
    Ok(ms)
}

/// Keys of an event's data that carry no personal data.
const KEEP: &[&str] = &[
    "status",
    "category",
    "grade",
    "escalation_reason",
    "channel",
    "volunteer_id",
    "offer_id",
    "outbox_id",
    "wave",
    "rating",
    "call_status",
    "command",
];

/// An event's data with only whitelisted keys; `reason` stays only when it is
/// one of our words (`red`, `no_volunteer`), never an operator's free text.
pub fn scrub_event_data(data: &str) -> String {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(data) else {
        return "{}".to_string();
    };
    let word = |v: &Value| {
        v.as_str().is_some_and(|s| {
            !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
    };
    let kept: Map<String, Value> = map
        .into_iter()
        .filter(|(k, v)| {
            let plain = matches!(v, Value::Number(_) | Value::Bool(_) | Value::Null) || word(v);
            (KEEP.contains(&k.as_str()) && plain) || (k == "reason" && word(v))
        })
        .collect();
    Value::Object(kept).to_string()
}

/// The requests a purge at `cutoff` concerns, as a subquery on `$1` (the cutoff).
const DUE: &str = "SELECT id FROM requests WHERE purged_at IS NULL \
     AND status IN ('done', 'closed', 'cancelled') \
     AND COALESCE(closed_at, done_at, updated_at) < $1";

/// Runs `sql` with `$1` = cutoff and, when given, `$2` = now (PostgreSQL
/// refuses a parameter the statement does not use).
async fn exec(tx: &mut Tx, sql: String, cutoff: i64, now: Option<i64>) -> DbResult<u64> {
    let sql = sqlx::AssertSqlSafe(sql);
    crate::on_tx!(tx, |c| {
        let q = sqlx::query(sql).bind(cutoff);
        let q = match now {
            Some(now) => q.bind(now),
            None => q,
        };
        q.execute(c).await.map(|r| r.rows_affected())
    })
}

/// Removes the personal data of requests closed (done, closed or cancelled)
/// more than `older_than_ms` ago, in one transaction. With `dry_run` the same
/// work is done and rolled back, so the counts are exact and nothing is written.
pub async fn purge(db: &Db, older_than_ms: i64, dry_run: bool) -> anyhow::Result<PurgeReport> {
    let now = now_ms();
    let cutoff = now - older_than_ms;
    let mut tx = db.begin().await?;
    let call_steps = exec(
        &mut tx,
        format!(
            "DELETE FROM call_steps WHERE call_sid IN \
             (SELECT call_sid FROM calls WHERE request_id IN ({DUE}))"
        ),
        cutoff,
        None,
    )
    .await?;
    let calls = exec(
        &mut tx,
        format!(
            "UPDATE calls SET from_phone = '', state = '{{}}', updated_at = $2 \
             WHERE request_id IN ({DUE})"
        ),
        cutoff,
        Some(now),
    )
    .await?;
    // Rows still to be sent are left alone; they are long sent when a request is this old.
    exec(
        &mut tx,
        format!(
            "UPDATE simulated_deliveries SET to_phone = '', body = '' WHERE outbox_id IN \
             (SELECT id FROM outbox WHERE status NOT IN ('queued', 'sending') AND request_id IN ({DUE}))"
        ),
        cutoff,
        None,
    )
    .await?;
    let outbox = exec(
        &mut tx,
        format!(
            "UPDATE outbox SET to_phone = '', body = '', last_error = NULL, updated_at = $2 \
             WHERE status NOT IN ('queued', 'sending') AND request_id IN ({DUE})"
        ),
        cutoff,
        Some(now),
    )
    .await?;
    // Inbound SMS: those of a purged request, and any other older than the
    // cutoff (unlinked rows only serve to recognise a retried MessageSid,
    // which Twilio retries within hours).
    let messages = exec(
        &mut tx,
        format!(
            "UPDATE messages SET from_phone = '', body = '' WHERE \
             (request_id IN ({DUE}) OR (request_id IS NULL AND received_at < $1 AND from_phone <> ''))"
        ),
        cutoff,
        None,
    )
    .await?;
    let events: Vec<(i64, String)> = {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT id, data FROM events WHERE request_id IN ({DUE}) ORDER BY id"
        ));
        crate::on_tx!(&mut tx, |c| sqlx::query_as(sql)
            .bind(cutoff)
            .fetch_all(c)
            .await)?
    };
    let mut scrubbed = 0;
    for (id, data) in events {
        let clean = scrub_event_data(&data);
        if clean != data {
            crate::on_tx!(&mut tx, |c| sqlx::query(
                "UPDATE events SET data = $2 WHERE id = $1"
            )
            .bind(id)
            .bind(&clean)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            scrubbed += 1;
        }
    }
    let requests = exec(
        &mut tx,
        "UPDATE requests SET \
           grid = COALESCE(grid, (SELECT grid FROM residents WHERE residents.id = requests.resident_id)), \
           description = NULL, recording_url = NULL, transcription = NULL, caller_phone = NULL, \
           caller_name = NULL, address = NULL, complaint = NULL, lat = NULL, lon = NULL, \
           resident_id = NULL, purged_at = $2 \
         WHERE purged_at IS NULL AND status IN ('done', 'closed', 'cancelled') \
           AND COALESCE(closed_at, done_at, updated_at) < $1"
            .to_string(),
        cutoff,
        Some(now),
    )
    .await?;
    if dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(PurgeReport {
        requests,
        calls,
        call_steps,
        messages,
        outbox,
        events: scrubbed,
    })
}

/// Copies the SQLite database at `database_url` to `file` with `VACUUM INTO`:
/// a consistent snapshot taken inside one read transaction, so the service
/// may keep writing. Refuses an existing `file`; on PostgreSQL, points at
/// `pg_dump`. Returns the copy's size in bytes.
pub async fn backup(database_url: &str, file: &Path) -> anyhow::Result<u64> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        anyhow::bail!(
            "`backup` copies a SQLite database; on PostgreSQL use pg_dump, e.g. \
             pg_dump --format=custom --file={} \"$HOTLINE580__DATABASE__URL\"",
            file.display()
        );
    }
    let source = super::sqlite_path(database_url)?;
    if !source.exists() {
        anyhow::bail!(
            "there is no database at {} (database.url)",
            source.display()
        );
    }
    if file.exists() {
        anyhow::bail!(
            "{} exists already; a backup never overwrites a file, so name a new one",
            file.display()
        );
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        anyhow::bail!("the folder {} does not exist", dir.display());
    }
    let target = file
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("{} is not a UTF-8 path", file.display()))?
        .to_string();
    let db = Db::connect(database_url).await?;
    let result = match &db {
        Db::Sqlite(pool) => sqlx::query("VACUUM INTO $1")
            .bind(&target)
            .execute(pool)
            .await
            .map(|_| ()),
        Db::Postgres(_) => unreachable!("checked above"),
    };
    db.close().await;
    result.map_err(|e| anyhow::anyhow!("copying to {}: {e}", file.display()))?;
    // Prove the copy opens and is whole before saying it is done.
    let copy = Db::connect(&format!("sqlite://{target}")).await?;
    let check: String = crate::on_db!(&copy, |c| sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(c)
        .await)?;
    copy.close().await;
    if check != "ok" {
        anyhow::bail!(
            "the copy at {} fails its integrity check: {check}",
            file.display()
        );
    }
    Ok(std::fs::metadata(file)?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_read_in_hours_days_and_weeks() {
        assert_eq!(parse_age("180d"), Ok(180 * 86_400_000));
        assert_eq!(parse_age("2w"), Ok(14 * 86_400_000));
        assert_eq!(parse_age("12h"), Ok(12 * 3_600_000));
        for bad in [
            "",
            "d",
            "180",
            "180x",
            "-1d",
            "0d",
            "1.5d",
            "99999999999999999w",
            "一d",
        ] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_data_keeps_only_figures_and_our_words() {
        let scrubbed = scrub_event_data(
            r#"{"status":"escalated","escalation_reason":"call_back","recording_url":"https://x/RE1",
               "call_sid":"CA1","reason":"他家里没人","volunteer_id":7,"text":"张大爷 13800138000"}"#,
        );
        let v: Value = serde_json::from_str(&scrubbed).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status":"escalated","escalation_reason":"call_back","volunteer_id":7})
        );
        assert_eq!(
            scrub_event_data(r#"{"reason":"red"}"#),
            r#"{"reason":"red"}"#
        );
        assert_eq!(scrub_event_data("not json"), "{}");
        assert_eq!(scrub_event_data(r#"["张大爷"]"#), "{}");
        // A whitelisted key holding free text loses it too.
        assert_eq!(scrub_event_data(r#"{"status":"张大爷 家"}"#), "{}");
    }
}

//! The simulated provider: "delivers" each SMS and call by writing it to
//! `simulated_deliveries`, where the demo's phones and tests read it. It
//! never fails except when the database does.

use super::{Provider, SendError, SentMessage};
use crate::domain::PhoneNumber;
use crate::on_db;
use crate::store::{Db, DbResult, now_ms};
use async_trait::async_trait;

#[derive(Debug, Clone)]
pub struct SimulatedProvider {
    db: Db,
}

/// One row of `simulated_deliveries`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SimulatedDelivery {
    pub id: i64,
    pub outbox_id: Option<i64>,
    /// `sms` or `call`.
    pub kind: String,
    pub to_phone: String,
    pub from_phone: String,
    /// The SMS text, or the call's TwiML URL.
    pub body: String,
    pub sid: String,
    /// Unix milliseconds.
    pub at: i64,
}

impl SimulatedProvider {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    async fn deliver(
        &self,
        kind: &'static str,
        to: &PhoneNumber,
        from: &PhoneNumber,
        body: &str,
    ) -> Result<SentMessage, SendError> {
        let sid = new_sid(if kind == "sms" { "SM" } else { "CA" });
        let result: DbResult<_> = on_db!(&self.db, |c| {
            sqlx::query(
            "INSERT INTO simulated_deliveries (outbox_id, kind, to_phone, from_phone, body, sid, at) \
             VALUES (NULL, $1, $2, $3, $4, $5, $6)"
        )
        .bind(kind)
        .bind(to.as_str())
        .bind(from.as_str())
        .bind(body)
        .bind(&sid)
        .bind(now_ms())
        .execute(c)
        .await
        .map(|_| ())
        });
        match result {
            Ok(()) => {
                tracing::info!(provider = "simulated", kind, to = %to.masked(), sid = %sid, "sent");
                Ok(SentMessage { sid })
            }
            // A busy or unreachable database passes; the send is tried again.
            Err(e) => Err(SendError::Retryable {
                message: format!("the simulated provider could not record the {kind}: {e}"),
                retry_after: None,
            }),
        }
    }
}

#[async_trait]
impl Provider for SimulatedProvider {
    async fn send_sms(
        &self,
        to: &PhoneNumber,
        from: &PhoneNumber,
        body: &str,
        _status_callback: &str,
    ) -> Result<SentMessage, SendError> {
        self.deliver("sms", to, from, body).await
    }

    async fn place_call(
        &self,
        to: &PhoneNumber,
        from: &PhoneNumber,
        twiml_url: &str,
        _status_callback: &str,
    ) -> Result<SentMessage, SendError> {
        self.deliver("call", to, from, twiml_url).await
    }

    fn name(&self) -> &'static str {
        "simulated"
    }
}

/// What the simulated provider delivered to `to`, oldest first.
pub async fn deliveries_to(db: &Db, to: &PhoneNumber) -> DbResult<Vec<SimulatedDelivery>> {
    on_db!(db, |c| sqlx::query_as::<_, SimulatedDelivery>(
        "SELECT id, outbox_id, kind, to_phone, from_phone, body, sid, at \
         FROM simulated_deliveries WHERE to_phone = $1 ORDER BY id"
    )
    .bind(to.as_str())
    .fetch_all(c)
    .await)
}

/// A provider-looking id: the prefix and 32 lowercase hex digits, as Twilio's.
fn new_sid(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_look_like_twilios() {
        let sid = new_sid("SM");
        assert_eq!(sid.len(), 34);
        assert!(sid.starts_with("SM"));
        assert!(
            sid[2..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(new_sid("SM"), new_sid("SM"));
    }

    #[tokio::test]
    async fn sends_are_recorded_as_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sim.db").display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        let provider = SimulatedProvider::new(db.clone());
        let to = PhoneNumber::from_e164("+8613800138000").unwrap();
        let from = PhoneNumber::from_e164("+862363580580").unwrap();

        let sms = provider
            .send_sms(
                &to,
                &from,
                "Offer R17: YES 17 to accept",
                "http://x/twilio/status",
            )
            .await
            .unwrap();
        let call = provider
            .place_call(
                &to,
                &from,
                "http://x/twilio/survey",
                "http://x/twilio/status",
            )
            .await
            .unwrap();

        assert!(sms.sid.starts_with("SM") && sms.sid.len() == 34);
        assert!(call.sid.starts_with("CA") && call.sid.len() == 34);
        let rows = deliveries_to(&db, &to).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[0].kind.as_str(),
                rows[0].body.as_str(),
                rows[0].sid.as_str()
            ),
            ("sms", "Offer R17: YES 17 to accept", sms.sid.as_str())
        );
        assert_eq!(rows[0].from_phone, "+862363580580");
        assert_eq!(rows[0].outbox_id, None);
        assert_eq!(
            (rows[1].kind.as_str(), rows[1].body.as_str()),
            ("call", "http://x/twilio/survey")
        );
        assert_eq!(provider.name(), "simulated");
        db.close().await;
    }
}

//! Per-number rate limits at the webhook edge, keyed by the parsed `From`:
//! one for every inbound call start and SMS from a number, a tighter one for
//! the requests a resident's SMS may open. Over a limit a webhook still gets
//! polite TwiML (never 429: Twilio would retry and the caller hear an error).
//! The counters live in this instance's memory; behind a load balancer with N
//! instances a number may get up to N times the limit.

use crate::config::LimitSettings;
use crate::domain::PhoneNumber;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;

/// Above this many remembered numbers, forget those whose allowance is full again.
const SHRINK_AT: usize = 10_000;

pub struct CallerLimits {
    webhook: DefaultKeyedRateLimiter<String>,
    intake: DefaultKeyedRateLimiter<String>,
}

impl CallerLimits {
    pub fn new(settings: &LimitSettings) -> CallerLimits {
        let n = |v: u32| NonZeroU32::new(v.max(1)).expect("at least 1");
        CallerLimits {
            webhook: RateLimiter::keyed(Quota::per_minute(n(settings.webhook_per_minute))),
            intake: RateLimiter::keyed(Quota::per_hour(n(settings.intake_per_hour))),
        }
    }

    /// One inbound call start or SMS from `from`; false when over the limit.
    pub fn webhook_allowed(&self, from: &PhoneNumber) -> bool {
        Self::check(&self.webhook, from, "webhook")
    }

    /// One new request by SMS from `from`; false when over the limit.
    pub fn intake_allowed(&self, from: &PhoneNumber) -> bool {
        Self::check(&self.intake, from, "intake")
    }

    fn check(
        limiter: &DefaultKeyedRateLimiter<String>,
        from: &PhoneNumber,
        what: &'static str,
    ) -> bool {
        if limiter.len() > SHRINK_AT {
            limiter.retain_recent();
        }
        let ok = limiter.check_key(&from.as_str().to_string()).is_ok();
        if !ok {
            metrics::counter!("hotline580_rate_limited_total", "limit" => what).increment(1);
            tracing::warn!(from = %from.masked(), limit = what, "over the per-number rate limit");
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(webhook: u32, intake: u32) -> CallerLimits {
        CallerLimits::new(&LimitSettings {
            webhook_per_minute: webhook,
            intake_per_hour: intake,
        })
    }

    #[test]
    fn each_number_has_its_own_allowance() {
        let l = limits(3, 2);
        let a = PhoneNumber::from_e164("+8613800000001").unwrap();
        let b = PhoneNumber::from_e164("+8613800000002").unwrap();
        assert!((0..3).all(|_| l.webhook_allowed(&a)));
        assert!(
            !l.webhook_allowed(&a),
            "the fourth within a minute is refused"
        );
        assert!(l.webhook_allowed(&b), "another number is not affected");
        assert!(l.intake_allowed(&a) && l.intake_allowed(&a));
        assert!(!l.intake_allowed(&a));
        assert!(l.intake_allowed(&b));
    }
}

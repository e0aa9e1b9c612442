//! Rate limits: per identity (API key, user, anonymous session; client IP without
//! credentials), per route class (reads, writes, conversions), with quotas by role.
//!
//! Each `(role, class)` pair has its own keyed GCRA limiter (governor). The number of keys a
//! limiter remembers is capped: past the cap, keys whose bucket is full again are dropped,
//! and if that is not enough, new keys share one overflow bucket. Memory stays bounded
//! under a flood of distinct callers; the flood only throttles itself.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::HeaderValue;

use crate::auth::{RateClass, Role};
use crate::config::{ClassQuotas, QuotaSpec, RateLimitsConfig};
use crate::error::{ApiError, ErrorCode};

/// Keys one limiter remembers at most before it starts dropping and sharing.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// The key new callers share once a limiter is full.
const OVERFLOW_KEY: &str = "~overflow";

type KeyedLimiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Which quota table applies: a role, or no credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Calls without credentials.
    Unauthenticated,
    /// Calls by a role.
    Role(Role),
}

/// The quota state after an allowed request, sent as `RateLimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    /// Requests per period.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until the quota is full again.
    pub reset_seconds: u64,
}

impl Allowance {
    /// The `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers.
    pub fn headers(&self) -> [(&'static str, HeaderValue); 3] {
        [
            ("ratelimit-limit", HeaderValue::from(self.limit)),
            ("ratelimit-remaining", HeaderValue::from(self.remaining)),
            ("ratelimit-reset", HeaderValue::from(self.reset_seconds)),
        ]
    }
}

/// All limiters of the service.
pub struct RateLimits {
    limiters: HashMap<(Tier, RateClass), Limiter>,
    max_keys: usize,
}

struct Limiter {
    limiter: Arc<KeyedLimiter>,
    limit: u32,
    period: Duration,
}

impl RateLimits {
    /// Builds one limiter per role and class from the configuration.
    pub fn new(config: &RateLimitsConfig, max_keys: usize) -> Self {
        let tiers = [
            (Tier::Unauthenticated, config.unauthenticated),
            (Tier::Role(Role::Anonymous), config.anonymous),
            (Tier::Role(Role::Demo), config.demo),
            (Tier::Role(Role::Member), config.member),
            (Tier::Role(Role::Admin), config.admin),
            (Tier::Role(Role::Superuser), config.superuser),
        ];
        let mut limiters = HashMap::new();
        for (tier, quotas) in tiers {
            for class in RateClass::ALL {
                if let Some(limiter) = Limiter::new(quota_of(&quotas, class)) {
                    limiters.insert((tier, class), limiter);
                }
            }
        }
        Self {
            limiters,
            max_keys: max_keys.max(1),
        }
    }

    /// Counts one request of `class` by `key` in `tier`; 429 when over the quota.
    pub fn check(
        &self,
        tier: Tier,
        class: RateClass,
        key: &str,
    ) -> Result<Option<Allowance>, ApiError> {
        let Some(entry) = self.limiters.get(&(tier, class)) else {
            return Ok(None);
        };
        let limiter = &entry.limiter;
        if limiter.len() >= self.max_keys {
            limiter.retain_recent();
        }
        let key = if limiter.len() >= self.max_keys {
            OVERFLOW_KEY.to_owned()
        } else {
            key.to_owned()
        };
        let per_request = entry.period / entry.limit;
        match limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = entry.limit.saturating_sub(remaining);
                Ok(Some(Allowance {
                    limit: entry.limit,
                    remaining,
                    reset_seconds: (per_request * used).as_secs_f64().ceil() as u64,
                }))
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let retry_after = wait.as_secs_f64().ceil().max(1.0) as u64;
                let allowance = Allowance {
                    limit: entry.limit,
                    remaining: 0,
                    reset_seconds: (entry.period).as_secs_f64().ceil() as u64,
                };
                let mut error = ApiError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {} {} requests per {} for this caller; retry in {retry_after} s",
                        entry.limit,
                        class.as_str(),
                        humantime::format_duration(entry.period)
                    ),
                )
                .with_header(http::header::RETRY_AFTER, HeaderValue::from(retry_after));
                for (name, value) in allowance.headers() {
                    error = error.with_header(http::HeaderName::from_static(name), value);
                }
                Err(error)
            }
        }
    }

    /// Drops keys whose buckets are full again (run periodically).
    pub fn forget_idle(&self) {
        for entry in self.limiters.values() {
            entry.limiter.retain_recent();
            entry.limiter.shrink_to_fit();
        }
    }

    /// Keys remembered in total (for tests and metrics).
    pub fn remembered_keys(&self) -> usize {
        self.limiters
            .values()
            .map(|entry| entry.limiter.len())
            .sum()
    }
}

fn quota_of(quotas: &ClassQuotas, class: RateClass) -> QuotaSpec {
    match class {
        RateClass::Read => quotas.reads,
        RateClass::Write => quotas.writes,
        RateClass::Convert => quotas.conversions,
    }
}

impl Limiter {
    fn new(spec: QuotaSpec) -> Option<Self> {
        let QuotaSpec::Limited { count, period } = spec else {
            return None;
        };
        let burst = NonZeroU32::new(count)?;
        let quota = Quota::with_period(period / count)?.allow_burst(burst);
        let limiter = RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>();
        Some(Self {
            limiter: Arc::new(limiter),
            limit: count,
            period,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn limits(max_keys: usize) -> RateLimits {
        let mut config = Config::from_sources(None, &[]).unwrap().rate_limits;
        config.member.reads = QuotaSpec::Limited {
            count: 3,
            period: Duration::from_secs(60),
        };
        config.member.writes = QuotaSpec::Unlimited;
        RateLimits::new(&config, max_keys)
    }

    #[test]
    fn the_quota_is_counted_per_key_and_answered_with_headers() {
        let limits = limits(1000);
        let member = Tier::Role(Role::Member);
        for remaining in [2, 1, 0] {
            let allowance = limits
                .check(member, RateClass::Read, "user:a")
                .unwrap()
                .unwrap();
            assert_eq!((allowance.limit, allowance.remaining), (3, remaining));
        }
        let refused = limits.check(member, RateClass::Read, "user:a").unwrap_err();
        assert_eq!(refused.code(), ErrorCode::RateLimited);
        assert!(
            limits.check(member, RateClass::Read, "user:b").is_ok(),
            "another key has its own bucket"
        );
        assert_eq!(
            limits.check(member, RateClass::Write, "user:a").unwrap(),
            None,
            "unlimited"
        );
    }

    #[test]
    fn memory_stays_bounded_under_many_distinct_keys() {
        let limits = limits(500);
        for n in 0..20_000 {
            let _ = limits.check(Tier::Unauthenticated, RateClass::Read, &format!("ip:{n}"));
        }
        assert!(
            limits.remembered_keys() <= 501,
            "{} keys remembered",
            limits.remembered_keys()
        );
    }
}

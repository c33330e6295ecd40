//! Refusals of clients that did not authenticate, counted rather than written one by one.
//!
//! Anyone can send a request without a token, with an invented one or with a revoked one,
//! as fast as the network allows. Writing an audit entry per refusal let a flood of such
//! requests grow the log without bound. Instead, each source (an IPv4 address, or the /64
//! of an IPv6 one) and actor (`anonymous`, or the holder of a revoked token) has one
//! counter per wall-clock minute; when the minute is over its counter becomes one
//! `auth.failed` entry with the count, the reasons, and the first few routes asked for
//! (each clipped). The host writes closed minutes every second and the open ones when it
//! stops; a process killed outright loses at most the last minute's counts.
//!
//! At most [`MAX_KEYS`] counters are kept a minute; refusals past them are counted
//! together under `source:other`, so memory and the log stay bounded even when the
//! flood comes from many addresses.

use carrel_vault::audit::clip;
use carrel_vault::{AuditAction, AuditEvent, AuditLog};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;

/// Counters kept a minute before refusals are lumped under `source:other`.
pub const MAX_KEYS: usize = 1024;
/// Distinct routes kept per counter.
const ROUTES_KEPT: usize = 3;
/// Characters kept of each route.
const ROUTE_CHARS: usize = 120;
/// Distinct reasons kept per counter (the host has a handful).
const REASONS_KEPT: usize = 8;

/// The source of a request as the log names it: an IPv4 address, or an IPv6 /64 (one
/// network hands its hosts a whole /64, so counting per address would not bound a flood).
pub fn source_name(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[derive(Debug, Default)]
struct Counter {
    count: u64,
    reasons: BTreeMap<String, u64>,
    routes: Vec<String>,
    required_roles: Vec<String>,
    first: String,
    last: String,
}

#[derive(Debug, Default)]
struct Minute {
    /// Minutes since the Unix epoch.
    minute: i64,
    counters: HashMap<(String, String), Counter>,
}

/// The counters of unauthenticated refusals; see the module documentation.
#[derive(Debug, Default)]
pub struct RefusalCounter {
    minutes: Mutex<Vec<Minute>>,
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("UTC times format as RFC 3339")
}

impl RefusalCounter {
    /// Counts one refusal of `actor` from `source` on `route` for `reason`.
    pub fn count(&self, source: IpAddr, actor: &str, reason: &str, route: &str, required: &str) {
        self.count_at(now(), source, actor, reason, route, required);
    }

    /// [`RefusalCounter::count`] at the time `at` (tests give one that no minute's end
    /// can split).
    fn count_at(
        &self,
        at: time::OffsetDateTime,
        source: IpAddr,
        actor: &str,
        reason: &str,
        route: &str,
        required: &str,
    ) {
        let minute = at.unix_timestamp().div_euclid(60);
        let mut minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        let index = match minutes.iter().position(|m| m.minute == minute) {
            Some(i) => i,
            None => {
                minutes.push(Minute {
                    minute,
                    counters: HashMap::new(),
                });
                minutes.len() - 1
            }
        };
        let counters = &mut minutes[index].counters;
        let mut key = (source_name(source), actor.to_owned());
        if !counters.contains_key(&key) && counters.len() >= MAX_KEYS {
            key = ("other".to_owned(), "anonymous".to_owned());
        }
        let counter = counters.entry(key).or_default();
        counter.count += 1;
        let stamp = rfc3339(at);
        if counter.first.is_empty() {
            counter.first = stamp.clone();
        }
        counter.last = stamp;
        if counter.reasons.len() < REASONS_KEPT || counter.reasons.contains_key(reason) {
            *counter.reasons.entry(reason.to_owned()).or_default() += 1;
        }
        let route = clip(route, ROUTE_CHARS);
        if counter.routes.len() < ROUTES_KEPT && !counter.routes.contains(&route) {
            counter.routes.push(route);
        }
        if counter.required_roles.len() < ROUTES_KEPT
            && !counter.required_roles.iter().any(|r| r == required)
        {
            counter.required_roles.push(required.to_owned());
        }
    }

    /// The entries of minutes that are over (or of every minute, when `all`), removed
    /// from the counters.
    pub fn take(&self, all: bool) -> Vec<AuditEvent> {
        let current = now().unix_timestamp().div_euclid(60);
        let closed: Vec<Minute> = {
            let mut minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
            let (closed, open) = std::mem::take(&mut *minutes)
                .into_iter()
                .partition(|m| all || m.minute < current);
            *minutes = open;
            closed
        };
        let mut events = Vec::new();
        for minute in closed {
            let start = time::OffsetDateTime::from_unix_timestamp(minute.minute * 60)
                .expect("a minute of the clock is a valid time");
            let mut counters: Vec<_> = minute.counters.into_iter().collect();
            counters.sort_by(|a, b| a.0.cmp(&b.0));
            for ((source, actor), c) in counters {
                events.push(
                    AuditEvent::new(actor, AuditAction::AuthFailed, format!("source:{source}"))
                        .with_details(serde_json::json!({
                            "minute": rfc3339(start),
                            "count": c.count,
                            "reasons": c.reasons,
                            "routes": c.routes,
                            "required_role": c.required_roles.join(" or "),
                            "first": c.first,
                            "last": c.last,
                        })),
                );
            }
        }
        events
    }

    /// Writes the entries of [`RefusalCounter::take`] to `audit`; returns how many.
    pub fn flush(&self, audit: &AuditLog, all: bool) -> usize {
        let events = self.take(all);
        for event in &events {
            if let Err(e) = audit.append(event) {
                tracing::error!(error = %e, "cannot audit refused requests");
            }
        }
        events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thirty seconds into a minute: refusals counted "at once" in a test must not be
    /// split by the wall clock's minute ending while they are counted.
    fn at() -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(1_772_359_230).unwrap()
    }

    #[test]
    fn refusals_of_one_source_and_actor_in_a_minute_make_one_entry_with_their_count() {
        let counter = RefusalCounter::default();
        let here: IpAddr = "192.0.2.7".parse().unwrap();
        let long = format!("/x/{}", "a".repeat(60_000));
        for i in 0..500 {
            let route = if i % 2 == 0 { "/ingest/fhir" } else { &long };
            counter.count_at(at(), here, "anonymous", "unknown token", route, "ingest");
        }
        counter.count_at(
            at(),
            here,
            "researcher (token:ab12)",
            "revoked token",
            "/api/studies",
            "researcher",
        );
        let events = counter.take(true);
        assert_eq!(events.len(), 2);
        let anonymous = events.iter().find(|e| e.actor == "anonymous").unwrap();
        assert_eq!(anonymous.subject, "source:192.0.2.7");
        assert_eq!(anonymous.details["count"], 500);
        assert_eq!(anonymous.details["reasons"]["unknown token"], 500);
        let size = carrel_vault::audit::canonical_json(&anonymous.details).len();
        assert!(size < 1000, "{size} bytes");
        assert!(counter.take(true).is_empty(), "taken once");
    }

    #[test]
    fn past_the_key_limit_refusals_are_counted_under_other() {
        let counter = RefusalCounter::default();
        for i in 0..(MAX_KEYS as u32 + 50) {
            let address = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            counter.count_at(
                at(),
                address,
                "anonymous",
                "a bearer token is required",
                "/",
                "ingest",
            );
        }
        let events = counter.take(true);
        assert_eq!(events.len(), MAX_KEYS + 1);
        let other = events.iter().find(|e| e.subject == "source:other").unwrap();
        assert_eq!(other.details["count"], 50);
    }

    #[test]
    fn ipv6_sources_are_counted_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(source_name(a), "2001:db8:1:2::/64");
        assert_eq!(source_name(a), source_name(b));
        assert_eq!(source_name("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
    }
}

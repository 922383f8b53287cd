//! The edge client's hosts: which replica is asked for which shard, and
//! the circuit breaker that takes a failing host out for a while.
//!
//! A shard may be listed by several hosts (replicas). Each search gets a
//! preference order over the hosts that starts one host further than the
//! previous search's (round robin), and each shard goes to the first host
//! in that order that lists it, has not been tried for it in this search
//! and is not taken out — so load spreads over the replicas while the
//! shards of one host still go in one request. A host that fails
//! `failures` times in a row (a network error, a timeout, an error status
//! other than the request's own fault, an answer the edge refuses) is
//! taken out for `cooldown_ms`; after that it is asked again, and one
//! more failure takes it out again at once (half-open), one success puts
//! it back.

use std::cell::{Cell, RefCell};

use crate::error::Error;

/// Default failures in a row that take a host out (`breakerFailures`).
pub(crate) const DEFAULT_BREAKER_FAILURES: u32 = 3;
/// Default time a host stays out, in milliseconds (`breakerCooldownMs`).
pub(crate) const DEFAULT_BREAKER_COOLDOWN_MS: f64 = 10_000.0;

/// A host and the shards it serves.
pub(crate) struct HostEntry {
    /// Its base URL, without a trailing `/`.
    pub url: String,
    /// The shards it serves.
    pub shards: Vec<u32>,
}

/// The circuit breaker's settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Breaker {
    /// Failures in a row that take a host out; 0: never.
    pub failures: u32,
    /// How long a host stays out, in milliseconds.
    pub cooldown_ms: f64,
}

/// One host's recent record.
#[derive(Clone, Copy, Default)]
struct Health {
    /// Failures since its last success.
    failures: u32,
    /// When it may be asked again (`now_ms` clock), once out.
    open_until: f64,
}

/// Where a shard goes next.
pub(crate) enum Choice {
    /// This host.
    Host(usize),
    /// No replica is left to try: every other one was tried in this
    /// search; those taken out are named with why.
    None(Vec<(usize, Error)>),
}

/// The hosts of a client, with their health.
pub(crate) struct Hosts {
    entries: Vec<HostEntry>,
    breaker: Breaker,
    health: RefCell<Vec<Health>>,
    /// The host the next search's preference order starts at.
    turn: Cell<usize>,
}

impl Hosts {
    pub(crate) fn new(entries: Vec<HostEntry>, breaker: Breaker) -> Hosts {
        let health = RefCell::new(vec![Health::default(); entries.len()]);
        Hosts {
            entries,
            breaker,
            health,
            turn: Cell::new(0),
        }
    }

    /// Host `h`'s base URL.
    pub(crate) fn url(&self, h: usize) -> &str {
        &self.entries[h].url
    }

    /// How many hosts there are.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether some host lists `shard`.
    pub(crate) fn anyone_serves(&self, shard: u32) -> bool {
        self.entries.iter().any(|e| e.shards.contains(&shard))
    }

    /// The preference order of a search: every host, from the one whose
    /// turn it is; `advance` moves the turn on (a search does, a plan does
    /// not).
    pub(crate) fn order(&self, advance: bool) -> Vec<usize> {
        let n = self.entries.len();
        let start = self.turn.get() % n.max(1);
        if advance {
            self.turn.set((start + 1) % n.max(1));
        }
        (0..n).map(|i| (start + i) % n).collect()
    }

    /// Why host `h` is out now, if it is.
    fn out_for(&self, h: usize, now: f64) -> Option<Error> {
        let health = self.health.borrow()[h];
        let out = self.breaker.failures > 0
            && health.failures >= self.breaker.failures
            && now < health.open_until;
        out.then(|| Error::HostOut {
            failures: health.failures,
            // Whole milliseconds, rounded up: never 0 while out.
            retry_in_ms: (health.open_until - now).max(0.0).ceil() as u64,
        })
    }

    /// The host `shard` goes to: the first in `order` listing it, not in
    /// `tried` and not taken out.
    pub(crate) fn choose(&self, order: &[usize], shard: u32, tried: &[usize], now: f64) -> Choice {
        let mut out = Vec::new();
        for &h in order {
            if tried.contains(&h) || !self.entries[h].shards.contains(&shard) {
                continue;
            }
            match self.out_for(h, now) {
                None => return Choice::Host(h),
                Some(why) => out.push((h, why)),
            }
        }
        Choice::None(out)
    }

    /// Host `h` answered: it is back in.
    pub(crate) fn succeeded(&self, h: usize) {
        self.health.borrow_mut()[h] = Health::default();
    }

    /// Host `h` failed at `now`: out once it failed often enough in a row
    /// (again at once after its time out, until a success).
    pub(crate) fn failed(&self, h: usize, now: f64) {
        let mut all = self.health.borrow_mut();
        let health = &mut all[h];
        health.failures = health.failures.saturating_add(1);
        if self.breaker.failures > 0 && health.failures >= self.breaker.failures {
            health.open_until = now + self.breaker.cooldown_ms;
        }
    }
}

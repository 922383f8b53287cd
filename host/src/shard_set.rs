//! The set of shards a host serves, written `0-7,12`.
//!
//! Held as sorted, merged inclusive ranges, never as one entry per id: a
//! list such as `0-4294967295` costs one range, not four billion set
//! entries built before anything could check it against the snapshot.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use shardvec_core::ShardId;

/// Shards served by one host: every shard of the snapshot, or a fixed set
/// of ids. Parsed from lists of ids and inclusive ranges: `0-7,12`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ShardSet {
    /// Every shard of whatever snapshot is served.
    #[default]
    All,
    /// These ids only: sorted, disjoint, non-adjacent inclusive ranges.
    Only(Vec<RangeInclusive<u32>>),
}

impl ShardSet {
    /// The set of `ranges` (any order, overlapping or not).
    pub fn ranges(mut ranges: Vec<RangeInclusive<u32>>) -> ShardSet {
        ranges.retain(|r| r.start() <= r.end());
        ranges.sort_by_key(|r| *r.start());
        let mut merged: Vec<RangeInclusive<u32>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if u64::from(*r.start()) <= u64::from(*last.end()) + 1 => {
                    if r.end() > last.end() {
                        *last = *last.start()..=*r.end();
                    }
                }
                _ => merged.push(r),
            }
        }
        ShardSet::Only(merged)
    }

    /// Whether `id` is served.
    pub fn contains(&self, id: ShardId) -> bool {
        match self {
            ShardSet::All => true,
            ShardSet::Only(ranges) => {
                let i = ranges.partition_point(|r| *r.end() < id.0);
                ranges.get(i).is_some_and(|r| r.contains(&id.0))
            }
        }
    }

    /// The ids served out of a snapshot of `num_dbs` shards, ascending.
    pub fn ids(&self, num_dbs: u32) -> Vec<ShardId> {
        match self {
            ShardSet::All => (0..num_dbs).map(ShardId).collect(),
            ShardSet::Only(ranges) => ranges
                .iter()
                .filter(|r| *r.start() < num_dbs)
                .flat_map(|r| *r.start()..=(*r.end()).min(num_dbs - 1))
                .map(ShardId)
                .collect(),
        }
    }

    /// The largest id named, if any (to check against `num_dbs`).
    pub fn max(&self) -> Option<u32> {
        match self {
            ShardSet::All => None,
            ShardSet::Only(ranges) => ranges.last().map(|r| *r.end()),
        }
    }
}

impl FromStr for ShardSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut ranges = Vec::new();
        for part in s.split(',').map(str::trim) {
            let num = |t: &str| {
                t.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("`{t}` in shard list `{s}` is not a shard id"))
            };
            match part.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (num(lo)?, num(hi)?);
                    if lo > hi {
                        return Err(format!("range `{part}` in `{s}` is empty"));
                    }
                    ranges.push(lo..=hi);
                }
                None => {
                    let id = num(part)?;
                    ranges.push(id..=id);
                }
            }
        }
        Ok(ShardSet::ranges(ranges))
    }
}

impl fmt::Display for ShardSet {
    /// `all`, or compact ranges: `0-7,12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ShardSet::Only(ranges) = self else {
            return f.write_str("all");
        };
        for (i, r) in ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.start() == r.end() {
                write!(f, "{}", r.start())?;
            } else {
                write!(f, "{}-{}", r.start(), r.end())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_and_ranges_and_prints_them_back() {
        let s: ShardSet = "12, 0-3,5-5,4".parse().unwrap();
        assert_eq!(s, ShardSet::Only(vec![0..=5, 12..=12]));
        assert_eq!(s.to_string(), "0-5,12");
        assert_eq!(s.ids(6), (0..6).map(ShardId).collect::<Vec<_>>());
        assert!(s.contains(ShardId(12)) && !s.contains(ShardId(6)));
        assert_eq!(s.max(), Some(12));
    }

    /// Issue 15, item 13: the whole id space is one range, parsed at once
    /// (it used to build a four-billion-entry set).
    #[test]
    fn huge_ranges_cost_nothing() {
        let started = std::time::Instant::now();
        let s: ShardSet = "0-4294967295,7".parse().unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(s, ShardSet::Only(vec![0..=u32::MAX]));
        assert_eq!(s.max(), Some(u32::MAX));
        assert!(s.contains(ShardId(123_456_789)));
        assert_eq!(s.ids(3), [ShardId(0), ShardId(1), ShardId(2)]);
        assert_eq!(s.to_string(), "0-4294967295");
        let t: ShardSet = "9-10,0-2,3,20".parse().unwrap();
        assert_eq!(t.to_string(), "0-3,9-10,20");
        assert!(!t.contains(ShardId(4)) && t.contains(ShardId(10)) && !t.contains(ShardId(21)));
        assert_eq!(t.ids(10).len(), 5);
    }

    #[test]
    fn refuses_what_is_not_a_list() {
        for bad in ["", "a", "3-1", "1,,2", "-1", "1-", "4294967296"] {
            assert!(bad.parse::<ShardSet>().is_err(), "{bad:?} parsed");
        }
    }
}

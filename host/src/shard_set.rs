//! The set of shards a host serves, written `0-7,12`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use shardvec_core::ShardId;

/// Shards served by one host: every shard of the snapshot, or a fixed set
/// of ids. Parsed from lists of ids and inclusive ranges: `0-7,12`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ShardSet {
    /// Every shard of whatever snapshot is served.
    #[default]
    All,
    /// These ids only.
    Only(BTreeSet<u32>),
}

impl ShardSet {
    /// Whether `id` is served.
    pub fn contains(&self, id: ShardId) -> bool {
        match self {
            ShardSet::All => true,
            ShardSet::Only(ids) => ids.contains(&id.0),
        }
    }

    /// The ids served out of a snapshot of `num_dbs` shards, ascending.
    pub fn ids(&self, num_dbs: u32) -> Vec<ShardId> {
        match self {
            ShardSet::All => (0..num_dbs).map(ShardId).collect(),
            ShardSet::Only(ids) => ids
                .iter()
                .copied()
                .filter(|&i| i < num_dbs)
                .map(ShardId)
                .collect(),
        }
    }

    /// The largest id named, if any (to check against `num_dbs`).
    pub fn max(&self) -> Option<u32> {
        match self {
            ShardSet::All => None,
            ShardSet::Only(ids) => ids.last().copied(),
        }
    }
}

impl FromStr for ShardSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut ids = BTreeSet::new();
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
                    ids.extend(lo..=hi);
                }
                None => {
                    ids.insert(num(part)?);
                }
            }
        }
        Ok(ShardSet::Only(ids))
    }
}

impl fmt::Display for ShardSet {
    /// `all`, or compact ranges: `0-7,12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ShardSet::Only(ids) = self else {
            return f.write_str("all");
        };
        let mut first = true;
        let mut iter = ids.iter().copied().peekable();
        while let Some(lo) = iter.next() {
            let mut hi = lo;
            while iter.peek() == Some(&(hi + 1)) {
                hi += 1;
                iter.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if hi == lo {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
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
        let expect: BTreeSet<u32> = [0, 1, 2, 3, 4, 5, 12].into();
        assert_eq!(s, ShardSet::Only(expect));
        assert_eq!(s.to_string(), "0-5,12");
        assert_eq!(s.ids(6), (0..6).map(ShardId).collect::<Vec<_>>());
        assert!(s.contains(ShardId(12)) && !s.contains(ShardId(6)));
        assert_eq!(s.max(), Some(12));
    }

    #[test]
    fn refuses_what_is_not_a_list() {
        for bad in ["", "a", "3-1", "1,,2", "-1", "1-", "4294967296"] {
            assert!(bad.parse::<ShardSet>().is_err(), "{bad:?} parsed");
        }
    }
}

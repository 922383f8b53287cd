//! Query routing: which shards a search probes.
//!
//! A [`Router`] is built once per manifest from the manifest and its routing
//! artefacts ([`RoutingArtefacts`]: centroids for CLUSTER, hyperplanes for
//! LSH), validated up front, and then shared (it is `Send + Sync`) by every
//! search. Routing follows docs/format.md bit for bit, because the writer used the
//! same rules to place vectors:
//!
//! - explicit `shard_ids` on a request override every strategy (ids are
//!   range-checked; duplicates are dropped, first occurrence kept);
//! - **CLUSTER** probes the `num_probes` nearest centroids in a stable order
//!   (ties → lowest index), so probe 0 is the writer's assignment;
//! - **LSH** hashes the query with the hyperplanes and probes the primary
//!   bucket's shard, then the shards of the buckets one bit-flip away;
//! - **EXPLICIT** requires `shard_ids`;
//! - **CEL** evaluates the manifest's expression on the request's
//!   [`RoutingContext`] (feature `cel`).
//!
//! [`Router::route_into`] writes into a caller's vector and allocates nothing
//! else for CLUSTER (up to [`STACK_PROBES`] probes), LSH and explicit ids;
//! CEL evaluation allocates inside the interpreter.
//! [`Router::explain`] reports the same decision with its reasons
//! (distances, hash bits, the CEL value) for the demo and for debugging.

use alloc::vec::Vec;
use core::cmp::Ordering;

use serde::Serialize;

use crate::distance::{self, total_order};
use crate::error::{Error, Result};
use crate::manifest::{CelSpec, Manifest};
use crate::npy::Matrix;
use crate::routing_value::{RoutingContext, RoutingValue};
use crate::types::{Metric, ShardId, Strategy};

/// CLUSTER routes with at most this many probes select them on the stack.
pub const STACK_PROBES: usize = 32;

/// The `.npy` artefacts a router needs, already parsed.
#[derive(Debug, Clone, Default)]
pub struct RoutingArtefacts {
    /// `centroids.npy`: `[num_dbs, dim]` (CLUSTER).
    pub centroids: Option<Matrix>,
    /// `hyperplanes.npy`: `[num_hash_bits, dim]` (LSH).
    pub hyperplanes: Option<Matrix>,
}

impl RoutingArtefacts {
    /// No artefacts (EXPLICIT and CEL snapshots).
    pub fn none() -> Self {
        Self::default()
    }

    /// Centroids only.
    pub fn centroids(m: Matrix) -> Self {
        RoutingArtefacts {
            centroids: Some(m),
            hyperplanes: None,
        }
    }

    /// Hyperplanes only.
    pub fn hyperplanes(m: Matrix) -> Self {
        RoutingArtefacts {
            centroids: None,
            hyperplanes: Some(m),
        }
    }
}

/// Per-request routing inputs. All optional; defaults come from the manifest.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteOptions<'a> {
    /// Shards to probe (CLUSTER, LSH); default: the manifest's `num_probes`.
    pub num_probes: Option<u32>,
    /// Explicit shards: override every strategy.
    pub shard_ids: Option<&'a [ShardId]>,
    /// Request metadata for CEL routing.
    pub routing_context: Option<&'a RoutingContext>,
}

impl<'a> RouteOptions<'a> {
    /// Options with every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the number of probes.
    pub fn num_probes(mut self, n: u32) -> Self {
        self.num_probes = Some(n);
        self
    }

    /// Names the shards explicitly.
    pub fn shard_ids(mut self, ids: &'a [ShardId]) -> Self {
        self.shard_ids = Some(ids);
        self
    }

    /// Sets the CEL routing context.
    pub fn routing_context(mut self, ctx: &'a RoutingContext) -> Self {
        self.routing_context = Some(ctx);
        self
    }
}

/// Why a route is what it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Explanation {
    /// The request named its shards.
    Explicit {
        /// The shards, validated and de-duplicated.
        shards: Vec<ShardId>,
    },
    /// CLUSTER: distance from the query to every centroid.
    Cluster {
        /// Routing distance to centroid `i` (lower = closer).
        distances: Vec<f32>,
        /// Every shard, nearest first (stable: ties → lowest index).
        ranking: Vec<ShardId>,
        /// The probed prefix of `ranking`.
        shards: Vec<ShardId>,
    },
    /// LSH: the query's hash code and the buckets probed.
    Lsh {
        /// Projection of the query on each hyperplane.
        projections: Vec<f32>,
        /// `Σ (projection_i > 0) << i`.
        code: u64,
        /// Candidate buckets in probe order: the primary (no flipped bit),
        /// then one per flipped bit until enough shards were found.
        buckets: Vec<LshBucket>,
        /// The probed shards.
        shards: Vec<ShardId>,
    },
    /// CEL: the expression's value on the routing context.
    Cel {
        /// The value of the expression.
        value: RoutingValue,
        /// Its index in `routing_values` (categorical routing).
        categorical_index: Option<usize>,
        /// The shard (a list of one).
        shards: Vec<ShardId>,
    },
}

impl Explanation {
    /// The shards the decision selects (equal to [`Router::route`]).
    pub fn shards(&self) -> &[ShardId] {
        match self {
            Explanation::Explicit { shards }
            | Explanation::Cluster { shards, .. }
            | Explanation::Lsh { shards, .. }
            | Explanation::Cel { shards, .. } => shards,
        }
    }
}

/// One LSH bucket considered during multi-probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LshBucket {
    /// The bit flipped from the query's code (`None` for the primary).
    pub flipped_bit: Option<u32>,
    /// The bucket's code.
    pub code: u64,
    /// `code % num_dbs`.
    pub shard: ShardId,
    /// Whether this bucket added a new shard to the probe list.
    pub probed: bool,
}

/// The shards a search probing until enough rows match may search, in
/// order ([`Router::probe_order`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOrder {
    /// The shards, in probing order.
    pub shards: Vec<ShardId>,
    /// How many of them the route names: `shards[..routed]` is the route.
    pub routed: usize,
}

impl ProbeOrder {
    /// The route, the order's prefix.
    pub fn route(&self) -> &[ShardId] {
        &self.shards[..self.routed.min(self.shards.len())]
    }
}

/// Routes queries for one manifest. Cheap to share; immutable.
#[derive(Debug)]
pub struct Router {
    num_dbs: u32,
    dim: usize,
    metric: Metric,
    strategy: Strategy,
    default_probes: u32,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Cluster {
        centroids: Matrix,
        norms: Vec<f32>,
    },
    Lsh {
        hyperplanes: Matrix,
    },
    Explicit,
    #[cfg(feature = "cel")]
    Cel(crate::cel_eval::CelRouter),
    #[cfg(not(feature = "cel"))]
    Cel(#[allow(dead_code)] CelSpec),
}

fn check_finite(m: &Matrix, artefact: &str) -> Result<()> {
    match m.as_slice().iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::npy(
            artefact,
            alloc::format!(
                "value at row {}, column {} is not finite",
                i / m.cols(),
                i % m.cols()
            ),
        )),
    }
}

impl Router {
    /// Builds the router of `manifest`. Checks that the artefacts the
    /// strategy needs are present, finite and of the shape the manifest
    /// states, and compiles the CEL expression.
    pub fn new(manifest: &Manifest, artefacts: RoutingArtefacts) -> Result<Router> {
        let v = &manifest.vector;
        let num_dbs = manifest.num_dbs();
        let kind = match v.strategy {
            Strategy::Cluster => {
                let m = artefacts.centroids.ok_or(Error::MissingArtefact {
                    strategy: Strategy::Cluster,
                    artefact: "centroids.npy",
                })?;
                let m = m.expect_shape(num_dbs as usize, v.dim, "centroids.npy")?;
                check_finite(&m, "centroids.npy")?;
                let norms = m.iter_rows().map(distance::norm).collect();
                Kind::Cluster {
                    centroids: m,
                    norms,
                }
            }
            Strategy::Lsh => {
                let m = artefacts.hyperplanes.ok_or(Error::MissingArtefact {
                    strategy: Strategy::Lsh,
                    artefact: "hyperplanes.npy",
                })?;
                let bits = match v.num_hash_bits {
                    Some(b) => b as usize,
                    None => m.rows(),
                };
                if bits == 0 || bits > crate::manifest::MAX_HASH_BITS as usize {
                    return Err(Error::npy(
                        "hyperplanes.npy",
                        alloc::format!("{bits} hyperplanes; LSH needs 1 to 64"),
                    ));
                }
                let m = m.expect_shape(bits, v.dim, "hyperplanes.npy")?;
                check_finite(&m, "hyperplanes.npy")?;
                Kind::Lsh { hyperplanes: m }
            }
            Strategy::Explicit => Kind::Explicit,
            Strategy::Cel => {
                let spec: &CelSpec = v.cel.as_ref().ok_or_else(|| {
                    Error::field("custom.vector.cel_expr", "CEL snapshots need an expression")
                })?;
                #[cfg(feature = "cel")]
                {
                    Kind::Cel(crate::cel_eval::CelRouter::new(spec, num_dbs)?)
                }
                #[cfg(not(feature = "cel"))]
                {
                    Kind::Cel(spec.clone())
                }
            }
        };
        Ok(Router {
            num_dbs,
            dim: v.dim,
            metric: v.metric,
            strategy: v.strategy,
            default_probes: v.num_probes,
            kind,
        })
    }

    /// Number of shards.
    pub fn num_dbs(&self) -> u32 {
        self.num_dbs
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Distance metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Sharding strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The manifest's default `num_probes`.
    pub fn default_probes(&self) -> u32 {
        self.default_probes
    }

    /// Checks a query's dimension and values.
    pub fn check_query(&self, query: &[f32]) -> Result<()> {
        if query.len() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                got: query.len(),
            });
        }
        match query.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(index) => Err(Error::NonFiniteQuery {
                index,
                value: query[index],
            }),
        }
    }

    /// The shards to probe for `query`.
    pub fn route(&self, query: &[f32], opts: &RouteOptions<'_>) -> Result<Vec<ShardId>> {
        let mut out = Vec::new();
        self.route_into(query, opts, &mut out)?;
        Ok(out)
    }

    /// [`route`](Self::route) into `out` (cleared first), so a caller can
    /// reuse one vector for many queries. On error `out` is left empty.
    pub fn route_into(
        &self,
        query: &[f32],
        opts: &RouteOptions<'_>,
        out: &mut Vec<ShardId>,
    ) -> Result<()> {
        out.clear();
        let r = self.route_inner(query, opts, out);
        if r.is_err() {
            out.clear();
        }
        r
    }

    fn probes(&self, opts: &RouteOptions<'_>) -> Result<usize> {
        let p = opts.num_probes.unwrap_or(self.default_probes);
        if p == 0 {
            return Err(Error::ZeroProbes);
        }
        Ok(p.min(self.num_dbs) as usize)
    }

    fn explicit(&self, ids: &[ShardId], out: &mut Vec<ShardId>) -> Result<()> {
        if ids.len() > crate::api::MAX_SHARD_IDS {
            return Err(Error::InvalidRequest(alloc::format!(
                "{} shard ids; at most {}",
                ids.len(),
                crate::api::MAX_SHARD_IDS
            )));
        }
        // First occurrences in order. A short list is deduplicated in the
        // output itself (no allocation: routing reuses `out`); a long one
        // through a set, so it costs n log n, not n².
        const SHORT: usize = 64;
        if ids.len() <= SHORT {
            for &id in ids {
                ShardId::checked(i128::from(id.0), self.num_dbs)?;
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            return Ok(());
        }
        let mut seen = alloc::collections::BTreeSet::new();
        for &id in ids {
            ShardId::checked(i128::from(id.0), self.num_dbs)?;
            if seen.insert(id) {
                out.push(id);
            }
        }
        Ok(())
    }

    fn route_inner(
        &self,
        query: &[f32],
        opts: &RouteOptions<'_>,
        out: &mut Vec<ShardId>,
    ) -> Result<()> {
        self.check_query(query)?;
        if let Some(ids) = opts.shard_ids {
            return self.explicit(ids, out);
        }
        match &self.kind {
            Kind::Cluster { centroids, norms } => {
                let p = self.probes(opts)?;
                self.cluster_top(query, centroids, norms, p, out);
                Ok(())
            }
            Kind::Lsh { hyperplanes } => {
                let p = self.probes(opts)?;
                let code = lsh_code(query, hyperplanes, None);
                lsh_probe(code, hyperplanes.rows(), self.num_dbs, p, out, None);
                Ok(())
            }
            Kind::Explicit => Err(EXPLICIT_NEEDS_IDS),
            Kind::Cel(_cel) => {
                let ctx = cel_context(opts)?;
                #[cfg(feature = "cel")]
                {
                    let (_, _, shard) = _cel.route(ctx)?;
                    out.push(shard);
                    Ok(())
                }
                #[cfg(not(feature = "cel"))]
                {
                    let _ = ctx;
                    Err(Error::CelUnsupported)
                }
            }
        }
    }

    fn centroid_distance(&self, query: &[f32], qnorm: f32, c: &[f32], cnorm: f32) -> f32 {
        match self.metric {
            Metric::L2 => distance::l2_squared(query, c),
            Metric::DotProduct => -distance::dot(c, query),
            Metric::Cosine => distance::cosine_with_norms(distance::dot(c, query), qnorm, cnorm),
        }
    }

    /// Routing distance from `query` to every centroid, in index order.
    fn centroid_distances<'a>(
        &'a self,
        query: &'a [f32],
        centroids: &'a Matrix,
        norms: &'a [f32],
    ) -> impl Iterator<Item = f32> + 'a {
        let qnorm = distance::norm(query);
        centroids
            .iter_rows()
            .zip(norms)
            .map(move |(c, &n)| self.centroid_distance(query, qnorm, c, n))
    }

    /// Selects the `p` nearest centroids, stable on ties.
    fn cluster_top(
        &self,
        query: &[f32],
        centroids: &Matrix,
        norms: &[f32],
        p: usize,
        out: &mut Vec<ShardId>,
    ) {
        let dists = self.centroid_distances(query, centroids, norms);
        // (distance, index) ordered by distance, then index: a stable sort.
        let cmp = |a: &(f32, u32), b: &(f32, u32)| total_order(a.0, b.0).then(a.1.cmp(&b.1));
        if p <= STACK_PROBES {
            let mut best = [(0.0f32, 0u32); STACK_PROBES];
            let mut n = 0usize;
            for (i, d) in dists.enumerate() {
                let cand = (d, i as u32);
                if n == p && cmp(&cand, &best[n - 1]) != Ordering::Less {
                    continue;
                }
                // Insertion point: after every entry that is <= cand.
                let at = best[..n].partition_point(|e| cmp(e, &cand) != Ordering::Greater);
                if n < p {
                    n += 1;
                }
                best.copy_within(at..n - 1, at + 1);
                best[at] = cand;
            }
            out.extend(best[..n].iter().map(|&(_, i)| ShardId(i)));
        } else {
            let mut all: Vec<(f32, u32)> = dists.enumerate().map(|(i, d)| (d, i as u32)).collect();
            all.sort_by(cmp);
            out.extend(all[..p].iter().map(|&(_, i)| ShardId(i)));
        }
    }

    /// The shards a search that probes until enough rows match
    /// (`min_results`) may search, in order: the route first (it is this
    /// list's prefix), then the next-nearest shards — for CLUSTER by
    /// centroid distance, for LSH the one-bit-flip buckets the route takes
    /// and then every other shard by the least Hamming distance of a code
    /// that maps to it (by id when the code has more than 20 bits) — until
    /// `max_probes` shards (default: every shard). Explicit shard ids,
    /// EXPLICIT and CEL snapshots: the route alone.
    ///
    /// `max_probes` below the route's length is an error, as is
    /// `max_probes` 0.
    pub fn probe_order(
        &self,
        query: &[f32],
        opts: &RouteOptions<'_>,
        max_probes: Option<u32>,
    ) -> Result<ProbeOrder> {
        let route = self.route(query, opts)?;
        let routed = route.len();
        self.probe_order_after(query, opts, max_probes, route)
            .map(|shards| ProbeOrder { shards, routed })
    }

    /// [`probe_order`](Self::probe_order) past `route`, the route for the
    /// same query and options.
    fn probe_order_after(
        &self,
        query: &[f32],
        opts: &RouteOptions<'_>,
        max_probes: Option<u32>,
        route: Vec<ShardId>,
    ) -> Result<Vec<ShardId>> {
        if let Some(n) = max_probes {
            if (n as usize) < route.len() || n == 0 {
                return Err(Error::InvalidRequest(alloc::format!(
                    "max_probes {n} is below the {} shards routed",
                    route.len()
                )));
            }
        }
        let limit = max_probes.unwrap_or(self.num_dbs).min(self.num_dbs) as usize;
        if opts.shard_ids.is_some() {
            return Ok(route);
        }
        let mut order = Vec::new();
        match &self.kind {
            Kind::Cluster { centroids, norms } => {
                self.cluster_top(query, centroids, norms, self.num_dbs as usize, &mut order);
            }
            Kind::Lsh { hyperplanes } => {
                let code = lsh_code(query, hyperplanes, None);
                let bits = hyperplanes.rows();
                lsh_probe(
                    code,
                    bits,
                    self.num_dbs,
                    self.num_dbs as usize,
                    &mut order,
                    None,
                );
                let mut rest: Vec<(u32, u32)> = Vec::new();
                let mut seen = alloc::vec![false; self.num_dbs as usize];
                for s in &order {
                    seen[s.index()] = true;
                }
                if bits <= 20 {
                    let mut best = alloc::vec![u32::MAX; self.num_dbs as usize];
                    for c in 0..(1u64 << bits) {
                        let shard = (c % u64::from(self.num_dbs)) as usize;
                        best[shard] = best[shard].min((c ^ code).count_ones());
                    }
                    for (id, d) in best.into_iter().enumerate() {
                        if !seen[id] {
                            rest.push((d, id as u32));
                        }
                    }
                } else {
                    for id in 0..self.num_dbs {
                        if !seen[id as usize] {
                            rest.push((0, id));
                        }
                    }
                }
                rest.sort_unstable();
                order.extend(rest.into_iter().map(|(_, id)| ShardId(id)));
            }
            Kind::Explicit | Kind::Cel(_) => return Ok(route),
        }
        order.truncate(limit.max(route.len()));
        Ok(order)
    }

    /// The routing decision for `query` with its reasons. `shards()` of the
    /// result always equals [`route`](Self::route) for the same inputs.
    pub fn explain(&self, query: &[f32], opts: &RouteOptions<'_>) -> Result<Explanation> {
        self.check_query(query)?;
        if let Some(ids) = opts.shard_ids {
            let mut shards = Vec::new();
            self.explicit(ids, &mut shards)?;
            return Ok(Explanation::Explicit { shards });
        }
        match &self.kind {
            Kind::Cluster { centroids, norms } => {
                let p = self.probes(opts)?;
                let distances: Vec<f32> =
                    self.centroid_distances(query, centroids, norms).collect();
                let mut ranking: Vec<ShardId> = (0..self.num_dbs).map(ShardId).collect();
                // `sort_by` is stable: ties keep index order.
                ranking.sort_by(|a, b| total_order(distances[a.index()], distances[b.index()]));
                let shards = ranking[..p].to_vec();
                Ok(Explanation::Cluster {
                    distances,
                    ranking,
                    shards,
                })
            }
            Kind::Lsh { hyperplanes } => {
                let p = self.probes(opts)?;
                let mut projections = Vec::with_capacity(hyperplanes.rows());
                let code = lsh_code(query, hyperplanes, Some(&mut projections));
                let mut shards = Vec::new();
                let mut buckets = Vec::new();
                lsh_probe(
                    code,
                    hyperplanes.rows(),
                    self.num_dbs,
                    p,
                    &mut shards,
                    Some(&mut buckets),
                );
                Ok(Explanation::Lsh {
                    projections,
                    code,
                    buckets,
                    shards,
                })
            }
            #[cfg(feature = "cel")]
            Kind::Cel(cel) => {
                let (value, categorical_index, shard) = cel.route(cel_context(opts)?)?;
                Ok(Explanation::Cel {
                    value,
                    categorical_index,
                    shards: alloc::vec![shard],
                })
            }
            #[cfg(not(feature = "cel"))]
            Kind::Cel(_) => {
                cel_context(opts)?;
                Err(Error::CelUnsupported)
            }
            Kind::Explicit => Err(EXPLICIT_NEEDS_IDS),
        }
    }
}

const EXPLICIT_NEEDS_IDS: Error = Error::MissingRoutingInput {
    strategy: Strategy::Explicit,
    needs: "shard_ids",
};

fn cel_context<'a>(opts: &RouteOptions<'a>) -> Result<&'a RoutingContext> {
    opts.routing_context.ok_or(Error::MissingRoutingInput {
        strategy: Strategy::Cel,
        needs: "a routing_context",
    })
}

/// `Σ (h_i · q > 0) << i`.
fn lsh_code(query: &[f32], hyperplanes: &Matrix, mut projections: Option<&mut Vec<f32>>) -> u64 {
    let mut code = 0u64;
    for (i, h) in hyperplanes.iter_rows().enumerate() {
        let p = distance::dot(h, query);
        if let Some(out) = projections.as_deref_mut() {
            out.push(p);
        }
        if p > 0.0 {
            code |= 1u64 << i;
        }
    }
    code
}

/// Multi-probe: the primary bucket's shard, then for bit 0, 1, … the shard of
/// the code with that bit flipped, when new, until `p` shards.
fn lsh_probe(
    code: u64,
    bits: usize,
    num_dbs: u32,
    p: usize,
    out: &mut Vec<ShardId>,
    mut trace: Option<&mut Vec<LshBucket>>,
) {
    let shard_of = |c: u64| ShardId((c % u64::from(num_dbs)) as u32);
    out.push(shard_of(code));
    if let Some(t) = trace.as_deref_mut() {
        t.push(LshBucket {
            flipped_bit: None,
            code,
            shard: shard_of(code),
            probed: true,
        });
    }
    for bit in 0..bits {
        if out.len() >= p {
            break;
        }
        let flipped = code ^ (1u64 << bit);
        let s = shard_of(flipped);
        let new = !out.contains(&s);
        if new {
            out.push(s);
        }
        if let Some(t) = trace.as_deref_mut() {
            t.push(LshBucket {
                flipped_bit: Some(bit as u32),
                code: flipped,
                shard: s,
                probed: new,
            });
        }
    }
    out.truncate(p);
}

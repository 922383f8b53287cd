//! Int8 codes of a shard's vectors: the select pass of the quantized
//! scan, with an error bound that keeps answers exact.
//!
//! Scanning `f32` vectors is bound by memory bandwidth; the codes are a
//! quarter of the bytes. Each dimension `d` gets an affine code from the
//! shard's own vectors (computed at open): `x_d ≈ o_d + s_d·c_d` with
//! `c_d ∈ [-127, 127]`, `o_d` the midpoint and `s_d` the range / 254, so
//! `|x_d − (o_d + s_d·c_d)| ≤ s_d / 2`.
//!
//! Cosine codes the unit vectors `x / ‖x‖` (and the query is normalised
//! too), so a row's magnitude never coarsens the others' codes. Every
//! metric then reduces to a dot product: `q·x ≈ q·o + Σ_d (q_d s_d) c_d`.
//! The weights `w_d = q_d s_d` are themselves written in int8, twice: `w ≈
//! a / t + b / u` (`a` the weights rounded, `b` what that left, rounded at
//! its own scale), so the sum is two integer dot products over the same
//! codes (`dot2`, exact). Two roundings separate the estimate from `q·x`,
//! and both are bounded per row:
//!
//! - the vector's codes: `|q·x − q·x̂| ≤ min(½ Σ_d |w_d|, ‖q‖·‖x − x̂‖)`
//!   (the residual norm stored per row: Cauchy–Schwarz);
//! - the weights' codes: `|Σ w_d c_d − Σ (a_d/t + b_d/u) c_d| ≤ ½ Σ_d |c_d|
//!   / u` (`Σ_d |c_d|` stored per row; `1/u` is at most `1/254t`).
//!
//! [`Int8Codes::lower_bounds`] turns the estimate into a *lower bound* of
//! the row's exact ranking key, computed in `f32` with a proven rounding
//! margin ([`F32Bounds`]). The caller rescores exactly the rows with the
//! smallest lower bounds, then every other row whose lower bound is below
//! the k-th exact key ([`FlatVectors::top_k_in`](crate::flat::FlatVectors::top_k_in)):
//! no row left out can belong in the top-k. The codes therefore change the
//! speed of a search, never its answer.

use std::cell::RefCell;

use shardvec_core::Metric;

thread_local! {
    /// Each scan's two dot products per row, one buffer pair per thread.
    static DOTS: RefCell<(Vec<i32>, Vec<i32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// The per-query constants of the scan's bounds in `f32`, and the margin
/// that keeps them lower bounds. The expression evaluated per row has a
/// dozen roundings (the constants' conversion from `f64` included), each
/// at most half an `f32` ulp of a term no larger than `M`, the sum of the
/// largest magnitude every term can take for this query; the margin is
/// `32 · 2⁻²⁴ · M`, more than their sum.
struct F32Bounds {
    offset_dot: f32,
    inv_t: f32,
    inv_u: f32,
    vector_error: f32,
    used_norm: f32,
    half_inv_u: f32,
    /// The key's constant: `1 − (unit rounding)` for cosine, 0 otherwise.
    base: f32,
    slack: f32,
}

impl F32Bounds {
    fn new(codes: &Int8Codes, q: &QueryCodes) -> F32Bounds {
        let grow = 1.0 + 1e-9;
        let base = match codes.metric {
            Metric::Cosine => 1.0 - (codes.dim as f64 + 4.0) * f64::from(f32::EPSILON),
            _ => 0.0,
        };
        let max_dot = 127.0 * 127.0 * codes.dim as f64;
        let max_error = q
            .vector_error
            .min(q.used_norm * f64::from(codes.max_residual))
            + 0.5 * f64::from(codes.max_l1) * q.inv_u;
        let factor = if codes.metric == Metric::L2 { 2.0 } else { 1.0 };
        let max_sq_norm = if codes.metric == Metric::L2 {
            codes.max_norm * codes.max_norm
        } else {
            0.0
        };
        let magnitude = base.abs()
            + max_sq_norm
            + factor
                * (q.q_dot_offset.abs()
                    + max_dot * (q.inv_t + q.inv_u)
                    + max_error * grow
                    + q.vector_error);
        F32Bounds {
            offset_dot: q.q_dot_offset as f32,
            inv_t: q.inv_t as f32,
            inv_u: q.inv_u as f32,
            // The error terms only ever grow: rounded up.
            vector_error: (q.vector_error * grow) as f32,
            used_norm: (q.used_norm * grow) as f32,
            half_inv_u: (0.5 * q.inv_u * grow) as f32,
            base: base as f32,
            slack: (32.0 * f64::from(f32::EPSILON) * magnitude) as f32,
        }
    }

    /// The row's estimate of `q·x` and its error bound.
    #[inline(always)]
    fn estimate(&self, a: i32, b: i32, residual: f32, l1: u32) -> (f32, f32) {
        let est = self.offset_dot + a as f32 * self.inv_t + b as f32 * self.inv_u;
        let err = self.vector_error.min(self.used_norm * residual) + l1 as f32 * self.half_inv_u;
        (est, err)
    }
}

/// A shard's int8 codes and what the bounds need.
#[derive(Debug, Clone)]
pub(crate) struct Int8Codes {
    dim: usize,
    metric: Metric,
    offset: Vec<f32>,
    scale: Vec<f32>,
    /// Row-major codes.
    codes: Vec<i8>,
    /// `Σ_d |c_d|` of each row.
    l1: Vec<u32>,
    /// `‖x − x̂‖` of each row, rounded up.
    residual: Vec<f32>,
    /// `‖x‖²` of each row (L2 only), rounded down to `f32` (a lower
    /// bound stays one).
    sq_norms: Vec<f32>,
    /// The largest `‖x‖` (for the rounding bounds of dot products and of
    /// the `f32` bounds).
    max_norm: f64,
    /// The largest `Σ_d |c_d|` and `‖x − x̂‖` of a row (for the `f32`
    /// bounds' rounding margin).
    max_l1: u32,
    max_residual: f32,
    /// Rows that are the zero vector (no cosine: never candidates).
    zero_rows: Vec<u32>,
}

/// A query prepared for [`Int8Codes::lower_bounds`].
pub(crate) struct QueryCodes {
    /// The weights rounded (`a`), and what that left (`b`).
    weights: Vec<i8>,
    residual_weights: Vec<i8>,
    /// `1 / t` and `1 / u` (0 when there is nothing at that scale).
    inv_t: f64,
    inv_u: f64,
    /// `q·o`.
    q_dot_offset: f64,
    /// `½ Σ_d |w_d|`: the vector codes' part of the bound.
    vector_error: f64,
    /// `‖q‖` of the query the codes are compared with (the unit query
    /// for cosine), for the Cauchy–Schwarz bound.
    used_norm: f64,
    /// `‖q‖`.
    q_norm: f64,
}

impl Int8Codes {
    /// Codes of `data` (`rows × dim`, row-major) for `metric`.
    pub(crate) fn build(data: &[f32], dim: usize, metric: Metric) -> Int8Codes {
        if metric == Metric::Cosine {
            let unit: Vec<f32> = data
                .chunks_exact(dim.max(1))
                .flat_map(|row| {
                    let n = row
                        .iter()
                        .map(|&x| f64::from(x) * f64::from(x))
                        .sum::<f64>()
                        .sqrt();
                    row.iter().map(move |&x| {
                        if n > 0.0 {
                            (f64::from(x) / n) as f32
                        } else {
                            0.0
                        }
                    })
                })
                .collect();
            let mut codes = Int8Codes::build_affine(&unit, dim, metric);
            // As the f32 scan decides it (`norm` 0: a zero vector, or one
            // whose squares underflow in f32).
            codes.zero_rows = data
                .chunks_exact(dim.max(1))
                .enumerate()
                .filter(|(_, row)| shardvec_core::distance::norm(row) == 0.0)
                .map(|(i, _)| i as u32)
                .collect();
            return codes;
        }
        Int8Codes::build_affine(data, dim, metric)
    }

    fn build_affine(data: &[f32], dim: usize, metric: Metric) -> Int8Codes {
        let rows = data.len().checked_div(dim).unwrap_or(0);
        let (mut lo, mut hi) = (vec![f32::INFINITY; dim], vec![f32::NEG_INFINITY; dim]);
        for row in data.chunks_exact(dim.max(1)) {
            for (d, &x) in row.iter().enumerate() {
                lo[d] = lo[d].min(x);
                hi[d] = hi[d].max(x);
            }
        }
        let offset: Vec<f32> = lo.iter().zip(&hi).map(|(l, h)| l / 2.0 + h / 2.0).collect();
        let scale: Vec<f32> = lo
            .iter()
            .zip(&hi)
            .map(|(l, h)| ((f64::from(*h) - f64::from(*l)) / 254.0) as f32)
            .collect();
        let mut codes = Vec::with_capacity(rows * dim);
        let mut l1 = Vec::with_capacity(rows);
        let mut residual = Vec::with_capacity(rows);
        let mut sq_norms = Vec::with_capacity(if metric == Metric::L2 { rows } else { 0 });
        let mut max_norm = 0f64;
        for row in data.chunks_exact(dim.max(1)) {
            let mut sum = 0u32;
            let (mut sq, mut res) = (0f64, 0f64);
            for (d, &x) in row.iter().enumerate() {
                let c = if scale[d] > 0.0 {
                    ((f64::from(x) - f64::from(offset[d])) / f64::from(scale[d]))
                        .round()
                        .clamp(-127.0, 127.0) as i8
                } else {
                    0
                };
                sum += u32::from(c.unsigned_abs());
                codes.push(c);
                sq += f64::from(x) * f64::from(x);
                let decoded = f64::from(offset[d]) + f64::from(scale[d]) * f64::from(c);
                res += (f64::from(x) - decoded).powi(2);
            }
            l1.push(sum);
            // Rounded up, with room for the f64 sums' own rounding.
            residual.push(((res.sqrt() * (1.0 + 1e-9)) as f32).next_up());
            max_norm = max_norm.max(sq.sqrt());
            if metric == Metric::L2 {
                sq_norms.push(round_down(sq));
            }
        }
        Int8Codes {
            dim,
            metric,
            offset,
            scale,
            codes,
            max_l1: l1.iter().copied().max().unwrap_or(0),
            l1,
            max_residual: residual.iter().copied().fold(0.0, f32::max),
            residual,
            sq_norms,
            max_norm,
            zero_rows: Vec::new(),
        }
    }

    /// Bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.codes.capacity()
            + (self.offset.capacity()
                + self.scale.capacity()
                + self.l1.capacity()
                + self.residual.capacity())
                * 4
            + (self.sq_norms.capacity() + self.zero_rows.capacity()) * 4
    }

    /// `query` (of the codes' dimension) prepared for scoring rows.
    pub(crate) fn query(&self, query: &[f32]) -> QueryCodes {
        let q_norm = query
            .iter()
            .map(|&q| f64::from(q) * f64::from(q))
            .sum::<f64>()
            .sqrt();
        // Cosine compares unit vectors (the codes are of unit rows).
        let unit = if self.metric == Metric::Cosine && q_norm > 0.0 {
            1.0 / q_norm
        } else {
            1.0
        };
        let query: Vec<f64> = query.iter().map(|&q| f64::from(q) * unit).collect();
        let w: Vec<f64> = query
            .iter()
            .zip(&self.scale)
            .map(|(&q, &s)| q * f64::from(s))
            .collect();
        let (weights, inv_t, rest) = int8_scaled(&w);
        let (residual_weights, inv_u, _) = int8_scaled(&rest);
        let used_norm = query.iter().map(|q| q * q).sum::<f64>().sqrt();
        QueryCodes {
            weights,
            residual_weights,
            inv_t,
            inv_u,
            used_norm,
            q_dot_offset: query
                .iter()
                .zip(&self.offset)
                .map(|(&q, &o)| q * f64::from(o))
                .sum(),
            vector_error: 0.5 * w.iter().map(|x| x.abs()).sum::<f64>(),
            q_norm,
        }
    }

    /// Lower bounds of the rows' ranking keys for `q`, appended to `out`
    /// as `(bound, row)`: every row in order (`rows` `None`: the scan), or
    /// the rows given. The key is `1 − cos` (cosine), `‖x‖² − 2 q·x` (L2:
    /// the squared distance less `‖q‖²`) or `−q·x` (dot product). Rows
    /// that are the zero vector under cosine get an infinite bound.
    pub(crate) fn lower_bounds(
        &self,
        q: &QueryCodes,
        rows: Option<&mut dyn Iterator<Item = usize>>,
        out: &mut Vec<(f32, u32)>,
    ) {
        let b = F32Bounds::new(self, q);
        let Some(rows) = rows else {
            return self.lower_bounds_all(q, &b, out);
        };
        // A filter's rows: one at a time (they are not contiguous).
        for i in rows.filter(|&i| i < self.l1.len()) {
            let start = i * self.dim;
            let (x, y) = dot2(
                &q.weights,
                &q.residual_weights,
                &self.codes[start..start + self.dim],
            );
            let bound = match self.metric {
                Metric::L2 => self.l2_bound(&b, i, x, y),
                Metric::Cosine if self.zero_rows.binary_search(&(i as u32)).is_ok() => {
                    f32::INFINITY
                }
                Metric::Cosine | Metric::DotProduct => self.dot_bound(&b, i, x, y),
            };
            out.push((bound, i as u32));
        }
    }

    /// Every row's bound: the scan, dispatched to its AVX2 build when the
    /// CPU has it.
    fn lower_bounds_all(&self, q: &QueryCodes, b: &F32Bounds, out: &mut Vec<(f32, u32)>) {
        let start = out.len();
        out.reserve(self.l1.len());
        DOTS.with(|cell| {
            let (da, db) = &mut *cell.borrow_mut();
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above), the
                // only requirement of calling a `target_feature(enable =
                // "avx2")` function; its body is safe code.
                unsafe { self.lower_bounds_avx2(q, b, da, db, out) };
                return;
            }
            self.lower_bounds_portable(q, b, da, db, out);
        });
        for &z in &self.zero_rows {
            if let Some(slot) = out.get_mut(start + z as usize) {
                slot.0 = f32::INFINITY;
            }
        }
    }

    /// The scan, in two loops the compiler vectorises: the integer dot
    /// products (`dot2`), then the bounds. Compiled twice on x86-64 — for
    /// the default target (SSE2) and with AVX2, chosen at run time.
    /// Hand-written because the SIMD crate at hand (simsimd) scores one row
    /// per call, and that call's overhead, not memory, then bounded the
    /// scan.
    #[inline(always)]
    fn lower_bounds_portable(
        &self,
        q: &QueryCodes,
        b: &F32Bounds,
        da: &mut Vec<i32>,
        db: &mut Vec<i32>,
        out: &mut Vec<(f32, u32)>,
    ) {
        if self.dim == 0 {
            return;
        }
        da.clear();
        db.clear();
        // Plain loops, not closures or iterator adapters: those are
        // separate functions, compiled without the caller's AVX2.
        for c in self.codes.chunks_exact(self.dim) {
            let (x, y) = dot2(&q.weights, &q.residual_weights, c);
            da.push(x);
            db.push(y);
        }
        let rows = da.len().min(db.len());
        // The metric's branch outside the loops, which then vectorise.
        match self.metric {
            Metric::L2 => {
                for i in 0..rows {
                    out.push((self.l2_bound(b, i, da[i], db[i]), i as u32));
                }
            }
            Metric::Cosine | Metric::DotProduct => {
                for i in 0..rows {
                    out.push((self.dot_bound(b, i, da[i], db[i]), i as u32));
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn lower_bounds_avx2(
        &self,
        q: &QueryCodes,
        b: &F32Bounds,
        da: &mut Vec<i32>,
        db: &mut Vec<i32>,
        out: &mut Vec<(f32, u32)>,
    ) {
        self.lower_bounds_portable(q, b, da, db, out);
    }

    /// The L2 key's bound of row `i` from its dot products `x`, `y`.
    #[inline(always)]
    fn l2_bound(&self, b: &F32Bounds, i: usize, x: i32, y: i32) -> f32 {
        let (est, err) = b.estimate(x, y, self.residual[i], self.l1[i]);
        self.sq_norms[i] - 2.0 * est - 2.0 * err - b.slack
    }

    /// The cosine or dot-product key's bound of row `i`.
    #[inline(always)]
    fn dot_bound(&self, b: &F32Bounds, i: usize, x: i32, y: i32) -> f32 {
        let (est, err) = b.estimate(x, y, self.residual[i], self.l1[i]);
        b.base - est - err - b.slack
    }

    /// An upper bound of the exact key of a row that sqlite-vec's scalar
    /// code scored `reported` ([`crate::flat::sqlite_vec_score`]), and how
    /// far a reported score may sit below its row's exact key: the `f32`
    /// sums' rounding (at most `dim` ulps of the terms' magnitude, doubled
    /// for safety).
    pub(crate) fn key_upper_bound(&self, q: &QueryCodes, reported: f32) -> (f64, f64) {
        let ulp = f64::from(f32::EPSILON);
        let n = self.dim as f64 + 4.0;
        let r = f64::from(reported);
        match self.metric {
            Metric::DotProduct => {
                let rounding = 2.0 * n * ulp * q.q_norm * self.max_norm;
                (r + rounding, rounding)
            }
            Metric::L2 => {
                // reported = sqrt(l2sq in f32), rounded to f32.
                let l2sq = r * r * (1.0 + 4.0 * ulp) * (1.0 + 2.0 * n * ulp);
                let q_sq = q.q_norm * q.q_norm;
                let rounding = 2.0 * n * ulp * (l2sq + q_sq + self.max_norm * self.max_norm);
                (l2sq - q_sq + rounding, rounding)
            }
            Metric::Cosine => {
                let rounding = 4.0 * n * ulp + ulp * r.abs();
                (r + rounding, rounding)
            }
        }
    }
}

/// `values` as int8 at the scale that puts the largest at ±127: the codes,
/// the inverse scale (0 if every value is 0) and what the rounding left.
fn int8_scaled(values: &[f64]) -> (Vec<i8>, f64, Vec<f64>) {
    let max = values.iter().fold(0f64, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![0; values.len()], 0.0, vec![0.0; values.len()]);
    }
    let t = 127.0 / max;
    let codes: Vec<i8> = values
        .iter()
        .map(|x| (x * t).round().clamp(-127.0, 127.0) as i8)
        .collect();
    let rest = values
        .iter()
        .zip(&codes)
        .map(|(x, &c)| x - f64::from(c) / t)
        .collect();
    (codes, 1.0 / t, rest)
}

/// `x` as an `f32` no greater than `x` (a lower bound stays one).
fn round_down(x: f64) -> f32 {
    let y = x as f32;
    if f64::from(y) > x {
        y.next_down()
    } else {
        y
    }
}

/// The longest rows [`dot2`] sums exactly in `i32`.
pub(crate) const MAX_DIM: usize = (i32::MAX / (127 * 127)) as usize;

/// `(Σ a_d c_d, Σ b_d c_d)`: both weight vectors against one row's codes,
/// the codes read once. Exact: |a_d c_d| ≤ 127², and codes are built only
/// for rows of at most [`MAX_DIM`] dimensions.
#[inline(always)]
fn dot2(a: &[i8], b: &[i8], c: &[i8]) -> (i32, i32) {
    // Wrapping operations (that never wrap, see above): the debug
    // profile's overflow checks would otherwise keep the loop scalar.
    // Products in i16 (127² fits), summed in i32: the multiply-add idiom
    // the compiler turns into `pmaddwd`.
    let (mut x, mut y) = (0i32, 0i32);
    for ((&a, &b), &c) in a.iter().zip(b).zip(c) {
        let c = i16::from(c);
        x = x.wrapping_add(i32::from(i16::from(a).wrapping_mul(c)));
        y = y.wrapping_add(i32::from(i16::from(b).wrapping_mul(c)));
    }
    (x, y)
}

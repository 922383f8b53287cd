//! Int8 codes of a shard's vectors: the select pass of the quantized
//! in-memory scan, with an error bound that keeps answers exact.
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
//! The weights `w_d = q_d s_d` are themselves rounded to int8 (`w_d ≈
//! ŵ_d / t`), so the sum is one int8 dot product (simsimd's SIMD kernels,
//! exact in integers). Two roundings separate the estimate from `q·x`, and
//! both are bounded per row:
//!
//! - the vector's codes: `|q·x − q·x̂| ≤ ½ Σ_d |w_d|` (one number per
//!   query);
//! - the weights' codes: `|Σ w_d c_d − Σ ŵ_d c_d / t| ≤ ½ Σ_d |c_d| / t`
//!   (`Σ_d |c_d|` stored per row).
//!
//! [`Int8Codes::lower_bound`] turns the estimate into a *lower bound* of the
//! row's exact ranking key. The caller rescores exactly the rows with the
//! smallest lower bounds, then every other row whose lower bound is below
//! the k-th exact key ([`FlatVectors::top_k_in`](crate::flat::FlatVectors::top_k_in)):
//! no row left out can belong in the top-k. The codes therefore change the
//! speed of a search, never its answer.

use shardvec_core::Metric;

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
    /// `‖x‖²` of each row (L2 only), in `f64`.
    sq_norms: Vec<f64>,
    /// The largest `‖x‖` (for the rounding bound of dot products).
    max_norm: f64,
}

/// A query prepared for [`Int8Codes::lower_bound`].
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
            return Int8Codes::build_affine(&unit, dim, metric);
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
                sq_norms.push(sq);
            }
        }
        Int8Codes {
            dim,
            metric,
            offset,
            scale,
            codes,
            l1,
            residual,
            sq_norms,
            max_norm,
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
            + self.sq_norms.capacity() * 8
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

    /// A lower bound of row `row`'s ranking key for `q`, where the key is
    /// `1 − cos` (cosine), `‖x‖² − 2 q·x` (L2: the squared distance less
    /// `‖q‖²`) or `−q·x` (dot product).
    #[inline]
    pub(crate) fn lower_bound(&self, q: &QueryCodes, row: usize) -> f64 {
        let start = row * self.dim;
        let codes = &self.codes[start..start + self.dim];
        let dots = dot2(&q.weights, &q.residual_weights, codes);
        self.bound_of(q, row, dots)
    }

    /// [`lower_bound`](Self::lower_bound) of every row, in row order,
    /// appended to `out` as `(bound rounded down, row)`, skipping rows for
    /// which `skip` says so.
    pub(crate) fn lower_bounds_all(
        &self,
        q: &QueryCodes,
        skip: impl Fn(usize) -> bool,
        out: &mut Vec<(f32, u32)>,
    ) {
        out.reserve(self.l1.len());
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above), the only
            // requirement of calling a `target_feature(enable = "avx2")`
            // function; its body is safe code.
            unsafe { self.lower_bounds_avx2(q, skip, out) };
            return;
        }
        self.lower_bounds_portable(q, skip, out);
    }

    /// The scan: a plain loop the compiler vectorises (`dot2`), compiled
    /// twice on x86-64 — for the default target (SSE2) and with AVX2,
    /// chosen at run time. Hand-written because the SIMD crate at hand
    /// (simsimd) scores one row per call, and that call's overhead, not
    /// memory, then bounded the scan.
    #[inline(always)]
    fn lower_bounds_portable(
        &self,
        q: &QueryCodes,
        skip: impl Fn(usize) -> bool,
        out: &mut Vec<(f32, u32)>,
    ) {
        if self.dim == 0 {
            return;
        }
        // Plain loops, not iterator adapters: an adapter's `fold` would be
        // a separate function, compiled without the caller's AVX2.
        for (i, c) in self.codes.chunks_exact(self.dim).enumerate() {
            if skip(i) {
                continue;
            }
            let dots = dot2(&q.weights, &q.residual_weights, c);
            out.push((round_down(self.bound_of(q, i, dots)), i as u32));
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn lower_bounds_avx2(
        &self,
        q: &QueryCodes,
        skip: impl Fn(usize) -> bool,
        out: &mut Vec<(f32, u32)>,
    ) {
        self.lower_bounds_portable(q, skip, out);
    }

    /// The bound from the row's two integer dot products.
    #[inline(always)]
    fn bound_of(&self, q: &QueryCodes, row: usize, (a, b): (i32, i32)) -> f64 {
        let estimate = q.q_dot_offset + f64::from(a) * q.inv_t + f64::from(b) * q.inv_u;
        let vector_error = q
            .vector_error
            .min(q.used_norm * f64::from(self.residual[row]));
        // Both roundings, plus a margin for the f64 arithmetic itself.
        let error = (vector_error + 0.5 * f64::from(self.l1[row]) * q.inv_u) * (1.0 + 1e-9)
            + 1e-12 * (estimate.abs() + q.vector_error);
        match self.metric {
            Metric::DotProduct => -estimate - error,
            Metric::L2 => self.sq_norms[row] - 2.0 * estimate - 2.0 * error,
            Metric::Cosine => {
                // The unit rows were rounded to f32 before coding: half an
                // ulp per value, at most `dim` ulps in the cosine.
                let unit_rounding = (self.dim as f64 + 4.0) * f64::from(f32::EPSILON);
                1.0 - estimate - error - unit_rounding
            }
        }
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
pub(crate) fn round_down(x: f64) -> f32 {
    let y = x as f32;
    if f64::from(y) > x {
        y.next_down()
    } else {
        y
    }
}

/// `(Σ a_d c_d, Σ b_d c_d)`: both weight vectors against one row's codes,
/// the codes read once. Exact: |a_d c_d| ≤ 127², and rows are far shorter
/// than `i32::MAX / 127²` dimensions (the writer caps dimensions well
/// below it).
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

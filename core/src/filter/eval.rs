//! Evaluating a filter on one record, and the per-value test that the
//! columnar evaluation ([`super::columns`]) shares.

use core::cmp::Ordering;

use serde_json::Value;

use super::{Bound, CmpOp, Cond, Expr, Field, Num, Scalar, ScalarSet};
use crate::types::VectorId;

/// A scalar of a record, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ScalarRef<'a> {
    Null,
    Bool(bool),
    Num(Num),
    Str(&'a str),
}

impl<'a> ScalarRef<'a> {
    /// A JSON scalar; `None` for arrays, objects (and non-finite numbers,
    /// which JSON cannot spell).
    pub(crate) fn from_json(v: &'a Value) -> Option<ScalarRef<'a>> {
        Some(match v {
            Value::Null => ScalarRef::Null,
            Value::Bool(b) => ScalarRef::Bool(*b),
            Value::Number(n) => ScalarRef::Num(Num::from_json(n)?),
            Value::String(s) => ScalarRef::Str(s),
            Value::Array(_) | Value::Object(_) => return None,
        })
    }

    pub(crate) fn from_id(id: &'a VectorId) -> ScalarRef<'a> {
        match id {
            VectorId::Int(i) => ScalarRef::Num(Num::Int(*i)),
            VectorId::Str(s) => ScalarRef::Str(s),
        }
    }
}

fn equals(s: &Scalar, v: ScalarRef<'_>) -> bool {
    match (s, v) {
        (Scalar::Null, ScalarRef::Null) => true,
        (Scalar::Bool(a), ScalarRef::Bool(b)) => *a == b,
        (Scalar::Num(a), ScalarRef::Num(b)) => a.cmp_num(b) == Some(Ordering::Equal),
        (Scalar::Str(a), ScalarRef::Str(b)) => a.as_str() == b,
        _ => false,
    }
}

fn member(set: &ScalarSet, v: ScalarRef<'_>) -> bool {
    match v {
        ScalarRef::Null => set.null,
        ScalarRef::Bool(b) => set.bools[usize::from(b)],
        ScalarRef::Num(n) => set
            .nums
            .binary_search_by(|m| m.cmp_num(n).unwrap_or(Ordering::Less))
            .is_ok(),
        ScalarRef::Str(s) => set.strs.binary_search_by(|m| m.as_str().cmp(s)).is_ok(),
    }
}

fn compare(op: CmpOp, bound: &Bound, v: ScalarRef<'_>) -> bool {
    let ord = match (v, bound) {
        (ScalarRef::Num(a), Bound::Num(b)) => a.cmp_num(*b),
        (ScalarRef::Str(a), Bound::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        _ => None,
    };
    match (op, ord) {
        (_, None) => false,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Gte, Some(o)) => o != Ordering::Less,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Lte, Some(o)) => o != Ordering::Greater,
    }
}

/// Whether one scalar value satisfies the *positive* form of `cond`
/// (`$ne` tests equality, `$nin` membership; [`outcome`] negates them).
/// `$exists` looks at no value: always `false`.
pub(crate) fn hit(cond: &Cond, v: ScalarRef<'_>) -> bool {
    match cond {
        Cond::Eq(s) | Cond::Ne(s) => equals(s, v),
        Cond::Cmp(op, b) => compare(*op, b, v),
        Cond::In(set) | Cond::Nin(set) => member(set, v),
        Cond::Exists(_) => false,
    }
}

/// The verdict of `cond` on a field that is `present` (or not) and of
/// whose scalar values `any_hit` says whether one [`hit`]s.
pub(crate) fn outcome(cond: &Cond, present: bool, any_hit: bool) -> bool {
    match cond {
        Cond::Exists(want) => present == *want,
        Cond::Ne(_) | Cond::Nin(_) => !any_hit,
        Cond::Eq(_) | Cond::Cmp(..) | Cond::In(_) => any_hit,
    }
}

/// The value at `segments` inside `payload`, walking objects only.
fn resolve<'a>(
    payload: Option<&'a Value>,
    segments: &[alloc::string::String],
) -> Option<&'a Value> {
    let mut at = payload?;
    for seg in segments {
        at = at.as_object()?.get(seg.as_str())?;
    }
    Some(at)
}

pub(crate) fn matches(e: &Expr, id: &VectorId, payload: Option<&Value>) -> bool {
    match e {
        Expr::And(parts) => parts.iter().all(|p| matches(p, id, payload)),
        Expr::Or(parts) => parts.iter().any(|p| matches(p, id, payload)),
        Expr::Not(inner) => !matches(inner, id, payload),
        Expr::Field(Field::Id, cond) => outcome(cond, true, hit(cond, ScalarRef::from_id(id))),
        Expr::Field(Field::Path(segments), cond) => match resolve(payload, segments) {
            None => outcome(cond, false, false),
            Some(Value::Array(items)) => {
                let any = items
                    .iter()
                    .filter_map(ScalarRef::from_json)
                    .any(|v| hit(cond, v));
                outcome(cond, true, any)
            }
            Some(v) => {
                let any = ScalarRef::from_json(v).is_some_and(|v| hit(cond, v));
                outcome(cond, true, any)
            }
        },
    }
}

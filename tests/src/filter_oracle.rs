//! An evaluator of payload filters written apart from
//! `shardvec_core::filter`, straight from the documented semantics (the
//! module docs of `shardvec_core::filter`), and proptest strategies of
//! random payloads (ints, floats, strings, bools, nulls, arrays, nested
//! objects, missing fields), ids and filters: the truth of the filter
//! property tests.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use shardvec_core::VectorId;

/// An id as JSON (what `$id` compares with).
pub fn id_json(id: &VectorId) -> Value {
    match id {
        VectorId::Int(i) => json!(i),
        VectorId::Str(s) => json!(s),
    }
}

// ---- the independent evaluator ----------------------------------------

pub fn lookup<'a>(payload: Option<&'a Value>, path: &str) -> Option<&'a Value> {
    let mut at = payload?;
    for seg in path.split('.') {
        at = at.as_object()?.get(seg)?;
    }
    Some(at)
}

fn same(x: &Value, y: &Value) -> bool {
    match (x, y) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) => a == b,
        _ => false,
    }
}

fn scalar_op(x: &Value, op: &str, arg: &Value) -> bool {
    let ord = match (x, arg) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        _ => None,
    };
    match op {
        "$eq" => same(x, arg),
        "$in" => arg.as_array().unwrap().iter().any(|a| same(x, a)),
        "$gt" => ord == Some(std::cmp::Ordering::Greater),
        "$gte" => matches!(ord, Some(o) if o != std::cmp::Ordering::Less),
        "$lt" => ord == Some(std::cmp::Ordering::Less),
        "$lte" => matches!(ord, Some(o) if o != std::cmp::Ordering::Greater),
        _ => unreachable!("{op}"),
    }
}

fn op_ok(val: Option<&Value>, op: &str, arg: &Value) -> bool {
    match op {
        "$exists" => val.is_some() == arg.as_bool().unwrap(),
        "$ne" => !op_ok(val, "$eq", arg),
        "$nin" => !op_ok(val, "$in", arg),
        "$not" => !field_ok(val, arg),
        _ => {
            let vals: Vec<&Value> = match val {
                None => vec![],
                Some(Value::Array(items)) => items.iter().collect(),
                Some(v) => vec![v],
            };
            vals.into_iter().any(|x| scalar_op(x, op, arg))
        }
    }
}

fn field_ok(val: Option<&Value>, cond: &Value) -> bool {
    match cond {
        Value::Object(ops) => ops.iter().all(|(op, arg)| op_ok(val, op, arg)),
        v => op_ok(val, "$eq", v),
    }
}

/// Whether the record (`id` as JSON, `payload`) matches the JSON filter
/// `filter`, by the documented rules, evaluated on the JSON directly.
pub fn oracle(filter: &Value, id: &Value, payload: Option<&Value>) -> bool {
    filter
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| match k.as_str() {
            "$and" => v.as_array().unwrap().iter().all(|f| oracle(f, id, payload)),
            "$or" => v.as_array().unwrap().iter().any(|f| oracle(f, id, payload)),
            "$not" => !oracle(v, id, payload),
            "$id" => field_ok(Some(id), v),
            path => field_ok(lookup(payload, path), v),
        })
}

// ---- generators ----------------------------------------------------------

pub fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..4).prop_map(|i| json!(i)),
        (-3i64..4).prop_map(|i| json!(i as f64 + 0.5)),
        (-3i64..4).prop_map(|i| json!(i as f64)),
        prop::sample::select(vec!["x", "y", "z", "", "xy"]).prop_map(|s| json!(s)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(Value::Null),
    ]
}

pub fn payload_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..4).prop_map(Value::Array),
        1 => (scalar(), scalar()).prop_map(|(a, d)| json!({"a": a, "d": d})),
        1 => Just(json!([[1], {"a": 1}])),
    ]
}

pub fn payload() -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(
        0.9,
        prop::collection::btree_map(
            prop::sample::select(vec!["a", "b", "c"]),
            payload_value(),
            0..4,
        )
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
    )
}

pub fn id() -> impl Strategy<Value = VectorId> {
    prop_oneof![
        (0i64..5).prop_map(VectorId::Int),
        prop::sample::select(vec!["x", "3"]).prop_map(|s| VectorId::Str(s.into())),
    ]
}

pub fn field_cond() -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        scalar().prop_map(|v| ("$eq", v)),
        scalar().prop_map(|v| ("$ne", v)),
        prop::sample::select(vec!["$gt", "$gte", "$lt", "$lte"]).prop_flat_map(|op| {
            prop_oneof![
                (-3i64..4).prop_map(|i| json!(i)),
                (-3i64..4).prop_map(|i| json!(i as f64 + 0.5)),
                prop::sample::select(vec!["x", "y", ""]).prop_map(|s| json!(s)),
            ]
            .prop_map(move |v| (op, v))
        }),
        prop::collection::vec(scalar(), 0..4).prop_map(|l| ("$in", Value::Array(l))),
        prop::collection::vec(scalar(), 0..4).prop_map(|l| ("$nin", Value::Array(l))),
        any::<bool>().prop_map(|b| ("$exists", json!(b))),
    ];
    prop_oneof![
        scalar(),
        prop::collection::vec(op, 1..3).prop_map(|ops| {
            let mut m = Map::new();
            for (op, v) in ops {
                m.insert(op.to_string(), v);
            }
            Value::Object(m)
        }),
    ]
    .prop_flat_map(|c| prop_oneof![3 => Just(c.clone()), 1 => Just(json!({"$not": c.clone()}))])
    .prop_filter("$not needs operators", |c| {
        c.get("$not").is_none_or(|inner| inner.is_object())
    })
}

pub fn filter() -> impl Strategy<Value = Value> {
    let leaf = (
        prop::sample::select(vec!["a", "b", "c", "c.a", "c.d", "b.a.x", "$id"]),
        field_cond(),
    )
        .prop_map(|(path, cond)| json!({ path: cond }));
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(|l| json!({"$and": l})),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|l| json!({"$or": l})),
            inner.clone().prop_map(|f| json!({"$not": f})),
            (inner.clone(), inner).prop_map(|(a, b)| {
                // Several keys in one object: AND (when they differ).
                let mut m = a.as_object().unwrap().clone();
                for (k, v) in b.as_object().unwrap() {
                    m.entry(k.clone()).or_insert(v.clone());
                }
                Value::Object(m)
            }),
        ]
    })
}

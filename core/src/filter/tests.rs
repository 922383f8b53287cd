use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use serde_json::{json, Value};

use super::*;

fn f(v: Value) -> Filter {
    Filter::parse(&v).unwrap()
}

fn err(v: Value) -> String {
    Filter::parse(&v).unwrap_err().to_string()
}

/// Records used by the semantic checks below: (id, payload).
fn records() -> Vec<(VectorId, Option<Value>)> {
    vec![
        (
            VectorId::Int(1),
            Some(json!({"tenant": "acme", "i": 10, "tags": ["a", "b"], "meta": {"lang": "en"}})),
        ),
        (
            VectorId::Int(2),
            Some(json!({"tenant": "beta", "i": 10.0, "tags": "a", "meta": {"lang": "de"}})),
        ),
        (
            VectorId::Str("doc-7".into()),
            Some(json!({"tenant": "acme", "i": "10", "x": null})),
        ),
        (VectorId::Int(3), None),
        (
            VectorId::Str("3".into()),
            Some(json!({"i": 1e1, "tags": [], "meta": "flat"})),
        ),
        (
            VectorId::Int(4),
            Some(json!({"i": 25, "tags": [["a"], {"a": 1}], "a.b": 1})),
        ),
    ]
}

/// Ids matching `filter`, by `matches` and by `select` over columns; the
/// two must agree.
fn ids(filter: Value) -> Vec<String> {
    let filter = f(filter);
    let recs = records();
    let mut b = ColumnsBuilder::new();
    for (id, p) in &recs {
        b.push(id, p.as_ref());
    }
    let cols = b.finish();
    let set = filter.select(&cols);
    assert_eq!(set.rows(), recs.len());
    recs.iter()
        .enumerate()
        .filter(|(row, (id, p))| {
            let one = filter.matches(id, p.as_ref());
            assert_eq!(one, set.contains(*row), "{filter} on row {row}");
            one
        })
        .map(|(_, (id, _))| id.to_string())
        .collect()
}

#[test]
fn semantics_as_documented() {
    assert_eq!(ids(json!({"tenant": "acme"})), ["1", "doc-7"]);
    // Numbers by value, whatever the spelling; never strings.
    assert_eq!(ids(json!({"i": 10})), ["1", "2", "3"]);
    assert_eq!(ids(json!({"i": {"$gte": 10, "$lt": 20}})), ["1", "2", "3"]);
    assert_eq!(ids(json!({"i": {"$gt": "0"}})), ["doc-7"]);
    // Arrays: any element.
    assert_eq!(ids(json!({"tags": "a"})), ["1", "2"]);
    assert_eq!(ids(json!({"tags": {"$in": ["b", "z"]}})), ["1"]);
    // $ne / $nin: negations, so missing fields and other types match.
    assert_eq!(ids(json!({"tags": {"$ne": "a"}})), ["doc-7", "3", "3", "4"]);
    assert_eq!(
        ids(json!({"tenant": {"$nin": ["acme"]}})),
        ["2", "3", "3", "4"]
    );
    // Missing never matches a comparison; $eq null is an explicit null.
    assert_eq!(ids(json!({"x": null})), ["doc-7"]);
    assert_eq!(ids(json!({"x": {"$exists": true}})), ["doc-7"]);
    assert_eq!(ids(json!({"meta": {"$exists": true}})), ["1", "2", "3"]);
    // Nested paths walk objects only.
    assert_eq!(ids(json!({"meta.lang": "en"})), ["1"]);
    assert_eq!(
        ids(json!({"meta.lang": {"$exists": false}})),
        ["doc-7", "3", "3", "4"]
    );
    // A key with a dot cannot be addressed.
    assert!(ids(json!({"a.b": 1})).is_empty());
    // Ids: typed.
    assert_eq!(ids(json!({"$id": {"$in": [3, "doc-7"]}})), ["doc-7", "3"]);
    assert_eq!(ids(json!({"$id": "3"})), ["3"]);
    assert_eq!(ids(json!({"$id": {"$gte": 2}})), ["2", "3", "4"]);
    // Logic.
    assert_eq!(
        ids(json!({"$or": [{"tenant": "beta"}, {"i": 25}]})),
        ["2", "4"]
    );
    assert_eq!(
        ids(json!({"$not": {"tenant": "acme"}})),
        ["2", "3", "3", "4"]
    );
    assert_eq!(ids(json!({"i": {"$not": {"$gt": 5}}})), ["doc-7", "3"]);
    assert_eq!(
        ids(json!({"$and": [{"tenant": "acme"}, {"i": {"$exists": true}}], "meta.lang": "en"})),
        ["1"]
    );
    assert_eq!(ids(json!({})).len(), 6);
    // Nested arrays and objects in arrays never match.
    assert!(ids(json!({"tags": {"$in": ["a"]}, "i": 25})).is_empty());
}

#[test]
fn errors_name_the_place() {
    assert_eq!(
        err(json!({"$or": [{"i": 1}, {"i": {"$gte": true}}]})),
        "filter.$or[1].i: $gte needs a number or a string"
    );
    assert_eq!(
        err(json!({"i": {"$foo": 1}})),
        "filter.i: unknown operator $foo"
    );
    assert_eq!(err(json!({"$nor": []})), "filter: unknown operator $nor");
    assert_eq!(
        err(json!({"i": {"$in": 3}})),
        "filter.i: $in needs a list of scalars (null, boolean, number or string)"
    );
    assert_eq!(
        err(json!({"$and": []})),
        "filter.$and: $and needs a non-empty list of filter objects"
    );
    assert_eq!(
        err(json!({"t": {"$exists": 1}})),
        "filter.t: $exists needs a boolean"
    );
    assert!(err(json!({"meta": {"lang": "en"}})).starts_with("filter.meta: $eq needs a scalar"));
    assert_eq!(err(json!({"a..b": 1})), "filter.a..b: empty field name");
    assert_eq!(err(json!([1])), "filter: a filter must be a JSON object");
    assert_eq!(
        err(json!({"$not": 1})),
        "filter.$not: a filter must be a JSON object"
    );
    assert!(err(json!({"i": {"$not": 1}})).contains("$not needs an object of operators"));
    // Bounds.
    let mut deep = json!({"i": 1});
    for _ in 0..=MAX_DEPTH {
        deep = json!({ "$not": deep });
    }
    assert!(err(deep).contains("nested deeper"));
    let big: Vec<i64> = (0..=MAX_TERMS as i64).collect();
    assert!(err(json!({"i": {"$in": big}})).contains("more than"));
    let long = vec!["a"; MAX_PATH_SEGMENTS + 1].join(".");
    let mut obj = serde_json::Map::new();
    obj.insert(long, json!(1));
    assert!(err(Value::Object(obj)).contains("nested deeper"));
    assert!(Filter::parse_str("{")
        .unwrap_err()
        .to_string()
        .starts_with("filter: not JSON"));
}

#[test]
fn canonical_json_round_trips() {
    for v in [
        json!({}),
        json!({"tenant": "acme", "i": {"$gte": 10, "$lt": 20.5}}),
        json!({"$or": [{"a.b": null}, {"$not": {"c": {"$in": [3, "x", true, 3.0]}}}]}),
        json!({"$id": {"$nin": [1, "doc-1"]}, "x": {"$exists": false, "$ne": false}}),
        json!({"i": {"$not": {"$gt": 5, "$lte": 9}}}),
    ] {
        let a = f(v.clone());
        let canon = a.to_json();
        let b = f(canon.clone());
        assert_eq!(a, b, "{v} → {canon}");
        assert_eq!(b.to_json(), canon);
        let via_serde: Filter = serde_json::from_value(v).unwrap();
        assert_eq!(via_serde, a);
    }
    assert!(f(json!({})).is_all());
    assert_eq!(Filter::all().to_json(), json!({}));
}

#[test]
fn the_builder_makes_what_json_makes() {
    let built = Filter::builder()
        .eq("tenant", "acme")
        .gte("i", 10)
        .lt("i", 20.5)
        .is_in("$id", [json!(3), json!("doc-7")])
        .exists("x", false)
        .not(&f(json!({"meta.lang": "de"})))
        .any_of([f(json!({"a": 1})), f(json!({"b": {"$ne": null}}))])
        .build()
        .unwrap();
    let parsed = f(json!({"$and": [
        {"tenant": {"$eq": "acme"}}, {"i": {"$gte": 10}}, {"i": {"$lt": 20.5}},
        {"$id": {"$in": [3, "doc-7"]}}, {"x": {"$exists": false}},
        {"$not": {"meta.lang": "de"}}, {"$or": [{"a": 1}, {"b": {"$ne": null}}]}
    ]}));
    assert_eq!(built, parsed);
    assert!(Filter::builder().build().unwrap().is_all());
    let e = Filter::builder().gt("i", true).build().unwrap_err();
    assert_eq!(e.to_string(), "filter.i: $gt needs a number or a string");
}

/// Review findings: the bound is on the expression, so a filter that
/// parses has canonical JSON that parses; numbers compare exactly beyond
/// 2^53; empty filter objects count as terms.
#[test]
fn bounds_hold_for_canonical_json_and_numbers_are_exact() {
    for n in 0..=MAX_DEPTH {
        let mut v = json!({"i": {"$gt": 1, "$lt": 2}});
        for _ in 0..n {
            v = json!({ "$not": v });
        }
        if let Ok(filter) = Filter::parse(&v) {
            let again = Filter::parse(&filter.to_json()).expect("canonical JSON parses");
            assert_eq!(again, filter);
        } else {
            assert!(n + 2 > MAX_DEPTH, "depth {n} refused");
        }
    }
    let big = 9_007_199_254_740_993_i64; // 2^53 + 1
    let f1 = f(json!({"i": {"$in": [big, 9_007_199_254_740_992.0]}}));
    let f2 = f(json!({"i": {"$in": [9_007_199_254_740_992.0, big]}}));
    assert_eq!(f1, f2);
    for (v, want) in [(big, true), (big - 1, true), (big + 1, false)] {
        let p = json!({ "i": v });
        assert_eq!(f1.matches(&VectorId::Int(0), Some(&p)), want, "{v}");
    }
    let gt = f(json!({"i": {"$gt": 9_007_199_254_740_992.0}}));
    assert!(gt.matches(&VectorId::Int(0), Some(&json!({ "i": big }))));
    assert!(f(json!({"i": {"$lt": 2.5}})).matches(&VectorId::Int(0), Some(&json!({"i": 2}))));
    assert!(!f(json!({"i": {"$lt": -2.5}})).matches(&VectorId::Int(0), Some(&json!({"i": -2}))));
    assert!(f(json!({"i": {"$gt": -2.5}})).matches(&VectorId::Int(0), Some(&json!({"i": -2}))));
    assert!(f(json!({"i": u64::MAX})).matches(&VectorId::Int(0), Some(&json!({ "i": u64::MAX }))));
    let empties: Vec<Value> = (0..MAX_TERMS).map(|_| json!({})).collect();
    assert!(err(json!({ "$or": empties })).contains("more than"));
}

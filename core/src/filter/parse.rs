//! JSON → [`Expr`] (with the bounds and the error paths) and back to the
//! canonical JSON.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

use super::{
    Bound, CmpOp, Cond, Expr, Field, FilterError, FilterErrorKind, Num, Scalar, ScalarSet,
    MAX_DEPTH, MAX_PATH_SEGMENTS, MAX_TERMS,
};

const SCALAR: &str = "a scalar (null, boolean, number or string)";
const SCALARS: &str = "a list of scalars (null, boolean, number or string)";
const ORDERED: &str = "a number or a string";
const FILTERS: &str = "a non-empty list of filter objects";

/// How deep the JSON may nest while parsing (a guard for the recursion;
/// the bound users see is [`MAX_DEPTH`] on the parsed expression, which
/// the canonical JSON of any accepted filter respects too).
const JSON_NESTING: usize = 4 * MAX_DEPTH;

pub(super) fn parse(json: &Value) -> Result<Expr, FilterError> {
    let expr = Parser { terms: 0 }.filter(json, "filter", 0)?;
    if depth(&expr) > MAX_DEPTH {
        return fail("filter", FilterErrorKind::TooDeep);
    }
    Ok(expr)
}

/// Nesting of an expression: a condition is 1, each `$and`, `$or`,
/// `$not` around it adds 1.
fn depth(e: &Expr) -> usize {
    match e {
        Expr::And(parts) | Expr::Or(parts) => 1 + parts.iter().map(depth).max().unwrap_or(0),
        Expr::Not(inner) => 1 + depth(inner),
        Expr::Field(..) => 1,
    }
}

struct Parser {
    terms: usize,
}

fn fail<T>(path: &str, kind: FilterErrorKind) -> Result<T, FilterError> {
    Err(FilterError {
        path: path.to_string(),
        kind,
    })
}

fn operand<T>(path: &str, op: &'static str, needs: &'static str) -> Result<T, FilterError> {
    fail(path, FilterErrorKind::Operand { op, needs })
}

/// AND of `parts`, nested ANDs spliced in (so equal conditions give
/// equal filters however they were grouped), without a list around a
/// single part.
fn and_of(parts: Vec<Expr>) -> Expr {
    let mut flat = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            Expr::And(inner) => flat.extend(inner),
            p => flat.push(p),
        }
    }
    let mut parts = flat;
    if parts.len() == 1 {
        parts.swap_remove(0)
    } else {
        Expr::And(parts)
    }
}

impl Parser {
    fn count(&mut self, path: &str, n: usize) -> Result<(), FilterError> {
        self.terms = self.terms.saturating_add(n);
        if self.terms > MAX_TERMS {
            return fail(path, FilterErrorKind::TooLarge);
        }
        Ok(())
    }

    /// A filter object at `path`.
    fn filter(&mut self, json: &Value, path: &str, depth: usize) -> Result<Expr, FilterError> {
        if depth > JSON_NESTING {
            return fail(path, FilterErrorKind::TooDeep);
        }
        let Some(obj) = json.as_object() else {
            return fail(path, FilterErrorKind::NotAnObject);
        };
        // Every filter object counts, `{}` included: a list of ten
        // thousand empty filters is as much work as ten thousand terms.
        self.count(path, 1)?;
        let mut parts = Vec::with_capacity(obj.len());
        for (key, value) in obj {
            let here = format!("{path}.{key}");
            let part = match key.as_str() {
                "$and" | "$or" => {
                    let op = if key == "$and" { "$and" } else { "$or" };
                    let list = match value.as_array() {
                        Some(l) if !l.is_empty() => l,
                        _ => return operand(&here, op, FILTERS),
                    };
                    let mut exprs = Vec::with_capacity(list.len());
                    for (i, f) in list.iter().enumerate() {
                        exprs.push(self.filter(f, &format!("{here}[{i}]"), depth + 1)?);
                    }
                    if op == "$and" {
                        and_of(exprs)
                    } else if exprs.len() == 1 {
                        exprs.swap_remove(0)
                    } else {
                        Expr::Or(exprs)
                    }
                }
                "$not" => Expr::Not(Box::new(self.filter(value, &here, depth + 1)?)),
                "$id" => self.field(Field::Id, value, &here, depth + 1)?,
                k if k.starts_with('$') => {
                    return fail(path, FilterErrorKind::UnknownOperator(k.to_string()))
                }
                k => {
                    let segments: Vec<String> = k.split('.').map(str::to_string).collect();
                    if segments.iter().any(String::is_empty) {
                        return fail(&here, FilterErrorKind::EmptyPath);
                    }
                    if segments.len() > MAX_PATH_SEGMENTS {
                        return fail(&here, FilterErrorKind::TooDeep);
                    }
                    self.field(Field::Path(segments), value, &here, depth + 1)?
                }
            };
            parts.push(part);
        }
        Ok(and_of(parts))
    }

    /// The conditions on one field: a scalar (`$eq`) or an object of
    /// operators.
    fn field(
        &mut self,
        field: Field,
        value: &Value,
        path: &str,
        depth: usize,
    ) -> Result<Expr, FilterError> {
        if depth > JSON_NESTING {
            return fail(path, FilterErrorKind::TooDeep);
        }
        let ops = match value {
            Value::Object(ops) => ops,
            Value::Array(_) => return operand(path, "$eq", SCALAR),
            v => {
                self.count(path, 1)?;
                return Ok(Expr::Field(field, Cond::Eq(scalar(v, path, "$eq")?)));
            }
        };
        if ops.is_empty() {
            return operand(path, "a field condition", "at least one operator");
        }
        let mut parts = Vec::with_capacity(ops.len());
        for (op, arg) in ops {
            self.count(path, 1)?;
            let cond = match op.as_str() {
                "$eq" => Cond::Eq(scalar(arg, path, "$eq")?),
                "$ne" => Cond::Ne(scalar(arg, path, "$ne")?),
                "$gt" => Cond::Cmp(CmpOp::Gt, bound(arg, path, CmpOp::Gt)?),
                "$gte" => Cond::Cmp(CmpOp::Gte, bound(arg, path, CmpOp::Gte)?),
                "$lt" => Cond::Cmp(CmpOp::Lt, bound(arg, path, CmpOp::Lt)?),
                "$lte" => Cond::Cmp(CmpOp::Lte, bound(arg, path, CmpOp::Lte)?),
                "$in" => Cond::In(ScalarSet::new(self.scalars(arg, path, "$in")?)),
                "$nin" => Cond::Nin(ScalarSet::new(self.scalars(arg, path, "$nin")?)),
                "$exists" => match arg {
                    Value::Bool(b) => Cond::Exists(*b),
                    _ => return operand(path, "$exists", "a boolean"),
                },
                "$not" => {
                    if !arg.is_object() {
                        return operand(path, "$not", "an object of operators");
                    }
                    parts.push(Expr::Not(Box::new(self.field(
                        field.clone(),
                        arg,
                        path,
                        depth + 1,
                    )?)));
                    continue;
                }
                o if o.starts_with('$') => {
                    return fail(path, FilterErrorKind::UnknownOperator(o.to_string()))
                }
                // `{"meta": {"lang": "en"}}`: an object is not a value.
                _ => return operand(path, "$eq", SCALAR),
            };
            parts.push(Expr::Field(field.clone(), cond));
        }
        Ok(and_of(parts))
    }

    fn scalars(
        &mut self,
        arg: &Value,
        path: &str,
        op: &'static str,
    ) -> Result<Vec<Scalar>, FilterError> {
        let Some(list) = arg.as_array() else {
            return operand(path, op, SCALARS);
        };
        self.count(path, list.len())?;
        list.iter()
            .map(|v| match v {
                Value::Array(_) | Value::Object(_) => operand(path, op, SCALARS),
                v => scalar(v, path, op),
            })
            .collect()
    }
}

fn scalar(v: &Value, path: &str, op: &'static str) -> Result<Scalar, FilterError> {
    Ok(match v {
        Value::Null => Scalar::Null,
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Number(n) => match Num::from_json(n) {
            Some(n) => Scalar::Num(n),
            None => return operand(path, op, SCALAR),
        },
        Value::String(s) => Scalar::Str(s.clone()),
        Value::Array(_) | Value::Object(_) => return operand(path, op, SCALAR),
    })
}

fn bound(v: &Value, path: &str, op: CmpOp) -> Result<Bound, FilterError> {
    match v {
        Value::Number(n) => match Num::from_json(n) {
            Some(n) => Ok(Bound::Num(n)),
            None => operand(path, op.name(), ORDERED),
        },
        Value::String(s) => Ok(Bound::Str(s.clone())),
        _ => operand(path, op.name(), ORDERED),
    }
}

// ---- canonical JSON ------------------------------------------------------

pub(super) fn to_json(e: &Expr) -> Value {
    let mut obj = Map::new();
    match e {
        Expr::And(parts) if parts.is_empty() => {}
        Expr::And(parts) => {
            obj.insert("$and".into(), parts.iter().map(to_json).collect());
        }
        Expr::Or(parts) => {
            obj.insert("$or".into(), parts.iter().map(to_json).collect());
        }
        Expr::Not(inner) => {
            obj.insert("$not".into(), to_json(inner));
        }
        Expr::Field(field, cond) => {
            let name = match field {
                Field::Id => "$id".to_string(),
                Field::Path(segments) => segments.join("."),
            };
            let (op, arg) = match cond {
                Cond::Eq(s) => ("$eq", scalar_json(s)),
                Cond::Ne(s) => ("$ne", scalar_json(s)),
                Cond::Cmp(op, Bound::Num(n)) => (op.name(), num_json(*n)),
                Cond::Cmp(op, Bound::Str(s)) => (op.name(), Value::String(s.clone())),
                Cond::In(set) => ("$in", set.items().iter().map(scalar_json).collect()),
                Cond::Nin(set) => ("$nin", set.items().iter().map(scalar_json).collect()),
                Cond::Exists(b) => ("$exists", Value::Bool(*b)),
            };
            let mut ops = Map::new();
            ops.insert(op.into(), arg);
            obj.insert(name, Value::Object(ops));
        }
    }
    Value::Object(obj)
}

fn scalar_json(s: &Scalar) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::Bool(*b),
        Scalar::Num(n) => num_json(*n),
        Scalar::Str(s) => Value::String(s.clone()),
    }
}

fn num_json(n: Num) -> Value {
    match n {
        Num::Int(i) => Value::from(i),
        Num::UInt(u) => Value::from(u),
        // Finite by construction (`Num::from_json`).
        Num::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
    }
}

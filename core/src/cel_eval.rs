//! CEL routing with the `cel` interpreter (feature `cel`).
//!
//! The manifest's expression is compiled once per [`Router`](crate::Router);
//! each route binds the routing context's variables, converted to the
//! manifest's declared column types, plus the built-in `shard_hash(x)`:
//! xxh3-64 (seed 0) of an int or uint as 8 little-endian bytes, a string as
//! UTF-8, bytes as is — returning a uint.

use std::format;
use std::string::{String, ToString};
use std::sync::Arc;
use std::vec::Vec;

use cel::{Context, Env, ExecutionError, Program, Value};

use crate::error::{Error, Result};
use crate::manifest::{CelColumnType, CelSpec};
use crate::routing_value::{shard_hash, RoutingContext, RoutingValue};
use crate::types::ShardId;

/// Longest expression accepted from a manifest.
pub const MAX_EXPR_LEN: usize = 4096;
/// Most nodes an expression may have once parsed (macros expanded).
pub const MAX_EXPR_NODES: usize = 512;
/// Deepest nesting of an expression.
pub const MAX_EXPR_DEPTH: usize = 48;
/// Longest string or bytes value a routing context may bind.
pub const MAX_CONTEXT_VALUE_LEN: usize = 64 * 1024;

// ## Cost bound
//
// Expressions come from manifests, so a hostile one must not hang a reader
// or exhaust its memory. The `cel` interpreter has no step budget, so the
// bound is structural, checked once at compile time: no comprehension
// (`all`, `exists`, `exists_one`, `map`, `filter` — CEL's only loops, whose
// nesting multiplies cost), at most MAX_EXPR_NODES nodes and MAX_EXPR_DEPTH
// levels. Without loops every node is evaluated at most once, so a route
// costs O(nodes × largest value); values bound from the context are capped
// at MAX_CONTEXT_VALUE_LEN, so the worst case is a few tens of MiB of
// string concatenation, not unbounded. (Regular expressions run on the
// `regex` crate, which matches in linear time.)

/// Compiles `expr` (untyped columns) for `num_dbs` shards and routes
/// `ctx`: the entry point of the `cel` fuzz target and of the regression
/// tests of hostile expressions. Not a stable API.
#[doc(hidden)]
pub fn route_expr(expr: &str, ctx: &RoutingContext, num_dbs: u32) -> Result<ShardId> {
    let spec = CelSpec {
        expr: expr.to_string(),
        columns: Default::default(),
        routing_values: None,
    };
    CelRouter::new(&spec, num_dbs)?
        .route(ctx)
        .map(|(_, _, s)| s)
}

/// Checks the structural cost bound of a parsed expression.
fn check_cost(root: &cel::IdedExpr) -> core::result::Result<(), String> {
    use cel::common::ast::{EntryExpr, Expr};
    let mut stack: Vec<(&cel::IdedExpr, usize)> = Vec::from([(root, 1)]);
    let mut nodes = 0;
    while let Some((e, depth)) = stack.pop() {
        nodes += 1;
        if nodes > MAX_EXPR_NODES {
            return Err(format!("more than {MAX_EXPR_NODES} nodes"));
        }
        if depth > MAX_EXPR_DEPTH {
            return Err(format!("nested deeper than {MAX_EXPR_DEPTH} levels"));
        }
        let d = depth + 1;
        match &e.expr {
            Expr::Comprehension(_) => {
                return Err(
                    "comprehensions (all, exists, exists_one, map, filter) are not allowed in \
                     routing expressions: their cost is unbounded"
                        .to_string(),
                )
            }
            Expr::Call(c) => {
                stack.extend(c.target.iter().map(|t| (t.as_ref(), d)));
                stack.extend(c.args.iter().map(|a| (a, d)));
            }
            Expr::List(l) => stack.extend(l.elements.iter().map(|x| (x, d))),
            Expr::Select(s) => stack.push((s.operand.as_ref(), d)),
            Expr::Map(cel::common::ast::MapExpr { entries })
            | Expr::Struct(cel::common::ast::StructExpr { entries, .. }) => {
                for entry in entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(me) => {
                            stack.push((&me.key, d));
                            stack.push((&me.value, d));
                        }
                        EntryExpr::StructField(f) => stack.push((&f.value, d)),
                    }
                }
            }
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
    Ok(())
}

/// A compiled CEL routing expression.
pub(crate) struct CelRouter {
    spec: CelSpec,
    env: Arc<Env>,
    program: Program,
    /// Declared columns the expression reads: each must be in the context.
    required: Vec<String>,
    num_dbs: u32,
}

impl core::fmt::Debug for CelRouter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CelRouter")
            .field("expr", &self.spec.expr)
            .field("columns", &self.spec.columns)
            .finish_non_exhaustive()
    }
}

fn cel_shard_hash(v: Value) -> std::result::Result<Value, ExecutionError> {
    let rv = from_cel(&v).ok_or_else(|| {
        ExecutionError::function_error("shard_hash", "expects int, uint, string or bytes")
    })?;
    shard_hash(&rv).map(Value::UInt).ok_or_else(|| {
        ExecutionError::function_error(
            "shard_hash",
            format!("expects int, uint, string or bytes, got {}", rv.kind()),
        )
    })
}

fn to_cel(v: &RoutingValue) -> Value {
    match v {
        RoutingValue::Int(i) => Value::Int(*i),
        RoutingValue::UInt(u) => Value::UInt(*u),
        RoutingValue::Double(d) => Value::Float(*d),
        RoutingValue::Bool(b) => Value::Bool(*b),
        RoutingValue::Str(s) => Value::String(Arc::new(s.clone())),
        RoutingValue::Bytes(b) => Value::Bytes(Arc::new(b.clone())),
    }
}

fn from_cel(v: &Value) -> Option<RoutingValue> {
    Some(match v {
        Value::Int(i) => RoutingValue::Int(*i),
        Value::UInt(u) => RoutingValue::UInt(*u),
        Value::Float(d) => RoutingValue::Double(*d),
        Value::Bool(b) => RoutingValue::Bool(*b),
        Value::String(s) => RoutingValue::Str(s.as_ref().clone()),
        Value::Bytes(b) => RoutingValue::Bytes(b.as_ref().clone()),
        _ => return None,
    })
}

/// Converts a context value to a column's declared type, accepting the
/// lossless numeric conversions a JSON caller cannot express (a JSON `3`
/// for a `uint` or `double` column).
fn coerce(name: &str, ty: CelColumnType, v: &RoutingValue) -> Result<Value> {
    use RoutingValue as R;
    let ok = match (ty, v) {
        (CelColumnType::Int, R::Int(i)) => Some(Value::Int(*i)),
        (CelColumnType::Int, R::UInt(u)) => i64::try_from(*u).ok().map(Value::Int),
        (CelColumnType::UInt, R::UInt(u)) => Some(Value::UInt(*u)),
        (CelColumnType::UInt, R::Int(i)) => u64::try_from(*i).ok().map(Value::UInt),
        (CelColumnType::Double, R::Double(d)) => Some(Value::Float(*d)),
        (CelColumnType::Double, R::Int(i)) => Some(Value::Float(*i as f64)),
        (CelColumnType::Double, R::UInt(u)) => Some(Value::Float(*u as f64)),
        (CelColumnType::String, R::Str(_))
        | (CelColumnType::Bytes, R::Bytes(_))
        | (CelColumnType::Bool, R::Bool(_)) => Some(to_cel(v)),
        _ => None,
    };
    ok.ok_or_else(|| Error::CelVariableType {
        name: name.to_string(),
        expected: ty.as_str(),
        got: format!("{} {v}", v.kind()),
    })
}

impl CelRouter {
    pub(crate) fn new(spec: &CelSpec, num_dbs: u32) -> Result<CelRouter> {
        let compile_err = |reason: String| Error::CelCompile {
            expr: spec.expr.clone(),
            reason,
        };
        if spec.expr.len() > MAX_EXPR_LEN {
            return Err(compile_err(format!("longer than {MAX_EXPR_LEN} bytes")));
        }
        let env = Arc::new(Env::stdlib());
        let program = env
            .compile(&spec.expr)
            .map_err(|e| compile_err(e.to_string()))?;
        check_cost(program.expression()).map_err(compile_err)?;
        let refs = program.references();
        let required = spec
            .columns
            .keys()
            .filter(|c| refs.has_variable(c.as_str()))
            .cloned()
            .collect();
        Ok(CelRouter {
            spec: spec.clone(),
            env,
            program,
            required,
            num_dbs,
        })
    }

    /// Evaluates the expression: its value, its categorical index (if the
    /// snapshot has `routing_values`) and the shard.
    pub(crate) fn route(
        &self,
        ctx: &RoutingContext,
    ) -> Result<(RoutingValue, Option<usize>, ShardId)> {
        if let Some(missing) = self.required.iter().find(|c| ctx.get(c).is_none()) {
            return Err(Error::CelVariableMissing(missing.clone()));
        }
        let mut cx = Context::with_env(self.env.clone());
        cx.add_function("shard_hash", cel_shard_hash)
            .map_err(|e| Error::CelEval(e.to_string()))?;
        for (name, value) in ctx.iter() {
            let len = match value {
                RoutingValue::Str(s) => s.len(),
                RoutingValue::Bytes(b) => b.len(),
                _ => 0,
            };
            if len > MAX_CONTEXT_VALUE_LEN {
                return Err(Error::CelVariableType {
                    name: name.to_string(),
                    expected: "at most 64 KiB",
                    got: format!("{} of {len} bytes", value.kind()),
                });
            }
            let v = match self.spec.columns.get(name) {
                Some(&ty) => coerce(name, ty, value)?,
                None => to_cel(value),
            };
            cx.add_variable_from_value(name, v);
        }
        let out = self.program.execute(&cx).map_err(|e| match e {
            ExecutionError::UndeclaredReference(name) => {
                Error::CelVariableMissing(name.as_ref().clone())
            }
            other => Error::CelEval(other.to_string()),
        })?;
        let value = from_cel(&out).ok_or_else(|| Error::CelResultNotInteger(format!("{out:?}")))?;
        match &self.spec.routing_values {
            Some(values) => {
                let i = values
                    .iter()
                    .position(|t| t.matches(&value))
                    .ok_or_else(|| Error::UnknownRoutingValue(value.to_string()))?;
                let shard = ShardId::checked(i as i128, self.num_dbs)?;
                Ok((value, Some(i), shard))
            }
            None => {
                let id = match value {
                    RoutingValue::Int(i) => i128::from(i),
                    RoutingValue::UInt(u) => i128::from(u),
                    ref other => return Err(Error::CelResultNotInteger(other.to_string())),
                };
                let shard = ShardId::checked(id, self.num_dbs)?;
                Ok((value, None, shard))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::CelSpec;
    use std::collections::BTreeMap;
    use std::vec;

    fn router(
        expr: &str,
        cols: &[(&str, CelColumnType)],
        values: Option<Vec<RoutingValue>>,
    ) -> CelRouter {
        let spec = CelSpec {
            expr: expr.into(),
            columns: cols
                .iter()
                .map(|(k, t)| (k.to_string(), *t))
                .collect::<BTreeMap<_, _>>(),
            routing_values: values,
        };
        CelRouter::new(&spec, 4).unwrap()
    }

    fn ctx(pairs: &[(&str, RoutingValue)]) -> RoutingContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn shard_hash_encodings() {
        use xxhash_rust::xxh3::xxh3_64;
        assert_eq!(
            shard_hash(&RoutingValue::Int(-1)),
            Some(xxh3_64(&[0xff; 8]))
        );
        assert_eq!(
            shard_hash(&RoutingValue::UInt(1)),
            Some(xxh3_64(&[1, 0, 0, 0, 0, 0, 0, 0]))
        );
        assert_eq!(
            shard_hash(&RoutingValue::Str("a".into())),
            Some(xxh3_64(b"a"))
        );
        assert_eq!(
            shard_hash(&RoutingValue::Bytes(vec![1, 2])),
            Some(xxh3_64(&[1, 2]))
        );
        assert_eq!(shard_hash(&RoutingValue::Bool(true)), None);
        // The same through the interpreter, on each declared type.
        let r = router("shard_hash(k) % 4u", &[("k", CelColumnType::Int)], None);
        let (v, _, s) = r.route(&ctx(&[("k", RoutingValue::Int(-1))])).unwrap();
        assert_eq!(v, RoutingValue::UInt(xxh3_64(&[0xff; 8]) % 4));
        assert_eq!(u64::from(s.0), xxh3_64(&[0xff; 8]) % 4);
        let r = router("shard_hash(k) % 4u", &[("k", CelColumnType::Bytes)], None);
        let (v, _, _) = r
            .route(&ctx(&[("k", RoutingValue::Bytes(vec![9]))]))
            .unwrap();
        assert_eq!(v, RoutingValue::UInt(xxh3_64(&[9]) % 4));
    }

    #[test]
    fn typed_errors() {
        let r = router("k", &[("k", CelColumnType::String)], None);
        assert!(matches!(
            r.route(&ctx(&[("k", RoutingValue::Str("x".into()))])),
            Err(Error::CelResultNotInteger(_))
        ));
        assert!(matches!(r.route(&ctx(&[])), Err(Error::CelVariableMissing(v)) if v == "k"));
        assert!(matches!(
            r.route(&ctx(&[("k", RoutingValue::Int(1))])),
            Err(Error::CelVariableType { .. })
        ));
        let r = router("k", &[("k", CelColumnType::Int)], None);
        assert!(matches!(
            r.route(&ctx(&[("k", RoutingValue::Int(4))])),
            Err(Error::ShardOutOfRange { id: 4, num_dbs: 4 })
        ));
        assert!(matches!(
            r.route(&ctx(&[("k", RoutingValue::Int(-1))])),
            Err(Error::ShardOutOfRange { id: -1, .. })
        ));
        // A JSON integer for a uint column is accepted.
        let r = router("k + 1u", &[("k", CelColumnType::UInt)], None);
        assert_eq!(
            r.route(&ctx(&[("k", RoutingValue::Int(2))])).unwrap().2,
            ShardId(3)
        );
        // Undeclared variables are looked up in the context too.
        let r = router("other", &[], None);
        assert!(matches!(r.route(&ctx(&[])), Err(Error::CelVariableMissing(v)) if v == "other"));
        let spec = CelSpec {
            expr: "1 +".into(),
            columns: BTreeMap::new(),
            routing_values: None,
        };
        assert!(matches!(
            CelRouter::new(&spec, 4),
            Err(Error::CelCompile { .. })
        ));
    }

    #[test]
    fn categorical_values() {
        let values = vec![
            RoutingValue::Str("eu".into()),
            RoutingValue::Int(7),
            RoutingValue::Bytes(vec![0xff]),
        ];
        let r = router("k", &[("k", CelColumnType::String)], Some(values.clone()));
        let (_, idx, s) = r
            .route(&ctx(&[("k", RoutingValue::Str("eu".into()))]))
            .unwrap();
        assert_eq!((idx, s), (Some(0), ShardId(0)));
        assert!(matches!(
            r.route(&ctx(&[("k", RoutingValue::Str("mars".into()))])),
            Err(Error::UnknownRoutingValue(_))
        ));
        // 7u matches 7, as Python compares numbers by value.
        let r = router("k", &[("k", CelColumnType::UInt)], Some(values.clone()));
        assert_eq!(
            r.route(&ctx(&[("k", RoutingValue::UInt(7))])).unwrap().2,
            ShardId(1)
        );
        let r = router("k", &[("k", CelColumnType::Bytes)], Some(values));
        assert_eq!(
            r.route(&ctx(&[("k", RoutingValue::Bytes(vec![0xff]))]))
                .unwrap()
                .2,
            ShardId(2)
        );
    }

    #[test]
    fn hostile_expressions_are_refused_at_compile_time() {
        let compile = |expr: &str| {
            let spec = CelSpec {
                expr: expr.into(),
                columns: BTreeMap::new(),
                routing_values: None,
            };
            CelRouter::new(&spec, 4)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        // Loops, the only way to multiply cost, and their nesting.
        for expr in [
            "[1, 2, 3].all(x, x > 0) ? 1 : 0",
            "[1, 2].exists(x, [1, 2].exists(y, x == y)) ? 1 : 0",
            "size([1, 2, 3].map(x, [1, 2, 3].map(y, x * y))) % 4",
            "size([1, 2].filter(x, x > 1))",
        ] {
            let e = compile(expr).unwrap_err();
            assert!(e.contains("comprehensions"), "{expr}: {e}");
        }
        let many = format!("size([{}1]) % 4", "1, ".repeat(600));
        assert!(compile(&many).unwrap_err().contains("nodes"));
        let chain = format!("{}1", "1 + ".repeat(600));
        assert!(compile(&chain).is_err());
        let deep = format!("{}1{}", "-(".repeat(60), ")".repeat(60));
        let e = compile(&deep).unwrap_err();
        assert!(e.contains("deeper") || e.contains("recursion"), "{e}");
        let long = format!("{}1", " ".repeat(MAX_EXPR_LEN));
        assert!(compile(&long).unwrap_err().contains("longer than"));
        // What routing needs still compiles.
        compile("shard_hash(tenant) % 4u").unwrap();
        compile("has(ctx.region) && ctx.region == 'eu' ? 1 : 2").unwrap();
    }

    #[test]
    fn huge_context_values_are_refused() {
        let r = router("shard_hash(t) % 4u", &[], None);
        let big = RoutingValue::Str("x".repeat(MAX_CONTEXT_VALUE_LEN + 1));
        let e = r.route(&ctx(&[("t", big)])).unwrap_err();
        assert!(e.to_string().contains("at most 64 KiB"), "{e}");
        let ok = RoutingValue::Str("x".repeat(MAX_CONTEXT_VALUE_LEN));
        r.route(&ctx(&[("t", ok)])).unwrap();
    }

    #[test]
    fn router_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<crate::Router>();
    }
}

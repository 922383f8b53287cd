//! Replays the inputs kept in `core/fuzz/regressions/<target>/`: hostile or
//! once-crashing inputs for each fuzz target. Every one of them is malformed,
//! so each parser must return an error (and, above all, not panic).

use std::path::Path;

use shardvec_core::npy::Matrix;
use shardvec_core::sqlite::Database;
use shardvec_core::{CurrentPointer, Manifest};

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no regression inputs for {target}");
    out
}

#[test]
fn sqlite_regressions_are_errors() {
    for (name, bytes) in inputs("sqlite") {
        let db = Database::open(&bytes).expect("header is valid");
        let table = db.table("t").expect("schema is valid");
        assert!(db.rows(&table).is_err(), "{name}");
    }
}

#[test]
fn manifest_regressions_are_errors() {
    for (name, bytes) in inputs("manifest") {
        assert!(Manifest::parse(&bytes).is_err(), "{name}");
    }
}

#[test]
fn npy_regressions_are_errors() {
    for (name, bytes) in inputs("npy") {
        assert!(Matrix::from_npy(&bytes, &name).is_err(), "{name}");
    }
}

#[test]
fn current_regressions_are_errors() {
    for (name, bytes) in inputs("current") {
        assert!(CurrentPointer::parse(&bytes).is_err(), "{name}");
    }
}

/// The bound of each CEL regression input, enforced by a deadline: the
/// route runs on its own thread and a route past it fails the test with
/// the input's name (the thread is left behind) instead of hanging it.
const CEL_BOUND: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `work` on its own thread; `Err` with a message naming `name` when
/// it does not finish within `bound` (the thread is left behind) or
/// panics.
fn within<T: Send + 'static>(
    name: &str,
    bound: std::time::Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("bounded {name}"))
        .spawn(move || {
            let _ = tx.send(work());
        })
        .expect("spawn");
    match rx.recv_timeout(bound) {
        Ok(done) => Ok(done),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            Err(format!("{name}: did not finish within {bound:?}"))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(format!("{name}: panicked")),
    }
}

// The CEL interpreter is the `cel` feature's (the workspace's test build
// enables it; `cargo test -p shardvec-core` alone does not).
#[cfg(feature = "cel")]
#[test]
fn cel_regressions_are_errors() {
    for (name, bytes) in inputs("cel") {
        let (expr, ctx) = match bytes.iter().position(|&b| b == 0) {
            Some(i) => (&bytes[..i], &bytes[i + 1..]),
            None => (&bytes[..], &b"{}"[..]),
        };
        let expr = std::str::from_utf8(expr)
            .expect("utf-8 expression")
            .to_string();
        let json: serde_json::Value = serde_json::from_slice(ctx).expect("JSON context");
        let ctx = shardvec_core::RoutingContext::from_json(&json).expect("context");
        let (is_err, shown) = within(&name, CEL_BOUND, move || {
            let r = shardvec_core::__fuzz::route_expr(&expr, &ctx, 8);
            (r.is_err(), format!("{r:?}"))
        })
        .unwrap_or_else(|e| panic!("{e} (the CEL cost bound does not hold)"));
        assert!(is_err, "{name}: {shown}");
    }
}

/// The deadline itself: work that outlasts its bound is reported as a
/// failure when the bound is reached, not waited for.
#[test]
fn work_past_its_bound_fails_instead_of_hanging() {
    let started = std::time::Instant::now();
    let r = within("ten seconds", std::time::Duration::from_millis(100), || {
        std::thread::sleep(std::time::Duration::from_secs(10))
    });
    let e = r.expect_err("past the bound");
    assert!(e.contains("did not finish within 100ms"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(
        within("quick", CEL_BOUND, || 7),
        Ok(7),
        "work within the bound passes"
    );
}

#[test]
fn host_json_regressions_are_errors() {
    use shardvec_core::api::{SearchRequest, ShardsSearchRequest};
    for (name, bytes) in inputs("host_json") {
        let search = SearchRequest::parse(&bytes).and_then(|r| r.context().map(|_| r));
        assert!(search.is_err(), "{name}: {search:?}");
        assert!(ShardsSearchRequest::parse(&bytes).is_err(), "{name}");
    }
}

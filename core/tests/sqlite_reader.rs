//! The no-C SQLite reader against databases written by the real SQLite
//! engine (rusqlite, bundled): random rows of every storage class, rows that
//! overflow into page chains, several page sizes, and enough rows for
//! multi-level interior b-trees. Every value read back must equal what
//! SQLite itself reads.

mod common;

use common::{Rng, TempDb};
use rusqlite::types::Value as SqlValue;
use shardvec_core::sqlite::{Database, Value};

fn random_value(rng: &mut Rng, big: bool) -> SqlValue {
    match rng.below(9) {
        0 => SqlValue::Null,
        1 => SqlValue::Integer(rng.below(2) as i64), // serial types 8 and 9
        2 => {
            // Integers of every stored width, both signs.
            let bits = [7, 15, 23, 31, 47, 63][rng.below(6) as usize];
            let v = (rng.next_u64() >> (63 - bits)) as i64;
            SqlValue::Integer(if rng.below(2) == 0 { v } else { -v - 1 })
        }
        3 => SqlValue::Integer([i64::MIN, i64::MAX, -1, 0][rng.below(4) as usize]),
        4 => SqlValue::Real(f64::from_bits(rng.next_u64() & 0x7FEF_FFFF_FFFF_FFFF)),
        5 => SqlValue::Real(rng.f32() as f64 * 1e6),
        6 => {
            let n = if big {
                rng.below(200_000)
            } else {
                rng.below(60)
            } as usize;
            SqlValue::Text(rng.string(n))
        }
        7 => {
            let n = if big {
                rng.below(100_000)
            } else {
                rng.below(60)
            } as usize;
            SqlValue::Blob((0..n).map(|_| rng.next_u64() as u8).collect())
        }
        _ => SqlValue::Text(String::new()),
    }
}

fn to_ours(v: &SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Integer(*i),
        SqlValue::Real(f) => Value::Real(*f),
        SqlValue::Text(s) => Value::Text(s.clone()),
        SqlValue::Blob(b) => Value::Blob(b.clone()),
    }
}

/// Writes a random table, deletes some rows, and compares every row.
fn check_random_table(page_size: u32, rows: usize, big_every: usize, seed: u64) {
    let tmp = TempDb::new();
    let c = tmp.connect(page_size);
    c.execute_batch(
        "CREATE TABLE \"t\" (id INTEGER PRIMARY KEY, a, b TEXT, c BLOB, d REAL, \"odd name\" INTEGER);
         CREATE TABLE other (x TEXT);
         CREATE INDEX t_b ON t(b);",
    )
    .unwrap();
    let mut rng = Rng(seed);
    let tx = c.unchecked_transaction().unwrap();
    {
        let mut st = tx
            .prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .unwrap();
        for i in 0..rows {
            let big = big_every > 0 && i % big_every == 0;
            // Sparse, partly negative rowids.
            let id = i as i64 * 7 - 1000;
            let vals: Vec<SqlValue> = (0..5).map(|_| random_value(&mut rng, big)).collect();
            st.execute(rusqlite::params![
                id, vals[0], vals[1], vals[2], vals[3], vals[4]
            ])
            .unwrap();
        }
    }
    tx.execute("DELETE FROM t WHERE id % 5 = 0", []).unwrap();
    tx.execute("INSERT INTO other VALUES ('x')", []).unwrap();
    tx.commit().unwrap();

    let mut expected: Vec<(i64, Vec<SqlValue>)> = Vec::new();
    {
        let mut st = c.prepare("SELECT rowid, * FROM t ORDER BY rowid").unwrap();
        let mut q = st.query([]).unwrap();
        while let Some(r) = q.next().unwrap() {
            let rowid: i64 = r.get(0).unwrap();
            let vals = (1..=6).map(|i| r.get::<_, SqlValue>(i).unwrap()).collect();
            expected.push((rowid, vals));
        }
    }
    drop(c);
    let bytes = tmp.bytes();
    let db = Database::open(&bytes).unwrap();
    assert_eq!(db.page_size(), page_size as usize);
    let table = db.table("T").unwrap();
    let names: Vec<_> = table.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "a", "b", "c", "d", "odd name"]);
    assert!(table.columns[0].rowid_alias);
    let got = db.rows(&table).unwrap();
    assert_eq!(got.len(), expected.len(), "page size {page_size}");
    for (g, (rowid, vals)) in got.iter().zip(&expected) {
        assert_eq!(g.rowid, *rowid);
        let want: Vec<Value> = vals.iter().map(to_ours).collect();
        assert_eq!(g.values, want, "row {rowid}, page size {page_size}");
    }
    check_extents(&db, &bytes, &table, &expected, seed);
    let other = db.table("other").unwrap();
    assert_eq!(
        db.rows(&other).unwrap()[0].values,
        vec![Value::Text("x".into())]
    );
    assert!(db.table("t_b").is_err(), "indexes are not tables");
}

/// Payloads read in place ([`Database::scan_extents`]): every text and blob
/// column found by its span equals SQLite's value, and random ranges of
/// each payload (across overflow page boundaries) equal the copied payload.
fn check_extents(
    db: &Database<'_>,
    image: &[u8],
    table: &shardvec_core::sqlite::Table,
    expected: &[(i64, Vec<SqlValue>)],
    seed: u64,
) {
    let mut rng = Rng(seed ^ 0x5eed);
    let mut i = 0;
    db.scan_extents(table.root_page, |rowid, payload| {
        let (want_rowid, vals) = &expected[i];
        i += 1;
        assert_eq!(rowid, *want_rowid);
        let whole = payload.to_vec(image);
        assert_eq!(whole.len(), payload.len());
        // Column 0 is the rowid alias (stored as NULL); 1..=5 are a..odd name.
        for (col, val) in vals.iter().enumerate().skip(1) {
            let (at, len) = payload
                .column_span(image, col)
                .unwrap()
                .expect("every column is in the record");
            let want: &[u8] = match val {
                SqlValue::Text(s) => s.as_bytes(),
                SqlValue::Blob(b) => b,
                _ => continue,
            };
            assert_eq!(len, want.len(), "row {rowid} column {col}");
            let mut got = vec![0u8; len];
            assert!(payload.read_at(image, at, &mut got));
            assert_eq!(got, want, "row {rowid} column {col}");
        }
        assert_eq!(payload.column_span(image, 99).unwrap(), None);
        for _ in 0..8 {
            let at = rng.below(whole.len() as u64 + 1) as usize;
            let len = rng.below((whole.len() - at) as u64 + 1) as usize;
            let mut got = vec![0u8; len];
            assert!(payload.read_at(image, at, &mut got));
            assert_eq!(got, whole[at..at + len]);
        }
        let mut past = [0u8; 1];
        assert!(!payload.read_at(image, whole.len(), &mut past));
        Ok(())
    })
    .unwrap();
    assert_eq!(i, expected.len());
}

#[test]
fn random_rows_every_page_size() {
    for (i, page_size) in [512u32, 1024, 4096, 8192, 65536].into_iter().enumerate() {
        check_random_table(page_size, 3000, 0, 11 + i as u64);
    }
}

#[test]
fn large_rows_overflow_into_page_chains() {
    for (i, page_size) in [512u32, 4096, 65536].into_iter().enumerate() {
        check_random_table(page_size, 400, 3, 101 + i as u64);
    }
}

#[test]
fn thousands_of_small_rows_make_deep_btrees() {
    // 512-byte pages and 20 000 rows: interior pages over interior pages.
    check_random_table(512, 20_000, 0, 7);
}

#[test]
fn truncated_and_corrupted_images_error_without_panicking() {
    let tmp = TempDb::new();
    let c = tmp.connect(512);
    c.execute_batch("CREATE TABLE t (a TEXT); ").unwrap();
    for i in 0..300 {
        c.execute("INSERT INTO t VALUES (?1)", [format!("{i:0>200}")])
            .unwrap();
    }
    drop(c);
    let bytes = tmp.bytes();
    // Truncation to a non-multiple of the page size, and to fewer pages.
    assert!(Database::open(&bytes[..bytes.len() - 100]).is_err());
    let short = &bytes[..bytes.len() - 512];
    let db = Database::open(short).unwrap();
    let t = db.table("t").unwrap();
    assert!(db.rows(&t).is_err());
    // Flip every byte of the second page in turn: never a panic.
    let mut rng = Rng(3);
    for _ in 0..2000 {
        let mut b = bytes.clone();
        let at = 512 + rng.below(bytes.len() as u64 - 512) as usize;
        b[at] = rng.next_u64() as u8;
        if let Ok(db) = Database::open(&b) {
            if let Ok(t) = db.table("t") {
                let _ = db.rows(&t);
            }
        }
    }
}

//! Helpers shared by the core integration tests: SQLite images made by the
//! real SQLite engine (rusqlite), and a small seeded PRNG.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;

/// The manifest schema exactly as the reference writer creates it.
pub use shardvec_core::manifest::{BUILD_META_DDL as BUILD_META_SQL, SHARDS_DDL as SHARDS_SQL};

/// A unique temporary file path (removed by [`TempDb`]'s drop).
pub struct TempDb {
    pub path: PathBuf,
}

impl TempDb {
    pub fn new() -> TempDb {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "shardvec-core-test-{}-{}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        TempDb { path }
    }

    /// Opens a connection with the given page size, rollback journal.
    pub fn connect(&self, page_size: u32) -> Connection {
        let c = Connection::open(&self.path).expect("open temp db");
        c.execute_batch(&format!(
            "PRAGMA page_size = {page_size}; PRAGMA journal_mode = DELETE;"
        ))
        .expect("pragmas");
        c
    }

    /// The database image on disk.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).expect("read temp db")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// SplitMix64: a small seeded generator for bulk random test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    pub fn string(&mut self, len: usize) -> String {
        const ALPHABET: &[char] = &[
            'a', 'b', 'z', '0', '9', ' ', '"', '\'', 'é', '中', '🙂', '\n',
        ];
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize])
            .collect()
    }
}

/// One `shards` row.
#[derive(Clone, Debug)]
pub struct ShardRow {
    pub db_id: i64,
    pub db_url: Option<String>,
    pub attempt: i64,
    pub row_count: i64,
    pub db_bytes: i64,
    pub checkpoint_id: Option<String>,
    pub writer_info: String,
}

/// Writes a manifest image with the reference schema.
pub struct ManifestSpec {
    pub page_size: u32,
    pub num_dbs: i64,
    pub format_version: i64,
    pub custom: String,
    pub shards: Vec<ShardRow>,
    pub extra_build_rows: usize,
}

impl ManifestSpec {
    pub fn vector(custom_vector: serde_json::Value, num_dbs: i64) -> ManifestSpec {
        ManifestSpec {
            page_size: 4096,
            num_dbs,
            format_version: 4,
            custom: serde_json::json!({ "vector": custom_vector }).to_string(),
            shards: (0..num_dbs)
                .map(|i| ShardRow {
                    db_id: i,
                    db_url: Some(format!("s3://b/p/shards/run_id=r/db={i:05}/attempt=00")),
                    attempt: 0,
                    row_count: 10 + i,
                    db_bytes: 4096 * (i + 1),
                    checkpoint_id: Some(format!("ck{i}")),
                    writer_info: "{\"attempt\": 0}".into(),
                })
                .collect(),
            extra_build_rows: 0,
        }
    }

    pub fn write(&self) -> Vec<u8> {
        let tmp = TempDb::new();
        let c = tmp.connect(self.page_size);
        c.execute_batch(BUILD_META_SQL).unwrap();
        c.execute_batch(SHARDS_SQL).unwrap();
        for _ in 0..=self.extra_build_rows {
            c.execute(
                "INSERT INTO build_meta VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                rusqlite::params![
                    "run-1",
                    "2026-11-21T18:28:06.639911Z",
                    self.num_dbs,
                    "s3://b/p",
                    "_vector_id",
                    r#"{"cel_columns": null, "cel_expr": null, "hash_algorithm": "xxh3_64", "routing_values": null, "strategy": "hash"}"#,
                    "db={db_id:05d}",
                    "shards",
                    self.format_version,
                    "raw",
                    self.custom,
                ],
            )
            .unwrap();
        }
        let tx = c.unchecked_transaction().unwrap();
        {
            let mut st = tx
                .prepare("INSERT INTO shards VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, ?6, ?7)")
                .unwrap();
            for s in &self.shards {
                st.execute(rusqlite::params![
                    s.db_id,
                    s.db_url,
                    s.attempt,
                    s.row_count,
                    s.db_bytes,
                    s.checkpoint_id,
                    s.writer_info
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
        drop(c);
        tmp.bytes()
    }
}

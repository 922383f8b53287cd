//! Raw SQLite images: read the schema and scan every table it names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardvec_core::sqlite::Database;

fuzz_target!(|data: &[u8]| {
    let Ok(db) = Database::open(data) else { return };
    let Ok(schema) = db.schema() else { return };
    for entry in schema.iter().filter(|e| e.kind == "table") {
        if let Ok(table) = db.table(&entry.name) {
            let _ = db.rows(&table);
        }
    }
});

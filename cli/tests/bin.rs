//! The `shardvec` binary starts and says what it is. (The CLI's behaviour
//! is tested against the peer fixtures in `tests/it/cli*.rs`; this file
//! also makes `cargo test` build the binary those tests run, with the
//! workspace's features.)

use std::process::Command;

#[test]
fn version_names_the_features_compiled_in() {
    let out = Command::new(env!("CARGO_BIN_EXE_shardvec"))
        .arg("--version")
        .output()
        .expect("run shardvec");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("shardvec 0.1.0 (features: sqlite-vec"),
        "{text}"
    );
    assert_eq!(
        text.contains("lancedb"),
        cfg!(feature = "lancedb"),
        "{text}"
    );
}

#[test]
fn help_lists_every_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_shardvec"))
        .arg("--help")
        .output()
        .expect("run shardvec");
    let text = String::from_utf8(out.stdout).unwrap();
    for cmd in [
        "info", "shards", "route", "search", "build", "history", "rollback", "verify", "bench",
        "synth", "serve", "demo",
    ] {
        assert!(text.contains(cmd), "--help lacks {cmd}: {text}");
    }
}

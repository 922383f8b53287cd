//! `_CURRENT` pointers and manifest directory names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardvec_core::current::parse_manifest_dir_name;
use shardvec_core::{CurrentPointer, ManifestRef};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = CurrentPointer::parse(data) {
        let r = p.manifest_ref();
        let again = CurrentPointer::parse(p.to_json().as_bytes()).expect("own output parses");
        assert_eq!(again, p);
        let _ = ManifestRef::from_url(&r.url);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse_manifest_dir_name(s);
        let _ = ManifestRef::from_url(s);
    }
});

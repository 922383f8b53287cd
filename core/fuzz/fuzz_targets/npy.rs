//! `.npy` images: parse, check a shape, and write back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardvec_core::npy::Matrix;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Matrix::from_npy(data, "fuzz.npy") {
        let again = Matrix::from_npy(&m.to_npy(), "again.npy").expect("own output parses");
        assert_eq!(again.rows(), m.rows());
        assert_eq!(again.cols(), m.cols());
        let _ = m.expect_shape(2, 3, "fuzz.npy");
    }
});

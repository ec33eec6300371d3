//! The same byte stream decoded whole and in arbitrary chunks must give the same frames and
//! errors (see `chatproto_fuzz::check_chunking`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chatproto_fuzz::check_chunking(data));

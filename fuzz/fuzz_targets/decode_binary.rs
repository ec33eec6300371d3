//! Arbitrary bytes through the binary decoders, both directions (see `chatproto_fuzz::check_frames`).

#![no_main]

use chatproto::protocol::WireFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chatproto_fuzz::check_frames(WireFormat::Binary, data));

//! `signature_header`: the checks of `hookline_fuzzing::Target::SignatureHeader` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookline_fuzzing::Target::SignatureHeader.fuzz(data));

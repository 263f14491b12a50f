//! `payload`: the checks of `hookline_fuzzing::Target::Payload` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookline_fuzzing::Target::Payload.fuzz(data));

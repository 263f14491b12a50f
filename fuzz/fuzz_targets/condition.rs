//! `condition`: the checks of `hookline_fuzzing::Target::Condition` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookline_fuzzing::Target::Condition.fuzz(data));

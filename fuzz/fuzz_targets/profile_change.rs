//! `profile_change`: the checks of `hookline_fuzzing::Target::ProfileChange` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookline_fuzzing::Target::ProfileChange.fuzz(data));

//! `subscription`: the checks of `hookline_fuzzing::Target::Subscription` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookline_fuzzing::Target::Subscription.fuzz(data));

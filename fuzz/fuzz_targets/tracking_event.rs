//! `tracking_event`: the checks of `hookline_fuzzing::Target::TrackingEvent` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookline_fuzzing::Target::TrackingEvent.fuzz(data));

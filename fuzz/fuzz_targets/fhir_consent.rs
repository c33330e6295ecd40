#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| carrel_fuzz_targets::fhir_consent(data));

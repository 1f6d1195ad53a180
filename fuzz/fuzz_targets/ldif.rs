#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    convergences::fuzzing::ldif(data);
});

#![no_main]

// The input is a User document and a PATCH body, separated by a NUL byte.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |&b| b == 0);
    if let (Some(doc), Some(body)) = (parts.next(), parts.next()) {
        convergences::fuzzing::scim_patch(doc, body);
    }
});

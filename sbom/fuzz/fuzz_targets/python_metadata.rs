#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = sbom::catalog::python::parse_metadata(text);
    let _ = sbom::catalog::python::parse_record(text, std::path::Path::new("/usr/lib/python3/dist-packages"));
    let _ = sbom::catalog::python::parse_vendor_list(text);
});

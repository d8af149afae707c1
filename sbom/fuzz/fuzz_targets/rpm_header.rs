#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(h) = sbom::catalog::rpm::Header::parse(data) {
        let _ = h.package(None, std::path::Path::new("/var/lib/rpm/rpmdb.sqlite"));
    }
});

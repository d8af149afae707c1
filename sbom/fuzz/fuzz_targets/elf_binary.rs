#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut catalog = sbom::catalog::Catalog::default();
    sbom::catalog::binary::catalog_elf(data, std::path::Path::new("/bin/x"), &mut catalog);
    let _ = sbom::elf::interp_of(data);
});

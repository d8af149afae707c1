#![no_main]

// The Go function table reader on an ELF image: every count and offset is the image's.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(t) = sbom::gofunc::FuncTable::parse(data) {
        for f in t.funcs().take(64) {
            let _ = sbom::gofunc::split_name(&f.name);
        }
    }
});

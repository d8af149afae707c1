#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (mut found, mut problems) = (Vec::new(), Vec::new());
    sbom::catalog::java::read_archive(std::io::Cursor::new(data), "x.jar".into(), &mut found, &mut problems);
});

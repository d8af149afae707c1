#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (mut found, mut problems) = (Vec::new(), Vec::new());
    sbom::catalog::java::read_archive(data.to_vec(), "x.jar".into(), &mut found, &mut problems);
});

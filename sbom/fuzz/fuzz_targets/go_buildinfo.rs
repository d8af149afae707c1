#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = sbom::catalog::binary::go::parse(data, |addr, len| {
        data.get(addr as usize..(addr as usize).saturating_add(len as usize)).map(<[u8]>::to_vec)
    });
});

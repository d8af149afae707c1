//! Hostile archives, written byte by byte (no zip library would write them).

use std::io::Write;
use std::path::Path;

/// Writes a zip of `entries` central-directory entries (named by `name(i)`) that all point
/// at one local entry, `member`: `inflated` bytes of `fill`, deflated. Each name inflates
/// the same bytes again: a bomb of `entries * inflated` bytes in a small file.
pub fn shared_entry_zip(
    path: &Path,
    entries: u16,
    name: impl Fn(u16) -> String,
    member: &str,
    fill: u8,
    inflated: usize,
) {
    let data = vec![fill; inflated];
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflate.write_all(&data).unwrap();
    let payload = deflate.finish().unwrap();
    let crc = crc32fast::hash(&data);
    let (packed, size) = (u32::try_from(payload.len()).unwrap(), u32::try_from(data.len()).unwrap());
    let mut out = Vec::new();
    // Local file header.
    out.extend(0x04034b50u32.to_le_bytes());
    out.extend([20u16, 0, 8, 0, 0].iter().flat_map(|v| v.to_le_bytes()));
    out.extend(crc.to_le_bytes());
    out.extend(packed.to_le_bytes());
    out.extend(size.to_le_bytes());
    out.extend(u16::try_from(member.len()).unwrap().to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(member.as_bytes());
    out.extend(&payload);
    let local_len = u32::try_from(out.len()).unwrap();
    // Central directory: every entry at offset 0.
    let mut cd = Vec::new();
    for i in 0..entries {
        let n = name(i);
        cd.extend(0x02014b50u32.to_le_bytes());
        cd.extend([20u16, 20, 0, 8, 0, 0].iter().flat_map(|v| v.to_le_bytes()));
        cd.extend(crc.to_le_bytes());
        cd.extend(packed.to_le_bytes());
        cd.extend(size.to_le_bytes());
        cd.extend(u16::try_from(n.len()).unwrap().to_le_bytes());
        cd.extend([0u16, 0, 0, 0].iter().flat_map(|v| v.to_le_bytes()));
        cd.extend(0u32.to_le_bytes());
        cd.extend(0u32.to_le_bytes());
        cd.extend(n.as_bytes());
    }
    let cd_len = u32::try_from(cd.len()).unwrap();
    out.extend(cd);
    // End of central directory.
    out.extend(0x06054b50u32.to_le_bytes());
    out.extend([0u16, 0, entries, entries].iter().flat_map(|v| v.to_le_bytes()));
    out.extend(cd_len.to_le_bytes());
    out.extend(local_len.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    std::fs::write(path, out).unwrap();
}

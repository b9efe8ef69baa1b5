//! The IDX format (LeCun's MNIST files): a 4-byte magic `00 00 08 <rank>`,
//! `rank` big-endian u32 dimensions, then the bytes row-major. Files may be
//! gzip-compressed; we detect that by the gzip magic `1f 8b`, not by name.

use std::io::Read;
use std::path::Path;

use crate::DatasetError;

/// A decoded IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions the header states.
    pub dims: Vec<usize>,
    /// The data, row-major.
    pub data: Vec<u8>,
    /// SHA-256 (hex) of the decompressed file bytes, header included.
    pub sha256: String,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UBYTE: u8 = 0x08;

/// The most data bytes an IDX file may declare: 1 GiB, 20 times MNIST's
/// training images.
pub const MAX_IDX_BYTES: u64 = 1 << 30;

/// Reads an IDX file (raw or gzip) and checks that its rank is `rank`. A
/// gzip stream is inflated only as far as its header promises (and one byte
/// more, to tell trailing data), so a small file that inflates to gigabytes
/// is refused without holding them.
pub fn read_idx(path: &Path, rank: usize) -> Result<IdxArray, DatasetError> {
    let raw = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return parse_idx(&raw, path, rank);
    }
    let mut decoder = flate2::read::MultiGzDecoder::new(&raw[..]);
    let mut bytes = Vec::new();
    let header = 4 + 4 * rank as u64;
    (&mut decoder).take(header).read_to_end(&mut bytes).map_err(|e| DatasetError::io(path, e))?;
    if bytes.len() as u64 == header && bytes[..3] == [0, 0, UBYTE] && bytes[3] as usize == rank {
        let expected = declared_bytes(&bytes[4..]);
        if expected > MAX_IDX_BYTES {
            return Err(DatasetError::TooLarge { path: path.into(), declared: expected, limit: MAX_IDX_BYTES });
        }
        (&mut decoder).take(expected + 1).read_to_end(&mut bytes).map_err(|e| DatasetError::io(path, e))?;
    }
    parse_idx(&bytes, path, rank)
}

/// The data bytes big-endian u32 dimensions declare (`u64::MAX` on overflow).
fn declared_bytes(dims: &[u8]) -> u64 {
    dims.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64)
        .try_fold(1u64, |acc, d| acc.checked_mul(d))
        .unwrap_or(u64::MAX)
}

/// Parses the bytes of an uncompressed IDX file; `path` only names it in errors.
pub fn parse_idx(bytes: &[u8], path: &Path, rank: usize) -> Result<IdxArray, DatasetError> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != UBYTE {
        return Err(DatasetError::BadMagic { path: path.into(), found: bytes.iter().take(4).copied().collect() });
    }
    let found_rank = bytes[3] as usize;
    if found_rank != rank {
        return Err(DatasetError::WrongRank { path: path.into(), expected: rank, found: found_rank });
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(DatasetError::Truncated { path: path.into(), expected: header as u64, found: bytes.len() as u64 });
    }
    let dims: Vec<usize> =
        bytes[4..header].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    // Checked in u64 before allocating anything, so a lying header cannot
    // make us reserve more than the file holds.
    let expected = declared_bytes(&bytes[4..header]);
    let found = (bytes.len() - header) as u64;
    if found < expected {
        return Err(DatasetError::Truncated { path: path.into(), expected, found });
    }
    if found > expected {
        return Err(DatasetError::TrailingBytes { path: path.into(), extra: found - expected });
    }
    Ok(IdxArray { dims, data: bytes[header..].to_vec(), sha256: sha256_hex(bytes) })
}

/// Encodes an IDX array of unsigned bytes (used by tests and by tools that
/// write subsets).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, UBYTE, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

pub(crate) use modcirc_store::sha256_hex;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn p() -> &'static Path {
        Path::new("tiny-idx3")
    }

    #[test]
    fn tiny_file_round_trips_raw_and_gzip() {
        let data: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8 * 10).collect();
        let bytes = encode_idx(&[2, 3, 4], &data);
        let arr = parse_idx(&bytes, p(), 3).unwrap();
        assert_eq!(arr.dims, vec![2, 3, 4]);
        assert_eq!(arr.data, data);

        let dir = std::env::temp_dir().join(format!("modcirc-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw_path = dir.join("a-name-that-says-gz.gz");
        std::fs::write(&raw_path, &bytes).unwrap();
        let gz_path = dir.join("plain-name");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).unwrap();
        std::fs::write(&gz_path, enc.finish().unwrap()).unwrap();
        let a = read_idx(&raw_path, 3).unwrap();
        let b = read_idx(&gz_path, 3).unwrap();
        assert_eq!(a, arr);
        assert_eq!(b, arr);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn wrong_magic_is_an_error_naming_the_file() {
        let mut bytes = encode_idx(&[2], &[1, 2]);
        bytes[2] = 0x0D; // float data
        let e = parse_idx(&bytes, p(), 1).unwrap_err();
        assert!(matches!(e, DatasetError::BadMagic { .. }), "{e}");
        assert!(e.to_string().contains("tiny-idx3"));
        assert!(matches!(parse_idx(b"PK\x03\x04", p(), 1), Err(DatasetError::BadMagic { .. })));
        assert!(matches!(parse_idx(b"", p(), 1), Err(DatasetError::BadMagic { .. })));
    }

    #[test]
    fn wrong_rank() {
        let bytes = encode_idx(&[2, 1], &[1, 2]);
        let e = parse_idx(&bytes, p(), 3).unwrap_err();
        assert!(matches!(e, DatasetError::WrongRank { expected: 3, found: 2, .. }), "{e}");
    }

    #[test]
    fn truncated_data_and_truncated_header() {
        let bytes = encode_idx(&[4, 2], &[1, 2, 3]);
        let e = parse_idx(&bytes, p(), 2).unwrap_err();
        assert!(matches!(e, DatasetError::Truncated { expected: 8, found: 3, .. }), "{e}");
        let e = parse_idx(&[0, 0, 8, 3, 0, 0], p(), 3).unwrap_err();
        assert!(matches!(e, DatasetError::Truncated { .. }), "{e}");
    }

    #[test]
    fn trailing_bytes() {
        let bytes = encode_idx(&[2], &[1, 2, 3]);
        let e = parse_idx(&bytes, p(), 1).unwrap_err();
        assert!(matches!(e, DatasetError::TrailingBytes { extra: 1, .. }), "{e}");
    }

    #[test]
    fn huge_header_is_rejected_before_allocating() {
        let bytes = encode_idx(&[u32::MAX as usize, u32::MAX as usize, u32::MAX as usize], &[0; 16]);
        let e = parse_idx(&bytes, p(), 3).unwrap_err();
        assert!(matches!(e, DatasetError::Truncated { expected: u64::MAX, found: 16, .. }), "{e}");
    }

    #[test]
    fn corrupt_gzip_is_an_io_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("modcirc-idxgz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broken.gz");
        std::fs::write(&path, [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
        let e = read_idx(&path, 1).unwrap_err();
        assert!(e.to_string().contains("broken.gz"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! IDX files made to hurt: a decompression bomb, a lying header, and
//! arbitrary or mutated bytes. Each ends in an error naming the file, never
//! a panic, and never holds more memory than the data it really has.

use std::io::Write;
use std::path::{Path, PathBuf};

use modcirc_dataset::idx::{encode_idx, parse_idx, read_idx, MAX_IDX_BYTES};
use modcirc_dataset::DatasetError;
use modcirc_metrics::CountingAlloc;
use proptest::prelude::*;

#[global_allocator]
static ALLOC: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

/// A file path in a directory of its own, removed with the directory when
/// the guard drops (a failing case included).
struct Temp {
    dir: PathBuf,
    path: PathBuf,
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl std::ops::Deref for Temp {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for Temp {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

fn temp(name: &str) -> Temp {
    let dir = std::env::temp_dir().join(format!("modcirc-hostile-idx-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Temp { path: dir.join(name), dir }
}

/// `head` then `zeros` zero bytes, gzip'd, streamed so the zeros are never held.
fn gzip_with_zeros(path: &Path, head: &[u8], zeros: usize) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    enc.write_all(head).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..zeros / chunk.len() {
        enc.write_all(&chunk).unwrap();
    }
    enc.finish().unwrap();
}

#[test]
fn a_decompression_bomb_is_refused_without_inflating_it() {
    // A valid label file of 100 labels, then 512 MiB of zeros: a few hundred KB on disk.
    let path = temp("bomb-labels");
    gzip_with_zeros(&path, &encode_idx(&[100], &[3; 100]), 512 << 20);
    assert!(std::fs::metadata(&path).unwrap().len() < 4 << 20);
    ALLOC.reset_peak();
    let before = ALLOC.live_bytes();
    let e = read_idx(&path, 1).unwrap_err();
    let peak = ALLOC.peak_bytes() - before;
    assert!(matches!(e, DatasetError::TrailingBytes { .. }), "{e}");
    assert!(e.to_string().contains("bomb-labels"), "{e}");
    assert!(peak < 100 << 20, "peak heap {} MiB above the baseline", peak >> 20);
}

#[test]
fn a_header_declaring_more_than_the_limit_is_refused_before_reading() {
    let path = temp("huge-images");
    let mut head = vec![0, 0, 8, 3];
    for d in [60_000u32, 28_000, 28_000] {
        head.extend_from_slice(&d.to_be_bytes());
    }
    gzip_with_zeros(&path, &head, 1 << 20);
    let e = read_idx(&path, 3).unwrap_err();
    assert!(matches!(e, DatasetError::TooLarge { limit: MAX_IDX_BYTES, .. }), "{e}");
    assert!(e.to_string().contains("huge-images") && e.to_string().contains("47040000000000"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), rank in 1usize..4) {
        let _ = parse_idx(&bytes, Path::new("x"), rank);
    }

    #[test]
    fn mutated_files_never_panic_and_name_the_file(
        flips in proptest::collection::vec((0usize..40, any::<u8>()), 1..6),
        cut in 0usize..40,
        gzip in any::<bool>(),
    ) {
        let mut bytes = encode_idx(&[2, 3, 4], &(0..24).collect::<Vec<u8>>());
        for (at, v) in flips {
            let i = at % bytes.len();
            bytes[i] = v;
        }
        bytes.truncate(cut.max(1));
        let path = temp("mutated");
        if gzip {
            gzip_with_zeros(&path, &bytes, 0);
        } else {
            std::fs::write(&path, &bytes).unwrap();
        }
        match read_idx(&path, 3) {
            Ok(a) => prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>()),
            Err(e) => prop_assert!(e.to_string().contains("mutated"), "{}", e),
        }
    }
}

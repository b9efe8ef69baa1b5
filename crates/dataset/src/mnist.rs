//! MNIST from its IDX files (gzip'd or not), checked against its SHA-256 sums.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::idx::read_idx;
use crate::DatasetError;

/// Where the committed MNIST copy lives, relative to the repository root.
pub const DEFAULT_DATA_DIR: &str = "fixtures/mnist";
/// Environment variable that overrides the data directory.
pub const DATA_DIR_ENV: &str = "MODCIRC_DATA_DIR";
/// A `sha256sum`-style listing of the *decompressed* files, if present in
/// the data directory, is checked under [`ChecksumPolicy::Auto`].
const CHECKSUM_LISTING: &str = "SHA256SUMS";

/// Whether to verify the files against a `SHA256SUMS` listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumPolicy {
    /// Verify every file listed in `<dir>/SHA256SUMS` (the committed MNIST
    /// has one); files not listed, or a directory without a listing, are
    /// hashed and recorded but not verified.
    Auto,
    /// Hash and record, never verify.
    Skip,
}

/// The SHA-256 of one decompressed file, and whether it was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChecksum {
    /// The file's name.
    pub file: String,
    /// SHA-256 of its decompressed bytes.
    pub sha256: String,
    /// Whether it was checked against a listing.
    pub verified: bool,
}

/// Images as f32 in [0, 1] (`byte / 255`, STUDY §1), row-major, one image per
/// `pixels()` values, with their labels.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// `[len, rows · cols]`, pixels in [0, 1].
    pub images: Vec<f32>,
    /// The digits.
    pub labels: Vec<u8>,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
}

impl ImageSet {
    /// Images in the set.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether the set has no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }
    /// Image `i`'s pixels.
    pub fn image(&self, i: usize) -> &[f32] {
        let p = self.pixels();
        &self.images[i * p..(i + 1) * p]
    }
    /// Refuses a set a model of `inputs` inputs and `classes` classes
    /// cannot take: another pixel count, or a label outside the classes.
    /// `name` names the set in the message (`test`, `training`).
    pub fn check_fits(&self, name: &str, inputs: usize, classes: usize) -> Result<(), DatasetError> {
        if self.pixels() != inputs {
            return Err(DatasetError::Misfit(format!(
                "{name} images have {} pixels ({}x{}), the model takes {inputs}",
                self.pixels(),
                self.rows,
                self.cols
            )));
        }
        if let Some(&bad) = self.labels.iter().find(|&&l| l as usize >= classes) {
            return Err(DatasetError::Misfit(format!("{name} label {bad} is outside the model's {classes} classes")));
        }
        Ok(())
    }

    /// Copies the images at `indices` into one row-major `[indices.len(), pixels]` buffer.
    pub fn gather(&self, indices: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(indices.len() * self.pixels());
        for &i in indices {
            out.extend_from_slice(self.image(i));
        }
        out
    }
}

/// The MNIST training and test splits (or any IDX data with MNIST's file names).
#[derive(Debug, Clone)]
pub struct Mnist {
    /// The 60 000 training images.
    pub train: ImageSet,
    /// The 10 000 test images.
    pub test: ImageSet,
    /// The four files' checksums.
    pub checksums: Vec<FileChecksum>,
    /// Where they were read.
    pub dir: PathBuf,
}

impl Mnist {
    /// Loads `train-{images-idx3,labels-idx1}-ubyte` and `t10k-...` from `dir`,
    /// each raw or gzip'd (with or without a `.gz` suffix).
    pub fn load(dir: impl AsRef<Path>, policy: ChecksumPolicy) -> Result<Mnist, DatasetError> {
        let dir = dir.as_ref();
        let listing = match policy {
            ChecksumPolicy::Auto => read_listing(dir)?,
            ChecksumPolicy::Skip => None,
        };
        let mut checksums = Vec::new();
        let train = load_split(dir, "train", listing.as_ref(), &mut checksums)?;
        let test = load_split(dir, "t10k", listing.as_ref(), &mut checksums)?;
        if let Some((path, _)) = &listing {
            let files: Vec<String> = checksums.iter().filter(|c| !c.verified).map(|c| c.file.clone()).collect();
            if !files.is_empty() {
                return Err(DatasetError::NotListed { listing: path.clone(), files });
            }
        }
        Ok(Mnist { train, test, checksums, dir: dir.to_path_buf() })
    }
}

type Listing = (PathBuf, HashMap<String, String>);

fn read_listing(dir: &Path) -> Result<Option<Listing>, DatasetError> {
    let path = dir.join(CHECKSUM_LISTING);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DatasetError::io(path, e)),
    };
    let mut map = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(hash), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(DatasetError::BadChecksumListing {
                path,
                line: i + 1,
                reason: "expected `<sha256>  <file name>`".into(),
            });
        };
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DatasetError::BadChecksumListing {
                path,
                line: i + 1,
                reason: format!("{hash:?} is not a hex SHA-256"),
            });
        }
        map.insert(name.trim_start_matches('*').to_string(), hash.to_ascii_lowercase());
    }
    Ok(Some((path, map)))
}

/// `<dir>/<name>` or `<dir>/<name>.gz`: the first that exists, which must
/// be a regular file (links followed).
fn find_file(dir: &Path, name: &str) -> Result<PathBuf, DatasetError> {
    for candidate in [name.to_string(), format!("{name}.gz")] {
        let p = dir.join(&candidate);
        let not_a_file = |what: String| DatasetError::NotAFile { path: p.clone(), name: name.into(), what };
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => return Ok(p),
            Ok(m) if m.is_dir() => return Err(not_a_file("a directory".into())),
            Ok(_) => return Err(not_a_file("not a regular file".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(&p).is_ok() {
                    return Err(not_a_file("a link to nothing".into()));
                }
            }
            // A loop of links, or a directory that cannot be searched.
            Err(e) => return Err(not_a_file(format!("cannot be read ({e})"))),
        }
    }
    Err(DatasetError::MissingFile { dir: dir.into(), name: name.into() })
}

fn load_split(
    dir: &Path,
    prefix: &str,
    listing: Option<&Listing>,
    checksums: &mut Vec<FileChecksum>,
) -> Result<ImageSet, DatasetError> {
    let images_name = format!("{prefix}-images-idx3-ubyte");
    let labels_name = format!("{prefix}-labels-idx1-ubyte");
    let images_path = find_file(dir, &images_name)?;
    let labels_path = find_file(dir, &labels_name)?;
    let images = read_idx(&images_path, 3)?;
    let labels = read_idx(&labels_path, 1)?;
    for (name, path, arr) in [(&images_name, &images_path, &images), (&labels_name, &labels_path, &labels)] {
        let mut verified = false;
        if let Some((listing_path, map)) = listing {
            if let Some(expected) = map.get(name.as_str()) {
                if *expected != arr.sha256 {
                    return Err(DatasetError::Checksum {
                        path: path.clone(),
                        listing: listing_path.clone(),
                        expected: expected.clone(),
                        found: arr.sha256.clone(),
                    });
                }
                verified = true;
            }
        }
        checksums.push(FileChecksum { file: name.clone(), sha256: arr.sha256.clone(), verified });
    }
    if images.dims[0] != labels.dims[0] {
        return Err(DatasetError::CountMismatch {
            images: images_path,
            labels: labels_path,
            n_images: images.dims[0],
            n_labels: labels.dims[0],
        });
    }
    Ok(ImageSet {
        images: images.data.iter().map(|&b| b as f32 / 255.0).collect(),
        labels: labels.data,
        rows: images.dims[1],
        cols: images.dims[2],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::encode_idx;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("modcirc-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn write_set(dir: &Path, prefix: &str, n_img: usize, n_lab: usize) {
        let imgs: Vec<u8> = (0..n_img * 4).map(|i| (i * 37 % 256) as u8).collect();
        let labs: Vec<u8> = (0..n_lab).map(|i| (i % 10) as u8).collect();
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), encode_idx(&[n_img, 2, 2], &imgs)).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), encode_idx(&[n_lab], &labs)).unwrap();
    }

    #[test]
    fn loads_raw_files_and_scales_pixels() {
        let d = TempDir::new("mnist-ok");
        write_set(&d.0, "train", 5, 5);
        write_set(&d.0, "t10k", 3, 3);
        let m = Mnist::load(&d.0, ChecksumPolicy::Auto).unwrap();
        assert_eq!(m.train.len(), 5);
        assert_eq!(m.test.pixels(), 4);
        assert_eq!(m.train.image(1)[0], 148.0 / 255.0); // byte (4·37) mod 256 of the second image
        assert!(m.train.images.iter().all(|&x| (0.0..=1.0).contains(&x)));
        assert!(m.checksums.iter().all(|c| !c.verified));
    }

    #[test]
    fn image_label_count_mismatch() {
        let d = TempDir::new("mnist-count");
        write_set(&d.0, "train", 5, 4);
        write_set(&d.0, "t10k", 3, 3);
        let e = Mnist::load(&d.0, ChecksumPolicy::Auto).unwrap_err();
        assert!(matches!(e, DatasetError::CountMismatch { n_images: 5, n_labels: 4, .. }), "{e}");
        assert!(e.to_string().contains("train-labels-idx1-ubyte"));
    }

    #[test]
    fn checksum_listing_is_enforced_unless_skipped() {
        let d = TempDir::new("mnist-sum");
        write_set(&d.0, "train", 5, 5);
        write_set(&d.0, "t10k", 3, 3);
        std::fs::write(d.0.join("SHA256SUMS"), format!("{}  t10k-labels-idx1-ubyte\n", "0".repeat(64))).unwrap();
        let e = Mnist::load(&d.0, ChecksumPolicy::Auto).unwrap_err();
        assert!(matches!(e, DatasetError::Checksum { .. }), "{e}");
        assert!(e.to_string().contains("t10k-labels-idx1-ubyte"));
        Mnist::load(&d.0, ChecksumPolicy::Skip).unwrap();
        std::fs::write(d.0.join("SHA256SUMS"), "nonsense\n").unwrap();
        let e = Mnist::load(&d.0, ChecksumPolicy::Auto).unwrap_err();
        assert!(matches!(e, DatasetError::BadChecksumListing { line: 1, .. }), "{e}");
    }

    #[test]
    fn a_partial_listing_names_the_files_it_does_not_cover() {
        let d = TempDir::new("mnist-partial");
        write_set(&d.0, "train", 5, 5);
        write_set(&d.0, "t10k", 3, 3);
        let all = Mnist::load(&d.0, ChecksumPolicy::Skip).unwrap().checksums;
        let listing: String = all[..3].iter().map(|c| format!("{}  {}\n", c.sha256, c.file)).collect();
        std::fs::write(d.0.join("SHA256SUMS"), listing).unwrap();
        let e = Mnist::load(&d.0, ChecksumPolicy::Auto).unwrap_err();
        assert!(matches!(&e, DatasetError::NotListed { files, .. } if files == &["t10k-labels-idx1-ubyte"]), "{e}");
        assert!(e.to_string().contains("load without checking") && !e.to_string().contains("--"), "{e}");
        Mnist::load(&d.0, ChecksumPolicy::Skip).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_or_a_loop_of_links_where_a_file_should_be_says_so() {
        let d = TempDir::new("mnist-notfile");
        write_set(&d.0, "train", 5, 5);
        write_set(&d.0, "t10k", 3, 3);
        let labels = d.0.join("t10k-labels-idx1-ubyte");
        std::fs::remove_file(&labels).unwrap();
        std::fs::create_dir(&labels).unwrap();
        let e = Mnist::load(&d.0, ChecksumPolicy::Auto).unwrap_err();
        assert!(e.to_string().contains("t10k-labels-idx1-ubyte: a directory, where the data file"), "{e}");
        std::fs::remove_dir(&labels).unwrap();
        let (a, b) = (d.0.join("t10k-labels-idx1-ubyte"), d.0.join("loop"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let e = Mnist::load(&d.0, ChecksumPolicy::Auto).unwrap_err();
        assert!(matches!(e, DatasetError::NotAFile { .. }), "{e}");
        assert!(e.to_string().contains("cannot be read"), "{e}");
        std::fs::remove_file(&b).unwrap();
        let e = Mnist::load(&d.0, ChecksumPolicy::Auto).unwrap_err();
        assert!(e.to_string().contains("a link to nothing"), "{e}");
    }

    #[test]
    fn missing_file_names_the_directory_and_file() {
        let d = TempDir::new("mnist-missing");
        write_set(&d.0, "train", 5, 5);
        let e = Mnist::load(&d.0, ChecksumPolicy::Auto).unwrap_err();
        assert!(e.to_string().contains("t10k-images-idx3-ubyte"), "{e}");
    }

    #[test]
    fn committed_mnist_loads_and_verifies() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(DEFAULT_DATA_DIR);
        let m = Mnist::load(&dir, ChecksumPolicy::Auto).unwrap();
        assert_eq!((m.train.len(), m.test.len()), (60_000, 10_000));
        assert_eq!((m.train.rows, m.train.cols), (28, 28));
        assert_eq!(m.checksums.len(), 4);
        assert!(m.checksums.iter().all(|c| c.verified));
        // The canonical first training label is 5 and the first test label 7.
        assert_eq!((m.train.labels[0], m.test.labels[0]), (5, 7));
    }
}

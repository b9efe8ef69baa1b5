//! MNIST pointer value retrieval (STUDY §11): four digits, each downscaled
//! to 14x14 by area averaging, in a 2x2 grid, so the input stays 28x28.
//! Quadrant 0 (top left) holds the pointer `p`; the label is the digit in
//! quadrant `1 + (p mod 3)`.
//!
//! ```
//! use modcirc_dataset::pvr::{pvr_label, PvrSource};
//! use modcirc_dataset::{ChecksumPolicy, Mnist};
//! # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/mnist");
//! let mnist = Mnist::load(dir, ChecksumPolicy::Auto)?;
//! let test = PvrSource::new(&mnist.test)?;
//! let idx = [0, 1, 2, 3];
//! let mut image = vec![0.0; 784];
//! test.compose(idx, &mut image);
//! let digits = test.digits(idx);
//! assert_eq!(pvr_label(digits), digits[1 + digits[0] as usize % 3]);
//! # Ok::<(), modcirc_dataset::DatasetError>(())
//! ```

use crate::{DatasetError, ImageSet, Rng};

/// The high-level model's nodes: the pointer and the three value quadrants.
pub const PVR_NODES: usize = 4;

/// The side of a downscaled digit.
pub const QUADRANT_SIDE: usize = 14;

const SIDE: usize = 2 * QUADRANT_SIDE;
const QUADRANT_PIXELS: usize = QUADRANT_SIDE * QUADRANT_SIDE;

/// The high-level model (STUDY §11): the digit in quadrant `1 + (p mod 3)`,
/// `p` the digit in quadrant 0. `digits[q]` is quadrant `q`'s digit.
pub fn pvr_label(digits: [u8; PVR_NODES]) -> u8 {
    digits[1 + (digits[0] % 3) as usize]
}

/// The value quadrant a pointer digit points at (1, 2 or 3).
pub fn pointed_quadrant(pointer: u8) -> usize {
    1 + (pointer % 3) as usize
}

/// The indices, in a 28x28 row-major image, of quadrant `q`'s pixels
/// (0 top left, 1 top right, 2 bottom left, 3 bottom right).
pub fn quadrant_pixels(q: usize) -> Vec<usize> {
    let (r0, c0) = ((q / 2) * QUADRANT_SIDE, (q % 2) * QUADRANT_SIDE);
    (0..QUADRANT_SIDE).flat_map(|r| (0..QUADRANT_SIDE).map(move |c| (r0 + r) * SIDE + c0 + c)).collect()
}

/// A composite: the split's image index of each quadrant.
pub type Composite = [usize; PVR_NODES];

/// A split's digits downscaled to 14x14 once, ready to be composed.
#[derive(Debug, Clone)]
pub struct PvrSource {
    small: Vec<f32>,
    labels: Vec<u8>,
}

impl PvrSource {
    /// Downscales every image of `split` (28x28 only) by averaging each
    /// 2x2 block of pixels.
    pub fn new(split: &ImageSet) -> Result<PvrSource, DatasetError> {
        if split.rows != SIDE || split.cols != SIDE {
            return Err(DatasetError::Pvr(format!("needs 28x28 images, not {}x{}", split.rows, split.cols)));
        }
        if split.len() < PVR_NODES {
            return Err(DatasetError::Pvr(format!("needs at least {PVR_NODES} images, the split has {}", split.len())));
        }
        let mut small = vec![0.0f32; split.len() * QUADRANT_PIXELS];
        for (i, out) in small.chunks_exact_mut(QUADRANT_PIXELS).enumerate() {
            let img = split.image(i);
            for r in 0..QUADRANT_SIDE {
                for c in 0..QUADRANT_SIDE {
                    let at = |dr: usize, dc: usize| img[(2 * r + dr) * SIDE + 2 * c + dc];
                    out[r * QUADRANT_SIDE + c] = (at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1)) / 4.0;
                }
            }
        }
        Ok(PvrSource { small, labels: split.labels.clone() })
    }

    /// Digits in the split.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The label of digit `i`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// The four quadrants' digits of the composite of images `idx`.
    pub fn digits(&self, idx: [usize; PVR_NODES]) -> [u8; PVR_NODES] {
        idx.map(|i| self.labels[i])
    }

    /// Writes the composite of images `idx` (quadrant `q` from image
    /// `idx[q]`) into `out` (784 pixels).
    pub fn compose(&self, idx: [usize; PVR_NODES], out: &mut [f32]) {
        for (q, &i) in idx.iter().enumerate() {
            let src = &self.small[i * QUADRANT_PIXELS..(i + 1) * QUADRANT_PIXELS];
            let (r0, c0) = ((q / 2) * QUADRANT_SIDE, (q % 2) * QUADRANT_SIDE);
            for r in 0..QUADRANT_SIDE {
                let row = (r0 + r) * SIDE + c0;
                out[row..row + QUADRANT_SIDE].copy_from_slice(&src[r * QUADRANT_SIDE..(r + 1) * QUADRANT_SIDE]);
            }
        }
    }

    /// Asks for the cache lines of the composite of `idx`'s quadrants (a
    /// composite reads four images from anywhere in the split: composing
    /// a batch waits on memory unless the next rows are fetched ahead).
    pub fn prefetch(&self, idx: [usize; PVR_NODES]) {
        #[cfg(target_arch = "x86_64")]
        for &i in &idx {
            if let Some(src) = self.small.get(i * QUADRANT_PIXELS..(i + 1) * QUADRANT_PIXELS) {
                for line in src.chunks(16) {
                    // SAFETY: a prefetch reads nothing and cannot fault; the
                    // address is inside `small`.
                    unsafe {
                        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast())
                    };
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = idx;
    }

    /// Four images drawn uniformly (with replacement).
    pub fn draw(&self, rng: &mut Rng) -> [usize; PVR_NODES] {
        [(); PVR_NODES].map(|_| rng.below(self.len()))
    }

    /// An image whose digit satisfies `keep`, drawn uniformly among them
    /// (`None` when the split has none).
    fn draw_where(&self, rng: &mut Rng, keep: impl Fn(u8) -> bool) -> Option<usize> {
        if !self.labels.iter().any(|&l| keep(l)) {
            return None;
        }
        loop {
            let i = rng.below(self.len());
            if keep(self.labels[i]) {
                return Some(i);
            }
        }
    }

    /// `n` composites drawn from `seed`, as an [`ImageSet`] labelled by
    /// [`pvr_label`], and each one's four image indices.
    pub fn composites(&self, n: usize, seed: u64) -> (ImageSet, Vec<[usize; PVR_NODES]>) {
        let mut rng = Rng::derive(seed, 0x5056_5200);
        let idx: Vec<[usize; PVR_NODES]> = (0..n).map(|_| self.draw(&mut rng)).collect();
        let mut images = vec![0.0f32; n * SIDE * SIDE];
        for (out, &i) in images.chunks_exact_mut(SIDE * SIDE).zip(&idx) {
            self.compose(i, out);
        }
        let labels = idx.iter().map(|&i| pvr_label(self.digits(i))).collect();
        (ImageSet { images, labels, rows: SIDE, cols: SIDE }, idx)
    }

    /// The planted task of value quadrant `q` (STUDY §11): `n` pairs
    /// (clean, corrupted) equal in every quadrant but `q`, with the pointer
    /// at `q` and different digits in `q`, so the answer is `q`'s digit.
    pub fn planted_pairs(&self, q: usize, n: usize, seed: u64) -> Result<Vec<(Composite, Composite)>, DatasetError> {
        if !(1..PVR_NODES).contains(&q) {
            return Err(DatasetError::Pvr(format!("value quadrant {q}: expected 1, 2 or 3")));
        }
        let mut rng = Rng::derive(seed, 0x5056_5201 + q as u64);
        let none = || DatasetError::Pvr(format!("the split has no pointer digit for quadrant {q}"));
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            let pointer = self.draw_where(&mut rng, |d| pointed_quadrant(d) == q).ok_or_else(none)?;
            let mut clean = self.draw(&mut rng);
            clean[0] = pointer;
            let d = self.labels[clean[q]];
            let other = self
                .draw_where(&mut rng, |e| e != d)
                .ok_or_else(|| DatasetError::Pvr("every digit of the split is the same: no pair differs".into()))?;
            let mut corrupted = clean;
            corrupted[q] = other;
            pairs.push((clean, corrupted));
        }
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> ImageSet {
        // Image i: every pixel (r, c) holds i + r + c, label i mod 10.
        let mut images = Vec::with_capacity(n * 784);
        for i in 0..n {
            for r in 0..28 {
                for c in 0..28 {
                    images.push((i + r + c) as f32);
                }
            }
        }
        ImageSet { images, labels: (0..n).map(|i| (i % 10) as u8).collect(), rows: 28, cols: 28 }
    }

    #[test]
    fn the_label_is_the_digit_the_pointer_points_at() {
        assert_eq!(pvr_label([0, 7, 8, 9]), 7);
        assert_eq!(pvr_label([4, 7, 8, 9]), 8);
        assert_eq!(pvr_label([5, 7, 8, 9]), 9);
        assert_eq!(pvr_label([9, 7, 8, 9]), 7);
    }

    #[test]
    fn quadrants_tile_the_image_and_composites_place_area_averages() {
        let mut all: Vec<usize> = (0..4).flat_map(quadrant_pixels).collect();
        all.sort_unstable();
        assert_eq!(all, (0..784).collect::<Vec<_>>());
        let src = PvrSource::new(&toy(12)).unwrap();
        let mut out = vec![0.0; 784];
        src.compose([3, 5, 7, 11], &mut out);
        // Quadrant 3's pixel (r, c) averages image 11's pixels (2r.., 2c..):
        // 11 + (2r + 2c) + 1.
        let (r, c) = (4, 9);
        assert_eq!(out[(14 + r) * 28 + 14 + c], 11.0 + (2 * r + 2 * c) as f32 + 1.0);
        assert_eq!(out[r * 28 + c], 3.0 + (2 * r + 2 * c) as f32 + 1.0);
        assert_eq!(src.digits([3, 5, 7, 11]), [3, 5, 7, 1]);
    }

    #[test]
    fn planted_pairs_differ_only_in_their_quadrant_which_the_pointer_selects() {
        let src = PvrSource::new(&toy(40)).unwrap();
        for q in 1..4 {
            for (clean, corrupted) in src.planted_pairs(q, 50, 3).unwrap() {
                let (a, b) = (src.digits(clean), src.digits(corrupted));
                assert_eq!(pointed_quadrant(a[0]), q);
                assert_ne!(a[q], b[q]);
                assert_eq!(pvr_label(a), a[q]);
                assert_eq!(pvr_label(b), b[q]);
                for k in (0..4).filter(|&k| k != q) {
                    assert_eq!(clean[k], corrupted[k]);
                }
            }
        }
        assert!(src.planted_pairs(0, 5, 0).is_err());
        assert!(PvrSource::new(&ImageSet { images: vec![0.0; 4 * 16], labels: vec![0; 4], rows: 4, cols: 4 }).is_err());
    }
}

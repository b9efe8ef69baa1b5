//! Checkpoints: a safetensors file PyTorch loads directly, plus a JSON
//! sidecar with everything about the run.
//!
//! Tensors: `fc{k}.weight` `[n_out, n_in]` and `fc{k}.bias` `[n_out]` in f32,
//! named as `nn.Linear` attributes `fc1`, `fc2`, `fc3` would be, with the
//! output permutation folded into the last layer (output `c` is class `c`);
//! and the neuron coordinates as the network now sees them,
//! `coords.input`, `coords.hidden{k}`, `coords.output`, each `[n, 2]`. In
//! PyTorch:
//!
//! ```python
//! from safetensors.torch import load_file
//! sd = load_file("bimt.safetensors")
//! net = nn.Sequential(nn.Linear(784, 100), nn.SiLU(), nn.Linear(100, 100), nn.SiLU(), nn.Linear(100, 10))
//! net.load_state_dict({f"{2*i}.{p}": sd[f"fc{i+1}.{p}"] for i in range(3) for p in ("weight", "bias")})
//! ```
//!
//! Both files are written to a temporary name and renamed, the sidecar
//! first, so a model file that exists is always complete and has its sidecar.

use std::path::{Path, PathBuf};

use modcirc_dataset::FileChecksum;
use modcirc_mlp::file::{self, ExtraTensor};
use modcirc_mlp::Activation;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use crate::{BimtError, HistoryPoint, Layout, Mlp, TrainConfig, TrainTiming};

/// Version of the sidecar's schema; bump on any incompatible change.
pub const SIDECAR_SCHEMA: u32 = 1;

/// The JSON sidecar of a trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainMeta {
    /// [`SIDECAR_SCHEMA`].
    pub schema: u32,
    /// The crates' version that trained it.
    pub crate_version: String,
    /// Every hyper-parameter.
    pub config: TrainConfig,
    /// Accuracy on the training split.
    pub train_accuracy: f64,
    /// Accuracy on the test split.
    pub test_accuracy: f64,
    /// Wall time per phase.
    pub timing: TrainTiming,
    /// Peak heap bytes during training, where the binary counts allocations
    /// (the data set, already loaded, included).
    pub peak_heap_bytes: Option<u64>,
    /// Live heap bytes when training started (mostly the data set), so that
    /// `peak_heap_bytes − heap_at_start_bytes` is what training itself used.
    #[serde(default)]
    pub heap_at_start_bytes: Option<u64>,
    /// Peak resident set size of the process (VmHWM) after training.
    pub peak_rss_bytes: Option<u64>,
    /// `cpu` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Device memory sampled around each phase (GPU runs only).
    #[serde(default)]
    pub device_memory: Option<crate::DeviceMemory>,
    /// The data directory it was trained on.
    pub data_dir: String,
    /// That data's checksums.
    pub data_checksums: Vec<FileChecksum>,
    /// The training curves.
    pub history: Vec<HistoryPoint>,
    /// SHA-256 of the safetensors file this sidecar describes, set by
    /// [`save`]: a sidecar beside other weights (copied from another model
    /// of the same shape, say) is refused instead of believed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
}

impl TrainMeta {
    /// In one line: accuracy on the test and training sets, the training's
    /// time (optimizer and relocation) and the heap it grew by.
    pub fn summary(&self) -> String {
        let heap = self.peak_heap_bytes.unwrap_or(0).saturating_sub(self.heap_at_start_bytes.unwrap_or(0));
        let t = &self.timing;
        format!(
            "test accuracy {:.4}, train {:.4}; {:.1} s (optimizer {:.1} s, relocation {:.2} s); peak heap {:.1} MiB",
            self.test_accuracy,
            self.train_accuracy,
            t.total_s,
            t.optimizer_s,
            t.relocation_s,
            heap as f64 / (1 << 20) as f64
        )
    }
}

fn default_device() -> String {
    "cpu".into()
}

/// A loaded checkpoint.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The network.
    pub model: Mlp,
    /// The neuron coordinates: from `coords.*` where the file has them,
    /// else the study's layout for the model's widths.
    pub layout: Layout,
    /// The sidecar, when one sits beside the file.
    pub meta: Option<TrainMeta>,
}

/// `model.safetensors` → `model.json`.
pub fn sidecar_path(path: &Path) -> PathBuf {
    path.with_extension("json")
}

fn coord_name(l: usize, n_layers: usize) -> String {
    match l {
        0 => "coords.input".into(),
        l if l == n_layers => "coords.output".into(),
        l => format!("coords.hidden{l}"),
    }
}

/// The safetensors bytes of `model` on `layout` (output permutation folded
/// in, the activation in the metadata, the coordinates as `coords.*`).
pub fn to_bytes(model: &Mlp, layout: &Layout) -> Result<Vec<u8>, BimtError> {
    layout.check(model)?;
    let n_layers = model.layers.len();
    let mut coords = layout.layers.clone();
    let ring = &layout.layers[n_layers];
    for (p, &class) in model.out_perm.iter().enumerate() {
        coords[n_layers][class] = ring[p];
    }
    let extra: Vec<ExtraTensor> = coords
        .iter()
        .enumerate()
        .map(|(l, c)| ExtraTensor {
            name: coord_name(l, n_layers),
            shape: vec![c.len(), 2],
            data: c.iter().flatten().copied().collect(),
        })
        .collect();
    Ok(file::to_bytes(model, &extra)?)
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BimtError> {
    Ok(modcirc_store::atomic::write_atomic(path, bytes).map_err(modcirc_mlp::MlpError::from)?)
}

use modcirc_store::sha256_hex;

/// The bytes of a checkpoint as [`save`] wrote them, so that a caller can
/// hash them without reading the files back.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The safetensors file.
    pub weights: Vec<u8>,
    /// The sidecar.
    pub sidecar: Vec<u8>,
    /// The sidecar's content: the caller's, with `weights_sha256` set.
    pub meta: TrainMeta,
}

/// Saves the model and its sidecar, each atomically: both are written to
/// temporary files, then renamed, the sidecar first. A failed save (a full
/// disk) replaces neither, so a model already there keeps its sidecar.
pub fn save(path: &Path, model: &Mlp, layout: &Layout, meta: &TrainMeta) -> Result<Saved, BimtError> {
    let weights = to_bytes(model, layout)?;
    let meta = TrainMeta { weights_sha256: Some(sha256_hex(&weights)), ..meta.clone() };
    let sidecar = serde_json::to_vec_pretty(&meta).map_err(|e| BimtError::Config(format!("sidecar: {e}")))?;
    let side = sidecar_path(path);
    if side == path {
        return Err(BimtError::checkpoint(path, "the model and its sidecar would share this path (a .json model?)"));
    }
    modcirc_store::atomic::write_atomic_all(&[(&side, &sidecar), (path, &weights)])
        .map_err(modcirc_mlp::MlpError::from)?;
    Ok(Saved { weights, sidecar, meta })
}

/// Loads a checkpoint: any MLP `modcirc_mlp::file` reads (`activation`: the
/// caller's word, needed when the file does not say), its coordinates, and
/// its sidecar when there is one. A sidecar that contradicts the weights
/// (other widths or activation) is an error.
pub fn load(path: &Path, activation: Option<Activation>) -> Result<Checkpoint, BimtError> {
    let bytes = modcirc_mlp::file::read_checked(path)?;
    load_bytes(&bytes, path, activation)
}

/// [`load`] on the file's bytes, already read (`path` names the file and
/// locates its sidecar).
pub fn load_bytes(bytes: &[u8], path: &Path, activation: Option<Activation>) -> Result<Checkpoint, BimtError> {
    let (model, layout) = from_bytes(bytes, path, activation)?;
    let side = sidecar_path(path);
    let meta: Option<TrainMeta> = match std::fs::read(&side) {
        Ok(json) => Some(
            serde_json::from_slice(&json)
                .map_err(|e| BimtError::checkpoint(&side, format!("malformed sidecar: {e}")))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(BimtError::io(&side, e)),
    };
    if let Some(m) = &meta {
        if m.config.sizes != model.sizes() || m.config.activation != model.activation {
            return Err(BimtError::checkpoint(
                &side,
                format!(
                    "the sidecar says {:?} {}, the weights are {:?} {}",
                    m.config.sizes,
                    m.config.activation,
                    model.sizes(),
                    model.activation
                ),
            ));
        }
        if let Some(expected) = m.weights_sha256.as_deref().filter(|&h| h != sha256_hex(bytes)) {
            return Err(BimtError::checkpoint(
                &side,
                format!(
                    "the sidecar describes weights with SHA-256 {expected}, not {}: a sidecar of another model?",
                    path.display()
                ),
            ));
        }
    }
    Ok(Checkpoint { model, layout, meta })
}

/// Parses safetensors bytes; `path` names the file in errors.
pub fn from_bytes(bytes: &[u8], path: &Path, activation: Option<Activation>) -> Result<(Mlp, Layout), BimtError> {
    let loaded = file::from_bytes(bytes, path, activation)?;
    let model = loaded.model;
    let sizes = model.sizes();
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| BimtError::checkpoint(path, format!("not a safetensors file: {e}")))?;
    let n_layers = model.layers.len();
    let layout = if st.tensor("coords.input").is_ok() {
        let mut out = Vec::new();
        for (l, &n) in sizes.iter().enumerate() {
            let name = coord_name(l, n_layers);
            let t = st.tensor(&name).map_err(|_| BimtError::checkpoint(path, format!("missing tensor `{name}`")))?;
            if t.dtype() != Dtype::F32 || t.shape() != [n, 2] {
                return Err(BimtError::checkpoint(
                    path,
                    format!("tensor `{name}` is {:?} {:?}, expected F32 [{n}, 2]", t.dtype(), t.shape()),
                ));
            }
            let flat: Vec<f32> =
                t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if flat.iter().any(|v| !v.is_finite()) {
                return Err(BimtError::checkpoint(path, format!("tensor `{name}` holds a non-finite coordinate")));
            }
            out.push(flat.chunks_exact(2).map(|c| [c[0], c[1]]).collect());
        }
        Layout { layers: out }
    } else {
        Layout::study(&sizes)?
    };
    Ok((model, layout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relocate::apply_swap;
    use crate::{Regime, STUDY_SIZES};

    fn meta() -> TrainMeta {
        TrainMeta {
            schema: SIDECAR_SCHEMA,
            crate_version: env!("CARGO_PKG_VERSION").into(),
            config: TrainConfig::new(Regime::Bimt),
            train_accuracy: 0.5,
            test_accuracy: 0.4,
            timing: TrainTiming::default(),
            peak_heap_bytes: Some(1),
            heap_at_start_bytes: Some(0),
            peak_rss_bytes: None,
            device: "cpu".into(),
            device_memory: None,
            data_dir: "x".into(),
            data_checksums: vec![],
            history: vec![],
            weights_sha256: None,
        }
    }

    #[test]
    fn save_load_round_trips_with_the_permutation_folded_in() {
        let dir = std::env::temp_dir().join(format!("modcirc-ckpt-{}", std::process::id()));
        let path = dir.join("m.safetensors");
        let layout = Layout::study(&STUDY_SIZES).unwrap();
        let mut m = crate::init_model(&STUDY_SIZES, crate::STUDY_ACTIVATION, 2).unwrap();
        apply_swap(&mut m, 3, 0, 7);
        apply_swap(&mut m, 1, 4, 50);
        let saved = save(&path, &m, &layout, &meta()).unwrap();
        let ck = load(&path, None).unwrap();
        assert_eq!(saved.meta.weights_sha256.as_deref(), Some(sha256_hex(&saved.weights).as_str()));
        assert_eq!(ck.meta, Some(saved.meta));
        assert_eq!(ck.model.out_perm, (0..10).collect::<Vec<_>>());
        let x: Vec<f32> = (0..2 * 784).map(|i| (i % 13) as f32 / 13.0).collect();
        assert_eq!(ck.model.forward(&x, 2), m.forward(&x, 2));
        // The sidecar beside another model of the same shape: refused.
        let other = dir.join("other.safetensors");
        save(&other, &crate::init_model(&STUDY_SIZES, crate::STUDY_ACTIVATION, 3).unwrap(), &layout, &meta()).unwrap();
        std::fs::copy(sidecar_path(&path), sidecar_path(&other)).unwrap();
        let e = load(&other, None).unwrap_err().to_string();
        assert!(e.contains("other.json") && e.contains("a sidecar of another model?"), "{e}");
        // Class 7's neuron sits where position 0 of the ring is.
        assert_eq!(ck.layout.layers[3][7], layout.layers[3][0]);
        assert_eq!(ck.layout.layers[1], layout.layers[1]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failed_save_leaves_neither_file_nor_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("modcirc-ckpt-fail-{}", std::process::id()));
        let path = dir.join("m.safetensors");
        // A directory where the model should go: the model's rename fails
        // after the sidecar was written.
        std::fs::create_dir_all(path.join("in-the-way")).unwrap();
        let layout = Layout::study(&STUDY_SIZES).unwrap();
        let m = crate::init_model(&STUDY_SIZES, crate::STUDY_ACTIVATION, 2).unwrap();
        let e = save(&path, &m, &layout, &meta()).unwrap_err();
        assert!(e.to_string().contains("m.safetensors"), "{e}");
        let mut left: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["m.safetensors"], "only the directory that was in the way");
        // A model named .json would share its path with its sidecar.
        let e = save(&dir.join("m.json"), &m, &layout, &meta()).unwrap_err();
        assert!(e.to_string().contains("would share this path"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn rewrite(bytes: &[u8], f: impl Fn(&str, &[usize], &[u8]) -> Option<(Vec<usize>, Vec<u8>)>) -> Vec<u8> {
        use safetensors::tensor::TensorView;
        let st = SafeTensors::deserialize(bytes).unwrap();
        let owned: Vec<(String, Vec<usize>, Vec<u8>)> =
            st.tensors().into_iter().filter_map(|(n, t)| f(&n, t.shape(), t.data()).map(|(s, d)| (n, s, d))).collect();
        let views: Vec<_> =
            owned.iter().map(|(n, s, d)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), d).unwrap())).collect();
        safetensors::tensor::serialize(views, Some([("activation".to_string(), "silu".to_string())].into())).unwrap()
    }

    #[test]
    fn wrong_shape_or_missing_tensor_is_a_clear_error() {
        let layout = Layout::study(&STUDY_SIZES).unwrap();
        let bytes = to_bytes(&crate::init_model(&STUDY_SIZES, crate::STUDY_ACTIVATION, 2).unwrap(), &layout).unwrap();
        let p = Path::new("model.safetensors");
        let missing = rewrite(&bytes, |n, s, d| (n != "fc2.bias").then(|| (s.to_vec(), d.to_vec())));
        let e = from_bytes(&missing, p, None).unwrap_err().to_string();
        assert!(e.contains("model.safetensors") && e.contains("missing tensor `fc2.bias`"), "{e}");
        let reshaped = rewrite(&bytes, |n, s, d| {
            Some(if n == "fc3.weight" { (vec![100, 10], d.to_vec()) } else { (s.to_vec(), d.to_vec()) })
        });
        let e = from_bytes(&reshaped, p, None).unwrap_err().to_string();
        assert!(e.contains("`fc3.weight` has shape [100, 10]"), "{e}");
        let short_bias = rewrite(&bytes, |n, s, d| {
            Some(if n == "fc1.bias" { (vec![99], d[..396].to_vec()) } else { (s.to_vec(), d.to_vec()) })
        });
        let e = from_bytes(&short_bias, p, None).unwrap_err().to_string();
        assert!(e.contains("`fc1.bias` has shape [99], expected [100]"), "{e}");
        let e = from_bytes(b"garbage", p, None).unwrap_err().to_string();
        assert!(e.contains("not a safetensors file"), "{e}");
    }

    #[test]
    fn any_shape_and_activation_round_trips_with_its_layout() {
        let dir = std::env::temp_dir().join(format!("modcirc-ckpt-shape-{}", std::process::id()));
        let path = dir.join("m.safetensors");
        let sizes = [784, 128, 7, 10];
        let layout = Layout::study(&sizes).unwrap();
        let m = crate::init_model(&sizes, Activation::Relu, 3).unwrap();
        let mut meta = meta();
        meta.config = TrainConfig::new(Regime::L1).sizes(&sizes).activation(Activation::Relu);
        save(&path, &m, &layout, &meta).unwrap();
        let ck = load(&path, None).unwrap();
        assert_eq!((ck.model.activation, ck.model.sizes()), (Activation::Relu, sizes.to_vec()));
        assert_eq!(ck.layout, layout);
        assert_eq!(ck.model, m);
        // Asked for another activation than the file records: refused.
        let e = load(&path, Some(Activation::Silu)).unwrap_err().to_string();
        assert!(e.contains("says its activation is relu, but silu was asked for"), "{e}");
        // A sidecar that contradicts the weights is refused.
        meta.config = meta.config.activation(Activation::Tanh);
        write_atomic(&sidecar_path(&path), &serde_json::to_vec(&meta).unwrap()).unwrap();
        let e = load(&path, None).unwrap_err().to_string();
        assert!(e.contains("the sidecar says [784, 128, 7, 10] tanh, the weights are [784, 128, 7, 10] relu"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

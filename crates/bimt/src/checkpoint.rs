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

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use modcirc_dataset::FileChecksum;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use crate::{BimtError, HistoryPoint, Layout, Linear, Mlp, TrainConfig, TrainTiming};

/// Version of the sidecar's schema; bump on any incompatible change.
pub const SIDECAR_SCHEMA: u32 = 1;

/// The JSON sidecar of a trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainMeta {
    pub schema: u32,
    pub crate_version: String,
    pub config: TrainConfig,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
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
    pub device_memory: Option<crate::candle_train::DeviceMemory>,
    pub data_dir: String,
    pub data_checksums: Vec<FileChecksum>,
    pub history: Vec<HistoryPoint>,
}

fn default_device() -> String {
    "cpu".into()
}

/// A loaded checkpoint.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub model: Mlp,
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

/// The safetensors bytes of `model` on `layout` (output permutation folded in).
pub fn to_bytes(model: &Mlp, layout: &Layout) -> Result<Vec<u8>, BimtError> {
    model.check_layout(layout)?;
    let folded = model.with_identity_output();
    let n_layers = model.layers.len();
    let mut coords = layout.layers.clone();
    let ring = &layout.layers[n_layers];
    for (p, &class) in model.out_perm.iter().enumerate() {
        coords[n_layers][class] = ring[p];
    }
    let le = |xs: &[f32]| xs.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (k, l) in folded.layers.iter().enumerate() {
        owned.push((format!("fc{}.weight", k + 1), vec![l.n_out, l.n_in], le(&l.weight)));
        owned.push((format!("fc{}.bias", k + 1), vec![l.n_out], le(&l.bias)));
    }
    for (l, c) in coords.iter().enumerate() {
        let flat: Vec<f32> = c.iter().flatten().copied().collect();
        owned.push((coord_name(l, n_layers), vec![c.len(), 2], le(&flat)));
    }
    let views = owned
        .iter()
        .map(|(name, shape, data)| Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), data)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| BimtError::Config(format!("safetensors: {e}")))?;
    let meta = HashMap::from([("format".to_string(), "modcirc-mlp".to_string())]);
    safetensors::tensor::serialize(views, Some(meta)).map_err(|e| BimtError::Config(format!("safetensors: {e}")))
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BimtError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| BimtError::io(dir, e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| BimtError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| BimtError::io(path, e))
}

/// Saves the model and its sidecar (sidecar first, both atomically).
pub fn save(path: &Path, model: &Mlp, layout: &Layout, meta: &TrainMeta) -> Result<(), BimtError> {
    let bytes = to_bytes(model, layout)?;
    let json = serde_json::to_vec_pretty(meta).map_err(|e| BimtError::Config(format!("sidecar: {e}")))?;
    write_atomic(&sidecar_path(path), &json)?;
    write_atomic(path, &bytes)
}

/// Loads a checkpoint, checking every tensor's name, dtype and shape.
pub fn load(path: &Path) -> Result<Checkpoint, BimtError> {
    let bytes = std::fs::read(path).map_err(|e| BimtError::io(path, e))?;
    let (model, layout) = from_bytes(&bytes, path)?;
    let side = sidecar_path(path);
    let meta = match std::fs::read(&side) {
        Ok(json) => Some(
            serde_json::from_slice(&json)
                .map_err(|e| BimtError::checkpoint(&side, format!("malformed sidecar: {e}")))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(BimtError::io(&side, e)),
    };
    Ok(Checkpoint { model, layout, meta })
}

/// Parses safetensors bytes; `path` names the file in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<(Mlp, Layout), BimtError> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| BimtError::checkpoint(path, format!("not a safetensors file: {e}")))?;
    let get = |name: &str, shape: Option<&[usize]>| -> Result<(Vec<usize>, Vec<f32>), BimtError> {
        let t = st.tensor(name).map_err(|_| BimtError::checkpoint(path, format!("missing tensor `{name}`")))?;
        if t.dtype() != Dtype::F32 {
            return Err(BimtError::checkpoint(path, format!("tensor `{name}` is {:?}, expected F32", t.dtype())));
        }
        if let Some(want) = shape {
            if t.shape() != want {
                return Err(BimtError::checkpoint(
                    path,
                    format!("tensor `{name}` has shape {:?}, expected {want:?}", t.shape()),
                ));
            }
        }
        let data = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Ok((t.shape().to_vec(), data))
    };
    let n_layers = (1..).take_while(|k| st.tensor(&format!("fc{k}.weight")).is_ok()).count();
    if n_layers == 0 {
        return Err(BimtError::checkpoint(path, "missing tensor `fc1.weight`"));
    }
    let mut layers = Vec::new();
    for k in 1..=n_layers {
        let name = format!("fc{k}.weight");
        let (shape, weight) = get(&name, None)?;
        if shape.len() != 2 {
            return Err(BimtError::checkpoint(path, format!("tensor `{name}` has shape {shape:?}, expected rank 2")));
        }
        let (n_out, n_in) = (shape[0], shape[1]);
        if let Some(prev) = layers.last().map(|l: &Linear| l.n_out) {
            if n_in != prev {
                return Err(BimtError::checkpoint(
                    path,
                    format!("tensor `{name}` has shape {shape:?}, expected [_, {prev}] to follow fc{}", k - 1),
                ));
            }
        }
        let (_, bias) = get(&format!("fc{k}.bias"), Some(&[n_out]))?;
        layers.push(Linear { n_in, n_out, weight, bias });
    }
    let model = Mlp { out_perm: (0..layers[n_layers - 1].n_out).collect(), layers };
    let sizes = model.sizes();
    let layout = if st.tensor("coords.input").is_ok() {
        let mut out = Vec::new();
        for (l, &n) in sizes.iter().enumerate() {
            let (_, flat) = get(&coord_name(l, n_layers), Some(&[n, 2]))?;
            out.push(flat.chunks_exact(2).map(|c| [c[0], c[1]]).collect());
        }
        Layout { layers: out }
    } else {
        Layout::try_study(&sizes).ok_or_else(|| {
            BimtError::checkpoint(
                path,
                format!("no `coords.*` tensors, and widths {sizes:?} do not fit the study's grid layout"),
            )
        })?
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
        }
    }

    #[test]
    fn save_load_round_trips_with_the_permutation_folded_in() {
        let dir = std::env::temp_dir().join(format!("modcirc-ckpt-{}", std::process::id()));
        let path = dir.join("m.safetensors");
        let layout = Layout::study(&STUDY_SIZES);
        let mut m = Mlp::init(&STUDY_SIZES, 2);
        apply_swap(&mut m, 3, 0, 7);
        apply_swap(&mut m, 1, 4, 50);
        save(&path, &m, &layout, &meta()).unwrap();
        let ck = load(&path).unwrap();
        assert_eq!(ck.meta, Some(meta()));
        assert_eq!(ck.model.out_perm, (0..10).collect::<Vec<_>>());
        let x: Vec<f32> = (0..2 * 784).map(|i| (i % 13) as f32 / 13.0).collect();
        assert_eq!(ck.model.forward(&x, 2), m.forward(&x, 2));
        // Class 7's neuron sits where position 0 of the ring is.
        assert_eq!(ck.layout.layers[3][7], layout.layers[3][0]);
        assert_eq!(ck.layout.layers[1], layout.layers[1]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn rewrite(bytes: &[u8], f: impl Fn(&str, &[usize], &[u8]) -> Option<(Vec<usize>, Vec<u8>)>) -> Vec<u8> {
        let st = SafeTensors::deserialize(bytes).unwrap();
        let owned: Vec<(String, Vec<usize>, Vec<u8>)> =
            st.tensors().into_iter().filter_map(|(n, t)| f(&n, t.shape(), t.data()).map(|(s, d)| (n, s, d))).collect();
        let views: Vec<_> =
            owned.iter().map(|(n, s, d)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), d).unwrap())).collect();
        safetensors::tensor::serialize(views, None).unwrap()
    }

    #[test]
    fn wrong_shape_or_missing_tensor_is_a_clear_error() {
        let layout = Layout::study(&STUDY_SIZES);
        let bytes = to_bytes(&Mlp::init(&STUDY_SIZES, 2), &layout).unwrap();
        let p = Path::new("model.safetensors");
        let missing = rewrite(&bytes, |n, s, d| (n != "fc2.bias").then(|| (s.to_vec(), d.to_vec())));
        let e = from_bytes(&missing, p).unwrap_err().to_string();
        assert!(e.contains("model.safetensors") && e.contains("missing tensor `fc2.bias`"), "{e}");
        let reshaped = rewrite(&bytes, |n, s, d| {
            Some(if n == "fc3.weight" { (vec![100, 10], d.to_vec()) } else { (s.to_vec(), d.to_vec()) })
        });
        let e = from_bytes(&reshaped, p).unwrap_err().to_string();
        assert!(e.contains("`fc3.weight` has shape [100, 10]"), "{e}");
        let short_bias = rewrite(&bytes, |n, s, d| {
            Some(if n == "fc1.bias" { (vec![99], d[..396].to_vec()) } else { (s.to_vec(), d.to_vec()) })
        });
        let e = from_bytes(&short_bias, p).unwrap_err().to_string();
        assert!(e.contains("`fc1.bias` has shape [99], expected [100]"), "{e}");
        let e = from_bytes(b"garbage", p).unwrap_err().to_string();
        assert!(e.contains("not a safetensors file"), "{e}");
    }
}

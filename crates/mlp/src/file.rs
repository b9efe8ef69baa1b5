//! Safetensors in and out.
//!
//! Reading takes the two namings PyTorch users have: `fc{k}.weight` /
//! `fc{k}.bias` (`k` from 1, attributes of a module) and `nn.Sequential`'s
//! `{i}.weight` / `{i}.bias` (`i` the module's index, with activations in
//! between: `0`, `2`, `4`, …), each optionally under a prefix such as
//! `net.`. Tensors may be F32, F16, BF16 or F64; they are converted to f32.
//! The activation comes from the metadata key `activation` or from the
//! caller; a file that does not say, read by a caller that does not say,
//! is an error, never a guess.
//!
//! Writing uses `fc{k}` names in f32, with the output permutation folded
//! in, and records the activation (the one metadata key), so that
//! `nn.Sequential(nn.Linear(...), nn.SiLU(), ...)` loads the weights after
//! renaming `fc{k}` to `{2(k-1)}`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::{Activation, Linear, Mlp, MlpError};

/// The metadata key that names the activation; the only key our files
/// write, because safetensors writes its metadata map in hash order, and one
/// key keeps the bytes the same for the same model.
pub const ACTIVATION_KEY: &str = "activation";
/// The metadata key `format`, and the value our files carried before they
/// recorded the activation: those files were all SiLU.
pub const FORMAT_KEY: &str = "format";
/// See [`FORMAT_KEY`].
pub const FORMAT: &str = "modcirc-mlp";

/// How a file names its layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Naming {
    /// `{prefix}fc1.weight`, `{prefix}fc2.weight`, …
    Fc {
        /// What comes before `fc` (`""` or, for example, `model.`).
        prefix: String,
    },
    /// `{prefix}0.weight`, `{prefix}2.weight`, … (`nn.Sequential`).
    Sequential {
        /// What comes before the index (`""` or, for example, `net.`).
        prefix: String,
        /// The module index of each Linear layer, ascending.
        indices: Vec<usize>,
    },
}

impl Naming {
    fn stem(&self, layer: usize) -> String {
        match self {
            Naming::Fc { prefix } => format!("{prefix}fc{}", layer + 1),
            Naming::Sequential { prefix, indices } => format!("{prefix}{}", indices[layer]),
        }
    }
}

/// A network read from a file, with what the file said about it.
#[derive(Debug, Clone)]
pub struct LoadedMlp {
    /// The network (output permutation: the identity).
    pub model: Mlp,
    /// How the file named its layers.
    pub naming: Naming,
    /// The dtype of the layer tensors as stored (`F32`, `F16`, `BF16`, `F64`).
    pub dtype: String,
    /// The file's string metadata.
    pub metadata: BTreeMap<String, String>,
}

/// A tensor beside the network's (a layout's coordinates, say), written as f32.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraTensor {
    /// Its name; must not clash with `fc{k}.weight` / `fc{k}.bias`.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// Reads a network from the safetensors file at `path`; see [`from_bytes`].
pub fn load(path: &Path, activation: Option<Activation>) -> Result<LoadedMlp, MlpError> {
    from_bytes(&read_checked(path)?, path, activation)
}

/// The most a safetensors header may hold (safetensors' own limit).
pub const MAX_HEADER_BYTES: u64 = 100 << 20;

/// How to make a file modcirc reads, said where another format was given.
const SAVE_AS_SAFETENSORS: &str =
    "save the weights with safetensors (safetensors.torch.save_file(model.state_dict(), path)) or with modcirc's Model.save";

/// What a file whose first bytes are `head` is, where it is a format users
/// mistake for safetensors (what `torch.save`, numpy or Keras write).
fn other_format(head: &[u8; 8]) -> Option<&'static str> {
    if head.starts_with(b"PK\x03\x04") {
        Some("a ZIP archive, as torch.save writes (a PyTorch .pt/.pth checkpoint)")
    } else if head[0] == 0x80 && (2..=5).contains(&head[1]) {
        Some("a Python pickle (a PyTorch checkpoint of the legacy torch.save format, or pickled weights)")
    } else if head.starts_with(b"\x93NUMPY") {
        Some("a NumPy .npy array")
    } else if head.starts_with(b"\x89HDF") {
        Some("an HDF5 file (as Keras saves)")
    } else {
        None
    }
}

/// A safetensors file's bytes, its header checked first: its length (8
/// bytes), then at most [`MAX_HEADER_BYTES`] of JSON, whose tensors must
/// end where the file does. A file that is not a model costs what its
/// header costs, never what its size claims.
pub fn read_checked(path: &Path) -> Result<Vec<u8>, MlpError> {
    use std::io::Read;
    let io = |e| MlpError::io(path, e);
    let err = |m: String| MlpError::file(path, format!("not a safetensors file: {m}"));
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut n8 = [0u8; 8];
    f.read_exact(&mut n8).map_err(|_| err(format!("{len} bytes, shorter than the 8 that give the header's length")))?;
    if let Some(what) = other_format(&n8) {
        return Err(err(format!("it is {what}: {SAVE_AS_SAFETENSORS}")));
    }
    let n = u64::from_le_bytes(n8);
    if n > MAX_HEADER_BYTES || n > len - 8 {
        return Err(err(format!("a header of {n} bytes in a file of {len} (at most {MAX_HEADER_BYTES})")));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(io)?;
    let json: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| err(format!("invalid JSON in header: {e}")))?;
    let end = json
        .as_object()
        .ok_or_else(|| err("the header is not a JSON object".into()))?
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    if 8 + n + end != len {
        return Err(err(format!("the header places tensors up to byte {}, the file holds {len}", 8 + n + end)));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    bytes.extend_from_slice(&n8);
    bytes.extend_from_slice(&header);
    f.read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// Parses safetensors bytes (`path` names the file in errors). `activation`
/// is the caller's word; it must agree with the file's when both say.
pub fn from_bytes(bytes: &[u8], path: &Path, activation: Option<Activation>) -> Result<LoadedMlp, MlpError> {
    let err = |m: String| MlpError::file(path, m);
    if let Some(what) = bytes.first_chunk::<8>().and_then(other_format) {
        return Err(err(format!("not a safetensors file: it is {what}: {SAVE_AS_SAFETENSORS}")));
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| err(format!("not a safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| err(format!("not a safetensors file: {e}")))?;
    let metadata: BTreeMap<String, String> = header.metadata().clone().unwrap_or_default().into_iter().collect();
    let activation = resolve_activation(&metadata, activation, path)?;
    let (naming, n_layers) = find_naming(&st.names(), path)?;
    let mut dtype = None;
    let mut layers: Vec<Linear> = Vec::with_capacity(n_layers);
    for l in 0..n_layers {
        let stem = naming.stem(l);
        let (wname, bname) = (format!("{stem}.weight"), format!("{stem}.bias"));
        let w = st.tensor(&wname).map_err(|_| err(format!("missing tensor `{wname}`")))?;
        let b = st.tensor(&bname).map_err(|_| err(format!("missing tensor `{bname}`")))?;
        let &[n_out, n_in] = w.shape() else {
            return Err(err(format!(
                "tensor `{wname}` has shape {:?}: a Linear weight is [out, in]; modcirc reads stacks of Linear layers only",
                w.shape()
            )));
        };
        if n_out == 0 || n_in == 0 {
            return Err(err(format!("tensor `{wname}` has shape {:?}: a width of 0", w.shape())));
        }
        if let Some(prev) = layers.last() {
            if prev.n_out != n_in {
                return Err(err(format!(
                    "tensor `{wname}` has shape {:?}, but `{}.weight` gives {} outputs: the widths do not chain",
                    w.shape(),
                    naming.stem(l - 1),
                    prev.n_out
                )));
            }
        }
        if b.shape() != [n_out] {
            return Err(err(format!("tensor `{bname}` has shape {:?}, expected [{n_out}]", b.shape())));
        }
        for t in [&w, &b] {
            if *dtype.get_or_insert(t.dtype()) != t.dtype() {
                return Err(err(format!("tensors are of mixed dtypes ({:?} and {:?})", dtype.unwrap(), t.dtype())));
            }
        }
        let weight = to_f32(&w, &wname, path)?;
        let bias = to_f32(&b, &bname, path)?;
        layers.push(Linear { n_in, n_out, weight, bias });
    }
    let model = Mlp::new(layers, activation).map_err(|e| err(e.to_string()))?;
    Ok(LoadedMlp { model, naming, dtype: format!("{:?}", dtype.expect("at least one layer")), metadata })
}

fn resolve_activation(
    metadata: &BTreeMap<String, String>,
    caller: Option<Activation>,
    path: &Path,
) -> Result<Activation, MlpError> {
    let stated = match metadata.get(ACTIVATION_KEY) {
        Some(name) => Some(
            name.parse::<Activation>()
                .map_err(|e| MlpError::file(path, format!("metadata `{ACTIVATION_KEY}`: {e}")))?,
        ),
        // Our own files from before the key existed: the study's SiLU.
        None if metadata.get(FORMAT_KEY).map(String::as_str) == Some(FORMAT) => Some(Activation::Silu),
        None => None,
    };
    match (stated, caller) {
        (Some(s), Some(c)) if s != c => {
            Err(MlpError::file(path, format!("the file says its activation is {s}, but {c} was asked for")))
        }
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => Err(MlpError::NoActivation { path: path.into() }),
    }
}

/// Splits a `.weight`/`.bias` name into its layer group: `Fc(prefix, k)` or
/// `Seq(prefix, i)`.
fn classify(name: &str) -> Option<(bool, String, usize)> {
    let stem = name.strip_suffix(".weight").or_else(|| name.strip_suffix(".bias"))?;
    let split = stem.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (head, digits) = stem.split_at(split);
    let index: usize = digits.parse().ok()?;
    if let Some(prefix) = head.strip_suffix("fc") {
        if prefix.is_empty() || prefix.ends_with('.') {
            return Some((true, prefix.to_string(), index));
        }
    }
    (head.is_empty() || head.ends_with('.')).then(|| (false, head.to_string(), index))
}

/// The file's one layer naming and its number of layers; `fc` layers must
/// be numbered 1, 2, … without a gap.
fn find_naming(names: &[&str], path: &Path) -> Result<(Naming, usize), MlpError> {
    let mut groups: BTreeMap<(bool, String), Vec<usize>> = BTreeMap::new();
    for name in names {
        if let Some((fc, prefix, index)) = classify(name) {
            groups.entry((fc, prefix)).or_default().push(index);
        }
    }
    let describe = |(fc, prefix): &(bool, String)| {
        if *fc {
            format!("`{prefix}fc{{k}}.*`")
        } else {
            format!("`{prefix}{{i}}.*`")
        }
    };
    match groups.len() {
        0 => Err(MlpError::file(
            path,
            format!(
                "no Linear layers: expected `fc1.weight`, `fc2.weight`, … or nn.Sequential's `0.weight`, `2.weight`, … \
                 (optionally under a prefix such as `net.`); the file has {}",
                preview(names)
            ),
        )),
        1 => {
            let ((fc, prefix), mut indices) = groups.into_iter().next().expect("one group");
            indices.sort_unstable();
            indices.dedup();
            let n = indices.len();
            if !fc {
                return Ok((Naming::Sequential { prefix, indices }, n));
            }
            if let Some(gap) = (1..=n).find(|k| indices[k - 1] != *k) {
                let numbered: Vec<String> = indices.iter().map(|k| format!("fc{k}")).collect();
                return Err(MlpError::file(
                    path,
                    format!(
                        "layers are numbered {} (no `{prefix}fc{gap}`): a gap in the numbering",
                        numbered.join(", ")
                    ),
                ));
            }
            Ok((Naming::Fc { prefix }, n))
        }
        _ => Err(MlpError::file(
            path,
            format!(
                "layer tensors under more than one naming ({}): cannot tell which are the network",
                groups.keys().map(describe).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

fn preview(names: &[&str]) -> String {
    let mut sorted = names.to_vec();
    sorted.sort_unstable();
    let shown: Vec<String> = sorted.iter().take(6).map(|n| format!("`{n}`")).collect();
    match sorted.len() {
        0 => "no tensors".into(),
        n if n > 6 => format!("{} and {} more", shown.join(", "), n - 6),
        _ => shown.join(", "),
    }
}

/// The tensor's values as f32, every one finite.
fn to_f32(t: &TensorView<'_>, name: &str, path: &Path) -> Result<Vec<f32>, MlpError> {
    let d = t.data();
    let values: Vec<f32> = match t.dtype() {
        Dtype::F32 => d.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => d.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::BF16 => d.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::F64 => d
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        other => {
            return Err(MlpError::file(path, format!("tensor `{name}` is {other:?}; expected F32, F16, BF16 or F64")))
        }
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        let at = match t.shape() {
            [_, cols] => format!("[{}, {}]", i / cols, i % cols),
            _ => format!("[{i}]"),
        };
        return Err(MlpError::file(
            path,
            format!("tensor `{name}` holds {} at index {at} (after conversion to f32)", values[i]),
        ));
    }
    Ok(values)
}

/// The safetensors bytes of `model` (output permutation folded in, `fc{k}`
/// names, f32) and `extra` tensors, with the activation in the metadata.
/// The same model gives the same bytes.
pub fn to_bytes(model: &Mlp, extra: &[ExtraTensor]) -> Result<Vec<u8>, MlpError> {
    let folded = model.with_identity_output();
    let le = |xs: &[f32]| xs.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (k, l) in folded.layers.iter().enumerate() {
        owned.push((format!("fc{}.weight", k + 1), vec![l.n_out, l.n_in], le(&l.weight)));
        owned.push((format!("fc{}.bias", k + 1), vec![l.n_out], le(&l.bias)));
    }
    for t in extra {
        if classify(&t.name).is_some() {
            return Err(MlpError::Shape(format!("extra tensor `{}` would read as a layer", t.name)));
        }
        if t.shape.iter().product::<usize>() != t.data.len() {
            return Err(MlpError::Shape(format!(
                "extra tensor `{}` has {} values for shape {:?}",
                t.name,
                t.data.len(),
                t.shape
            )));
        }
        owned.push((t.name.clone(), t.shape.clone(), le(&t.data)));
    }
    let views = owned
        .iter()
        .map(|(name, shape, data)| Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), data)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| MlpError::Shape(format!("safetensors: {e}")))?;
    let meta = HashMap::from([(ACTIVATION_KEY.to_string(), model.activation.to_string())]);
    safetensors::tensor::serialize(views, Some(meta)).map_err(|e| MlpError::Shape(format!("safetensors: {e}")))
}

/// Saves `model` alone to `path` (atomically); see [`to_bytes`].
pub fn save(path: &Path, model: &Mlp) -> Result<(), MlpError> {
    Ok(modcirc_store::atomic::write_atomic(path, &to_bytes(model, &[])?)?)
}

//! `modcirc._native`: the Rust core of the Python package.
//!
//! The public API is the Python package around it (`python/modcirc`), which
//! turns arrays into bytes and JSON into numpy arrays; everything here takes
//! and gives plain bytes (little-endian f32 / u8), strings and numbers, so
//! that the extension needs neither numpy's nor torch's C API and one abi3
//! wheel serves every CPython from 3.9 on. Each computation is the library
//! call the command line makes, so the numbers are the CLI's.
//!
//! Long calls run with the GIL released, taking it back at their progress
//! points (at most every 50 ms) to report progress and check for signals:
//! Ctrl-C stops the work there and raises `KeyboardInterrupt`.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use modcirc_acdc::{
    edge_acdc_with_progress, edge_attribution, exact_node_effects, faithfulness, faithfulness_under, node_attribution,
    Ablation, AcdcConfig, AcdcMetric, Circuit, PatchingSweep, TaskImages, DEFAULT_ALTERNATIVES, DEFAULT_BOOTSTRAPS,
    DEFAULT_EPS, DEFAULT_FAITHFUL, DEFAULT_K, DEFAULT_OPTIMAL_PAIRS, DEFAULT_RANDOM_CIRCUITS, DEFAULT_SAMPLE,
    DEFAULT_TAU,
};
use modcirc_bimt::checkpoint::{self, Checkpoint};
use modcirc_bimt::{Regime, TrainConfig};
use modcirc_dataset::{ChecksumPolicy, FileChecksum, ImageSet, Mnist, Pair, PairSpec, PairedDataset, Task};
use modcirc_mlp::{Activation, DeviceSpec};
use modcirc_present::export::{circuit_graph, read_source, to_dot};
use modcirc_present::html::{model_page_data, report_html, PageInput};
use modcirc_store::listing::sha256_hex;
use modcirc_study::beyond::{BeyondSettings, ACDC_PAIRS};
use modcirc_study::compare::{comparison, CompareInput, CompareSettings};
use modcirc_study::controls::{controls, ControlSettings};
use modcirc_study::discovery::{discover_pairs, DiscoverOutput, ModelSource, Split};
use modcirc_study::options::{DiscoveryOptions, MinEffect, OptionError, Select};
use modcirc_study::structure::{graph_modularity, weight_graph};
use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt, PyPermissionError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// A library error as the Python exception a user expects: a missing file
/// is `FileNotFoundError`, a refused permission `PermissionError`, anything
/// else `ValueError`; the message is the whole chain of causes.
fn py_err(e: &(dyn std::error::Error + 'static)) -> PyErr {
    let mut msg = e.to_string();
    let mut kind = None;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            kind.get_or_insert(io.kind());
        }
        if let Some(modcirc_dataset::DatasetError::MissingFile { .. }) = c.downcast_ref() {
            kind.get_or_insert(std::io::ErrorKind::NotFound);
        }
        if let Some(next) = c.source() {
            let text = next.to_string();
            if !msg.contains(&text) {
                msg = format!("{msg}: {text}");
            }
        }
        cause = c.source();
    }
    match kind {
        Some(std::io::ErrorKind::NotFound) => PyFileNotFoundError::new_err(msg),
        Some(std::io::ErrorKind::PermissionDenied) => PyPermissionError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

fn value_err(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// A discovery option's error, naming the keyword.
fn option_err(e: OptionError) -> PyErr {
    match e {
        OptionError::Conflict { option, rule, why } => {
            value_err(format!("{option}: applies to select=\"{rule}\" only{why}"))
        }
        OptionError::Memory { gib, max, .. } => value_err(format!(
            "model: a discovery on it would hold up to {gib:.1} GiB, above max_memory_gib = {max} (raise it to run anyway)"
        )),
        OptionError::Model { source, .. } => py_err(&source),
        bounds @ OptionError::Bounds { .. } => value_err(bounds.to_string()),
    }
}

/// Raised inside the work (by unwinding, which skips the panic hook) when
/// the caller was interrupted; caught around the work.
struct Interrupted;

/// How often, at most, a long call takes the GIL back to check for signals
/// and report progress: often enough for Ctrl-C to feel immediate, rarely
/// enough that a training's thousands of steps do not wait on other
/// Python threads for the GIL.
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// Runs `work` on this thread with the GIL released. `work` gets a progress
/// function to call with how many of its steps are done; at most every
/// [`CHECK_EVERY`] (and at the last step) it takes the GIL back, passes the
/// count to `progress` and checks for signals. Ctrl-C (or a `progress` that
/// raises) stops the work there, by an unwinding caught here, and the
/// exception is raised.
fn interruptible<R: Send>(
    py: Python<'_>,
    progress: Option<&Bound<'_, PyAny>>,
    total: usize,
    work: impl FnOnce(&mut dyn FnMut(usize)) -> R + Send,
) -> PyResult<R> {
    let progress = progress.map(|p| p.clone().unbind());
    let mut failure: Option<PyErr> = None;
    let outcome = {
        let failure = &mut failure;
        py.detach(move || {
            panic::catch_unwind(AssertUnwindSafe(move || {
                let mut last = Instant::now();
                let mut report = |done: usize| {
                    if done < total && last.elapsed() < CHECK_EVERY {
                        return;
                    }
                    last = Instant::now();
                    let stop = Python::attach(|py| {
                        let called = progress.as_ref().map_or(Ok(()), |p| p.call1(py, (done,)).map(|_| ()));
                        called.and_then(|()| py.check_signals()).err()
                    });
                    if let Some(e) = stop {
                        *failure = Some(e);
                        panic::resume_unwind(Box::new(Interrupted));
                    }
                };
                work(&mut report)
            }))
        })
    };
    match outcome {
        Ok(r) => Ok(r),
        Err(payload) if payload.is::<Interrupted>() => {
            Err(failure.unwrap_or_else(|| PyKeyboardInterrupt::new_err("interrupted")))
        }
        Err(payload) => panic::resume_unwind(payload),
    }
}

fn activation(name: Option<&str>) -> PyResult<Option<Activation>> {
    name.map(|a| a.parse::<Activation>().map_err(|e| value_err(format!("activation: {e}")))).transpose()
}

fn f32_bytes<'py>(py: Python<'py>, xs: &[f32]) -> Bound<'py, PyBytes> {
    let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
    PyBytes::new(py, &bytes)
}

fn f32_from(bytes: &[u8], what: &str) -> PyResult<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(value_err(format!("{what}: {} bytes is not a whole number of float32 values", bytes.len())));
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn to_json<T: serde::Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| value_err(format!("serialising the result: {e}")))
}

/// A network: its weights, activation and layout, and the file (or state
/// dict) it came from.
#[pyclass(module = "modcirc._native", name = "Model", frozen)]
struct PyModel {
    ck: Arc<Checkpoint>,
    /// The file as given, or a description of where the weights came from.
    origin: String,
    /// SHA-256 of its safetensors bytes (the file's, or the ones the state dict made).
    sha256: String,
}

impl PyModel {
    fn from_safetensors_bytes(bytes: &[u8], origin: &str, activation: Option<Activation>) -> PyResult<PyModel> {
        let (model, layout) = checkpoint::from_bytes(bytes, Path::new(origin), activation).map_err(|e| py_err(&e))?;
        let ck = Checkpoint { model, layout, meta: None };
        Ok(PyModel { ck: Arc::new(ck), origin: origin.into(), sha256: sha256_hex(bytes) })
    }
}

#[pymethods]
impl PyModel {
    /// Reads a safetensors checkpoint (`fc{k}.*` or `nn.Sequential`'s
    /// `{i}.*` names, any prefix; F32, F16, BF16 or F64), with its sidecar
    /// where there is one.
    #[staticmethod]
    #[pyo3(signature = (path, activation=None))]
    fn load(py: Python<'_>, path: PathBuf, activation: Option<&str>) -> PyResult<PyModel> {
        let act = self::activation(activation)?;
        let read = py.detach(|| -> Result<(Checkpoint, String), modcirc_bimt::BimtError> {
            let bytes = modcirc_mlp::file::read_checked(&path)?;
            let ck = checkpoint::load_bytes(&bytes, &path, act)?;
            Ok((ck, sha256_hex(&bytes)))
        });
        let (ck, sha256) = read.map_err(|e| py_err(&e))?;
        Ok(PyModel { ck: Arc::new(ck), origin: path.display().to_string(), sha256 })
    }

    /// A network from safetensors bytes (what `from_state_dict` builds),
    /// by the same naming rules as a file; `origin` names it in errors and outputs.
    #[staticmethod]
    #[pyo3(signature = (data, origin, activation=None))]
    fn from_safetensors(data: &[u8], origin: &str, activation: Option<&str>) -> PyResult<PyModel> {
        PyModel::from_safetensors_bytes(data, origin, self::activation(activation)?)
    }

    /// Neurons per layer, input first.
    #[getter]
    fn sizes(&self) -> Vec<usize> {
        self.ck.model.sizes()
    }

    /// The hidden layers' activation.
    #[getter]
    fn activation(&self) -> String {
        self.ck.model.activation.to_string()
    }

    /// The training regime its sidecar records, if any.
    #[getter]
    fn regime(&self) -> Option<String> {
        self.ck.meta.as_ref().map(|m| m.config.regime.to_string())
    }

    /// The file, or where the weights came from.
    #[getter]
    fn origin(&self) -> String {
        self.origin.clone()
    }

    /// SHA-256 of its safetensors bytes.
    #[getter]
    fn sha256(&self) -> String {
        self.sha256.clone()
    }

    /// The sidecar's record (training configuration, accuracy, timings) as JSON, if any.
    fn meta_json(&self) -> PyResult<Option<String>> {
        self.ck.meta.as_ref().map(to_json).transpose()
    }

    /// Each layer's weight (`[n_out, n_in]`, row-major) and bias as float32 bytes.
    fn layers<'py>(&self, py: Python<'py>) -> Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        self.ck.model.layers.iter().map(|l| (f32_bytes(py, &l.weight), f32_bytes(py, &l.bias))).collect()
    }

    /// The logits of `n` inputs (float32 bytes, `[n, n_inputs]`), as float32 bytes.
    fn forward<'py>(&self, py: Python<'py>, x: &[u8], n: usize) -> PyResult<Bound<'py, PyBytes>> {
        let x = f32_from(x, "inputs")?;
        let inputs = self.ck.model.n_inputs();
        if x.len() != n * inputs {
            return Err(value_err(format!("inputs: {} values are not {n} rows of the model's {inputs}", x.len())));
        }
        let model = &self.ck.model;
        let y = py.detach(|| model.forward(&x, n));
        Ok(f32_bytes(py, &y))
    }

    /// Writes the checkpoint (weights and layout) to `path` through a
    /// temporary file, and its sidecar beside it where it has one.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let same = |a: &Path, b: &Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y);
        let read = Path::new(&self.origin);
        if same(&path, read) || same(&path, &checkpoint::sidecar_path(read)) {
            return Err(value_err(format!(
                "path: {} is the file this model was read from (or its sidecar); save it elsewhere",
                path.display()
            )));
        }
        let ck = &self.ck;
        py.detach(|| match &ck.meta {
            Some(meta) => checkpoint::save(&path, &ck.model, &ck.layout, meta).map(|_| ()),
            None => checkpoint::to_bytes(&ck.model, &ck.layout).and_then(|b| checkpoint::write_atomic(&path, &b)),
        })
        .map_err(|e| py_err(&e))
    }
}

/// Images and labels: the MNIST-format IDX files of a directory, or arrays.
#[pyclass(module = "modcirc._native", name = "Data", frozen)]
struct PyData {
    mnist: Arc<Mnist>,
}

fn image_set(images: &[u8], labels: &[u8], rows: usize, cols: usize, what: &str) -> PyResult<ImageSet> {
    let images = f32_from(images, what)?;
    let pixels = rows.checked_mul(cols).filter(|&p| p > 0).ok_or_else(|| value_err(format!("{what}: no pixels")))?;
    if images.len() != labels.len() * pixels {
        return Err(value_err(format!(
            "{what}: {} pixel values are not {} images of {rows}x{cols}",
            images.len(),
            labels.len()
        )));
    }
    if let Some(i) = images.iter().position(|v| !v.is_finite()) {
        return Err(value_err(format!("{what}: image {} has a non-finite pixel", i / pixels)));
    }
    Ok(ImageSet { images, labels: labels.to_vec(), rows, cols })
}

#[pymethods]
impl PyData {
    /// Reads `train-*` and `t10k-*` IDX files (raw or gzip'd) from `dir`,
    /// checking them against its `SHA256SUMS` where there is one (unless `verify` is false).
    #[staticmethod]
    #[pyo3(signature = (dir, verify=true))]
    fn load(py: Python<'_>, dir: PathBuf, verify: bool) -> PyResult<PyData> {
        let policy = if verify { ChecksumPolicy::Auto } else { ChecksumPolicy::Skip };
        let mnist = py.detach(|| Mnist::load(&dir, policy)).map_err(|e| py_err(&e))?;
        Ok(PyData { mnist: Arc::new(mnist) })
    }

    /// Data from arrays: `test` and optionally `train`, each
    /// `(images as float32 bytes, labels as uint8 bytes, rows, cols)`;
    /// `name` stands for the directory in outputs.
    #[staticmethod]
    #[pyo3(signature = (test, train=None, name="arrays"))]
    fn from_arrays(
        test: (Vec<u8>, Vec<u8>, usize, usize),
        train: Option<(Vec<u8>, Vec<u8>, usize, usize)>,
        name: &str,
    ) -> PyResult<PyData> {
        let mut checksums = Vec::new();
        let mut set = |(images, labels, rows, cols): (Vec<u8>, Vec<u8>, usize, usize), what: &str| {
            for (file, bytes) in [(format!("{what}-images"), &images), (format!("{what}-labels"), &labels)] {
                checksums.push(FileChecksum { file, sha256: sha256_hex(bytes), verified: false });
            }
            image_set(&images, &labels, rows, cols, &format!("{what} images"))
        };
        let test = set(test, "test")?;
        let train = match train {
            Some(t) => set(t, "train")?,
            None => ImageSet { images: Vec::new(), labels: Vec::new(), rows: test.rows, cols: test.cols },
        };
        Ok(PyData { mnist: Arc::new(Mnist { train, test, checksums, dir: PathBuf::from(name) }) })
    }

    /// Images in the training and the test split.
    #[getter]
    fn lengths(&self) -> (usize, usize) {
        (self.mnist.train.len(), self.mnist.test.len())
    }

    /// Where the data came from.
    #[getter]
    fn dir(&self) -> String {
        self.mnist.dir.display().to_string()
    }

    /// Each file's SHA-256, as JSON.
    fn checksums_json(&self) -> PyResult<String> {
        to_json(&self.mnist.checksums)
    }

    /// One split's `(images as float32 bytes, labels as uint8 bytes, rows, cols)`.
    fn split<'py>(
        &self,
        py: Python<'py>,
        split: &str,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, usize, usize)> {
        let s = parse_split(split)?.of(&self.mnist);
        Ok((f32_bytes(py, &s.images), PyBytes::new(py, &s.labels), s.rows, s.cols))
    }
}

fn parse_split(split: &str) -> PyResult<Split> {
    split.parse::<Split>().map_err(|e| value_err(format!("split: {e}")))
}

/// The task and its pairs: a spec (`circle`, `line`, `8:3,6:5`) drawn as the
/// CLI draws it, or explicit `(clean, corrupted)` index pairs into the split.
fn task_pairs(
    split: &ImageSet,
    task: Option<&str>,
    pairs: Option<Vec<(usize, usize)>>,
    seed: u64,
) -> PyResult<(Task, Vec<Pair>)> {
    match (task, pairs) {
        (Some(spec), None) => {
            let task = Task::parse(spec).map_err(|e| value_err(format!("task: {e}")))?;
            let drawn = PairedDataset::new(split, &task, seed).map_err(|e| value_err(format!("task: {e}")))?;
            Ok((task, drawn.pairs))
        }
        (None, Some(indices)) => {
            if indices.is_empty() {
                return Err(value_err("task: no pairs"));
            }
            let mut specs: Vec<PairSpec> = Vec::new();
            let mut pairs = Vec::with_capacity(indices.len());
            for (clean, corrupted) in indices {
                if clean >= split.len() || corrupted >= split.len() {
                    return Err(value_err(format!(
                        "task: pair ({clean}, {corrupted}) indexes past the split's {} images",
                        split.len()
                    )));
                }
                let (a, b) = (split.labels[clean], split.labels[corrupted]);
                // What the task syntax refuses (`3:3`), refused here too: a
                // pair's images show two digits, so two images.
                if a == b {
                    return Err(value_err(format!(
                        "task: pair ({clean}, {corrupted}) is of one digit ({a}); a pair's images show two digits"
                    )));
                }
                let spec = PairSpec { clean: a, corrupted: b };
                if !specs.contains(&spec) {
                    specs.push(spec);
                }
                pairs.push(Pair { clean, corrupted, clean_digit: a, corrupted_digit: b });
            }
            let name = specs.iter().map(|p| format!("{}:{}", p.clean, p.corrupted)).collect::<Vec<_>>().join(",");
            Ok((Task { name, pairs: specs }, pairs))
        }
        _ => Err(value_err("task: give a task spec or explicit pairs, not both")),
    }
}

/// The split `split` of `data`, refused where `model` cannot take its images.
fn fitted<'a>(model: &PyModel, data: &'a PyData, split: Split) -> PyResult<&'a ImageSet> {
    let set = split.of(&data.mnist);
    set.check_fits(&split.to_string(), model.ck.model.n_inputs(), model.ck.model.n_classes())
        .map_err(|e| py_err(&e))?;
    Ok(set)
}

/// The images of a task's pairs (the first `max_pairs` of them, where
/// given) on a split, checked against the model.
fn task_images(
    model: &PyModel,
    data: &PyData,
    split: &str,
    task: Option<&str>,
    pairs: Option<Vec<(usize, usize)>>,
    seed: u64,
    max_pairs: Option<usize>,
) -> PyResult<TaskImages> {
    let set = fitted(model, data, parse_split(split)?)?;
    let (_, mut pairs) = task_pairs(set, task, pairs, seed)?;
    pairs.truncate(max_pairs.unwrap_or(usize::MAX));
    Ok(TaskImages::from_pairs(set, &pairs))
}

/// One discovery: its output as the CLI writes it, with the model and
/// data it ran on (for faithfulness, export and the model page).
#[pyclass(module = "modcirc._native", name = "Discovery", frozen)]
struct PyDiscovery {
    out: DiscoverOutput,
    ck: Arc<Checkpoint>,
    mnist: Arc<Mnist>,
}

#[pymethods]
impl PyDiscovery {
    /// The output as JSON: the file `cargo xtask discover` writes.
    fn json(&self) -> PyResult<String> {
        to_json(&self.out)
    }

    /// Each hidden neuron's effect (baseline minus score; 0 for a dead neuron).
    fn effects(&self) -> Vec<Vec<f64>> {
        let s = &self.out.report.scores;
        (0..s.layers.len()).map(|h| (0..s.layers[h].len()).map(|i| s.effect(h, i)).collect()).collect()
    }

    /// The circuit's faithfulness on all pairs: in the study's form (removed
    /// edges carrying corrupted values) for `None`, else under `ablation`
    /// (zero, mean, resample or optimal), the empty circuit under it as the zero.
    #[pyo3(signature = (ablation=None))]
    fn faithfulness(&self, py: Python<'_>, ablation: Option<&str>) -> PyResult<Option<f64>> {
        let ablation =
            ablation.map(|a| a.parse::<Ablation>().map_err(|e| value_err(format!("ablation: {e}")))).transpose()?;
        let model = &self.ck.model;
        let split = self.out.inputs.flags.split.of(&self.mnist);
        let images = TaskImages::from_pairs(split, &self.out.pairs);
        let nodes = self.out.report.selection.nodes.clone();
        let eps = self.out.inputs.flags.config.eps;
        let (mnist, task, seed) = (&self.mnist, &self.out.inputs.task, self.out.inputs.flags.config.seed);
        let optimal = &self.out.optimal;
        let f = py
            .detach(|| -> Result<f64, modcirc_study::StudyError> {
                let mut sweep = PatchingSweep::new(model, &images)?;
                if ablation == Some(Ablation::Optimal) {
                    // The discovery's per-neuron fits where saved, or fitted as it would.
                    let c = modcirc_study::discovery::optimal_ablation(
                        mnist,
                        model,
                        task,
                        seed,
                        modcirc_acdc::DEFAULT_OPTIMAL_PAIRS,
                        optimal.as_ref(),
                    )?;
                    sweep = sweep.with_optimal(c)?;
                }
                let circuit = Circuit::new(model, nodes, eps)?;
                Ok(match ablation {
                    None => faithfulness(&sweep, &circuit)?,
                    Some(a) => faithfulness_under(&sweep, &circuit, a)?,
                })
            })
            .map_err(|e| py_err(&e))?;
        Ok(f.is_finite().then_some(f))
    }

    /// STUDY §12 for `method` (its name; default options) on the discovery's
    /// pairs, as JSON: its circuit of as many edges as the discovered one,
    /// found again on each of the discovery's first `resamples` bootstrap
    /// resamples (the study's count for the method where `None`), with the
    /// mean and least pairwise Jaccard overlap of their neurons; and how its
    /// node scores on all pairs agree with exact patching (ρ, top-K overlap).
    #[pyo3(signature = (method, resamples=None))]
    fn stability(&self, py: Python<'_>, method: &str, resamples: Option<usize>) -> PyResult<String> {
        let method: modcirc_acdc::Method = method.parse().map_err(|e| value_err(format!("method: {e}")))?;
        if !method.ranks_edges() || matches!(method, modcirc_acdc::Method::Acdc { .. }) {
            return Err(value_err(format!("method: {method} has no ranking of edges to cut at a size")));
        }
        let defaults = modcirc_study::stability::StabilitySettings::default();
        let n = resamples.unwrap_or(defaults.of(&method));
        let settings = modcirc_study::stability::StabilitySettings { resamples: n, trained_resamples: n };
        settings.check().map_err(|e| value_err(format!("resamples: {e}")))?;
        let model = &self.ck.model;
        let images = TaskImages::from_pairs(self.out.inputs.flags.split.of(&self.mnist), &self.out.pairs);
        let (nodes, eps, config) =
            (self.out.report.selection.nodes.clone(), self.out.inputs.flags.config.eps, &self.out.inputs.flags.config);
        let out = py
            .detach(|| -> Result<serde_json::Value, modcirc_study::StudyError> {
                let sweep = PatchingSweep::new(model, &images)?;
                let size = Circuit::new(model, nodes, eps)?.n_edges();
                let bootstrap = modcirc_dataset::Bootstrap::new(images.n, config.sample, config.seed)?;
                let st = modcirc_study::stability::stabilities(
                    &sweep,
                    std::slice::from_ref(&method),
                    size,
                    &bootstrap,
                    &settings,
                )?;
                let exact = sweep.scores();
                let scored = method.scores(&sweep)?;
                let agreement =
                    modcirc_study::judge::agreement(&scored.nodes, &exact, modcirc_study::judge::agreement_k(&exact));
                Ok(serde_json::json!({"method": method, "edges": size, "stability": st[0], "agreement": agreement}))
            })
            .map_err(|e| py_err(&e))?;
        Ok(out.to_string())
    }

    /// The circuit as `cargo xtask export` writes it: `json` (the circuit
    /// graph, docs/circuit-graph.md) or `dot` (Graphviz).
    #[pyo3(signature = (format="json"))]
    fn export(&self, py: Python<'_>, format: &str) -> PyResult<String> {
        if !matches!(format, "json" | "dot") {
            return Err(value_err(format!("format: {format:?} is not json or dot")));
        }
        let bytes = serde_json::to_vec(&self.out).map_err(|e| value_err(e.to_string()))?;
        let (ck, mnist) = (&self.ck, &self.mnist);
        let graph = py
            .detach(|| read_source(&bytes, None).and_then(|src| circuit_graph(mnist, ck, &src)))
            .map_err(|e| py_err(&e))?;
        if format == "dot" {
            Ok(to_dot(&graph))
        } else {
            serde_json::to_string_pretty(&graph).map_err(|e| value_err(e.to_string()))
        }
    }

    /// The model's page (`discover --html`): the network, the circuit, the
    /// scores, the curves and the rules, as one self-contained HTML file.
    /// STUDY §10 on the circuit (the CLI's `controls`): random circuits of
    /// its size, disjoint alternatives, the any-digit control and the other
    /// ablations, as JSON; `None` is the library's default.
    #[pyo3(signature = (random=None, alternatives=None, faithful=None, seed=0, optimal_pairs=None))]
    fn controls(
        &self,
        py: Python<'_>,
        random: Option<usize>,
        alternatives: Option<usize>,
        faithful: Option<f64>,
        seed: u64,
        optimal_pairs: Option<usize>,
    ) -> PyResult<String> {
        let settings = ControlSettings {
            random: random.unwrap_or(DEFAULT_RANDOM_CIRCUITS),
            alternatives: alternatives.unwrap_or(DEFAULT_ALTERNATIVES),
            faithful: faithful.unwrap_or(DEFAULT_FAITHFUL),
            seed,
            optimal_pairs: optimal_pairs.unwrap_or(DEFAULT_OPTIMAL_PAIRS),
        };
        let meta = self.ck.meta.as_ref().map(|m| (m.config.regime, m.config.seed));
        let who = (meta.map(|m| m.0), meta.map(|m| m.1));
        let r =
            py.detach(|| controls(&self.mnist, &self.ck.model, who, &self.out, &settings)).map_err(|e| py_err(&e))?;
        to_json(&r)
    }

    #[pyo3(signature = (label="model"))]
    fn html(&self, label: &str) -> PyResult<String> {
        let page = PageInput {
            id: "model".into(),
            label: label.into(),
            seed: self.ck.meta.as_ref().map(|m| m.config.seed),
            checkpoint: &self.ck,
            discoveries: vec![&self.out],
            beyond: Vec::new(),
            extra: Vec::new(),
        };
        model_page_data(&page).and_then(|d| report_html(&d)).map_err(|e| py_err(&e))
    }
}

/// A discovery's options (`modcirc_study::options::DiscoveryOptions`, the
/// one path every front end takes to a discovery's settings), checked for
/// conflicts and bounds when made; `None` is the library's default.
#[pyclass(module = "modcirc._native", name = "Options", frozen)]
struct PyOptions(DiscoveryOptions);

#[pymethods]
impl PyOptions {
    #[new]
    #[pyo3(signature = (*, k=None, select="topk", min_effect=None, min_share=None, live_only=false, eps=None,
        ablation="zero", bootstraps=None, sample=None, split="test", seed=0, target_faithfulness=None,
        max_memory_gib=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        k: Option<Vec<usize>>,
        select: &str,
        min_effect: Option<f64>,
        min_share: Option<f64>,
        live_only: bool,
        eps: Option<f64>,
        ablation: &str,
        bootstraps: Option<usize>,
        sample: Option<usize>,
        split: &str,
        seed: u64,
        target_faithfulness: Option<f64>,
        max_memory_gib: Option<u64>,
    ) -> PyResult<PyOptions> {
        let min_effect = match (min_effect, min_share) {
            (Some(_), Some(_)) => return Err(value_err("min_effect: give it in logits or as a share, not both")),
            (_, Some(share)) => Some(MinEffect::Share(share)),
            (effect, None) => effect.map(MinEffect::Logits),
        };
        let options = DiscoveryOptions {
            k,
            select: match select {
                "topk" => Select::TopK,
                "threshold" => Select::Threshold,
                other => return Err(value_err(format!("select: {other:?} is not topk or threshold"))),
            },
            min_effect,
            live_only,
            target_faithfulness,
            eps,
            ablation: ablation.parse::<Ablation>().map_err(|e| value_err(format!("ablation: {e}")))?,
            bootstraps,
            sample,
            split: parse_split(split)?,
            seed,
            max_memory_gib,
            device: DeviceSpec::Cpu,
        };
        options.settings().map_err(option_err)?;
        Ok(PyOptions(options))
    }
}

/// Discovery by activation patching (STUDY §4-§5), the CLI's `discover`.
#[pyfunction]
#[pyo3(signature = (model, data, task, pairs, options, progress=None))]
fn discover(
    py: Python<'_>,
    model: &PyModel,
    data: &PyData,
    task: Option<&str>,
    pairs: Option<Vec<(usize, usize)>>,
    options: &PyOptions,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyDiscovery> {
    let (ck, mnist, options) = (&model.ck, &data.mnist, &options.0);
    let set = fitted(model, data, options.split)?;
    let settings = options.checked(&ck.model, set.len()).map_err(option_err)?;
    let (task, pairs) = task_pairs(set, task, pairs, options.seed)?;
    let source = ModelSource { model: &ck.model, path: &model.origin, sha256: &model.sha256, regime: model.regime() };
    let out = interruptible(py, progress, settings.config.bootstraps, |report| {
        discover_pairs(mnist, &source, &task, pairs, &settings, report)
    })?
    .map_err(|e| py_err(&e))?;
    Ok(PyDiscovery { out, ck: Arc::clone(ck), mnist: Arc::clone(mnist) })
}

/// Several models on one task, side by side (the CLI's `compare`), as
/// `compare.json`: `models` are `(condition, model)` pairs, models sharing
/// a condition its seeds.
#[pyfunction]
#[pyo3(signature = (models, data, task, options, *, tau=None, acdc_metric="kl", acdc_zero=false, acdc_pairs=None,
    methods=None, random=None, baseline=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn compare(
    py: Python<'_>,
    models: Vec<(String, PyRef<'_, PyModel>)>,
    data: &PyData,
    task: &str,
    options: &PyOptions,
    tau: Option<f64>,
    acdc_metric: &str,
    acdc_zero: bool,
    acdc_pairs: Option<usize>,
    methods: Option<Vec<String>>,
    random: Option<usize>,
    baseline: Option<String>,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let task = Task::parse(task).map_err(|e| value_err(format!("task: {e}")))?;
    let metric = acdc_metric.parse::<AcdcMetric>().map_err(|e| value_err(format!("acdc_metric: {e}")))?;
    let acdc = AcdcConfig { tau: tau.unwrap_or(DEFAULT_TAU), metric, zero_ablation: acdc_zero };
    acdc.validate().map_err(|e| value_err(format!("tau: {e}")))?;
    let acdc_pairs = acdc_pairs.unwrap_or(ACDC_PAIRS);
    if !(1..=100_000).contains(&acdc_pairs) {
        return Err(value_err(format!("acdc_pairs: {acdc_pairs} is not in 1..=100000")));
    }
    let mut beyond = BeyondSettings { acdc, acdc_pairs, ..BeyondSettings::default() };
    if let Some(names) = methods {
        beyond.methods = names
            .iter()
            .map(|n| n.parse::<modcirc_acdc::Method>().map_err(|e| value_err(format!("methods: {e}"))))
            .collect::<PyResult<_>>()?;
    }
    let mut options = options.0.clone();
    options.target_faithfulness.get_or_insert(DEFAULT_FAITHFUL);
    let mut settings = None;
    for (_, m) in &models {
        let set = fitted(m, data, options.split)?;
        let s = options.checked(&m.ck.model, set.len()).map_err(option_err)?;
        settings.get_or_insert(CompareSettings {
            modularity_seed: s.config.seed,
            controls: (random != Some(0)).then(|| ControlSettings {
                random: random.unwrap_or(DEFAULT_RANDOM_CIRCUITS),
                seed: s.config.seed,
                ..ControlSettings::default()
            }),
            discovery: s,
            beyond: beyond.clone(),
            baseline: baseline.clone(),
        });
    }
    let settings = settings.ok_or_else(|| value_err("models: give at least one"))?;
    let inputs: Vec<CompareInput> = models
        .iter()
        .map(|(condition, m)| CompareInput {
            condition,
            checkpoint: &m.ck,
            path: Path::new(&m.origin),
            sha256: &m.sha256,
        })
        .collect();
    let total = settings.discovery.config.bootstraps * inputs.len();
    let bootstraps = settings.discovery.config.bootstraps;
    let c = interruptible(py, progress, total, |report| {
        comparison(&data.mnist, &inputs, &task, settings, &mut |i, done| report(i * bootstraps + done))
    })?
    .map_err(|e| py_err(&e))?;
    to_json(&c)
}

/// A circuit the user chose (the CLI's `evaluate`): `circuit` is JSON of
/// any form `modcirc_present::chosen::read_chosen` takes, `kind` picks one
/// of a `discover` or `beyond` output's circuits; the evaluation as JSON.
#[pyfunction]
#[pyo3(signature = (model, data, task, circuit, kind=None, *, split="test", seed=0, bootstraps=None, sample=None,
    random=None, optimal_pairs=None))]
#[allow(clippy::too_many_arguments)]
fn evaluate(
    py: Python<'_>,
    model: &PyModel,
    data: &PyData,
    task: &str,
    circuit: &[u8],
    kind: Option<&str>,
    split: &str,
    seed: u64,
    bootstraps: Option<usize>,
    sample: Option<usize>,
    random: Option<usize>,
    optimal_pairs: Option<usize>,
) -> PyResult<String> {
    use modcirc_study::evaluate::{evaluate, EvaluateModel, EvaluateSettings};
    let task = Task::parse(task).map_err(|e| value_err(format!("task: {e}")))?;
    let kind =
        kind.map(str::parse).transpose().map_err(|e: modcirc_present::PresentError| value_err(format!("kind: {e}")))?;
    let read = modcirc_present::chosen::read_chosen(circuit, kind).map_err(|e| value_err(format!("circuit: {e}")))?;
    read.check_model(&model.sha256).map_err(|e| value_err(format!("circuit: {e}")))?;
    let settings = EvaluateSettings {
        split: parse_split(split)?,
        seed,
        bootstraps: bootstraps.unwrap_or(DEFAULT_BOOTSTRAPS),
        sample: sample.unwrap_or(DEFAULT_SAMPLE),
        random: random.unwrap_or(DEFAULT_RANDOM_CIRCUITS),
        optimal_pairs: optimal_pairs.unwrap_or(DEFAULT_OPTIMAL_PAIRS),
    };
    let m = EvaluateModel { model: &model.ck.model, path: &model.origin, sha256: &model.sha256 };
    let e = py.detach(|| evaluate(&data.mnist, m, &task, &read.circuit, &settings)).map_err(|e| py_err(&e))?;
    to_json(&e)
}

/// Node attribution (the first-order estimate of each neuron's patching
/// effect) and the exact effects it estimates, on every pair, as JSON
/// `{"attribution": [...], "exact": [...]}` per hidden layer.
#[pyfunction]
#[pyo3(signature = (model, data, task=None, pairs=None, *, split="test", seed=0))]
fn attribution(
    py: Python<'_>,
    model: &PyModel,
    data: &PyData,
    task: Option<&str>,
    pairs: Option<Vec<(usize, usize)>>,
    split: &str,
    seed: u64,
) -> PyResult<String> {
    let images = task_images(model, data, split, task, pairs, seed, None)?;
    let m = &model.ck.model;
    let (estimate, exact) = py
        .detach(|| -> Result<_, modcirc_acdc::AcdcError> {
            let sweep = PatchingSweep::new(m, &images)?;
            Ok((node_attribution(&sweep)?, exact_node_effects(&sweep)?))
        })
        .map_err(|e| py_err(&e))?;
    Ok(serde_json::json!({ "attribution": estimate.layers, "exact": exact.layers }).to_string())
}

/// Edge attribution patching: one score per weight, each layer `[n_out, n_in]` as float32 bytes.
#[pyfunction]
#[pyo3(signature = (model, data, task=None, pairs=None, *, split="test", seed=0))]
fn eap<'py>(
    py: Python<'py>,
    model: &PyModel,
    data: &PyData,
    task: Option<&str>,
    pairs: Option<Vec<(usize, usize)>>,
    split: &str,
    seed: u64,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let images = task_images(model, data, split, task, pairs, seed, None)?;
    let m = &model.ck.model;
    let scores =
        py.detach(|| PatchingSweep::new(m, &images).and_then(|s| edge_attribution(&s))).map_err(|e| py_err(&e))?;
    Ok(scores.layers.iter().map(|l| f32_bytes(py, l)).collect())
}

/// Any discovery method's scores (`modcirc_acdc::Method`, by its name,
/// with `options` as the JSON of its options: the CLI's parsing and
/// checks), on every pair: JSON of the method with its options, the pairs
/// and seconds, the neurons' scores per hidden layer and the edges the
/// method keeps itself (ACDC's); and each weight layer's edge scores as
/// float32 bytes, for the methods that rank edges.
#[pyfunction]
#[pyo3(signature = (model, data, method, task=None, pairs=None, *, options=None, split="test", seed=0))]
#[allow(clippy::too_many_arguments)]
fn scores<'py>(
    py: Python<'py>,
    model: &PyModel,
    data: &PyData,
    method: &str,
    task: Option<&str>,
    pairs: Option<Vec<(usize, usize)>>,
    options: Option<&str>,
    split: &str,
    seed: u64,
) -> PyResult<(String, Option<Vec<Bound<'py, PyBytes>>>)> {
    // The name alone, checked; options not given take their serde defaults
    // (a field given by its alias, `pairs` for the masks' `training_pairs`,
    // is then given once).
    let name = method.parse::<modcirc_acdc::Method>().map_err(|e| value_err(format!("method: {e}")))?.name();
    let mut spec = serde_json::json!({ "method": name });
    if let Some(options) = options {
        let options: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(options).map_err(|e| value_err(format!("options: {e}")))?;
        let fields = spec.as_object_mut().expect("a method serializes as an object");
        for (k, v) in options {
            if k == "method" {
                return Err(value_err("options: the method is named by method="));
            }
            fields.insert(k, v);
        }
    }
    let method: modcirc_acdc::Method =
        serde_json::from_value(spec).map_err(|e| value_err(format!("options of {method}: {e}")))?;
    method.validate().map_err(|e| value_err(format!("options: {e}")))?;
    let images = task_images(model, data, split, task, pairs, seed, None)?;
    let m = &model.ck.model;
    let out = py.detach(|| PatchingSweep::new(m, &images).and_then(|s| method.scores(&s))).map_err(|e| py_err(&e))?;
    let kept = out.kept_edges.as_ref().map(|k| modcirc_acdc::edge_list(m, k));
    let meta = serde_json::json!({
        "method": out.method,
        "pairs": out.pairs,
        "seconds": out.seconds,
        "nodes": out.nodes,
        "kept_edges": kept,
    });
    let edges = out.edges.map(|e| e.layers.iter().map(|l| f32_bytes(py, l)).collect());
    Ok((meta.to_string(), edges))
}

/// Edge-level ACDC on the first `max_pairs` pairs, as JSON: the kept edges
/// `[layer, output, input]`, their count, the metric of the model and of
/// the circuit, and how many edge tests ran a forward pass.
#[pyfunction]
#[pyo3(signature = (model, data, task=None, pairs=None, *, tau=None, metric="kl", zero_ablation=false,
    max_pairs=None, split="test", seed=0, progress=None))]
#[allow(clippy::too_many_arguments)]
fn acdc(
    py: Python<'_>,
    model: &PyModel,
    data: &PyData,
    task: Option<&str>,
    pairs: Option<Vec<(usize, usize)>>,
    tau: Option<f64>,
    metric: &str,
    zero_ablation: bool,
    max_pairs: Option<usize>,
    split: &str,
    seed: u64,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let metric = metric.parse::<AcdcMetric>().map_err(|e| value_err(format!("metric: {e}")))?;
    let config = AcdcConfig { tau: tau.unwrap_or(DEFAULT_TAU), metric, zero_ablation };
    config.validate().map_err(|e| value_err(format!("tau: {e}")))?;
    let max_pairs = max_pairs.unwrap_or(ACDC_PAIRS);
    if max_pairs == 0 {
        return Err(value_err("max_pairs: ACDC needs at least one pair"));
    }
    let images = task_images(model, data, split, task, pairs, seed, Some(max_pairs))?;
    let m = &model.ck.model;
    let receivers = m.layers.iter().map(|l| l.n_out).sum();
    let found = interruptible(py, progress, receivers, |report| {
        PatchingSweep::new(m, &images).and_then(|s| edge_acdc_with_progress(&s, &config, report))
    })?
    .map_err(|e| py_err(&e))?;
    let edges = modcirc_study::beyond::edge_list(m, &found.mask);
    Ok(serde_json::json!({
        "edges": edges,
        "n_edges": found.n_edges,
        "pairs": images.n,
        "model_metric": found.model_metric,
        "circuit_metric": found.circuit_metric,
        "evaluated": found.evaluated,
        "config": found.config,
    })
    .to_string())
}

/// Q (Louvain), communities, spectral n-cuts, Q's spread over the runs
/// and, with `null`, its z-score against degree-preserving rewirings, of
/// the weight graph (every nonzero weight, or with `eps` the edges the eps
/// rule keeps), as JSON.
#[pyfunction]
#[pyo3(signature = (model, eps=None, seed=0, null=false))]
fn modularity(py: Python<'_>, model: &PyModel, eps: Option<f64>, seed: u64, null: bool) -> PyResult<String> {
    if let Some(e) = eps.filter(|e| !(0.0..1.0).contains(e)) {
        return Err(value_err(format!("eps: {e} is not in [0, 1)")));
    }
    let m = &model.ck.model;
    let q = py
        .detach(|| -> Result<_, modcirc_study::StudyError> {
            let mut q = graph_modularity(&weight_graph(m, eps)?, seed)?;
            if null {
                q.null = Some(modcirc_study::structure::modularity_null(m, eps, q.q, seed)?);
            }
            Ok(q)
        })
        .map_err(|e| py_err(&e))?;
    to_json(&q)
}

/// Trains a model under `regime` (the study's trainer and its defaults
/// where an option is `None`); `progress` gets the steps done.
#[pyfunction]
#[pyo3(signature = (regime, data, *, steps=None, seed=0, sizes=None, activation=None, batch_size=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn train(
    py: Python<'_>,
    regime: &str,
    data: &PyData,
    steps: Option<usize>,
    seed: u64,
    sizes: Option<Vec<usize>>,
    activation: Option<&str>,
    batch_size: Option<usize>,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyModel> {
    let regime = regime.parse::<Regime>().map_err(|e| value_err(format!("regime: {e}")))?;
    let mut config = TrainConfig::new(regime).seed(seed);
    if let Some(s) = steps {
        if s == 0 {
            return Err(value_err("steps: must be at least 1"));
        }
        config = config.steps(s);
    }
    if let Some(s) = sizes {
        config = config.sizes(&s);
    }
    if let Some(a) = self::activation(activation)? {
        config = config.activation(a);
    }
    if let Some(b) = batch_size {
        config = config.batch_size(b);
    }
    let mnist = &data.mnist;
    let total = config.steps;
    let trained = interruptible(py, progress, total, |report| {
        modcirc_engine::train::train(config, DeviceSpec::Cpu, mnist, &mut |p| report(p.step), false)
    })?
    .map_err(|e| py_err(&e))?;
    // As the CLI's cached models: the bytes a file would hold, read back
    // (the output permutation folded in), so that saving and loading it
    // gives the same bits.
    let bytes = checkpoint::to_bytes(&trained.model, &trained.layout).map_err(|e| py_err(&e))?;
    let origin = format!("{regime} model trained in Python (seed {seed})");
    let (model, layout) = checkpoint::from_bytes(&bytes, Path::new(&origin), None).map_err(|e| py_err(&e))?;
    let ck = Checkpoint { model, layout, meta: Some(trained.meta) };
    Ok(PyModel { ck: Arc::new(ck), origin, sha256: sha256_hex(&bytes) })
}

/// The Rust core of the `modcirc` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyModel>()?;
    m.add_class::<PyData>()?;
    m.add_class::<PyDiscovery>()?;
    m.add_class::<PyOptions>()?;
    m.add_function(wrap_pyfunction!(compare, m)?)?;
    m.add_function(wrap_pyfunction!(discover, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(attribution, m)?)?;
    m.add_function(wrap_pyfunction!(eap, m)?)?;
    m.add_function(wrap_pyfunction!(scores, m)?)?;
    m.add_function(wrap_pyfunction!(acdc, m)?)?;
    m.add_function(wrap_pyfunction!(modularity, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add("METHODS", modcirc_acdc::Method::NAMES.to_vec())?;
    m.add("DEFAULT_K", DEFAULT_K)?;
    m.add("DEFAULT_EPS", DEFAULT_EPS)?;
    m.add("DEFAULT_BOOTSTRAPS", DEFAULT_BOOTSTRAPS)?;
    m.add("DEFAULT_SAMPLE", DEFAULT_SAMPLE)?;
    m.add("DEFAULT_TAU", DEFAULT_TAU)?;
    m.add("ACDC_PAIRS", ACDC_PAIRS)?;
    m.add("STUDY_STEPS", modcirc_bimt::STUDY_STEPS)?;
    m.add("ACTIVATIONS", Activation::ALL.iter().map(|a| a.name()).collect::<Vec<_>>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

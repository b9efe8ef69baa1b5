//! Reading networks as PyTorch writes them: both namings, every dtype, and
//! every malformed file with its error.

use std::collections::HashMap;
use std::path::Path;

use modcirc_mlp::file::{from_bytes, to_bytes, Naming};
use modcirc_mlp::{Activation, Mlp};
use safetensors::tensor::{Dtype, TensorView};

/// `(name, shape, f32 values)` of each tensor of a file.
type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;
/// The tensor-name stem of layer `k` (0-based) in one naming.
type Stem = Box<dyn Fn(usize) -> String>;

/// A 6-5-4-3 network with distinct, exactly representable values.
fn model(act: Activation) -> Mlp {
    let mut i = 0u32;
    let mut u = move || {
        i += 1;
        ((i * 37) % 64) as f64 / 64.0
    };
    Mlp::init(&[6, 5, 4, 3], act, &mut u).unwrap()
}

/// `(name, shape, f32 values)` to safetensors bytes in `dtype`.
fn write(tensors: &[(String, Vec<usize>, Vec<f32>)], dtype: Dtype, meta: Option<(&str, &str)>) -> Vec<u8> {
    let encode = |v: &[f32]| -> Vec<u8> {
        match dtype {
            Dtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Dtype::F64 => v.iter().flat_map(|&x| (x as f64).to_le_bytes()).collect(),
            Dtype::F16 => v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect(),
            Dtype::BF16 => v.iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect(),
            Dtype::I32 => v.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect(),
            _ => unreachable!(),
        }
    };
    let data: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(n, s, v)| (n.clone(), s.clone(), encode(v))).collect();
    let views: Vec<_> =
        data.iter().map(|(n, s, d)| (n.clone(), TensorView::new(dtype, s.clone(), d).unwrap())).collect();
    let meta = meta.map(|(k, v)| HashMap::from([(k.to_string(), v.to_string())]));
    safetensors::tensor::serialize(views, meta).unwrap()
}

/// The layers of `m` under `stem(k)` names (`k` from 0).
fn tensors(m: &Mlp, stem: impl Fn(usize) -> String) -> Tensors {
    let mut out = Vec::new();
    for (k, l) in m.layers.iter().enumerate() {
        out.push((format!("{}.weight", stem(k)), vec![l.n_out, l.n_in], l.weight.clone()));
        out.push((format!("{}.bias", stem(k)), vec![l.n_out], l.bias.clone()));
    }
    out
}

fn p() -> &'static Path {
    Path::new("f.safetensors")
}

fn err(bytes: &[u8], act: Option<Activation>) -> String {
    from_bytes(bytes, p(), act).unwrap_err().to_string()
}

#[test]
fn both_namings_and_every_dtype_load_to_the_same_network() {
    let m = model(Activation::Relu);
    let namings: [(&str, Stem); 4] = [
        ("fc", Box::new(|k| format!("fc{}", k + 1))),
        ("sequential", Box::new(|k| format!("{}", 2 * k))),
        ("prefixed sequential", Box::new(|k| format!("net.{}", 2 * k))),
        ("prefixed fc", Box::new(|k| format!("model.fc{}", k + 1))),
    ];
    // The largest relative rounding error of each dtype's conversion.
    for (dtype, tol) in
        [(Dtype::F32, 0.0), (Dtype::F64, 0.0), (Dtype::F16, 2f32.powi(-11)), (Dtype::BF16, 2f32.powi(-8))]
    {
        for (what, stem) in &namings {
            let bytes = write(&tensors(&m, stem), dtype, None);
            let got =
                from_bytes(&bytes, p(), Some(Activation::Relu)).unwrap_or_else(|e| panic!("{what} {dtype:?}: {e}"));
            assert_eq!(got.model.sizes(), m.sizes(), "{what}");
            assert_eq!(got.model.activation, Activation::Relu);
            assert_eq!(got.dtype, format!("{dtype:?}"));
            for (a, b) in got.model.layers.iter().zip(&m.layers) {
                for (x, y) in a.weight.iter().chain(&a.bias).zip(b.weight.iter().chain(&b.bias)) {
                    assert!((x - y).abs() <= tol * y.abs(), "{what} {dtype:?}: {x} vs {y}");
                }
            }
            if *what == "prefixed sequential" {
                assert_eq!(got.naming, Naming::Sequential { prefix: "net.".into(), indices: vec![0, 2, 4] });
            }
        }
    }
}

#[test]
fn our_own_files_round_trip_with_their_activation() {
    for act in Activation::ALL {
        let mut m = model(act);
        m.out_perm = vec![2, 0, 1];
        let bytes = to_bytes(&m, &[]).unwrap();
        assert_eq!(bytes, to_bytes(&m, &[]).unwrap(), "the same model, the same bytes");
        let back = from_bytes(&bytes, p(), None).unwrap();
        assert_eq!(back.model, m.with_identity_output());
        assert_eq!(back.naming, Naming::Fc { prefix: String::new() });
        assert_eq!(back.metadata.get("activation").map(String::as_str), Some(act.name()));
    }
}

#[test]
fn the_activation_must_be_said_once_and_consistently() {
    let m = model(Activation::Gelu);
    let plain = write(&tensors(&m, |k| format!("{}", 2 * k)), Dtype::F32, None);
    let e = err(&plain, None);
    assert!(e.contains("f.safetensors") && e.contains("does not say which activation"), "{e}");
    let said = write(&tensors(&m, |k| format!("fc{}", k + 1)), Dtype::F32, Some(("activation", "gelu")));
    assert_eq!(from_bytes(&said, p(), None).unwrap().model.activation, Activation::Gelu);
    let e = err(&said, Some(Activation::Relu));
    assert!(e.contains("says its activation is gelu, but relu was asked for"), "{e}");
    let odd = write(&tensors(&m, |k| format!("fc{}", k + 1)), Dtype::F32, Some(("activation", "swish")));
    assert!(err(&odd, None).contains("metadata `activation`: unknown activation \"swish\""));
    // Our format before the key existed: always SiLU.
    let legacy = write(&tensors(&m, |k| format!("fc{}", k + 1)), Dtype::F32, Some(("format", "modcirc-mlp")));
    assert_eq!(from_bytes(&legacy, p(), None).unwrap().model.activation, Activation::Silu);
}

#[test]
fn malformed_files_are_clear_errors() {
    let m = model(Activation::Relu);
    let relu = Some(Activation::Relu);
    let fc = tensors(&m, |k| format!("fc{}", k + 1));
    let edit = |f: &dyn Fn(&mut Tensors)| {
        let mut t = fc.clone();
        f(&mut t);
        write(&t, Dtype::F32, None)
    };
    // A gap in the numbering.
    let gap = write(&tensors(&m, |k| format!("fc{}", [1, 2, 4][k])), Dtype::F32, None);
    let e = err(&gap, relu);
    assert!(e.contains("numbered fc1, fc2, fc4 (no `fc3`)"), "{e}");
    // Widths that do not chain: nn.Sequential with a layer missing.
    let wide = Mlp::init(&[6, 5, 7, 3], Activation::Relu, &mut || 0.25).unwrap();
    let mut broken = tensors(&wide, |k| format!("{}", 2 * k));
    broken.retain(|t| !t.0.starts_with('2'));
    let e = err(&write(&broken, Dtype::F32, None), relu);
    assert!(e.contains("`4.weight` has shape [3, 7], but `0.weight` gives 5 outputs"), "{e}");
    // A zero width.
    let e = err(&edit(&|t| t[2] = ("fc2.weight".into(), vec![0, 5], vec![])), relu);
    assert!(e.contains("`fc2.weight` has shape [0, 5]: a width of 0"), "{e}");
    // NaN and infinity, named with their index.
    let e = err(&edit(&|t| t[2].2[7] = f32::NAN), relu);
    assert!(e.contains("`fc2.weight` holds NaN at index [1, 2]"), "{e}");
    let e = err(&edit(&|t| t[5].2[1] = f32::NEG_INFINITY), relu);
    assert!(e.contains("`fc3.bias` holds -inf at index [1]"), "{e}");
    // An f64 too large for f32 is infinite after conversion.
    let mut big = fc.clone();
    big[0].2[0] = f32::MAX;
    let mut bytes = write(&big, Dtype::F64, None);
    let at = bytes.windows(8).position(|w| w == (f32::MAX as f64).to_le_bytes()).unwrap();
    bytes[at..at + 8].copy_from_slice(&1e300f64.to_le_bytes());
    assert!(err(&bytes, relu).contains("`fc1.weight` holds inf at index [0, 0] (after conversion to f32)"));
    // Missing bias, wrong bias shape, a weight of rank 1, an integer dtype.
    let e = err(&edit(&|t| t.retain(|x| x.0 != "fc2.bias")), relu);
    assert!(e.contains("missing tensor `fc2.bias`"), "{e}");
    let e = err(&edit(&|t| t[1] = ("fc1.bias".into(), vec![4], vec![0.0; 4])), relu);
    assert!(e.contains("`fc1.bias` has shape [4], expected [5]"), "{e}");
    let e = err(&edit(&|t| t[0] = ("fc1.weight".into(), vec![30], vec![0.0; 30])), relu);
    assert!(e.contains("`fc1.weight` has shape [30]: a Linear weight is [out, in]"), "{e}");
    let ints = write(&fc, Dtype::I32, None);
    assert!(err(&ints, relu).contains("`fc1.weight` is I32; expected F32, F16, BF16 or F64"));
    // One Linear layer is not an MLP with a hidden layer.
    let e = err(&edit(&|t| t.truncate(2)), relu);
    assert!(e.contains("at least one hidden layer"), "{e}");
    // No layers, two namings, not safetensors at all.
    let e = err(&write(&[("emb".into(), vec![2], vec![1.0, 2.0])], Dtype::F32, None), relu);
    assert!(e.contains("no Linear layers") && e.contains("`emb`"), "{e}");
    let mut both = fc.clone();
    both.extend(tensors(&m, |k| format!("{}", 2 * k)));
    let e = err(&write(&both, Dtype::F32, None), relu);
    assert!(e.contains("more than one naming"), "{e}");
    assert!(err(b"garbage", relu).contains("not a safetensors file"));
    // What torch.save (zip or legacy pickle) and numpy write is named, with how to save instead.
    for (head, what) in [
        (&b"PK\x03\x04\x00\x00\x08\x00archive/data.pkl"[..], "torch.save"),
        (&b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8"[..], "pickle"),
        (&b"\x93NUMPY\x01\x00v\x00"[..], "NumPy"),
    ] {
        let e = err(head, relu);
        assert!(e.contains(what) && e.contains("safetensors.torch.save_file"), "{e}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, failure_persistence: None, ..Default::default() })]

    /// Mutated and truncated checkpoints: an error naming the file, or a
    /// network whose every value is finite, never a panic.
    #[test]
    fn mutated_checkpoints_never_panic(
        flips in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 0..8),
        cut in 0usize..4096,
    ) {
        let mut bytes = to_bytes(&model(Activation::Tanh), &[]).unwrap();
        for (at, v) in flips {
            let i = at % bytes.len();
            bytes[i] = v;
        }
        bytes.truncate(cut.max(1).min(bytes.len()));
        match from_bytes(&bytes, p(), Some(Activation::Tanh)) {
            Ok(l) => proptest::prop_assert!(l.model.layers.iter().all(|l| l.weight.iter().chain(&l.bias).all(|v| v.is_finite()))),
            Err(e) => proptest::prop_assert!(e.to_string().contains("f.safetensors"), "{}", e),
        }
    }
}

#[test]
fn the_header_is_checked_before_the_rest_of_a_file_is_read() {
    let dir = std::env::temp_dir().join(format!("modcirc-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 4 GB, sparse: a loader that read it all first would take 4 GB.
    let big = dir.join("big.safetensors");
    let mut head = 10u64.to_le_bytes().to_vec();
    head.extend_from_slice(b"not json!!");
    std::fs::write(&big, &head).unwrap();
    std::fs::OpenOptions::new().write(true).open(&big).unwrap().set_len(4 << 30).unwrap();
    let e = modcirc_mlp::file::load(&big, None).unwrap_err().to_string();
    assert!(e.contains("invalid JSON in header") && e.contains("big.safetensors"), "{e}");
    // A header length past the file, or past the limit.
    let long = dir.join("long.safetensors");
    std::fs::write(&long, u64::MAX.to_le_bytes()).unwrap();
    let e = modcirc_mlp::file::load(&long, None).unwrap_err().to_string();
    assert!(e.contains("a header of 18446744073709551615 bytes in a file of 8"), "{e}");
    // Tensors that end before or after the file does.
    let short = dir.join("short.safetensors");
    let header = br#"{"fc1.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4000]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0; 4]);
    std::fs::write(&short, &bytes).unwrap();
    let e = modcirc_mlp::file::load(&short, None).unwrap_err().to_string();
    assert!(e.contains("places tensors up to byte"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

//! A multilayer perceptron as plain `f32` buffers, and nothing else.
//!
//! * [`Mlp`]: [`Linear`] layers (`nn.Linear`'s layout), one or more hidden
//!   layers of any widths, an [`Activation`] after each hidden layer, and an
//!   output permutation (neuron swaps move output neurons; the permutation
//!   says which class each position stands for).
//! * [`Activation`]: SiLU, ReLU, GELU (exact and tanh form), tanh, sigmoid
//!   and identity, each with its derivative.
//! * [`file`](mod@file): safetensors in and out, with PyTorch's namings
//!   (`fc{k}.weight` and `nn.Sequential`'s `0.weight`, `2.weight`, …) and
//!   dtypes (F32, F16, BF16, F64).
//! * [`linalg`]: the single-threaded `gemm` products the forward pass (and
//!   the trainer) use.
//! * The first layer skips exact-zero inputs
//!   ([`Linear::forward_sparse_into`]) in rows where at most
//!   [`SPARSE_DENSITY`] of them are nonzero (MNIST's images: about 19%), in
//!   batches of at least [`SPARSE_MIN_ROWS`]; the same sums in another order.
//!   On CPUs with AVX-512, [`Mlp::forward`] runs the hidden layers on
//!   register tiles that give the dense product's bits.
//! * A training step's first layer over the inputs' nonzeros
//!   ([`forward_sparse`], [`weight_gradient_sparse`] on [`SparseInputs`]
//!   and [`InputMajor`] weights): exact fused sums in a stated order, the
//!   same bits on every CPU path.
//! * [`DeviceSpec`]: `cpu` or `cuda:N`, opened as a candle device with the
//!   `candle` feature.
//!
//! ```
//! use modcirc_mlp::{file, Activation, Mlp};
//! // A 4-8-3 ReLU network from a fixed sequence of "random" numbers.
//! let mut u = (0..).map(|i| (i as f64 * 0.618).fract());
//! let mlp = Mlp::init(&[4, 8, 3], Activation::Relu, &mut || u.next().unwrap())?;
//! let bytes = file::to_bytes(&mlp, &[])?;
//! let back = file::from_bytes(&bytes, "mlp.safetensors".as_ref(), None)?;
//! assert_eq!(back.model, mlp); // the activation travels in the metadata
//! let logits = mlp.forward(&[0.1, 0.2, 0.3, 0.4], 1);
//! assert_eq!(logits.len(), 3);
//! # Ok::<(), modcirc_mlp::MlpError>(())
//! ```

#![warn(missing_docs)]

mod activation;
mod dense;
mod device;
mod entries;
mod error;
pub mod file;
mod kernel;
pub mod linalg;
mod model;
mod packed;
mod sparse;
mod sparse_grad;
#[cfg(test)]
mod sparse_tests;
mod sparse_train;
mod transpose;

pub use activation::{exp, sigmoid, silu, silu_derivative, silu_keeping_sigmoid, Activation};
#[cfg(feature = "candle")]
pub use device::device_memory_in_use;
pub use device::DeviceSpec;
pub use error::MlpError;
pub use model::{accuracy_of_logits, argmax, Activations, Linear, Mlp, ROW_BLOCK};
pub use packed::PackedRows;
pub use sparse::{SPARSE_DENSITY, SPARSE_MIN_ROWS};
pub use sparse_grad::weight_gradient_sparse;
pub use sparse_train::{forward_sparse, forward_sparse_packed, InputMajor, SparseInputs};

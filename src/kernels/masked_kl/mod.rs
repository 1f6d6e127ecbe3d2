//! Row-wise KL(softmax(x) ‖ softmax(y)) for the MDU forget term, as a backend extension.
//!
//! Contract (mdu.md §3.2): `x`, `y` are `[n, v]` logits of the gathered masked answer positions;
//! a −inf logit (a special token left out of the KL) makes its term contribute 0, exactly as the
//! reference's `nan_to_num` of the log-ratio does; accumulation is f32. The forward returns the
//! KL `[n]` and per-row statistics `[n, 12]` (KL, max x, log Σ exp(x − max x), max y,
//! log Σ exp(y − max y), P' = Σ' p, the centre pair (x_c, y_c), K̃, C, 0, 0; shaders/masked_kl.wgsl
//! explains them) that the backward reuses instead of re-reducing the rows.
//!
//! - wgpu (`CubeBackend<WgpuRuntime, ..>`, and so `Fusion<..>` and `Autodiff<..>` around it): the
//!   WGSL kernels `shaders/masked_kl.wgsl` (forward, one workgroup per row) and
//!   `shaders/masked_kl_backward.wgsl` (elementwise), launched per chunk of rows that fits the
//!   adapter's buffer and dispatch limits.
//! - CUDA (`CubeBackend<CudaRuntime, ..>`, feature `cuda`): the same kernels written in CubeCL
//!   ([`cube`]; CUDA cannot run WGSL), for f32, f16 and bf16 inputs with f32 statistics.
//! - every other backend: the trait's default bodies, the same formulas in tensor ops. MDU does not
//!   use them ([`KlBackend::KL_KERNEL`] is false there): it keeps the composite
//!   `unlearn::methods::mdu::kl_rows` on those backends.
//!
//! Gradients: the Autodiff wrapper gives both inputs their exact gradient (the kernel's `wrt`
//! switch), so nothing depends on the caller detaching the target; MDU does detach it, and then
//! only the conditional's gradient is computed.
//!
//! Files: this one holds the trait, the shared types and the tensor-op twin (the trait's default
//! bodies, also the kernels' fallback); `wgsl.rs` the wgpu launches, `cube.rs` the CubeCL kernels,
//! `cuda.rs` the CUDA backend's impl, `fusion.rs` and `autodiff.rs` the wrappers' impls. The
//! children import from this file (and `cuda.rs` from `cube.rs`), never the other way.

mod autodiff;
pub mod cube;
#[cfg(feature = "cuda")]
mod cuda;
mod fusion;
mod wgsl;

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Tensor, TensorMetadata, TensorPrimitive};
use burn_cubecl::{tensor::CubeTensor, CubeRuntime};

/// Columns of the per-row statistics tensor.
pub const STATS_COLS: usize = 12;

/// Which input a backward computes the gradient for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KlWrt {
    /// `x`, the logits of p (the distribution the expectation runs over).
    X,
    /// `y`, the logits of q.
    Y,
}

/// Backends that compute KL(softmax(x) ‖ softmax(y)) per row, with a custom kernel where one
/// exists. `max_rows` caps the rows per kernel launch (`None`: as many as the adapter's limits
/// allow); tests force tiny chunks with it, backends without a kernel ignore it.
pub trait KlBackend: Backend {
    /// Whether `kl_forward`/`kl_backward` run a custom kernel on this backend (for f32 inputs;
    /// CUDA's also for f16 and bf16).
    const KL_KERNEL: bool = false;

    /// The dtype of the statistics `kl_forward` returns for inputs of dtype `x` (wrappers declare
    /// their outputs before the inner backend runs).
    fn kl_stats_dtype(x: DType) -> DType {
        x
    }

    /// `(kl [n], stats [n, 12])`.
    fn kl_forward(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        max_rows: Option<usize>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let _ = max_rows;
        forward_prims::<Self>(x, y)
    }

    /// `g [n] · ∂KL/∂x` or `· ∂KL/∂y`, `[n, v]`, from the forward's statistics.
    fn kl_backward(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        wrt: KlWrt,
        max_rows: Option<usize>,
    ) -> FloatTensor<Self> {
        let _ = max_rows;
        backward_prims::<Self>(x, y, stats, grad, wrt)
    }
}

/// KL(softmax(x) ‖ softmax(y)) per row, `[n, v]` → `[n]`, through [`KlBackend::kl_forward`] (and
/// its backward under Autodiff).
pub fn kl_divergence_rows<B: KlBackend>(
    x: Tensor<B, 2>,
    y: Tensor<B, 2>,
    max_rows: Option<usize>,
) -> Tensor<B, 1> {
    let (kl, _stats) = B::kl_forward(
        x.into_primitive().tensor(),
        y.into_primitive().tensor(),
        max_rows,
    );
    float::<B, 1>(kl)
}

fn float<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

fn dims2<R: CubeRuntime>(t: &CubeTensor<R>) -> [usize; 2] {
    let shape = t.shape();
    assert_eq!(
        shape.num_dims(),
        2,
        "masked KL expects [n, v] logits, got {shape:?}"
    );
    [shape[0], shape[1]]
}

// ---------------------------------------------------------------------------------------------
// The same contract in tensor ops (the trait's defaults, and the kernels' fallback).

fn forward_prims<B: Backend>(
    x: FloatTensor<B>,
    y: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let (kl, stats) = forward_tensor_ops(float::<B, 2>(x), float::<B, 2>(y));
    (prim(kl), prim(stats))
}

/// The tensor ops want one dtype throughout: `stats` (f32 from the CUDA kernel for 16-bit
/// inputs) and `grad` are cast to the logits' dtype (a no-op where they already have it).
fn backward_prims<B: Backend>(
    x: FloatTensor<B>,
    y: FloatTensor<B>,
    stats: FloatTensor<B>,
    grad: FloatTensor<B>,
    wrt: KlWrt,
) -> FloatTensor<B> {
    let dtype = x.dtype();
    prim(backward_tensor_ops(
        float::<B, 2>(x),
        float::<B, 2>(y),
        float::<B, 2>(stats).cast(dtype),
        float::<B, 1>(grad).cast(dtype),
        wrt,
    ))
}

fn forward_tensor_ops<B: Backend>(
    x: Tensor<B, 2>,
    y: Tensor<B, 2>,
) -> (Tensor<B, 1>, Tensor<B, 2>) {
    let [n, _v] = x.dims();
    let device = x.device();
    if n == 0 {
        return (
            Tensor::zeros([0], &device),
            Tensor::zeros([0, STATS_COLS], &device),
        );
    }
    let both = finite_pairs(&x, &y); // [n, v]
    let uncounted = both.bool_not();
    // The centre: the counted pair with the largest x.
    let at = x
        .clone()
        .mask_fill(uncounted.clone(), f32::NEG_INFINITY)
        .argmax(1); // [n, 1]
    let (xc, yc) = (x.clone().gather(1, at.clone()), y.clone().gather(1, at)); // [n, 1]
    let d = ((x.clone() - xc.clone()) - (y.clone() - yc.clone())).mask_fill(uncounted.clone(), 0.0); // [n, v]
    let (mx, e) = exp_shifted(x); // [n, 1], [n, v]
    let (my, e_y) = exp_shifted(y);
    let (s, s_y) = (e.clone().sum_dim(1), e_y.sum_dim(1)); // [n, 1]
    let (lsx, lsy) = (s.clone().log(), s_y.log());
    // P and S_x are the same reduction over the same values when nothing is excluded, so
    // P' = 1 exactly then, as in the kernel (C·(1 − P') would otherwise amplify rounding).
    let counted = e.mask_fill(uncounted, 0.0); // [n, v]
    let pf = counted.clone().sum_dim(1) / s.clone(); // [n, 1]
    let kt = (counted * d).sum_dim(1) / s; // [n, 1]
    let c = (xc.clone() - mx.clone()) - (yc.clone() - my.clone()) + lsy.clone() - lsx.clone(); // [n, 1]
    let kl = (kt.clone() + c.clone() * pf.clone()).mask_fill(pf.clone().equal_elem(0.0), 0.0);
    let zero = Tensor::zeros([n, 1], &device);
    let stats = Tensor::cat(
        vec![
            kl.clone(),
            mx,
            lsx,
            my,
            lsy,
            pf,
            xc,
            yc,
            kt,
            c,
            zero.clone(),
            zero,
        ],
        1,
    ); // [n, 12]
    (kl.reshape([n]), stats)
}

fn backward_tensor_ops<B: Backend>(
    x: Tensor<B, 2>,
    y: Tensor<B, 2>,
    stats: Tensor<B, 2>,
    grad: Tensor<B, 1>,
    wrt: KlWrt,
) -> Tensor<B, 2> {
    let [n, _v] = x.dims();
    if n == 0 {
        return x;
    }
    let col = |i: usize| stats.clone().narrow(1, i, 1); // [n, 1]
    let (mx, lsx, my, lsy, pf) = (col(1), col(2), col(3), col(4), col(5));
    let (xc, yc, kt, c) = (col(6), col(7), col(8), col(9));
    let uncounted = finite_pairs(&x, &y).bool_not();
    let x_excluded = x.clone().equal_elem(f32::NEG_INFINITY);
    let y_excluded = y.clone().equal_elem(f32::NEG_INFINITY);
    let g = grad.reshape([n, 1]);
    match wrt {
        KlWrt::X => {
            let d = ((x.clone() - xc) - (y - yc)).mask_fill(uncounted.clone(), 0.0); // [n, v]
            let ones = d.ones_like().mask_fill(uncounted, 0.0);
            let c1 = c + 1.0;
            let term = (d + c1.clone()) * ones - kt - c1 * pf;
            let p = ((x - mx) - lsx).exp().mask_fill(x_excluded, 0.0);
            (p * term) * g
        }
        KlWrt::Y => {
            let q = ((y - my) - lsy).exp().mask_fill(y_excluded, 0.0);
            let p = ((x - mx) - lsx).exp().mask_fill(uncounted, 0.0);
            (q * pf - p) * g
        }
    }
}

/// `true` where neither logit is −inf.
fn finite_pairs<B: Backend>(
    x: &Tensor<B, 2>,
    y: &Tensor<B, 2>,
) -> Tensor<B, 2, burn::tensor::Bool> {
    x.clone()
        .equal_elem(f32::NEG_INFINITY)
        .bool_or(y.clone().equal_elem(f32::NEG_INFINITY))
        .bool_not()
}

/// `(max z, exp(z − max z))` per row.
fn exp_shifted<B: Backend>(z: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let m = z.clone().max_dim(1); // [n, 1]
    let e = (z - m.clone()).exp(); // [n, v]
    (m, e)
}

// ---------------------------------------------------------------------------------------------
// Backends without a kernel: the defaults.

impl<E, I, Q> KlBackend for burn::backend::NdArray<E, I, Q>
where
    E: burn_ndarray::FloatNdArrayElement,
    I: burn_ndarray::IntNdArrayElement,
    Q: burn_ndarray::QuantElement,
    burn_ndarray::NdArrayTensor: From<burn_ndarray::SharedArray<E>>,
    burn_ndarray::NdArrayTensor: From<burn_ndarray::SharedArray<I>>,
{
}

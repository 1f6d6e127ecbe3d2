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
//!   ([`super::masked_kl_cube`]; CUDA cannot run WGSL), for f32, f16 and bf16 inputs with f32
//!   statistics.
//! - every other backend: the trait's default bodies, the same formulas in tensor ops. MDU does not
//!   use them ([`KlBackend::KL_KERNEL`] is false there): it keeps the composite
//!   `unlearn::methods::mdu::kl_rows` on those backends.
//!
//! Gradients: the Autodiff wrapper gives both inputs their exact gradient (the kernel's `wrt`
//! switch), so nothing depends on the caller detaching the target; MDU does detach it, and then
//! only the conditional's gradient is computed.

use std::marker::PhantomData;

use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
    Autodiff,
};
use burn::backend::wgpu::{
    into_contiguous, kernel_source, BoolElement, CubeBackend, CubeDim, CubeTensor, FloatElement,
    IntElement, KernelSource, SourceKernel, SourceTemplate, WgpuRuntime,
};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape, Tensor, TensorMetadata, TensorPrimitive};
use burn_cubecl::CubeRuntime;
use cubecl::{
    prelude::KernelId,
    server::{Binding, KernelArguments},
    CubeCount,
};
use derive_new::new;

#[cfg(feature = "cuda")]
use super::masked_kl_cube::{cube_kl_backward, cube_kl_dtype, cube_kl_forward};

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

// ---------------------------------------------------------------------------------------------
// CUDA: the CubeCL kernels.

#[cfg(feature = "cuda")]
impl<F: FloatElement, I: IntElement, BT: BoolElement> KlBackend
    for CubeBackend<cubecl::cuda::CudaRuntime, F, I, BT>
{
    const KL_KERNEL: bool = true;

    fn kl_stats_dtype(x: DType) -> DType {
        if cube_kl_dtype(x) {
            DType::F32
        } else {
            x
        }
    }

    fn kl_forward(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        max_rows: Option<usize>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        if !cube_kl_dtype(x.dtype) || y.dtype != x.dtype || x.shape() != y.shape() {
            return forward_prims::<Self>(x, y);
        }
        cube_kl_forward(x, y, max_rows)
    }

    fn kl_backward(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        wrt: KlWrt,
        max_rows: Option<usize>,
    ) -> FloatTensor<Self> {
        let kernel = cube_kl_dtype(x.dtype)
            && y.dtype == x.dtype
            && grad.dtype == x.dtype
            && stats.dtype == DType::F32
            && x.shape() == y.shape();
        if kernel {
            return cube_kl_backward(x, y, stats, grad, wrt, max_rows);
        }
        backward_prims::<Self>(x, y, stats, grad, wrt)
    }
}

// ---------------------------------------------------------------------------------------------
// wgpu: the WGSL kernels.

kernel_source!(MaskedKlForwardWgsl, "../../shaders/masked_kl.wgsl");
kernel_source!(
    MaskedKlBackwardWgsl,
    "../../shaders/masked_kl_backward.wgsl"
);

const WORKGROUP: u32 = 256;

/// Which of the two WGSL sources a launch uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Shader {
    Forward,
    Backward,
}

/// A masked-KL WGSL kernel with its placeholders filled in; the shader and the workgroup size
/// tell compiled pipelines apart.
#[derive(new, Debug)]
struct MaskedKlKernel<E: FloatElement> {
    shader: Shader,
    cube_dim: CubeDim,
    _e: PhantomData<E>,
}

impl<E: FloatElement> KernelSource for MaskedKlKernel<E> {
    fn source(&self) -> SourceTemplate {
        match self.shader {
            Shader::Forward => MaskedKlForwardWgsl::new().source(),
            Shader::Backward => MaskedKlBackwardWgsl::new().source(),
        }
        .register("workgroup_size_x", self.cube_dim.x.to_string())
        .register("elem", E::type_name())
    }
    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((self.shader, self.cube_dim))
    }
}

type Wgpu<F, I, BT> = CubeBackend<WgpuRuntime, F, I, BT>;

impl<F: FloatElement, I: IntElement, BT: BoolElement> KlBackend for Wgpu<F, I, BT> {
    const KL_KERNEL: bool = true;

    fn kl_forward(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        max_rows: Option<usize>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        if !kernel_dtype::<F>(&x, &y) {
            return forward_prims::<Self>(x, y);
        }
        let [n, v] = dims2(&x);
        let device = x.device.clone();
        if n == 0 {
            return (
                prim(Tensor::<Self, 1>::zeros([0], &device)),
                prim(Tensor::<Self, 2>::zeros([0, STATS_COLS], &device)),
            );
        }
        let step = rows_per_launch(&x, v, max_rows);
        if step >= n {
            return launch_forward::<F>(into_contiguous(x), into_contiguous(y));
        }
        let (xt, yt) = (float::<Self, 2>(x), float::<Self, 2>(y));
        let (mut kls, mut stats) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(step) {
            let len = step.min(n - start);
            let (kl, st) = launch_forward::<F>(
                into_contiguous(prim(xt.clone().narrow(0, start, len))),
                into_contiguous(prim(yt.clone().narrow(0, start, len))),
            );
            kls.push(float::<Self, 1>(kl));
            stats.push(float::<Self, 2>(st));
        }
        (prim(Tensor::cat(kls, 0)), prim(Tensor::cat(stats, 0)))
    }

    fn kl_backward(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        wrt: KlWrt,
        max_rows: Option<usize>,
    ) -> FloatTensor<Self> {
        if !kernel_dtype::<F>(&x, &y) || stats.dtype != x.dtype || grad.dtype != x.dtype {
            return backward_prims::<Self>(x, y, stats, grad, wrt);
        }
        let [n, v] = dims2(&x);
        if n == 0 {
            return x;
        }
        let step = rows_per_launch(&x, v, max_rows);
        if step >= n {
            return launch_backward::<F>(
                into_contiguous(x),
                into_contiguous(y),
                into_contiguous(stats),
                into_contiguous(grad),
                wrt,
            );
        }
        let (xt, yt) = (float::<Self, 2>(x), float::<Self, 2>(y));
        let (st, gt) = (float::<Self, 2>(stats), float::<Self, 1>(grad));
        let mut parts = Vec::new();
        for start in (0..n).step_by(step) {
            let len = step.min(n - start);
            let part = launch_backward::<F>(
                into_contiguous(prim(xt.clone().narrow(0, start, len))),
                into_contiguous(prim(yt.clone().narrow(0, start, len))),
                into_contiguous(prim(st.clone().narrow(0, start, len))),
                into_contiguous(prim(gt.clone().narrow(0, start, len))),
                wrt,
            );
            parts.push(float::<Self, 2>(part));
        }
        prim(Tensor::cat(parts, 0))
    }
}

/// The kernels read and write the backend's float element; only f32 is compiled and tested.
fn kernel_dtype<F: FloatElement>(x: &CubeTensor<WgpuRuntime>, y: &CubeTensor<WgpuRuntime>) -> bool {
    x.dtype == DType::F32
        && y.dtype == DType::F32
        && F::dtype() == DType::F32
        && x.shape() == y.shape()
}

pub(super) fn dims2<R: CubeRuntime>(t: &CubeTensor<R>) -> [usize; 2] {
    let shape = t.shape();
    assert_eq!(
        shape.num_dims(),
        2,
        "masked KL expects [n, v] logits, got {shape:?}"
    );
    [shape[0], shape[1]]
}

/// Rows per launch: one storage binding must hold the chunk (`max_page_size` is the adapter's
/// `max_storage_buffer_binding_size`), its flat indices must fit the shaders' u32, and the
/// forward launches one workgroup per row (`max_cube_count`).
fn rows_per_launch(t: &CubeTensor<WgpuRuntime>, v: usize, max_rows: Option<usize>) -> usize {
    let props = t.client.properties();
    let row_bytes = (v.max(1) * core::mem::size_of::<f32>()) as u64;
    let by_binding = (props.memory.max_page_size / row_bytes) as usize;
    let by_index = (u32::MAX as usize) / v.max(1);
    let (gx, gy, _) = props.hardware.max_cube_count;
    let by_grid = gx.min(gy) as usize;
    let limit = by_binding.min(by_index).min(by_grid);
    max_rows.map_or(limit, |m| m.min(limit)).max(1)
}

fn empty_like(t: &CubeTensor<WgpuRuntime>, shape: Shape) -> CubeTensor<WgpuRuntime> {
    let bytes = shape.num_elements() * t.dtype.size();
    CubeTensor::new_contiguous(
        t.client.clone(),
        t.device.clone(),
        shape,
        t.client.empty(bytes),
        t.dtype,
    )
}

/// One launch of `shaders/masked_kl.wgsl` over contiguous `[n, v]` inputs.
fn launch_forward<F: FloatElement>(
    x: CubeTensor<WgpuRuntime>,
    y: CubeTensor<WgpuRuntime>,
) -> (CubeTensor<WgpuRuntime>, CubeTensor<WgpuRuntime>) {
    let [n, v] = dims2(&x);
    let kl = empty_like(&x, Shape::new([n]));
    let stats = empty_like(&x, Shape::new([n, STATS_COLS]));
    let info = x
        .client
        .create_from_slice(bytemuck::cast_slice(&[n as u32, v as u32]));
    launch::<F>(
        &x,
        Shader::Forward,
        CubeCount::Static(n as u32, 1, 1),
        vec![
            x.handle.clone().binding(),
            y.handle.clone().binding(),
            kl.handle.clone().binding(),
            stats.handle.clone().binding(),
            info.binding(),
        ],
    );
    (kl, stats)
}

/// One launch of `shaders/masked_kl_backward.wgsl` over contiguous `[n, v]` inputs.
fn launch_backward<F: FloatElement>(
    x: CubeTensor<WgpuRuntime>,
    y: CubeTensor<WgpuRuntime>,
    stats: CubeTensor<WgpuRuntime>,
    grad: CubeTensor<WgpuRuntime>,
    wrt: KlWrt,
) -> CubeTensor<WgpuRuntime> {
    let [n, v] = dims2(&x);
    let out = empty_like(&x, Shape::new([n, v]));
    let (max_x, _, _) = x.client.properties().hardware.max_cube_count;
    let blocks_x = (v as u32).div_ceil(WORKGROUP).clamp(1, max_x);
    let wrt_flag = match wrt {
        KlWrt::X => 0u32,
        KlWrt::Y => 1u32,
    };
    let info = x.client.create_from_slice(bytemuck::cast_slice(&[
        n as u32, v as u32, wrt_flag, blocks_x,
    ]));
    launch::<F>(
        &x,
        Shader::Backward,
        CubeCount::Static(blocks_x, n as u32, 1),
        vec![
            x.handle.clone().binding(),
            y.handle.clone().binding(),
            stats.handle.clone().binding(),
            grad.handle.clone().binding(),
            out.handle.clone().binding(),
            info.binding(),
        ],
    );
    out
}

/// Launches one of the shaders on `on`'s client with `WORKGROUP` invocations per workgroup.
fn launch<F: FloatElement>(
    on: &CubeTensor<WgpuRuntime>,
    shader: Shader,
    count: CubeCount,
    buffers: Vec<Binding>,
) {
    let cube_dim = CubeDim {
        x: WORKGROUP,
        y: 1,
        z: 1,
    };
    on.client.launch(
        Box::new(SourceKernel::new(
            MaskedKlKernel::<F>::new(shader, cube_dim),
            cube_dim,
        )),
        count,
        KernelArguments::new().with_buffers(buffers),
    );
}

// ---------------------------------------------------------------------------------------------
// Fusion: a custom operation that runs the inner backend's implementation when the stream runs.

mod fusion_impl {
    use super::*;
    use burn::backend::ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};
    use burn_fusion::{
        stream::{Operation, OperationStreams},
        Fusion, FusionBackend, FusionRuntime,
    };

    #[derive(new, Clone, Debug)]
    struct ForwardOp<B1> {
        desc: CustomOpIr,
        max_rows: Option<usize>,
        _b: PhantomData<B1>,
    }

    impl<B1: FusionBackend + KlBackend> Operation<B1::FusionRuntime> for ForwardOp<B1> {
        fn execute(
            &self,
            h: &mut HandleContainer<<B1::FusionRuntime as FusionRuntime>::FusionHandle>,
        ) {
            let ([x, y], [kl, stats]) = self.desc.as_fixed();
            let (out_kl, out_stats) = B1::kl_forward(
                h.get_float_tensor::<B1>(x),
                h.get_float_tensor::<B1>(y),
                self.max_rows,
            );
            h.register_float_tensor::<B1>(&kl.id, out_kl);
            h.register_float_tensor::<B1>(&stats.id, out_stats);
        }
    }

    #[derive(new, Clone, Debug)]
    struct BackwardOp<B1> {
        desc: CustomOpIr,
        wrt: KlWrt,
        max_rows: Option<usize>,
        _b: PhantomData<B1>,
    }

    impl<B1: FusionBackend + KlBackend> Operation<B1::FusionRuntime> for BackwardOp<B1> {
        fn execute(
            &self,
            h: &mut HandleContainer<<B1::FusionRuntime as FusionRuntime>::FusionHandle>,
        ) {
            let ([x, y, stats, grad], [out]) = self.desc.as_fixed();
            let result = B1::kl_backward(
                h.get_float_tensor::<B1>(x),
                h.get_float_tensor::<B1>(y),
                h.get_float_tensor::<B1>(stats),
                h.get_float_tensor::<B1>(grad),
                self.wrt,
                self.max_rows,
            );
            h.register_float_tensor::<B1>(&out.id, result);
        }
    }

    impl<B: FusionBackend + KlBackend> KlBackend for Fusion<B> {
        const KL_KERNEL: bool = B::KL_KERNEL;

        fn kl_stats_dtype(x: DType) -> DType {
            B::kl_stats_dtype(x)
        }

        fn kl_forward(
            x: FloatTensor<Self>,
            y: FloatTensor<Self>,
            max_rows: Option<usize>,
        ) -> (FloatTensor<Self>, FloatTensor<Self>) {
            let client = x.client.clone();
            let n = x.shape[0];
            let streams = OperationStreams::with_inputs([&x, &y]);
            let kl = TensorIr::uninit(client.create_empty_handle(), Shape::new([n]), x.dtype);
            let stats = TensorIr::uninit(
                client.create_empty_handle(),
                Shape::new([n, STATS_COLS]),
                B::kl_stats_dtype(x.dtype),
            );
            let desc = CustomOpIr::new(
                "masked_kl_forward",
                &[x.into_ir(), y.into_ir()],
                &[kl, stats],
            );
            let mut outs = client.register(
                streams,
                OperationIr::Custom(desc.clone()),
                ForwardOp::<B>::new(desc, max_rows),
            );
            assert_eq!(outs.len(), 2, "masked_kl_forward registers two outputs");
            let stats = outs.remove(1);
            let kl = outs.remove(0);
            (kl, stats)
        }

        fn kl_backward(
            x: FloatTensor<Self>,
            y: FloatTensor<Self>,
            stats: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            wrt: KlWrt,
            max_rows: Option<usize>,
        ) -> FloatTensor<Self> {
            let client = x.client.clone();
            let shape = x.shape.clone();
            let dtype = x.dtype;
            let streams = OperationStreams::with_inputs([&x, &y, &stats, &grad]);
            let out = TensorIr::uninit(client.create_empty_handle(), shape, dtype);
            let desc = CustomOpIr::new(
                "masked_kl_backward",
                &[x.into_ir(), y.into_ir(), stats.into_ir(), grad.into_ir()],
                &[out],
            );
            let mut outs = client.register(
                streams,
                OperationIr::Custom(desc.clone()),
                BackwardOp::<B>::new(desc, wrt, max_rows),
            );
            assert_eq!(outs.len(), 1, "masked_kl_backward registers one output");
            outs.remove(0)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Autodiff: forward through the inner backend, backward through its `kl_backward`.

impl<B: KlBackend, C: CheckpointStrategy> KlBackend for Autodiff<B, C> {
    const KL_KERNEL: bool = B::KL_KERNEL;

    fn kl_stats_dtype(x: DType) -> DType {
        B::kl_stats_dtype(x)
    }

    fn kl_forward(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        max_rows: Option<usize>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        #[derive(Debug)]
        struct KlBackward {
            max_rows: Option<usize>,
        }

        impl<B: KlBackend> Backward<B, 2> for KlBackward {
            /// (x, y, stats): the inputs are kept (not checkpointed) because the backward
            /// re-reads them in full anyway.
            type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let [node_x, node_y] = ops.parents;
                let g = grads.consume::<B>(&ops.node); // [n]
                let (x, y, stats) = ops.state;
                if let Some(node) = node_y {
                    let gy = B::kl_backward(
                        x.clone(),
                        y.clone(),
                        stats.clone(),
                        g.clone(),
                        KlWrt::Y,
                        self.max_rows,
                    );
                    grads.register::<B>(node.id, gy);
                }
                if let Some(node) = node_x {
                    let gx = B::kl_backward(x, y, stats, g, KlWrt::X, self.max_rows);
                    grads.register::<B>(node.id, gx);
                }
            }
        }

        let (kl, stats) = B::kl_forward(x.primitive.clone(), y.primitive.clone(), max_rows);
        let stats_out = <Self as AutodiffBackend>::from_inner(stats.clone());
        let kl_out = match (KlBackward { max_rows })
            .prepare::<C>([x.node.clone(), y.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x.primitive, y.primitive, stats), kl),
            OpsKind::UnTracked(prep) => prep.finish(kl),
        };
        (kl_out, stats_out)
    }
}

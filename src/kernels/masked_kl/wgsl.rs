//! wgpu: the WGSL kernels `shaders/masked_kl.wgsl` and `shaders/masked_kl_backward.wgsl`, launched
//! per chunk of rows that fits the adapter's buffer and dispatch limits (f32 only; other dtypes
//! take the tensor-op fallback).

use std::marker::PhantomData;

use burn::backend::wgpu::{
    into_contiguous, kernel_source, BoolElement, CubeBackend, CubeDim, CubeTensor, FloatElement,
    IntElement, KernelSource, SourceKernel, SourceTemplate, WgpuRuntime,
};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape, Tensor, TensorMetadata};
use cubecl::{
    prelude::KernelId,
    server::{Binding, KernelArguments},
    CubeCount,
};
use derive_new::new;

use super::{backward_prims, dims2, float, forward_prims, prim, KlBackend, KlWrt, STATS_COLS};

kernel_source!(MaskedKlForwardWgsl, "../../../shaders/masked_kl.wgsl");
kernel_source!(
    MaskedKlBackwardWgsl,
    "../../../shaders/masked_kl_backward.wgsl"
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

//! The CubeCL masked-KL kernels (src/kernels/masked_kl/cube.rs, CUDA's fused kernel) launched on
//! wgpu (lavapipe in CI) through their runtime-generic entry points, held to kl_kernel.rs's f64
//! reference, cases and bound |a − b| ≤ 1e-5·(1 + |ref|) for f32 inputs. No GPU runs here, so
//! the CUDA wiring is only checked without a device (module `cuda`, feature `cuda`); these are the
//! same kernels it launches.

use burn::backend::wgpu::{CubeBackend, WgpuRuntime};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape, Tensor, TensorData, TensorMetadata, TensorPrimitive};
use mdu_workbench::kernels::masked_kl::cube::{cube_kl_backward, cube_kl_forward};
use mdu_workbench::kernels::masked_kl::STATS_COLS;
use mdu_workbench::kernels::KlWrt;

use super::kl_kernel::{
    assert_close_tol, device, host, logits, reference, weights, Logits, CASES, TOL,
};

/// The bare wgpu backend: the cube entry points take its primitives.
type Cube = CubeBackend<WgpuRuntime, f32, i32, u32>;

/// f16 inputs: the kernels accumulate in f32 (the f32 statistics meet [`TOL`]), but `kl` and the
/// gradients are rounded to f16 on the way out, 2^-11 ≈ 4.9e-4 relative.
const F16_TOL: f64 = 1e-3;

/// `values` as a tensor of `dtype` on the wgpu device (exact when they are representable in it).
fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], dtype: DType) -> FloatTensor<Cube> {
    Tensor::<Cube, D>::from_data(TensorData::new(values, shape), &device())
        .cast(dtype)
        .into_primitive()
        .tensor()
}

fn to_host<const D: usize>(t: FloatTensor<Cube>) -> Vec<f32> {
    host(Tensor::<Cube, D>::from_primitive(TensorPrimitive::Float(t)))
}

/// `values` rounded to `dtype`, so that the f64 reference sees the kernels' inputs.
fn representable(values: Vec<f32>, dtype: DType) -> Vec<f32> {
    match dtype {
        DType::F16 => values
            .into_iter()
            .map(|v| half::f16::from_f32(v).to_f32())
            .collect(),
        DType::F32 => values,
        other => panic!("no rounding for {other:?}"),
    }
}

/// The cube kernels on `dtype` inputs: KL (in `dtype`), the f32 statistics' KL column and both
/// gradients of Σ_r w_r·KL_r (in `dtype`) against the reference of the rounded inputs.
fn run_cube_case(
    tol: f64,
    dtype: DType,
    (n, v, kind, max_rows): (usize, usize, Logits, Option<usize>),
    seed: u64,
) {
    let (x, y) = logits(n, v, kind, seed);
    let (x, y) = (representable(x, dtype), representable(y, dtype));
    let w = representable(weights(n, seed), dtype);
    let want = reference(&x, &y, n, v, &w);
    let label = format!("cube kernels, {dtype:?} (n {n}, v {v}, {kind:?}, max_rows {max_rows:?})");
    let (xt, yt) = (tensor(x, [n, v], dtype), tensor(y, [n, v], dtype));
    let wt = tensor(w, [n], dtype);
    let (kl, stats) = cube_kl_forward(xt.clone(), yt.clone(), max_rows);
    assert_eq!((kl.dtype, stats.dtype), (dtype, DType::F32), "{label}");
    let gx = cube_kl_backward(
        xt.clone(),
        yt.clone(),
        stats.clone(),
        wt.clone(),
        KlWrt::X,
        max_rows,
    );
    let gy = cube_kl_backward(xt, yt, stats.clone(), wt, KlWrt::Y, max_rows);
    assert_eq!((gx.dtype, gy.dtype), (dtype, dtype), "{label}");
    assert_close_tol(&format!("{label}: KL"), &to_host::<1>(kl), &want.kl, tol);
    let stats = to_host::<2>(stats);
    let kl_f32: Vec<f32> = stats.chunks(STATS_COLS).map(|row| row[0]).collect();
    assert_close_tol(&format!("{label}: f32 stats KL"), &kl_f32, &want.kl, TOL);
    assert_close_tol(
        &format!("{label}: ∂/∂x"),
        &to_host::<2>(gx),
        &want.grad_x,
        tol,
    );
    assert_close_tol(
        &format!("{label}: ∂/∂y"),
        &to_host::<2>(gy),
        &want.grad_y,
        tol,
    );
}

/// kl_kernel.rs's [`CASES`] (V ∈ {7, 1000, 126464}, ±1e4 logits, shared −inf ids, N = 1, forced
/// small chunks), same seeds, f32 inputs, forward and both backwards.
#[test]
fn cube_kernels_match_f64_reference_on_wgpu() {
    for (k, &case) in CASES.iter().enumerate() {
        run_cube_case(TOL, DType::F32, case, 100 + k as u64);
    }
}

/// f16 inputs (lavapipe has f16; bf16 is not offered there, see `supports_dtype`): the same
/// cases against the reference of the f16-rounded inputs, within [`F16_TOL`].
#[test]
fn cube_kernels_take_f16_inputs_on_wgpu() {
    if !Cube::supports_dtype(&device(), DType::F16) {
        eprintln!("cube_kernels_take_f16_inputs_on_wgpu: this adapter has no f16, skipped");
        return;
    }
    for (k, &case) in CASES.iter().enumerate() {
        run_cube_case(F16_TOL, DType::F16, case, 200 + k as u64);
    }
}

/// N = 0 rows: empty KL, statistics and gradient, without a launch.
#[test]
fn cube_kernels_zero_rows_on_wgpu() {
    let x = tensor(Vec::new(), [0, 7], DType::F32);
    let (kl, stats) = cube_kl_forward(x.clone(), x.clone(), None);
    let g = cube_kl_backward(x.clone(), x, stats.clone(), kl.clone(), KlWrt::X, None);
    assert_eq!(kl.shape(), Shape::new([0]));
    assert_eq!(stats.shape(), Shape::new([0, STATS_COLS]));
    assert_eq!(g.shape(), Shape::new([0, 7]));
    assert!(to_host::<1>(kl).is_empty() && to_host::<2>(g).is_empty());
}

/// Reverse KL(p_t ‖ p_c) as MDU dispatches it: the kernels with x = target, y = conditional; the
/// conditional's gradient is the ∂/∂y kernel.
#[test]
fn cube_kernels_reverse_kl_on_wgpu() {
    let (n, v) = (6, 500);
    let (c, t) = logits(n, v, Logits::Normal(2.0), 42);
    let want = reference(&t, &c, n, v, &vec![1.0; n]);
    let (ct, tt) = (tensor(c, [n, v], DType::F32), tensor(t, [n, v], DType::F32));
    let (kl, stats) = cube_kl_forward(tt.clone(), ct.clone(), None);
    let ones = tensor(vec![1.0; n], [n], DType::F32);
    let gc = cube_kl_backward(tt, ct, stats, ones, KlWrt::Y, None);
    assert_close_tol("cube reverse KL: KL", &to_host::<1>(kl), &want.kl, TOL);
    assert_close_tol(
        "cube reverse KL: ∂/∂z_c",
        &to_host::<2>(gc),
        &want.grad_y,
        TOL,
    );
}

/// `burn::backend::Cuda` (Fusion around `CubeBackend<CudaRuntime>`) and Autodiff around it, checked
/// without a device: they take the cube kernels, with f32 statistics for 16-bit inputs.
#[cfg(feature = "cuda")]
mod cuda {
    use burn::backend::{Autodiff, Cuda};
    use burn::tensor::DType;
    use mdu_workbench::kernels::KlBackend;

    // At compile time (`cargo check --features cuda --tests`).
    const _: () =
        assert!(<Cuda as KlBackend>::KL_KERNEL && <Autodiff<Cuda> as KlBackend>::KL_KERNEL);

    #[test]
    fn cuda_statistics_stay_f32() {
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            assert_eq!(
                <Autodiff<Cuda> as KlBackend>::kl_stats_dtype(dtype),
                DType::F32
            );
        }
    }
}

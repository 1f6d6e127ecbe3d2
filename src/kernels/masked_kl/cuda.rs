//! CUDA (feature `cuda`): the CubeCL kernels of [`super::cube`] for f32, f16 and bf16 inputs (f32
//! statistics); other dtypes take the tensor-op fallback.

use burn::backend::wgpu::{BoolElement, CubeBackend, FloatElement, IntElement};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, TensorMetadata};

use super::cube::{cube_kl_backward, cube_kl_dtype, cube_kl_forward};
use super::{backward_prims, forward_prims, KlBackend, KlWrt};

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

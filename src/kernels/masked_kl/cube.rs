//! The masked KL's forward and backward as CubeCL `#[cube]` kernels, for runtimes that cannot run
//! the WGSL shaders: CUDA has no WGSL, so this is its fused kernel (`KlBackend` for
//! `CubeBackend<CudaRuntime, ..>` in cuda.rs). The launches are generic over the runtime, so
//! the same kernels also run on wgpu, where the tests hold them to the f64 reference (the WGSL
//! kernels stay the default there).
//!
//! Same contract and numerics as shaders/masked_kl.wgsl and masked_kl_backward.wgsl (their
//! comments derive the maths): one cube of `BLOCK` units per row with an online max/Σexp and
//! the centre pair, a −inf logit on either side contributes 0, a shared-memory tree merge. Inputs
//! may be f32, f16 or bf16: every value is widened to f32 on load and all accumulation is f32;
//! `kl` and the gradient have the input dtype, the statistics `[n, 12]` are always f32 (rounding
//! x_c, K̃ or C to 16 bits would cost the precision the centre pair is there to keep).

use burn::tensor::{DType, Shape, TensorMetadata};
use burn_cubecl::{
    kernel::into_contiguous, ops::numeric::empty_device_dtype, tensor::CubeTensor, CubeRuntime,
};
use cubecl::prelude::*;

use super::{dims2, KlWrt, STATS_COLS};

/// Units per cube: the forward's per-row reduction width, and the backward's block.
const BLOCK: u32 = 256;

/// Whether the kernels take inputs of this dtype (they widen to f32 on load).
pub fn cube_kl_dtype(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F16 | DType::BF16)
}

/// `-inf` by its bits: immune to compilers that assume no infinities.
#[cube]
fn is_neg_inf(v: f32) -> bool {
    u32::reinterpret(v) == 0xff80_0000u32
}

/// One unit's (or a merged subtree's) online state, as in masked_kl.wgsl.
#[derive(CubeType, Clone, Copy)]
struct State {
    mx: f32,
    sx: f32,
    my: f32,
    sy: f32,
    xc: f32,
    yc: f32,
    a: f32,
    p: f32,
}

/// The state's 8 fields live in one shared array, field-major: field `f` of unit `i` is at
/// `f·block + i`.
#[cube]
fn store(sh: &mut SharedMemory<f32>, i: usize, s: State, #[comptime] block: usize) {
    sh[i] = s.mx;
    sh[block + i] = s.sx;
    sh[2 * block + i] = s.my;
    sh[3 * block + i] = s.sy;
    sh[4 * block + i] = s.xc;
    sh[5 * block + i] = s.yc;
    sh[6 * block + i] = s.a;
    sh[7 * block + i] = s.p;
}

#[cube]
fn load(sh: &SharedMemory<f32>, i: usize, #[comptime] block: usize) -> State {
    State {
        mx: sh[i],
        sx: sh[block + i],
        my: sh[2 * block + i],
        sy: sh[3 * block + i],
        xc: sh[4 * block + i],
        yc: sh[5 * block + i],
        a: sh[6 * block + i],
        p: sh[7 * block + i],
    }
}

/// Both states relative to the common max x (weights e^{−Δ}) and the common centre (moving it
/// adds δ to every d_v), summed. A state with P = 0 has a meaningless centre, multiplied by 0.
#[cube]
fn merge(u: State, w: State) -> State {
    let mx = f32::max(u.mx, w.mx);
    let my = f32::max(u.my, w.my);
    let eu = f32::exp(u.mx - mx);
    let ew = f32::exp(w.mx - mx);
    let mut xc = w.xc;
    let mut yc = w.yc;
    if u.xc >= w.xc {
        xc = u.xc;
        yc = u.yc;
    }
    let du = (yc - u.yc) - (xc - u.xc);
    let dw = (yc - w.yc) - (xc - w.xc);
    State {
        mx,
        sx: u.sx * eu + w.sx * ew,
        my,
        sy: u.sy * f32::exp(u.my - my) + w.sy * f32::exp(w.my - my),
        xc,
        yc,
        a: eu * (u.a + du * u.p) + ew * (w.a + dw * w.p),
        p: u.p * eu + w.p * ew,
    }
}

/// Forward: cube `r` of the grid reduces row `row0 + r` of contiguous `[n, v]` inputs and
/// writes `kl[row]` and `stats[row, 0..12]` (layout: masked_kl.wgsl).
#[cube(launch_unchecked, address_type = "dynamic")]
fn masked_kl_forward_kernel<F: Float>(
    x: &Tensor<F>,
    y: &Tensor<F>,
    kl: &mut Tensor<F>,
    stats: &mut Tensor<f32>,
    row0: u32,
    #[comptime] block: usize,
    #[define(F)] _dtype: StorageType,
) {
    let cols = x.shape(1);
    // The grid has exactly one cube per row of this launch: no early return before the barriers.
    let row = (row0 + CUBE_POS_X) as usize;
    let t = UNIT_POS_X as usize;
    let base = row * cols;
    // "No finite value seen yet". Finite, so that differences of maxima stay finite and
    // exp(−Δ) underflows to exactly 0 (with −inf, Δ·0 would be NaN).
    let empty = f32::new(-3.0e38);
    let mut s = State {
        mx: empty,
        sx: f32::new(0.0),
        my: empty,
        sy: f32::new(0.0),
        xc: empty,
        yc: empty,
        a: f32::new(0.0),
        p: f32::new(0.0),
    };
    let mut v = t;
    while v < cols {
        let zx = f32::cast_from(x[base + v]);
        let zy = f32::cast_from(y[base + v]);
        let fx = !is_neg_inf(zx);
        let fy = !is_neg_inf(zy);
        if fy {
            if zy > s.my {
                s.sy = s.sy * f32::exp(s.my - zy) + f32::new(1.0);
                s.my = zy;
            } else {
                s.sy += f32::exp(zy - s.my);
            }
        }
        if fx {
            let mut w = f32::new(1.0);
            if zx > s.mx {
                let e = f32::exp(s.mx - zx);
                s.sx = s.sx * e + f32::new(1.0);
                s.a *= e;
                s.p *= e;
                s.mx = zx;
            } else {
                w = f32::exp(zx - s.mx);
                s.sx += w;
            }
            if fy {
                if zx > s.xc {
                    // New centre: shift the counted terms; this term's d is 0.
                    s.a += ((zy - s.yc) - (zx - s.xc)) * s.p;
                    s.xc = zx;
                    s.yc = zy;
                } else {
                    s.a += w * ((zx - s.xc) - (zy - s.yc));
                }
                s.p += w;
            }
        }
        v += block;
    }

    let mut sh = SharedMemory::<f32>::new(8 * block);
    store(&mut sh, t, s, block);
    sync_cube();
    // A runtime counter (a comptime one cannot be updated in the loop).
    let mut stride = (CUBE_DIM_X / 2) as usize;
    while stride > 0 {
        if t < stride {
            let merged = merge(load(&sh, t, block), load(&sh, t + stride, block));
            store(&mut sh, t, merged, block);
        }
        sync_cube();
        stride /= 2;
    }

    if t == 0 {
        let r = load(&sh, 0, block);
        let lsx = f32::ln(r.sx);
        let lsy = f32::ln(r.sy);
        let mut k = f32::new(0.0);
        let mut pf = f32::new(0.0);
        let mut kt = f32::new(0.0);
        let mut c = f32::new(0.0);
        // No term with both logits finite: nothing to count, KL 0 (the reference would give NaN).
        if r.p > f32::new(0.0) {
            pf = r.p / r.sx;
            kt = r.a / r.sx;
            c = ((r.xc - r.mx) - (r.yc - r.my)) + (lsy - lsx);
            k = kt + c * pf;
        }
        kl[row] = F::cast_from(k);
        let o = row * 12;
        stats[o] = k;
        stats[o + 1] = r.mx;
        stats[o + 2] = lsx;
        stats[o + 3] = r.my;
        stats[o + 4] = lsy;
        stats[o + 5] = pf;
        stats[o + 6] = r.xc;
        stats[o + 7] = r.yc;
        stats[o + 8] = kt;
        stats[o + 9] = c;
        stats[o + 10] = f32::new(0.0);
        stats[o + 11] = f32::new(0.0);
    }
}

/// Backward, elementwise (formulas: masked_kl_backward.wgsl): cube (bx, r) covers row
/// `row0 + r`, its units striding over the columns from `bx·block`.
#[cube(launch_unchecked, address_type = "dynamic")]
fn masked_kl_backward_kernel<F: Float>(
    x: &Tensor<F>,
    y: &Tensor<F>,
    stats: &Tensor<f32>,
    g: &Tensor<F>,
    grad: &mut Tensor<F>,
    row0: u32,
    #[comptime] wrt_y: bool,
    #[define(F)] _dtype: StorageType,
) {
    let cols = x.shape(1);
    let row = (row0 + CUBE_POS_Y) as usize;
    let o = row * 12;
    let mx = stats[o + 1];
    let lsx = stats[o + 2];
    let my = stats[o + 3];
    let lsy = stats[o + 4];
    let pf = stats[o + 5];
    let xc = stats[o + 6];
    let yc = stats[o + 7];
    let kt = stats[o + 8];
    let c = stats[o + 9];
    let gr = f32::cast_from(g[row]);
    let base = row * cols;
    let step = (CUBE_DIM_X * CUBE_COUNT_X) as usize;
    let mut v = (CUBE_POS_X * CUBE_DIM_X + UNIT_POS_X) as usize;
    while v < cols {
        let zx = f32::cast_from(x[base + v]);
        let zy = f32::cast_from(y[base + v]);
        let fx = !is_neg_inf(zx);
        let fy = !is_neg_inf(zy);
        let mut out = f32::new(0.0);
        if wrt_y {
            if fy {
                let lq = (zy - my) - lsy;
                let mut pb = f32::new(0.0);
                if fx {
                    pb = f32::exp((zx - mx) - lsx);
                }
                out = gr * (f32::exp(lq) * pf - pb);
            }
        } else if fx {
            let lp = (zx - mx) - lsx;
            let mut term = -kt - (c + f32::new(1.0)) * pf;
            if fy {
                term = ((zx - xc) - (zy - yc)) - kt + (c + f32::new(1.0)) * (f32::new(1.0) - pf);
            }
            out = gr * f32::exp(lp) * term;
        }
        grad[base + v] = F::cast_from(out);
        v += step;
    }
}

/// `[start, len]` row chunks: `limit` rows per launch (the grid's cube count along the rows'
/// axis), capped by `max_rows`.
fn chunks(n: usize, limit: u32, max_rows: Option<usize>) -> impl Iterator<Item = (u32, u32)> {
    let step = max_rows
        .map_or(limit as usize, |m| m.min(limit as usize))
        .max(1);
    (0..n)
        .step_by(step)
        .map(move |start| (start as u32, step.min(n - start) as u32))
}

/// `(kl [n], stats [n, 12] f32)` of contiguous-or-not `[n, v]` logits of a dtype that
/// [`cube_kl_dtype`] accepts; `max_rows` caps the rows per launch (tests force small chunks).
pub fn cube_kl_forward<R: CubeRuntime>(
    x: CubeTensor<R>,
    y: CubeTensor<R>,
    max_rows: Option<usize>,
) -> (CubeTensor<R>, CubeTensor<R>) {
    let [n, _] = dims2(&x);
    assert_eq!(x.shape(), y.shape(), "masked KL: x and y shapes differ");
    assert!(
        cube_kl_dtype(x.dtype) && y.dtype == x.dtype,
        "masked KL cube kernel: unsupported dtypes {:?}, {:?}",
        x.dtype,
        y.dtype
    );
    let (x, y) = (into_contiguous(x), into_contiguous(y));
    let (client, device) = (x.client.clone(), x.device.clone());
    let kl = empty_device_dtype(client.clone(), device.clone(), Shape::new([n]), x.dtype);
    let stats = empty_device_dtype(
        client.clone(),
        device,
        Shape::new([n, STATS_COLS]),
        DType::F32,
    );
    let address = x.required_address_type().max(stats.required_address_type());
    let (max_x, _, _) = client.properties().hardware.max_cube_count;
    for (row0, rows) in chunks(n, max_x, max_rows) {
        // SAFETY: every index is in bounds: rows row0..row0 + rows < n, columns < v, all four
        // tensors contiguous with the shapes allocated or checked above.
        unsafe {
            masked_kl_forward_kernel::launch_unchecked::<R>(
                &client,
                CubeCount::Static(rows, 1, 1),
                CubeDim::new_1d(BLOCK),
                address,
                x.clone().into_tensor_arg(),
                y.clone().into_tensor_arg(),
                kl.clone().into_tensor_arg(),
                stats.clone().into_tensor_arg(),
                row0,
                BLOCK as usize,
                x.dtype.into(),
            );
        }
    }
    (kl, stats)
}

/// `grad [n] · ∂KL/∂x` or `· ∂KL/∂y`, `[n, v]` in the inputs' dtype, from the forward's f32
/// statistics.
pub fn cube_kl_backward<R: CubeRuntime>(
    x: CubeTensor<R>,
    y: CubeTensor<R>,
    stats: CubeTensor<R>,
    grad: CubeTensor<R>,
    wrt: KlWrt,
    max_rows: Option<usize>,
) -> CubeTensor<R> {
    let [n, v] = dims2(&x);
    assert_eq!(x.shape(), y.shape(), "masked KL: x and y shapes differ");
    assert!(
        cube_kl_dtype(x.dtype) && y.dtype == x.dtype && grad.dtype == x.dtype,
        "masked KL cube kernel: unsupported dtypes {:?}, {:?}, {:?}",
        x.dtype,
        y.dtype,
        grad.dtype
    );
    assert_eq!(stats.dtype, DType::F32, "masked KL: the statistics are f32");
    let (x, y) = (into_contiguous(x), into_contiguous(y));
    let (stats, grad) = (into_contiguous(stats), into_contiguous(grad));
    let client = x.client.clone();
    let out = empty_device_dtype(
        client.clone(),
        x.device.clone(),
        Shape::new([n, v]),
        x.dtype,
    );
    let address = x.required_address_type();
    let (max_x, max_y, _) = client.properties().hardware.max_cube_count;
    let blocks_x = (v as u32).div_ceil(BLOCK).clamp(1, max_x);
    for (row0, rows) in chunks(n, max_y, max_rows) {
        // SAFETY: as in `cube_kl_forward`; the units stride over columns < v.
        unsafe {
            masked_kl_backward_kernel::launch_unchecked::<R>(
                &client,
                CubeCount::Static(blocks_x, rows, 1),
                CubeDim::new_1d(BLOCK),
                address,
                x.clone().into_tensor_arg(),
                y.clone().into_tensor_arg(),
                stats.clone().into_tensor_arg(),
                grad.clone().into_tensor_arg(),
                out.clone().into_tensor_arg(),
                row0,
                wrt == KlWrt::Y,
                x.dtype.into(),
            );
        }
    }
    out
}

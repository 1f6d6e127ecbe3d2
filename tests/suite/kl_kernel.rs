//! The masked-KL kernel (src/kernels/masked_kl/; shaders/masked_kl.wgsl and
//! masked_kl_backward.wgsl) on wgpu (lavapipe in CI) against an f64 reference computed here on
//! the host from the same f32 inputs, with the bound |a − b| ≤ 1e-5·(1 + |ref|) on every
//! KL value and every gradient entry. Then one MDU step on `Autodiff<WgpuBackend>`: the kernel path
//! (`kl_impl = auto`) against the composite tensor ops (`kl_impl = composite`, the reference),
//! same bound on the loss and on every parameter gradient.

use burn::backend::wgpu::WgpuDevice;
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use mdu_workbench::device::{CpuBackend, WgpuBackend};
use mdu_workbench::diffusion::batch::SftBatch;
use mdu_workbench::diffusion::loss::{LossWeighting, NoisedBatch};
use mdu_workbench::kernels::{kl_divergence_rows, KlBackend};
use mdu_workbench::model::init::random_init;
use mdu_workbench::model::ModelConfig;
use mdu_workbench::rng::SplitMix64;
use mdu_workbench::unlearn::methods::mdu::masked_kl;
use mdu_workbench::unlearn::{KlDirection, KlImpl, Method, MethodParams, StepBatches, StepContext};

type AdW = Autodiff<WgpuBackend>;
type AdCpu = Autodiff<CpuBackend>;

/// The bound: |a − b| ≤ TOL·(1 + |ref|).
pub const TOL: f64 = 1e-5;

pub fn device() -> WgpuDevice {
    WgpuDevice::DefaultDevice
}

#[derive(Clone, Copy, Debug)]
pub enum Logits {
    /// N(0, 1)·scale.
    Normal(f32),
    /// Entries ±1e4 (30 %) among N(0, 10) ones, and one row uniform in [−1e4, 1e4].
    Extreme,
    /// N(0, 2) with ~20 % of the ids −inf in both inputs (the same ids: excluded special tokens).
    NegInf,
}

pub fn logits(n: usize, v: usize, kind: Logits, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = SplitMix64(seed);
    let mut x = Vec::with_capacity(n * v);
    let mut y = Vec::with_capacity(n * v);
    for r in 0..n {
        for _ in 0..v {
            let (a, b) = match kind {
                Logits::Normal(s) => (rng.normal() * s, rng.normal() * s),
                Logits::Extreme if r == 0 => (
                    (rng.uniform() * 2e4 - 1e4) as f32,
                    (rng.uniform() * 2e4 - 1e4) as f32,
                ),
                Logits::Extreme => {
                    let e = |rng: &mut SplitMix64| {
                        if rng.uniform() < 0.3 {
                            if rng.uniform() < 0.5 {
                                1e4
                            } else {
                                -1e4
                            }
                        } else {
                            rng.normal() * 10.0
                        }
                    };
                    (e(&mut rng), e(&mut rng))
                }
                Logits::NegInf => {
                    if rng.uniform() < 0.2 {
                        (f32::NEG_INFINITY, f32::NEG_INFINITY)
                    } else {
                        (rng.normal() * 2.0, rng.normal() * 2.0)
                    }
                }
            };
            x.push(a);
            y.push(b);
        }
    }
    (x, y)
}

// The host f64 reference and the worst relative error live in the library (`mdu selftest` uses
// them too).
pub use mdu_workbench::kernels::reference::{kl_reference as reference, worst_relative as worst};

fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    assert_close_tol(what, got, want, TOL);
}

pub fn assert_close_tol(what: &str, got: &[f32], want: &[f64], tol: f64) {
    let (e, i) = worst(got, want);
    assert!(
        e <= tol,
        "{what}: |Δ|/(1+|ref|) = {e:e} > {tol:e} at {i}: got {}, want {}",
        got[i],
        want[i]
    );
}

pub fn host<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

/// The per-row weights w_r of the loss Σ_r w_r·KL_r whose gradients the cases check.
pub fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64(seed ^ 0x5EED);
    (0..n).map(|_| 0.5 + rng.uniform() as f32).collect()
}

/// KL values and both gradients of Σ_r w_r·KL_r through `kl_divergence_rows` on backend `A`,
/// within `tol`·(1 + |ref|).
#[allow(clippy::too_many_arguments)]
fn run_case<A: AutodiffBackend + KlBackend>(
    tol: f64,
    label: &str,
    n: usize,
    v: usize,
    kind: Logits,
    seed: u64,
    max_rows: Option<usize>,
    device: &A::Device,
) {
    let (x, y) = logits(n, v, kind, seed);
    let w = weights(n, seed);
    let want = reference(&x, &y, n, v, &w);
    let xt = Tensor::<A, 2>::from_data(TensorData::new(x, [n, v]), device).require_grad();
    let yt = Tensor::<A, 2>::from_data(TensorData::new(y, [n, v]), device).require_grad();
    let wt = Tensor::<A, 1>::from_data(TensorData::new(w, [n]), device);
    let kl = kl_divergence_rows(xt.clone(), yt.clone(), max_rows);
    assert_eq!(kl.dims(), [n], "{label}: KL shape");
    let grads = (kl.clone() * wt).sum().backward();
    let label = format!("{label} (n {n}, v {v}, {kind:?}, max_rows {max_rows:?})");
    assert_close_tol(&format!("{label}: KL"), &host(kl), &want.kl, tol);
    let gx = xt.grad(&grads).expect("x has a gradient");
    let gy = yt.grad(&grads).expect("y has a gradient");
    assert_close_tol(&format!("{label}: ∂/∂x"), &host(gx), &want.grad_x, tol);
    assert_close_tol(&format!("{label}: ∂/∂y"), &host(gy), &want.grad_y, tol);
}

/// `(n, v, logits, max_rows)`: random shapes, V ∈ {7, 1000, 126464}, ±1e4 logits, −inf entries,
/// N = 1, and chunked launches (forced to 2, 1 and 4 rows per launch).
pub const CASES: &[(usize, usize, Logits, Option<usize>)] = &[
    (1, 7, Logits::Normal(1.0), None),
    (5, 7, Logits::Normal(3.0), None),
    (13, 1000, Logits::Normal(2.0), None),
    (3, 126464, Logits::Normal(2.0), None),
    (6, 1000, Logits::Extreme, None),
    (2, 126464, Logits::Extreme, None),
    (7, 1000, Logits::NegInf, None),
    (4, 7, Logits::NegInf, None),
    (11, 333, Logits::Normal(1.5), Some(2)),
    (3, 1000, Logits::NegInf, Some(1)),
    (37, 5, Logits::Normal(1.0), Some(4)),
];

/// [`CASES`] on the WGSL kernels, forward and backward.
#[test]
fn kernel_matches_f64_reference_on_wgpu() {
    assert!(
        <AdW as KlBackend>::KL_KERNEL,
        "Autodiff<Fusion<CubeBackend<Wgpu>>> must take the kernel"
    );
    let d = device();
    for (k, &(n, v, kind, max_rows)) in CASES.iter().enumerate() {
        run_case::<AdW>(TOL, "wgpu kernel", n, v, kind, 100 + k as u64, max_rows, &d);
    }
}

/// The trait's tensor-op defaults (what a backend without a kernel would run if asked directly;
/// MDU itself takes the composite `kl_rows` there) meet the same f64 reference on ndarray: the
/// issue's 1e-5 for ordinary and −inf logits; 1e-4 for ±1e4 logits, where ndarray's sequential
/// f32 row sums of terms of ~1e4 miss 1e-5 (measured 2.0e-5; the kernel's tree sums meet it).
#[test]
fn tensor_op_defaults_match_f64_reference_on_cpu() {
    assert!(!<AdCpu as KlBackend>::KL_KERNEL);
    let d = Default::default();
    let label = "ndarray defaults";
    run_case::<AdCpu>(TOL, label, 5, 1000, Logits::Normal(2.0), 7, None, &d);
    run_case::<AdCpu>(TOL, label, 4, 37, Logits::NegInf, 8, None, &d);
    run_case::<AdCpu>(1e-4, label, 3, 100, Logits::Extreme, 9, None, &d);
}

/// N = 0 rows: an empty KL, and (through Autodiff) an empty gradient, without a launch.
#[test]
fn zero_rows_give_empty_results_on_wgpu() {
    let d = device();
    let x = Tensor::<WgpuBackend, 2>::zeros([0, 7], &d);
    let kl = kl_divergence_rows(x.clone(), x, None);
    assert_eq!(kl.dims(), [0]);
    let xa = Tensor::<AdW, 2>::zeros([0, 7], &d).require_grad();
    let ya = Tensor::<AdW, 2>::zeros([0, 7], &d);
    let kl = kl_divergence_rows(xa.clone(), ya, None);
    assert_eq!(kl.dims(), [0]);
    assert!(host(kl).is_empty());
}

/// The MDU dispatch: reverse KL(p_t ‖ p_c) runs the kernel with the inputs swapped; its value and
/// conditional gradient match the f64 reference, and match the composite on the same device.
#[test]
fn reverse_kl_dispatch_matches_reference_on_wgpu() {
    let d = device();
    let (n, v) = (6, 500);
    let (c, t) = logits(n, v, Logits::Normal(2.0), 42);
    // Reverse KL = KL(softmax(t) ‖ softmax(c)): the reference with x = t, y = c, weights 1.
    let want = reference(&t, &c, n, v, &vec![1.0; n]);
    for implementation in [KlImpl::Auto, KlImpl::Composite] {
        let ct = Tensor::<AdW, 2>::from_data(TensorData::new(c.clone(), [n, v]), &d).require_grad();
        let tt = Tensor::<AdW, 2>::from_data(TensorData::new(t.clone(), [n, v]), &d);
        let kl = masked_kl(ct.clone(), tt, KlDirection::Reverse, implementation);
        let grads = kl.clone().sum().backward();
        let label = format!("reverse KL, {implementation:?}");
        assert_close(&format!("{label}: KL"), &host(kl), &want.kl);
        let gc = ct.grad(&grads).expect("conditional has a gradient");
        assert_close(&format!("{label}: ∂/∂z_c"), &host(gc), &want.grad_y);
    }
}

/// One MDU step as `mdu unlearn` takes it (`Method::loss` → `null_anchor_kl` → backward) on a
/// tiny random LLaDA on `Autodiff<WgpuBackend>`: the kernel path against the composite reference
/// path, same loss and same gradient for every parameter entry within 1e-5·(1 + |ref|).
#[test]
fn mdu_step_kernel_matches_composite_on_wgpu() {
    let d = device();
    let config = ModelConfig::llada_shape(32, 2, 4, 64, 300);
    let mask = config.mask_token_id.expect("llada_shape sets a mask id");
    let (rows, width, prompt) = (4, 20, 8);
    let mut rng = SplitMix64(5);
    let batch = SftBatch {
        ids: (0..rows * width)
            .map(|_| rng.range(0, config.vocab_size - 2) as u32)
            .collect(),
        rows,
        width,
        maskable: (0..rows * width).map(|i| i % width >= prompt).collect(),
    };
    let noised = NoisedBatch::sample(&batch, &mut SplitMix64(6), mask, LossWeighting::InverseTime);
    assert!(noised.masked.len() > 4, "the batch must mask some answers");
    let model = random_init::<AdW>(&config, &d, 3, 0.2);
    let reference = model.valid();
    let special = [mask, mask - 1];
    let settings = [
        (0.5, 0.1, KlDirection::Forward, false),
        (0.0, 0.0, KlDirection::Forward, true),
        (1.0, 0.0, KlDirection::Reverse, false),
    ];
    for (tau, eta, kl, exclude_special) in settings {
        let run = |kl_impl: KlImpl| {
            let params = MethodParams {
                tau,
                eta,
                kl,
                exclude_special,
                kl_impl,
                ..MethodParams::default()
            };
            let ctx = StepContext {
                model: &model,
                reference: Some(&reference),
                device: &d,
                mask_id: mask,
                special_ids: &special,
            };
            let batches = StepBatches {
                forget: &noised,
                retain: Some(&noised),
            };
            let parts = Method::Mdu.loss(&ctx, &batches, &params);
            let forget = parts
                .parts
                .iter()
                .find(|(name, _)| *name == "forget")
                .expect("MDU reports its forget part")
                .1
                .clone()
                .into_scalar()
                .elem::<f64>();
            let loss = parts.total.clone().into_scalar().elem::<f64>();
            let grads = parts.total.backward();
            let named = model.map_named(
                |p| p.grad(&grads).map(|g| host(g)),
                |p| p.grad(&grads).map(|g| host(g)),
            );
            (loss, forget, named)
        };
        let (loss_k, forget_k, grads_k) = run(KlImpl::Auto);
        let (loss_c, forget_c, grads_c) = run(KlImpl::Composite);
        let label = format!("MDU τ {tau} η {eta} {kl:?} exclude_special {exclude_special}");
        assert!(
            forget_c > 1e-3,
            "{label}: the forget KL must be non-trivial"
        );
        for (what, k, c) in [("loss", loss_k, loss_c), ("forget", forget_k, forget_c)] {
            assert!(
                (k - c).abs() <= TOL * (1.0 + c.abs()),
                "{label}: {what} kernel {k} vs composite {c}"
            );
        }
        assert_eq!(grads_k.len(), grads_c.len());
        let mut compared = 0;
        for ((name, gk), (_, gc)) in grads_k.iter().zip(&grads_c) {
            let (gk, gc) = (
                gk.clone()
                    .expect("kernel path: every parameter has a gradient"),
                gc.clone()
                    .expect("composite path: every parameter has a gradient"),
            );
            let want: Vec<f64> = gc.iter().map(|&g| g as f64).collect();
            assert_close(&format!("{label}: ∂/∂{name}"), &gk, &want);
            compared += gk.len();
        }
        assert!(
            compared > 10_000,
            "only {compared} gradient entries compared"
        );
    }
}

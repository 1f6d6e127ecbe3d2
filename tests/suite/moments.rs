//! bf16 AdamW moments (`train::moments`): the rounding itself, why it must be stochastic, and an
//! optimiser run next to f32 moments.

use burn::optim::SimpleOptimizer;
use burn::tensor::{Distribution, Tensor, TensorData};
use half::bf16;
use mdu_workbench::device::CpuBackend as B;
use mdu_workbench::train::moments::{round_to_bf16, AdamWMoments};
use mdu_workbench::train::{adamw, MomentPrecision};

fn values(t: Tensor<B, 1>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

fn tensor(v: &[f32]) -> Tensor<B, 1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
}

/// Values across the f32 range: random mantissas at exponents −120…120, both signs, the powers
/// of two and their neighbours, zero, halfway cases.
fn awkward_values() -> Vec<f32> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut v = vec![
        0.0,
        1.0,
        -1.0,
        0.5,
        2.0,
        1.0 + 1.0 / 256.0,
        1.0 + 3.0 / 256.0,
    ];
    for e in -120..=120 {
        let p = 2f32.powi(e);
        v.extend([
            p,
            -p,
            f32::from_bits(p.to_bits() - 1),
            f32::from_bits(p.to_bits() + 1),
        ]);
        for _ in 0..8 {
            let mantissa = 1.0 + (next() >> 40) as f32 / (1u64 << 24) as f32;
            let sign = if next() & 1 == 0 { 1.0 } else { -1.0 };
            v.push(sign * mantissa * p);
        }
    }
    v
}

#[test]
fn rounding_to_nearest_is_bf16s_own() {
    let v = awkward_values();
    let rounded = values(round_to_bf16(tensor(&v), None));
    for (x, r) in v.iter().zip(&rounded) {
        // `half`'s f32 → bf16 conversion rounds to nearest, ties to even, as the hardware does.
        assert_eq!(*r, bf16::from_f32(*x).to_f32(), "{x:e}");
    }
}

#[test]
fn stochastic_rounding_lands_on_a_neighbour_and_is_right_on_average() {
    let v = awkward_values();
    let noise = tensor(&v).random_like(Distribution::Uniform(-0.5, 0.5));
    let rounded = values(round_to_bf16(tensor(&v), Some(noise)));
    for (x, r) in v.iter().zip(&rounded) {
        assert_eq!(
            *r,
            bf16::from_f32(*r).to_f32(),
            "{x:e} → {r:e} is not a bf16 value"
        );
        // The two bf16 values around x: truncation toward zero and the next one out.
        let low = f32::from_bits(x.to_bits() & 0xffff_0000);
        let high = f32::from_bits((x.to_bits() & 0xffff_0000) + 0x1_0000);
        assert!(
            *r == low || *r == high,
            "{x:e} → {r:e}, not {low:e} or {high:e}"
        );
    }
    // 1 + 1/3 of a bf16 step, 40,000 times: the mean's standard error is
    // √(p(1−p)/n)·step = 0.0024 steps, so 0.01 steps is over four of them.
    let step = 1.0 / 128.0;
    let x = 1.0 + step / 3.0;
    let n = 40_000;
    let xs = tensor(&vec![x; n]);
    let noise = xs.random_like(Distribution::Uniform(-0.5, 0.5));
    let mean = values(round_to_bf16(xs, Some(noise)))
        .iter()
        .map(|r| *r as f64)
        .sum::<f64>()
        / n as f64;
    assert!(
        ((mean - x as f64) / step as f64).abs() < 0.01,
        "mean {mean} of x = {x}"
    );
}

/// AdamW's second moment under a constant gradient, v ← β₂·v + (1 − β₂)·g², stored in bf16 after
/// every step: rounded to nearest it stops growing once 0.1 % of the gap to g² is under half a
/// bf16 step; rounded stochastically it follows the f32 value.
#[test]
fn nearest_rounding_stalls_the_second_moment_and_stochastic_rounding_does_not() {
    let (beta2, g2, steps, n) = (0.999f32, 1.0f32, 3000, 2048);
    let mut exact = 0.0f32;
    let mut nearest = tensor(&vec![0.0; n]);
    let mut stochastic = nearest.clone();
    let update = |v: Tensor<B, 1>| v.mul_scalar(beta2).add_scalar((1.0 - beta2) * g2);
    for _ in 0..steps {
        exact = beta2 * exact + (1.0 - beta2) * g2;
        nearest = round_to_bf16(update(nearest), None);
        let next = update(stochastic);
        let noise = next.random_like(Distribution::Uniform(-0.5, 0.5));
        stochastic = round_to_bf16(next, Some(noise));
    }
    // exact = 1 − 0.999³⁰⁰⁰ = 0.950.
    let nearest = values(nearest)[0];
    let mean = values(stochastic).iter().sum::<f32>() / n as f32;
    assert!(nearest < 0.6 * exact, "nearest {nearest} vs {exact}");
    // Each stored value carries rounding noise of about a bf16 step (0.4 %) around the f32
    // value; the mean of 2048 of them is far closer. 1 % leaves room and still fails a stall.
    assert!(
        (mean - exact).abs() < 0.01 * exact,
        "stochastic mean {mean} vs {exact}"
    );
}

/// 300 AdamW steps on one 4096-weight tensor with noisy gradients, f32 moments next to bf16 ones:
/// the bf16 moments are bf16 values after every step, and the weights travel the same way.
#[test]
fn bf16_moments_follow_f32_moments() {
    let n = 4096;
    let settings = |m| adamw(0.01).with_moments(m);
    let build = |m: MomentPrecision| AdamWMoments {
        inner: settings(m).config.build(),
        moments: m,
    };
    let (f32_optim, bf16_optim) = (build(MomentPrecision::F32), build(MomentPrecision::Bf16));
    let start = tensor(&vec![0.0; n]).random_like(Distribution::Normal(0.0, 1.0));
    let target = start.random_like(Distribution::Normal(0.0, 1.0));
    let (mut a, mut b) = (start.clone(), start.clone());
    let (mut state_a, mut state_b) = (None, None);
    for _ in 0..300 {
        // The same noisy gradient of ½‖w − target‖² for both, taken at each one's own weights.
        let noise = start.random_like(Distribution::Normal(0.0, 0.3));
        let (grad_a, grad_b) = (
            a.clone() - target.clone() + noise.clone(),
            b.clone() - target.clone() + noise,
        );
        (a, state_a) = SimpleOptimizer::<B>::step(&f32_optim, 1e-2, a, grad_a, state_a);
        (b, state_b) = SimpleOptimizer::<B>::step(&bf16_optim, 1e-2, b, grad_b, state_b);
    }
    let state = state_b.unwrap().momentum;
    for moment in [state.moment_1, state.moment_2] {
        for m in values(moment) {
            assert_eq!(m, bf16::from_f32(m).to_f32(), "{m:e} is not a bf16 value");
        }
    }
    let travelled = values((a.clone() - start).powf_scalar(2.0).sum())
        .remove(0)
        .sqrt();
    let apart = values((a - b).powf_scalar(2.0).sum()).remove(0).sqrt();
    // Per step the update m̂/√v̂ differs by the moments' rounding (≤ 0.4 % of each, zero on
    // average), so over 300 steps the weights drift apart by well under 1 % of the way travelled.
    assert!(
        apart < 0.01 * travelled,
        "{apart} apart after travelling {travelled}"
    );
}

/// The memory plan counts bf16 moments at 4 bytes per trained parameter where the device stores
/// bf16 and at f32's 8 where it does not; on LLaDA-8B (bf16 weights, MDU with τ > 0, 4 forget + 4
/// retain rows of 512 tokens, checkpointing) that is what brings full fine-tuning under the 80 GiB
/// of an "80 GB" card (an H100 80GB has 81,559 MiB).
#[test]
fn the_plan_counts_bf16_moments_where_the_device_stores_them() {
    use mdu_workbench::unlearn::config::UnlearnConfig;
    use mdu_workbench::unlearn::memory_plan::{MemoryPlan, PlanInputs};
    let model = mdu_workbench::bench::step::StepPreset::EightB.config();
    let run = |moments| UnlearnConfig {
        moments,
        params: mdu_workbench::unlearn::methods::MethodParams {
            tau: 0.5,
            ..Default::default()
        },
        batch_size: 4,
        checkpointing: mdu_workbench::unlearn::config::Checkpointing::On,
        ..UnlearnConfig::default()
    };
    let (f32_run, bf16_run) = (run(MomentPrecision::F32), run(MomentPrecision::Bf16));
    let plan = |run: &UnlearnConfig, bf16_storage: bool| {
        MemoryPlan::of(&PlanInputs::for_run(
            run,
            &model,
            512,
            2,
            bf16_storage,
            false,
        ))
    };
    let moments = |p: &MemoryPlan| {
        p.parts
            .iter()
            .find(|(n, _)| *n == "AdamW moments")
            .unwrap()
            .1
    };
    let params = model.num_parameters();
    assert_eq!(moments(&plan(&f32_run, true)), 8 * params);
    assert_eq!(moments(&plan(&bf16_run, true)), 4 * params);
    assert_eq!(
        moments(&plan(&bf16_run, false)),
        8 * params,
        "no bf16 storage"
    );
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let (full_f32, full_bf16) = (plan(&f32_run, true), plan(&bf16_run, true));
    eprintln!(
        "LLaDA-8B full, checkpointing, f32 moments: {}",
        full_f32.describe()
    );
    eprintln!(
        "LLaDA-8B full, checkpointing, bf16 moments: {}",
        full_bf16.describe()
    );
    assert!(gib(full_f32.total()) > 80.0);
    assert!(
        gib(full_bf16.total()) < 80.0,
        "{:.1} GiB",
        gib(full_bf16.total())
    );
}

//! Logit parity against the two PyTorch references, at f32 with max |Δ| ≤ 1e-4, with and without a
//! key-padding mask, on ndarray and on wgpu (lavapipe in CI).

use burn::backend::wgpu::WgpuDevice;
use burn::tensor::backend::Backend;
use mdu_workbench::checkpoint::MemoryBudget;
use mdu_workbench::device::{CpuBackend, WgpuBackend};
use mdu_workbench::load_model;

use crate::common::{fixture, flatten3, max_abs_diff, Reference, FIXTURES};

const TOLERANCE: f32 = 1e-4;

fn check_fixture<B: Backend>(name: &str, device: &B::Device) {
    let (_, model) =
        load_model::<B>(&fixture(name), device, &MemoryBudget::unlimited("test")).expect(name);
    let reference = Reference::load(name);
    let padding = reference.key_padding();
    let cases = [
        (
            "no mask",
            None,
            &reference.logits_nomask,
            &reference.transformers_logits_nomask,
        ),
        (
            "key-padding mask",
            Some(padding.as_slice()),
            &reference.logits_mask,
            &reference.transformers_logits_mask,
        ),
    ];
    for (label, mask, formula, transformers) in cases {
        let ours = model.logits_host(&reference.input_ids, mask, device);
        let d_formula = max_abs_diff(&ours, &flatten3(formula));
        let d_transformers = max_abs_diff(&ours, &flatten3(transformers));
        assert!(
            d_formula <= TOLERANCE,
            "{name} ({label}): max |ours - formula reference| = {d_formula:e}"
        );
        assert!(
            d_transformers <= TOLERANCE,
            "{name} ({label}): max |ours - transformers| = {d_transformers:e}"
        );
    }
}

#[test]
fn llada_f32_matches_references_on_cpu() {
    check_fixture::<CpuBackend>("llada_f32", &Default::default());
}

#[test]
fn llada_bf16_matches_references_on_cpu() {
    check_fixture::<CpuBackend>("llada_bf16", &Default::default());
}

#[test]
fn llada_sharded_matches_references_on_cpu() {
    check_fixture::<CpuBackend>("llada_sharded", &Default::default());
}

#[test]
fn dream_gqa_matches_references_on_cpu() {
    check_fixture::<CpuBackend>("dream_gqa", &Default::default());
}

#[test]
fn qwen3_a2d_matches_references_on_cpu() {
    // Tied head, head_dim 16 ≠ hidden/heads, GQA, per-head q/k RMSNorm (transformers' Qwen3).
    check_fixture::<CpuBackend>("qwen3_a2d", &Default::default());
}

#[test]
fn llada_moe_matches_references_on_cpu() {
    // A dense layer then two MoE layers (4 experts, top 2, expert bias, shared expert), q/k
    // RMSNorm, half-rotary RoPE (dllm's modeling_lladamoe.py).
    check_fixture::<CpuBackend>("llada_moe", &Default::default());
}

/// One test for all fixtures on wgpu: lavapipe's first use costs tens of seconds, pay it once.
#[test]
fn all_fixtures_match_references_on_wgpu() {
    let device = WgpuDevice::DefaultDevice;
    for name in FIXTURES {
        check_fixture::<WgpuBackend>(name, &device);
    }
}

/// The padding mask must change the unpadded rows' logits (else the masked test proves nothing).
#[test]
fn key_padding_changes_logits() {
    let reference = Reference::load("llada_f32");
    let row = &reference.attention_mask[1];
    assert!(row.contains(&0), "fixture row 1 must contain padding");
    let diff = max_abs_diff(
        &flatten3(&reference.logits_nomask[1..]),
        &flatten3(&reference.logits_mask[1..]),
    );
    assert!(
        diff > 1e-3,
        "masking padded keys changed the logits by only {diff:e}"
    );
}

//! Likelihood estimators: the masked-NLL core against PyTorch (scripts/make_sampler_fixture.py) for
//! LLaDA and for Dream's shifted logits, and the estimators' normalisations on cases with a known answer.

use mdu_workbench::checkpoint::MemoryBudget;
use mdu_workbench::device::CpuBackend;
use mdu_workbench::diffusion::likelihood::{
    eq14_nll, llada_log_likelihood, masked_answer_nll, Scored,
};
use mdu_workbench::load_model;
use mdu_workbench::rng::SplitMix64;
use serde::Deserialize;

use crate::common::fixture;

#[derive(Deserialize)]
struct Case {
    checkpoint: String,
    prompt: Vec<u32>,
    answer: Vec<u32>,
    mask_id: u32,
    shift_logits: bool,
    masks: Vec<Vec<usize>>,
    nll_sums: Vec<f64>,
}

fn cases() -> Vec<Case> {
    serde_json::from_slice(
        &std::fs::read(fixture("reference").join("likelihood_cases.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn masked_nll_matches_pytorch_for_llada_and_shifted_dream() {
    let device = Default::default();
    for case in cases() {
        let (_, model) = load_model::<CpuBackend>(
            &fixture(&case.checkpoint),
            &device,
            &MemoryBudget::unlimited("t"),
        )
        .unwrap();
        let s = Scored {
            prompt: &case.prompt,
            answer: &case.answer,
            mask_id: case.mask_id,
            shift_logits: case.shift_logits,
        };
        // Batch of 3 so that one batch is partial.
        let ours = masked_answer_nll(&model, &s, &case.masks, 3, &device);
        for (a, b) in ours.iter().zip(&case.nll_sums) {
            assert!(
                (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{}: {a} vs {b}",
                case.checkpoint
            );
        }
    }
}

#[test]
fn estimators_normalise_as_specified() {
    let device = Default::default();
    let case = &cases()[0];
    let (_, model) = load_model::<CpuBackend>(
        &fixture(&case.checkpoint),
        &device,
        &MemoryBudget::unlimited("t"),
    )
    .unwrap();
    // A one-token answer leaves no randomness: l = 1 always, so Eq. 14 = the NLL of that token and
    // LLaDA's bound = −(that NLL) · L / l = −NLL.
    let one = &case.answer[..1];
    let s = Scored {
        prompt: &case.prompt,
        answer: one,
        mask_id: case.mask_id,
        shift_logits: false,
    };
    let exact = masked_answer_nll(&model, &s, &[vec![0]], 1, &device)[0];
    let eq14 = eq14_nll(&model, &s, 8, 4, &mut SplitMix64(1), &device);
    let llada = llada_log_likelihood(&model, &s, 8, 4, &mut SplitMix64(1), &device);
    assert!(
        (eq14 - exact).abs() < 1e-9 && (llada + exact).abs() < 1e-9,
        "{eq14} {llada} {exact}"
    );

    // Full answer: LLaDA's bound is about L times Eq. 14's per-token NLL (both estimate the same
    // quantity; 64 samples keep the Monte-Carlo error well inside 25 %), and both are seeded.
    let s = Scored {
        prompt: &case.prompt,
        answer: &case.answer,
        mask_id: case.mask_id,
        shift_logits: false,
    };
    let per_token = eq14_nll(&model, &s, 64, 16, &mut SplitMix64(5), &device);
    let total = -llada_log_likelihood(&model, &s, 64, 16, &mut SplitMix64(5), &device);
    let ratio = total / (per_token * case.answer.len() as f64);
    assert!(
        (0.75..1.25).contains(&ratio),
        "LLaDA / (L · Eq.14) = {ratio}"
    );
    assert_eq!(
        per_token,
        eq14_nll(&model, &s, 64, 16, &mut SplitMix64(5), &device)
    );
}

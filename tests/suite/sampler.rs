//! The MDLM sampler against scripts/make_sampler_fixture.py (dllm's MDLMSampler written in PyTorch
//! from mdlm.md §4.2), at temperature 0, on the llada_f32 fixture, batched with unequal prompts.

use mdu_workbench::checkpoint::MemoryBudget;
use mdu_workbench::device::CpuBackend;
use mdu_workbench::diffusion::sampler::{generate, SamplerConfig, SamplerTokens};
use mdu_workbench::load_model;
use serde::Deserialize;

use crate::common::fixture;

#[derive(Deserialize)]
struct Case {
    prompts: Vec<Vec<u32>>,
    max_new_tokens: usize,
    block_size: usize,
    steps: usize,
    answer_slots: Vec<Vec<u32>>,
}

#[test]
fn greedy_generation_matches_pytorch_reference() {
    let case: Case = serde_json::from_slice(
        &std::fs::read(fixture("reference").join("sampler_llada_f32.json")).unwrap(),
    )
    .unwrap();
    let device = Default::default();
    let (ckpt, model) = load_model::<CpuBackend>(
        &fixture("llada_f32"),
        &device,
        &MemoryBudget::unlimited("test"),
    )
    .unwrap();
    let c = &ckpt.config;
    let tokens = SamplerTokens {
        mask: c.mask_token_id.unwrap(),
        pad: c.eos_token_id.unwrap(),
        stops: vec![],
    };
    let cfg = SamplerConfig {
        max_new_tokens: case.max_new_tokens,
        block_size: case.block_size,
        steps: case.steps,
        temperature: 0.0,
        suppress_tokens: vec![],
        seed: 0,
        remasking: Default::default(),
    };
    let mut seen_steps = 0;
    let mut last_masks = usize::MAX;
    let out = generate(&model, &case.prompts, &tokens, &cfg, &device, |view| {
        seen_steps += 1;
        let masks: usize = view
            .answers
            .iter()
            .map(|a| a.iter().filter(|&&t| t == tokens.mask).count())
            .sum();
        assert!(masks < last_masks, "every step commits at least one token");
        last_masks = masks;
    });
    assert_eq!(out, case.answer_slots);
    assert_eq!(last_masks, 0);
    assert_eq!(
        seen_steps, case.steps,
        "8 masks per row, 8 steps: one token per step"
    );

    // Stop ids truncate the answer at their first occurrence.
    let stop = case.answer_slots[0][2];
    let truncated = generate(
        &model,
        &case.prompts,
        &SamplerTokens {
            stops: vec![stop],
            ..tokens.clone()
        },
        &cfg,
        &device,
        |_| {},
    );
    assert_eq!(truncated[0], case.answer_slots[0][..2].to_vec());

    // Suppressed tokens never appear; sampling at T > 0 is reproducible from the seed.
    let suppress = SamplerConfig {
        suppress_tokens: case.answer_slots[0].clone(),
        ..cfg.clone()
    };
    let out = generate(&model, &case.prompts, &tokens, &suppress, &device, |_| {});
    assert!(out[0].iter().all(|t| !case.answer_slots[0].contains(t)));
    let hot = SamplerConfig {
        temperature: 1.0,
        seed: 9,
        ..cfg
    };
    let a = generate(&model, &case.prompts, &tokens, &hot, &device, |_| {});
    let b = generate(&model, &case.prompts, &tokens, &hot, &device, |_| {});
    assert_eq!(a, b);
}

/// Dream's entropy-ordered `diffusion_generate` against the PyTorch reference (shifted logits,
/// floor schedule, last step takes all), batched: two equal prompts and one of another length.
#[test]
fn dream_entropy_generation_matches_pytorch_reference() {
    use mdu_workbench::diffusion::sampler::generate_dream;
    let case: Case = serde_json::from_slice(
        &std::fs::read(fixture("reference").join("sampler_dream_gqa.json")).unwrap(),
    )
    .unwrap();
    let device = Default::default();
    let (ckpt, model) = load_model::<CpuBackend>(
        &fixture("dream_gqa"),
        &device,
        &MemoryBudget::unlimited("test"),
    )
    .unwrap();
    let c = &ckpt.config;
    let tokens = SamplerTokens {
        mask: c.mask_token_id.unwrap(),
        pad: c.eos_token_id.unwrap(),
        stops: vec![],
    };
    let cfg = SamplerConfig {
        max_new_tokens: case.max_new_tokens,
        block_size: case.max_new_tokens,
        steps: case.steps,
        temperature: 0.0,
        suppress_tokens: vec![],
        seed: 0,
        remasking: Default::default(),
    };
    let p = case.prompts[0].clone();
    let short = p[..4].to_vec();
    let mut steps = 0;
    let out = generate_dream(
        &model,
        &[p.clone(), short.clone(), p],
        &tokens,
        &cfg,
        1e-3,
        &device,
        |_| steps += 1,
    );
    assert_eq!(out[0], case.answer_slots[0]);
    assert_eq!(out[2], case.answer_slots[0]);
    assert_eq!(out[1].len(), case.max_new_tokens);
    assert!(!out[1].contains(&tokens.mask), "every mask committed");
    assert_eq!(
        steps,
        2 * case.steps,
        "one pass per step for each prompt length"
    );
}

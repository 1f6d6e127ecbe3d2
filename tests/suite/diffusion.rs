//! Noising, loss weights, masked cross-entropy and transfer schedules against hand computations
//! and the schedule tables of mdlm.md §3.6/§4.1.

use burn::tensor::{Tensor, TensorData};
use mdu_workbench::device::CpuBackend;
use mdu_workbench::diffusion::loss::{weighted_masked_ce, LossWeighting};
use mdu_workbench::diffusion::noise::{mask_sequence, sample_t, TIME_EPSILON};
use mdu_workbench::diffusion::schedule::{
    dllm_transfer_counts, dream_transfer_counts, llada_transfer_counts,
};
use mdu_workbench::rng::SplitMix64;

type B = CpuBackend;

/// Two masked tokens with V = 2. Row 0: logits (0, ln 3), target 1 → log p = ln(3/4).
/// Row 1: logits (ln 2, 0), target 0 → log p = ln(2/3). Normaliser 4 maskable positions.
fn two_token_loss(weights: &[f32]) -> f32 {
    let logits = Tensor::<B, 2>::from_data(
        TensorData::new(vec![0.0f32, 3f32.ln(), 2f32.ln(), 0.0], [2, 2]),
        &Default::default(),
    );
    weighted_masked_ce(logits, &[1, 0], weights, 4.0).into_scalar()
}

#[test]
fn masked_loss_matches_hand_computation_inverse_time() {
    let t = 0.5;
    let w = LossWeighting::InverseTime.weights(t, &[1, 3], 4);
    assert_eq!(w, vec![(1.0 / 0.500001) as f32; 2]);
    let expected = -((0.75f64).ln() + (2.0f64 / 3.0).ln()) / 0.500001 / 4.0;
    let got = two_token_loss(&w) as f64;
    assert!(
        (got - expected).abs() < 1e-6 * expected,
        "{got} vs {expected}"
    );
}

#[test]
fn masked_loss_matches_hand_computation_cart() {
    // Length 4, masked {1, 3}: w1 = 0.15·0.7⁰ (j=0) + 0.15·0.7⁰ (j=2) = 0.3;
    // w3 = 0.15·0.7² (j=0) + 0.15·0.7⁰ (j=2) = 0.2235.
    let w = LossWeighting::Cart { p: 0.3 }.weights(0.9, &[1, 3], 4);
    assert!(
        (w[0] - 0.3).abs() < 1e-7 && (w[1] - 0.2235).abs() < 1e-7,
        "{w:?}"
    );
    let expected = -(0.3 * (0.75f64).ln() + 0.2235 * (2.0f64 / 3.0).ln()) / 4.0;
    let got = two_token_loss(&w) as f64;
    assert!(
        (got - expected).abs() < 1e-6 * expected,
        "{got} vs {expected}"
    );
}

#[test]
fn masked_loss_of_no_rows_is_zero() {
    let logits = Tensor::<B, 2>::zeros([0, 5], &Default::default());
    assert_eq!(weighted_masked_ce(logits, &[], &[], 3.0).into_scalar(), 0.0);
}

#[test]
fn noising_masks_only_answer_positions_at_rate_t() {
    let mut rng = SplitMix64(3);
    let ids: Vec<u32> = (0..2000).map(|i| (i % 50) as u32).collect();
    let maskable: Vec<bool> = (0..2000).map(|i| i >= 500).collect();
    let noised = mask_sequence(&mut rng, &ids, &maskable, 0.3, 99);
    assert!(noised
        .masked
        .iter()
        .all(|&i| i >= 500 && noised.ids[i] == 99));
    assert!(noised.ids[..500] == ids[..500]);
    let rate = noised.masked.len() as f64 / 1500.0;
    assert!((rate - 0.3).abs() < 0.04, "mask rate {rate}");
    // Same seed, same masks.
    assert_eq!(
        mask_sequence(&mut SplitMix64(3), &ids, &maskable, 0.3, 99),
        noised
    );
    for _ in 0..1000 {
        let t = sample_t(&mut rng);
        assert!((TIME_EPSILON..1.0).contains(&t));
    }
}

#[test]
fn transfer_schedules_match_the_reference_tables() {
    // mdlm.md §4.1.
    assert_eq!(llada_transfer_counts(10, 4), vec![3, 3, 2, 2]);
    assert_eq!(dllm_transfer_counts(10, 4), vec![2, 3, 2, 3]);
    assert_eq!(llada_transfer_counts(7, 3), vec![3, 2, 2]);
    assert_eq!(dllm_transfer_counts(7, 3), vec![2, 2, 3]);
    let llada = llada_transfer_counts(100, 64);
    assert_eq!(llada.iter().filter(|&&k| k == 2).count(), 36);
    assert_eq!(llada.iter().filter(|&&k| k == 1).count(), 28);
    assert_eq!(dllm_transfer_counts(128, 256), vec![1; 128]);
    // mdlm.md §3.6: 128 masks in 128 steps → [0, 1, …, 1, 2]; in 64 steps → [1, 2, …, 2, 3].
    let dream = dream_transfer_counts(128, 128, 1e-3);
    assert_eq!((dream[0], dream[127]), (0, 2), "{dream:?}");
    assert!(dream[1..127].iter().all(|&k| k == 1));
    let dream64 = dream_transfer_counts(128, 64, 1e-3);
    assert_eq!((dream64[0], dream64[63]), (1, 3), "{dream64:?}");
    assert!(dream64[1..63].iter().all(|&k| k == 2));
    // Every schedule commits every mask exactly once.
    assert_eq!(dream.iter().sum::<usize>(), 128);
    assert_eq!(dream64.iter().sum::<usize>(), 128);
    assert_eq!(dllm_transfer_counts(37, 10).iter().sum::<usize>(), 37);
    assert_eq!(llada_transfer_counts(37, 10).iter().sum::<usize>(), 37);
}

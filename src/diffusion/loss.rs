//! Masked cross-entropy for MDLM fine-tuning, as dllm's `MDLMTrainer` computes it:
//! `Σ_masked CE·w / Σ maskable` ("token" normalisation), with LLaDA's 1/(t+1e-6) weight or
//! Dream's CART weight (no 1/t).

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// How a masked position is weighted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LossWeighting {
    /// LLaDA / dllm "scheduler" weight for the linear schedule: 1/(t + 1e-6).
    InverseTime,
    /// Dream's context-adaptive reweighting with geometric parameter p (0.3 in dllm).
    Cart { p: f64 },
}

impl LossWeighting {
    /// Weights for the masked positions of one sequence of length `len` noised at time `t`.
    pub fn weights(self, t: f64, masked: &[usize], len: usize) -> Vec<f32> {
        match self {
            LossWeighting::InverseTime => vec![(1.0 / (t + 1e-6)) as f32; masked.len()],
            LossWeighting::Cart { p } => {
                let mut is_masked = vec![false; len];
                for &i in masked {
                    is_masked[i] = true;
                }
                // w_i = Σ_{j unmasked, j≠i} 0.5·p·(1−p)^{|i−j|−1}
                masked
                    .iter()
                    .map(|&i| {
                        (0..len)
                            .filter(|&j| j != i && !is_masked[j])
                            .map(|j| 0.5 * p * (1.0 - p).powi(i.abs_diff(j) as i32 - 1))
                            .sum::<f64>() as f32
                    })
                    .collect()
            }
        }
    }
}

/// `Σ_rows CE(logits_row, target_row)·weight_row / normaliser` on gathered masked rows `[N, V]`.
/// Log-softmax runs in f32 whatever the logits' dtype. `N = 0` gives 0.
pub fn weighted_masked_ce<B: Backend>(
    logits: Tensor<B, 2>,
    targets: &[u32],
    weights: &[f32],
    normaliser: f32,
) -> Tensor<B, 1> {
    let device = logits.device();
    let n = targets.len();
    assert_eq!(n, weights.len(), "one weight per masked row");
    if n == 0 {
        return Tensor::zeros([1], &device);
    }
    let logp = log_softmax(logits.cast(burn::tensor::DType::F32), 1);
    let idx = Tensor::<B, 2, Int>::from_data(
        TensorData::new(
            targets.iter().map(|&t| t as i64).collect::<Vec<_>>(),
            [n, 1],
        ),
        &device,
    );
    let picked = logp.gather(1, idx).reshape([n]);
    let w = Tensor::<B, 1>::from_data(TensorData::new(weights.to_vec(), [n]), &device);
    (picked * w).sum().neg() / normaliser.max(1.0)
}

/// One noised SFT batch on the host, ready for [`mdlm_loss`].
#[derive(Clone, Debug, PartialEq)]
pub struct NoisedBatch {
    /// `[rows, width]` ids with masked answer positions replaced by the mask id.
    pub ids: Vec<u32>,
    pub rows: usize,
    pub width: usize,
    /// Flat positions (`row·width + pos`) of the masked tokens.
    pub masked: Vec<usize>,
    /// The clean token at each masked position.
    pub targets: Vec<u32>,
    /// The loss weight of each masked position.
    pub weights: Vec<f32>,
    /// Σ maskable positions (the "token" normaliser).
    pub maskable: usize,
}

impl NoisedBatch {
    /// Samples t per row and masks answer positions (mdlm.md §2.3).
    pub fn sample(
        batch: &super::batch::SftBatch,
        rng: &mut crate::rng::SplitMix64,
        mask_id: u32,
        weighting: LossWeighting,
    ) -> Self {
        let mut out = Self {
            ids: Vec::new(),
            rows: batch.rows,
            width: batch.width,
            masked: Vec::new(),
            targets: Vec::new(),
            weights: Vec::new(),
            maskable: 0,
        };
        for r in 0..batch.rows {
            let (row, maskable) = (batch.row(r), batch.maskable_row(r));
            let t = super::noise::sample_t(rng);
            let noised = super::noise::mask_sequence(rng, row, maskable, t, mask_id);
            out.weights
                .extend(weighting.weights(t, &noised.masked, row.len()));
            for &p in &noised.masked {
                out.masked.push(r * batch.width + p);
                out.targets.push(row[p]);
            }
            out.ids.extend(noised.ids);
            out.maskable += maskable.iter().filter(|&&m| m).count();
        }
        out
    }
}

/// The MDLM SFT loss of `model` on a noised batch: logits only at masked rows (shifted one position
/// left for Dream), weighted cross-entropy, divided by the number of answer positions.
pub fn mdlm_loss<B: Backend>(
    model: &crate::model::MaskedDiffusionLm<B>,
    batch: &NoisedBatch,
    device: &B::Device,
) -> Tensor<B, 1> {
    let ids: Vec<i64> = batch.ids.iter().map(|&t| t as i64).collect();
    let ids =
        Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [batch.rows, batch.width]), device);
    let hidden = model.forward_hidden(ids, None);
    let shift = model.config.architecture.shifts_logits();
    let rows: Vec<i64> = batch
        .masked
        .iter()
        .map(|&p| if shift && p % batch.width > 0 { p - 1 } else { p } as i64)
        .collect();
    let n = rows.len();
    if n == 0 {
        // Keep the graph connected so backward still runs (with zero gradients).
        return hidden.sum() * 0.0;
    }
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [n]), device);
    let logits = model.logits_for_rows(crate::model::transformer::gather_rows(hidden, index));
    weighted_masked_ce(
        logits,
        &batch.targets,
        &batch.weights,
        batch.maskable as f32,
    )
}

//! Masked cross-entropy for MDLM fine-tuning, as dllm's `MDLMTrainer` computes it:
//! `Σ_masked CE·w / Σ maskable` ("token" normalisation), with LLaDA's 1/(t+1e-6) weight or
//! Dream's CART weight (no 1/t).

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::model::precision::accumulation_dtype;

/// How a masked position is weighted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LossWeighting {
    /// LLaDA / dllm "scheduler" weight for the linear schedule: 1/(t + 1e-6).
    InverseTime,
    /// Dream's context-adaptive reweighting with geometric parameter p (0.3 in dllm).
    Cart { p: f64 },
}

impl LossWeighting {
    /// The weighting an architecture is trained with: Dream CART (p = 0.3, as dllm); LLaDA,
    /// LLaDA-MoE and the A2D models 1/t (dllm's MDLM trainer).
    pub fn for_architecture(arch: crate::model::Architecture) -> Self {
        use crate::model::Architecture;
        match arch {
            Architecture::Dream => LossWeighting::Cart { p: 0.3 },
            Architecture::Llada | Architecture::LladaMoe | Architecture::Qwen3A2d => {
                LossWeighting::InverseTime
            }
        }
    }

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
    if targets.is_empty() {
        let device = logits.device();
        return Tensor::zeros([1], (&device, accumulation_dtype::<B>(&device)));
    }
    weighted_ce_terms(logits, targets, weights).sum() / normaliser.max(1.0)
}

/// `CE(logits_row, target_row)·weight_row` for each gathered row: `[N]` (N ≥ 1).
pub fn weighted_ce_terms<B: Backend>(
    logits: Tensor<B, 2>,
    targets: &[u32],
    weights: &[f32],
) -> Tensor<B, 1> {
    let device = logits.device();
    let n = targets.len();
    assert_eq!(n, weights.len(), "one weight per masked row");
    let logp = log_softmax(crate::model::precision::at_least_f32(logits), 1);
    let idx = Tensor::<B, 2, Int>::from_data(
        TensorData::new(
            targets.iter().map(|&t| t as i64).collect::<Vec<_>>(),
            [n, 1],
        ),
        &device,
    );
    let picked = logp.gather(1, idx).reshape([n]);
    let w = Tensor::<B, 1>::from_data(
        TensorData::new(weights.to_vec(), [n]),
        (&device, picked.dtype()),
    );
    (picked * w).neg()
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
    /// `[rows·width]`: true on answer (maskable) positions.
    pub answer: Vec<bool>,
}

impl NoisedBatch {
    /// Logits `[N, V]` of `model` at this batch's masked positions (see `logits_at`).
    pub fn masked_logits<B: Backend>(
        &self,
        model: &crate::model::MaskedDiffusionLm<B>,
        device: &B::Device,
    ) -> Tensor<B, 2> {
        logits_at(
            model,
            &self.ids,
            self.rows,
            self.width,
            &self.masked,
            device,
        )
    }

    /// A zero loss still connected to every parameter, for a batch with nothing masked: backward
    /// runs and gives zero gradients.
    pub fn connected_zero<B: Backend>(
        &self,
        model: &crate::model::MaskedDiffusionLm<B>,
        device: &B::Device,
    ) -> Tensor<B, 1> {
        let ids: Vec<i64> = self.ids.iter().map(|&t| t as i64).collect();
        let ids =
            Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [self.rows, self.width]), device);
        crate::model::precision::at_least_f32(model.forward_hidden(ids, None).sum()) * 0.0
    }

    /// Samples t per row and masks answer positions (mdlm.md §2.3).
    pub fn sample(
        batch: &super::batch::SftBatch,
        rng: &mut crate::rng::SplitMix64,
        mask_id: u32,
        weighting: LossWeighting,
    ) -> Self {
        let mut ts = Vec::with_capacity(batch.rows);
        let mut masked = Vec::with_capacity(batch.ids.len());
        for r in 0..batch.rows {
            let t = super::noise::sample_t(rng);
            let noised =
                super::noise::mask_sequence(rng, batch.row(r), batch.maskable_row(r), t, mask_id);
            let mut flags = vec![false; batch.width];
            for &p in &noised.masked {
                flags[p] = true;
            }
            ts.push(t);
            masked.extend(flags);
        }
        Self::from_masks(batch, &ts, &masked, mask_id, weighting)
    }

    /// The batch noised with given times (one per row) and mask flags (`[rows·width]`, a subset of
    /// the maskable positions): tests and the unlearning methods use it to share t and masks.
    pub fn from_masks(
        batch: &super::batch::SftBatch,
        ts: &[f64],
        masked_flags: &[bool],
        mask_id: u32,
        weighting: LossWeighting,
    ) -> Self {
        assert_eq!(ts.len(), batch.rows, "one t per row");
        assert_eq!(
            masked_flags.len(),
            batch.ids.len(),
            "one mask flag per position"
        );
        let mut out = Self {
            ids: batch.ids.clone(),
            rows: batch.rows,
            width: batch.width,
            masked: Vec::new(),
            targets: Vec::new(),
            weights: Vec::new(),
            maskable: batch.maskable.iter().filter(|&&m| m).count(),
            answer: batch.maskable.clone(),
        };
        for (r, &t) in ts.iter().enumerate() {
            let flags = &masked_flags[r * batch.width..(r + 1) * batch.width];
            let positions: Vec<usize> = (0..batch.width).filter(|&p| flags[p]).collect();
            out.weights
                .extend(weighting.weights(t, &positions, batch.width));
            for p in positions {
                let flat = r * batch.width + p;
                debug_assert!(batch.maskable[flat], "only answer positions are masked");
                out.masked.push(flat);
                out.targets.push(batch.ids[flat]);
                out.ids[flat] = mask_id;
            }
        }
        out
    }

    /// The row of each masked position.
    pub fn masked_rows(&self) -> Vec<usize> {
        self.masked.iter().map(|&p| p / self.width).collect()
    }
}

/// Logits `[N, V]` at the masked positions of `ids` (`[rows, width]`), taken from the position
/// before for architectures that right-shift their logits (Dream: position 0 predicts itself).
pub fn logits_at<B: Backend>(
    model: &crate::model::MaskedDiffusionLm<B>,
    ids: &[u32],
    rows: usize,
    width: usize,
    masked: &[usize],
    device: &B::Device,
) -> Tensor<B, 2> {
    let flat: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [rows, width]), device);
    let hidden = model.forward_hidden(ids, None);
    let shift = model.config.architecture.shifts_logits();
    let rows: Vec<i64> = masked
        .iter()
        .map(|&p| if shift && p % width > 0 { p - 1 } else { p } as i64)
        .collect();
    let n = rows.len();
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [n]), device);
    model.logits_for_rows(crate::model::transformer::gather_rows(hidden, index))
}

/// The MDLM SFT loss of `model` on a noised batch: logits only at masked rows (shifted one position
/// left for Dream), weighted cross-entropy, divided by the number of answer positions.
pub fn mdlm_loss<B: Backend>(
    model: &crate::model::MaskedDiffusionLm<B>,
    batch: &NoisedBatch,
    device: &B::Device,
) -> Tensor<B, 1> {
    if batch.masked.is_empty() {
        return batch.connected_zero(model, device);
    }
    let logits = batch.masked_logits(model, device);
    weighted_masked_ce(
        logits,
        &batch.targets,
        &batch.weights,
        batch.maskable as f32,
    )
}

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

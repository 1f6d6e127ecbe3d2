//! Seeded random initialisation (for benchmarks and training from scratch), generated on the host
//! so the same seed gives the same weights on every backend.

use burn::tensor::backend::Backend;
use burn::tensor::TensorData;

use super::{MaskedDiffusionLm, ModelConfig, Weight};
use crate::rng::SplitMix64;

/// Normal(0, `std`) matrices, unit norms, zero biases; the Dream pad row is zeroed as HF does.
pub fn random_init<B: Backend>(
    config: &ModelConfig,
    device: &B::Device,
    seed: u64,
    std: f32,
) -> MaskedDiffusionLm<B> {
    let mut rng = SplitMix64(seed);
    let result: Result<_, std::convert::Infallible> =
        MaskedDiffusionLm::build(config, device, |w, _layer| {
            let shape = w.shape(config);
            let n: usize = shape.iter().product();
            let values: Vec<f32> = match w {
                Weight::AttnNorm
                | Weight::MlpNorm
                | Weight::FinalNorm
                | Weight::QNorm
                | Weight::KNorm => vec![1.0; n],
                Weight::QBias | Weight::KBias | Weight::VBias | Weight::ExpertBias => vec![0.0; n],
                _ => {
                    let mut v: Vec<f32> = (0..n).map(|_| rng.normal() * std).collect();
                    if w == Weight::Embed && config.architecture.shifts_logits() {
                        if let Some(pad) = config.pad_token_id {
                            let d = config.hidden_size;
                            v[pad as usize * d..(pad as usize + 1) * d].fill(0.0);
                        }
                    }
                    v
                }
            };
            Ok(TensorData::new(values, shape))
        });
    match result {
        Ok(model) => model,
        Err(never) => match never {},
    }
}

//! Seeded random initialisation (for benchmarks and training from scratch), generated on the host
//! so the same seed gives the same weights on every backend.

use burn::tensor::backend::Backend;
use burn::tensor::TensorData;

use super::{MaskedDiffusionLm, ModelConfig, Weight};

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
                Weight::AttnNorm | Weight::MlpNorm | Weight::FinalNorm => vec![1.0; n],
                Weight::QBias | Weight::KBias | Weight::VBias => vec![0.0; n],
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

/// SplitMix64: tiny, fast, and identical on every platform.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

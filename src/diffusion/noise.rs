//! Forward process: t ~ ε + (1−ε)·U(0,1), then each maskable (answer) position is masked
//! independently with probability t (linear schedule: p_mask = t).

use crate::rng::SplitMix64;

/// dllm's `time_epsilon`.
pub const TIME_EPSILON: f64 = 1e-3;

/// One noised sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Noised {
    pub t: f64,
    /// Input ids with the masked positions replaced by the mask id.
    pub ids: Vec<u32>,
    /// Positions (within the sequence) that were masked, ascending.
    pub masked: Vec<usize>,
}

pub fn sample_t(rng: &mut SplitMix64) -> f64 {
    TIME_EPSILON + (1.0 - TIME_EPSILON) * rng.uniform()
}

/// Masks each position where `maskable` is true with probability `t`.
pub fn mask_sequence(
    rng: &mut SplitMix64,
    ids: &[u32],
    maskable: &[bool],
    t: f64,
    mask_id: u32,
) -> Noised {
    let mut out = ids.to_vec();
    let mut masked = Vec::new();
    for (i, (&can, id)) in maskable.iter().zip(out.iter_mut()).enumerate() {
        if can && rng.uniform() < t {
            *id = mask_id;
            masked.push(i);
        }
    }
    Noised {
        t,
        ids: out,
        masked,
    }
}

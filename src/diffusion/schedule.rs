//! How many masked tokens a sampler commits at each step.

/// LLaDA `generate.py`'s split: `n // steps` each, the first `n % steps` steps one more.
pub fn llada_transfer_counts(masked: usize, steps: usize) -> Vec<usize> {
    let (base, rem) = (masked / steps, masked % steps);
    (0..steps).map(|i| base + usize::from(i < rem)).collect()
}

/// dllm's `get_num_transfer_tokens` for the linear schedule, non-stochastic: at step j commit
/// `round_half_even(remaining · (1 − s/t))` with t = (S−j)/S, s = (S−j−1)/S (in f32, as torch
/// computes it); zero steps are dropped.
pub fn dllm_transfer_counts(masked: usize, steps: usize) -> Vec<usize> {
    let mut remaining = masked;
    let mut out = Vec::new();
    for j in 0..steps {
        if remaining == 0 {
            break;
        }
        let t = (steps - j) as f32 / steps as f32;
        let s = (steps - j - 1) as f32 / steps as f32;
        let p = 1.0f32 - s / t;
        let k = ((remaining as f32 * p).round_ties_even() as usize).min(remaining);
        remaining -= k;
        if k > 0 {
            out.push(k);
        }
    }
    out
}

/// Dream `diffusion_generate`'s per-step count with `timesteps = linspace(1, eps, steps+1)` in f32:
/// `floor(masked · (1 − s/t))` of the masks still present, and the last step takes all that remain.
pub fn dream_transfer_counts(masked: usize, steps: usize, eps: f32) -> Vec<usize> {
    let timesteps: Vec<f32> = (0..=steps)
        .map(|i| 1.0 + (eps - 1.0) * i as f32 / steps as f32)
        .collect();
    let mut remaining = masked;
    let mut out = Vec::with_capacity(steps);
    for i in 0..steps {
        let k = if i + 1 < steps {
            let (t, s) = (timesteps[i], timesteps[i + 1]);
            ((remaining as f32 * (1.0 - s / t)) as usize).min(remaining)
        } else {
            remaining
        };
        remaining -= k;
        out.push(k);
    }
    out
}

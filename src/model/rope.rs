//! Half-rotation ("NeoX") rotary position embedding with positions `0..L`, computed in f32 as HF
//! does, over the first `rotary_dim` dimensions of each head (all of them unless the model uses
//! partial RoPE, as LLaDA-MoE can); the remaining dimensions pass through unchanged.

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};

use super::config::ModelConfig;
use super::precision::{accumulation_dtype, at_least_f32};

/// The cos/sin tables of one sequence length, on the device.
pub struct Rope<B: Backend> {
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
    rotary_dim: usize,
}

impl<B: Backend> Rope<B> {
    pub fn new(c: &ModelConfig, len: usize, device: &B::Device) -> Self {
        let rotary_dim = c.rotary_dim;
        let (cos, sin) = rope_tables(rotary_dim, c.rope_theta, len);
        let table = |v: Vec<f32>| {
            // f32 whatever the device's storage: RoPE is applied in f32 (see `apply`).
            Tensor::<B, 2>::from_data(
                TensorData::new(v, [len, rotary_dim]),
                (device, accumulation_dtype::<B>(device)),
            )
            .unsqueeze::<4>()
        };
        Self {
            cos: table(cos),
            sin: table(sin),
            rotary_dim,
        }
    }

    /// `x·cos + rotate_half(x)·sin` on the rotary part of `[B, H, L, hd]`, in f32 whatever the
    /// activation dtype.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let dtype = x.dtype();
        let x = at_least_f32(x);
        let [b, h, l, d] = x.dims();
        let r = self.rotary_dim;
        let (rot, pass) = if r == d {
            (x, None)
        } else {
            (
                x.clone().slice([0..b, 0..h, 0..l, 0..r]),
                Some(x.slice([0..b, 0..h, 0..l, r..d])),
            )
        };
        let half = r / 2;
        let first = rot.clone().slice([0..b, 0..h, 0..l, 0..half]);
        let second = rot.clone().slice([0..b, 0..h, 0..l, half..r]);
        let rotated = Tensor::cat(vec![second.neg(), first], 3);
        let out = rot * self.cos.clone() + rotated * self.sin.clone();
        let out = match pass {
            Some(pass) => Tensor::cat(vec![out, pass], 3),
            None => out,
        };
        if dtype == DType::F32 {
            out
        } else {
            out.cast(dtype)
        }
    }
}

/// cos/sin tables `[len, dim]`: `inv_freq = 1/θ^(2i/dim)` and `emb = cat(freqs, freqs)`, all in
/// f32 (`dim` is the rotary dimension, the head dimension unless RoPE is partial).
pub fn rope_tables(dim: usize, theta: f64, len: usize) -> (Vec<f32>, Vec<f32>) {
    let half = dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / dim as f32))
        .collect();
    let mut cos = Vec::with_capacity(len * dim);
    let mut sin = Vec::with_capacity(len * dim);
    for pos in 0..len {
        for _ in 0..2 {
            for f in &inv_freq {
                let angle = pos as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
    }
    (cos, sin)
}

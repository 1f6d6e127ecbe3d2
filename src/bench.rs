//! Forward-pass throughput on preset LLaDA shapes with random weights. The PyTorch twin is
//! `scripts/bench_forward.py`; `scripts/bench_forward.sh` runs both and prints the ratio.

use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::Serialize;

use crate::device::BackendTask;
use crate::model::init::random_init;
use crate::model::{Architecture, ModelConfig};
use crate::rng::SplitMix64;

#[derive(Clone, Copy, Debug, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchPreset {
    /// d 64, 2 layers, 4 heads, MLP 128, vocab 256; batch 8 × 64 tokens.
    Tiny,
    /// d 768, 10 layers, 12 heads, MLP 2048, vocab 16384 (~96M parameters); batch 4 × 128 tokens.
    #[value(name = "100m")]
    #[serde(rename = "100m")]
    M100,
}

impl BenchPreset {
    /// (config, batch, length)
    pub fn shape(self) -> (ModelConfig, usize, usize) {
        let (d, layers, heads, mlp, vocab, batch, len) = match self {
            BenchPreset::Tiny => (64, 2, 4, 128, 256, 8, 64),
            BenchPreset::M100 => (768, 10, 12, 2048, 16384, 4, 128),
        };
        let config = ModelConfig {
            architecture: Architecture::Llada,
            hidden_size: d,
            num_layers: layers,
            num_heads: heads,
            num_kv_heads: heads,
            head_dim: d / heads,
            intermediate_size: mlp,
            vocab_size: vocab,
            rope_theta: 500000.0,
            rms_norm_eps: 1e-5,
            max_position_embeddings: 4096,
            qkv_bias: false,
            mask_token_id: Some(vocab as u32 - 1),
            eos_token_id: Some(vocab as u32 - 2),
            pad_token_id: Some(vocab as u32 - 2),
            bos_token_id: None,
        };
        (config, batch, len)
    }
}

pub struct ForwardBench {
    pub preset: BenchPreset,
    pub warmup: usize,
    pub iters: usize,
    pub device_name: String,
}

#[derive(Serialize)]
pub struct BenchReport {
    #[serde(rename = "impl")]
    pub implementation: String,
    pub config: BenchPreset,
    pub device: String,
    pub parameters: u64,
    pub batch: usize,
    pub length: usize,
    pub tokens_per_s_median: f64,
    pub iters: Vec<f64>,
}

impl BackendTask for ForwardBench {
    type Output = BenchReport;
    fn run<B: Backend>(self, device: &B::Device) -> BenchReport {
        let (config, batch, len) = self.preset.shape();
        let model = random_init::<B>(&config, device, 0, 0.02);
        let mut rng = SplitMix64(1);
        let ids: Vec<i64> = (0..batch * len)
            .map(|_| (rng.next_u64() % config.vocab_size as u64) as i64)
            .collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [batch, len]), device);
        let mut times = Vec::new();
        for i in 0..self.warmup + self.iters {
            let start = Instant::now();
            let hidden = model.forward_hidden(ids.clone(), None);
            // Reading the logits back forces the (possibly asynchronous) device to finish.
            let _ = model.logits_all(hidden).into_data();
            if i >= self.warmup {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
        BenchReport {
            implementation: "burn".into(),
            config: self.preset,
            device: self.device_name,
            parameters: config.num_parameters(),
            batch,
            length: len,
            tokens_per_s_median: (batch * len) as f64 / median,
            iters: times,
        }
    }
}

/// Arguments of `mdu bench-train`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchTrainArgs {
    #[arg(long, default_value = "cpu", help = crate::device::device_help())]
    pub device: String,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
}

pub fn bench_train(_args: BenchTrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("mdu bench-train: not implemented yet")
}

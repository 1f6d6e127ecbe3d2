//! A denoising trace: the sampler unmasks an answer step by step, every step kept as text pieces
//! (what the Denoising view plays back and the Ask box answers from).

use anyhow::Result;
use burn::tensor::backend::Backend;

use crate::data::QaItem;
use crate::diffusion::batch::SftExample;
use crate::diffusion::sampler::{generate_by_architecture, SamplerConfig, SamplerTokens, StepView};
use crate::eval::protocol::{sampler_config, Generation};
use crate::model::MaskedDiffusionLm;
use crate::tokenizer::TextTokenizer;

/// Shown for a still-masked answer slot.
pub const MASKED: &str = "░";

/// Every step of one generation: the answer slots as text pieces, and the final answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub frames: Vec<Vec<String>>,
    pub answer: String,
}

/// Generates an answer to `item.question` greedily, keeping every step. The answer gets
/// `free_tokens` slots, or (with `None`) the gold answer's length plus the demo protocol's margin.
pub fn trace<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    tokenizer: &TextTokenizer,
    item: &QaItem,
    free_tokens: Option<usize>,
    device: &B::Device,
) -> Result<Trace> {
    let prompt = SftExample::encode_pair(tokenizer, &item.question, "")?.prompt;
    let cfg = match free_tokens {
        Some(n) => SamplerConfig {
            max_new_tokens: n,
            block_size: n,
            steps: n,
            temperature: 0.0,
            suppress_tokens: vec![],
            seed: 0,
            remasking: Default::default(),
        },
        None => sampler_config(
            model,
            tokenizer,
            std::slice::from_ref(item),
            &Generation::Demo { margin: 4 },
        )?,
    };
    let special = &tokenizer.special;
    let tokens = SamplerTokens::from(special);
    let piece = |id: u32| -> String {
        if id == special.mask {
            MASKED.to_string()
        } else if tokens.stops.contains(&id) {
            "⏹".to_string()
        } else {
            tokenizer.decode(&[id], false).unwrap_or_default()
        }
    };
    let mut frames = Vec::new();
    let on_step = |view: &StepView| {
        frames.push(view.answers[0].iter().map(|&id| piece(id)).collect());
    };
    let ids = generate_by_architecture(model, &[prompt], &tokens, &cfg, device, on_step);
    let answer = tokenizer.decode(&ids[0], true)?.trim().to_string();
    Ok(Trace { frames, answer })
}

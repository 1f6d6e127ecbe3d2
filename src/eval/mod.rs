//! Generation-based evaluation shared by fine-tuning, unlearning, CLI and GUI: greedy answers from
//! the MDLM sampler, scored with ROUGE-L exactly as rouge-score 0.1.2 (`use_stemmer=True`,
//! `score(gold, generation)`) computes it.

use burn::tensor::backend::Backend;
use serde::Serialize;

use crate::data::QaItem;
use crate::diffusion::batch::SftExample;
use crate::diffusion::sampler::{generate_by_architecture, SamplerConfig, SamplerTokens};
use crate::model::MaskedDiffusionLm;
use crate::tokenizer::{TextTokenizer, TokenizerError};

/// ROUGE-L of `generation` against `gold` (precision, recall, F).
pub fn rouge_l(gold: &str, generation: &str) -> rougers::Score {
    thread_local! {
        static SCORER: rougers::RougeScorer = rougers::RougeScorer::new(["rougeL"], true).expect("rougeL is a known ROUGE type");
    }
    SCORER.with(|s| {
        s.score(gold, generation)
            .get(rougers::RougeType::L)
            .expect("rougeL requested")
    })
}

/// One evaluated item.
#[derive(Clone, Debug, Serialize)]
pub struct SampleScore {
    pub question: String,
    pub gold: String,
    pub generation: String,
    pub rouge_l_recall: f64,
}

/// The demo evaluation setting: answer slot = longest tokenised gold answer (+ end of turn) plus
/// `margin` tokens, steps = slot length, one block, temperature 0.
pub fn demo_sampler_config(
    tokenizer: &TextTokenizer,
    items: &[QaItem],
    margin: usize,
) -> Result<SamplerConfig, TokenizerError> {
    let mut longest = 0;
    for it in items {
        longest = longest.max(tokenizer.encode(&it.answer)?.len() + 1);
    }
    let slot = longest + margin;
    Ok(SamplerConfig {
        max_new_tokens: slot,
        block_size: slot,
        steps: slot,
        temperature: 0.0,
        suppress_tokens: vec![],
        seed: 0,
        remasking: Default::default(),
    })
}

/// Generates answers for `items` in batches of `batch_size` and scores them.
pub fn score_generations<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    tokenizer: &TextTokenizer,
    items: &[QaItem],
    sampler: &SamplerConfig,
    batch_size: usize,
    device: &B::Device,
) -> Result<Vec<SampleScore>, TokenizerError> {
    let tokens = SamplerTokens::from(&tokenizer.special);
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(batch_size.max(1)) {
        let prompts = chunk
            .iter()
            .map(|it| SftExample::encode_pair(tokenizer, &it.question, "").map(|e| e.prompt))
            .collect::<Result<Vec<_>, _>>()?;
        let answers = generate_by_architecture(model, &prompts, &tokens, sampler, device, |_| {});
        for (it, ids) in chunk.iter().zip(answers) {
            let generation = tokenizer.decode(&ids, true)?.trim().to_string();
            let recall = rouge_l(&it.answer, &generation).recall;
            out.push(SampleScore {
                question: it.question.clone(),
                gold: it.answer.clone(),
                generation,
                rouge_l_recall: recall,
            });
        }
    }
    Ok(out)
}

pub fn mean_recall(scores: &[SampleScore]) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores.iter().map(|s| s.rouge_l_recall).sum::<f64>() / scores.len() as f64
}
pub mod audit;
pub mod cache;
pub mod cli;
pub mod mia;
pub mod privacy;
pub mod protocol;
pub mod report;
pub mod stats;

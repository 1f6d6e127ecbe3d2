//! SFT examples as LLaDA fine-tunes on them (mdlm.md §1.6, §2.2): the prompt is the chat template
//! with the generation header; the answer is the answer's tokens plus the end-of-turn id; rows are
//! right-padded with EOS, and every non-prompt position (padding included) is an answer position,
//! so the model learns where answers end.

use crate::data::QaItem;
use crate::tokenizer::{ChatMessage, TextTokenizer, TokenizerError};

#[derive(Clone, Debug, PartialEq)]
pub struct SftExample {
    pub prompt: Vec<u32>,
    pub answer: Vec<u32>,
}

impl SftExample {
    pub fn encode(tokenizer: &TextTokenizer, item: &QaItem) -> Result<Self, TokenizerError> {
        Self::encode_pair(tokenizer, &item.question, &item.answer)
    }

    pub fn encode_pair(
        tokenizer: &TextTokenizer,
        question: &str,
        answer: &str,
    ) -> Result<Self, TokenizerError> {
        let prompt_text = tokenizer.apply_chat_template(&[ChatMessage::user(question)], true)?;
        let prompt = tokenizer.encode(&prompt_text)?;
        let mut answer = tokenizer.encode(answer)?;
        answer.push(tokenizer.special.eot.unwrap_or(tokenizer.special.eos));
        Ok(Self { prompt, answer })
    }
}

/// A padded batch on the host: `ids` is `[rows, width]` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct SftBatch {
    pub ids: Vec<u32>,
    pub rows: usize,
    pub width: usize,
    /// True on answer positions (answer, end of turn, and the EOS padding after it).
    pub maskable: Vec<bool>,
}

impl SftBatch {
    /// LLaDA SFT layout: the EOS padding after an answer is part of the answer (trained).
    pub fn new(examples: &[&SftExample], pad: u32) -> Self {
        Self::build(examples, pad, true)
    }

    /// MDU collator layout (mdu.md §3.1): padding is visible context but never masked or trained.
    pub fn unlearning(examples: &[&SftExample], pad: u32) -> Self {
        Self::build(examples, pad, false)
    }

    fn build(examples: &[&SftExample], pad: u32, pad_is_answer: bool) -> Self {
        let width = examples
            .iter()
            .map(|e| e.prompt.len() + e.answer.len())
            .max()
            .unwrap_or(0);
        let mut ids = Vec::with_capacity(examples.len() * width);
        let mut maskable = Vec::with_capacity(examples.len() * width);
        for e in examples {
            ids.extend(&e.prompt);
            ids.extend(&e.answer);
            ids.extend(std::iter::repeat_n(
                pad,
                width - e.prompt.len() - e.answer.len(),
            ));
            let end = if pad_is_answer {
                width
            } else {
                e.prompt.len() + e.answer.len()
            };
            maskable.extend((0..width).map(|i| i >= e.prompt.len() && i < end));
        }
        Self {
            ids,
            rows: examples.len(),
            width,
            maskable,
        }
    }

    pub fn row(&self, r: usize) -> &[u32] {
        &self.ids[r * self.width..(r + 1) * self.width]
    }

    pub fn maskable_row(&self, r: usize) -> &[bool] {
        &self.maskable[r * self.width..(r + 1) * self.width]
    }
}

//! The demo's tokenizer: a byte-level BPE trained with the `tokenizers` crate on the generated
//! corpus, saved as a real `tokenizer.json` with LLaDA's chat-template special tokens and its mask
//! token, plus the `tokenizer_config.json` / `special_tokens_map.json` HF tools expect.

use std::path::Path;

use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use super::Splits;
use crate::data::write_atomic;
use crate::tokenizer::LLADA_MDU_TEMPLATE;

pub const BOS: &str = "<|startoftext|>";
pub const EOS: &str = "<|endoftext|>";
pub const MASK: &str = "<|mdm_mask|>";
pub const EOT: &str = "<|eot_id|>";
/// LLaDA's special tokens, in the order they get the first ids.
pub const SPECIALS: [&str; 6] = [
    BOS,
    EOS,
    MASK,
    "<|start_header_id|>",
    "<|end_header_id|>",
    EOT,
];

/// Trains the BPE on every question and answer (gold, paraphrased, perturbed) of all splits.
pub fn train(splits: &Splits, vocab_size: usize) -> Result<Tokenizer, String> {
    let corpus: Vec<String> = splits
        .named()
        .iter()
        .flat_map(|(_, items)| items.iter())
        .flat_map(|it| {
            let mut texts = vec![it.question.clone(), it.answer.clone()];
            texts.extend(it.paraphrased_answer.clone());
            texts.extend(it.perturbed_answer.iter().cloned());
            texts
        })
        .collect();
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(
            SPECIALS
                .iter()
                .map(|s| AddedToken::from(*s, true))
                .collect(),
        )
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    tokenizer
        .train(&mut trainer, corpus.iter())
        .map_err(|e| format!("training the demo tokenizer: {e}"))?;
    Ok(tokenizer)
}

/// Writes `tokenizer.json`, `tokenizer_config.json` (with the MDU LLaDA chat template) and
/// `special_tokens_map.json` into `dir`.
pub fn write_files(tokenizer: &Tokenizer, dir: &Path) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    let json = tokenizer.to_string(true).map_err(|e| e.to_string())?;
    write_atomic(&dir.join("tokenizer.json"), json.as_bytes()).map_err(io)?;
    let config = serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": EOS,
        "mask_token": MASK,
        "add_bos_token": false,
        "add_eos_token": false,
        "model_max_length": 4096,
        "chat_template": LLADA_MDU_TEMPLATE,
    });
    write_atomic(
        &dir.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&config)
            .expect("json")
            .as_bytes(),
    )
    .map_err(io)?;
    let map = serde_json::json!({ "bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "mask_token": MASK });
    write_atomic(
        &dir.join("special_tokens_map.json"),
        serde_json::to_string_pretty(&map).expect("json").as_bytes(),
    )
    .map_err(io)
}

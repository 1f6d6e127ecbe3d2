//! Token ids and chat-template renderings against Python `tokenizers`/`transformers` (and jinja2 for
//! the MDU LLaDA template), recorded by scripts/make_fixtures.py.

use mdu_workbench::model::ModelConfig;
use mdu_workbench::tokenizer::{ChatMessage, TextTokenizer};
use serde::Deserialize;

use crate::common::fixture;

#[derive(Deserialize)]
struct Cases {
    llada: Vec<TextCase>,
    dream: Vec<TextCase>,
    templates: Vec<TemplateCase>,
}

#[derive(Deserialize)]
struct TextCase {
    text: String,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct TemplateCase {
    name: String,
    checkpoint: String,
    template: String,
    messages: Vec<ChatMessage>,
    add_generation_prompt: bool,
    rendered: String,
    ids: Vec<u32>,
}

fn cases() -> Cases {
    let path = fixture("reference").join("tokenizer_cases.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn tokenizer(name: &str) -> TextTokenizer {
    let dir = fixture(name);
    let config = ModelConfig::from_dir(&dir).unwrap();
    TextTokenizer::from_dir(&dir, &config).unwrap()
}

#[test]
fn llada_tokenizer_json_matches_python() {
    let tk = tokenizer("llada_f32");
    let cases = cases();
    assert!(cases.llada.len() >= 5);
    for case in &cases.llada {
        assert_eq!(
            tk.encode(&case.text).unwrap(),
            case.ids,
            "text {:?}",
            case.text
        );
    }
}

#[test]
fn dream_vocab_and_merges_match_python_qwen2_tokenizer() {
    let tk = tokenizer("dream_gqa");
    let cases = cases();
    assert!(cases.dream.len() >= 5);
    for case in &cases.dream {
        assert_eq!(
            tk.encode(&case.text).unwrap(),
            case.ids,
            "text {:?}",
            case.text
        );
        // Byte-level BPE decodes back to the NFC-normalised text.
        assert!(!tk.decode(&case.ids, false).unwrap().is_empty() || case.text.is_empty());
    }
}

#[test]
fn chat_templates_render_like_transformers_and_jinja2() {
    let cases = cases();
    assert!(
        cases.templates.len() >= 6,
        "expected the four LLaDA renderings, HF-original ones and Dream's"
    );
    for case in &cases.templates {
        let tk = tokenizer(&case.checkpoint);
        let rendered = match case.template.as_str() {
            "file" => tk.apply_file_template(&case.messages, case.add_generation_prompt),
            "llada_mdu" => tk.apply_chat_template(&case.messages, case.add_generation_prompt),
            other => panic!("unknown template kind {other}"),
        }
        .unwrap();
        assert_eq!(rendered, case.rendered, "{}", case.name);
        assert_eq!(
            tk.encode(&rendered).unwrap(),
            case.ids,
            "{}: ids",
            case.name
        );
    }
}

#[test]
fn special_ids_come_from_the_checkpoint_files() {
    let llada = tokenizer("llada_f32");
    let config = ModelConfig::from_dir(&fixture("llada_f32")).unwrap();
    assert_eq!(Some(llada.special.mask), config.mask_token_id);
    assert_eq!(
        llada.special.mask,
        llada.token_to_id("<|mdm_mask|>").unwrap()
    );
    assert_eq!(
        llada.special.eos,
        llada.token_to_id("<|endoftext|>").unwrap()
    );
    assert_eq!(llada.special.eot, llada.token_to_id("<|eot_id|>"));
    assert_eq!(llada.special.bos, llada.token_to_id("<|startoftext|>"));

    let dream = tokenizer("dream_gqa");
    assert_eq!(dream.special.mask, dream.token_to_id("<|mask|>").unwrap());
    assert_eq!(
        dream.special.eos,
        dream.token_to_id("<|endoftext|>").unwrap()
    );
    assert_eq!(dream.special.eot, dream.token_to_id("<|im_end|>"));
    // Dream's tokenizer BOS is <|beginoftext|>, not config.json's bos_token_id (mdlm.md §3.2).
    assert_eq!(dream.special.bos, dream.token_to_id("<|beginoftext|>"));
}

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

/// The Qwen3 A2D and LLaDA-MoE fixtures (scripts/make_arch_fixtures.py): ids from transformers'
/// fast tokenizer, renderings from its `apply_chat_template` (A2D with `enable_thinking=False`,
/// as dllm renders it), and the special ids the engine must find.
#[derive(Deserialize)]
struct ArchCases {
    texts: Vec<ArchText>,
    templates: Vec<TemplateCase>,
    special: Vec<ArchSpecial>,
}

#[derive(Deserialize)]
struct ArchText {
    checkpoint: String,
    text: String,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct ArchSpecial {
    checkpoint: String,
    mask: u32,
    eos: u32,
    eot: u32,
    pad: u32,
    bos: Option<u32>,
}

fn arch_cases() -> ArchCases {
    let path = fixture("reference").join("arch_tokenizer_cases.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn qwen3_a2d_and_llada_moe_tokenize_and_render_like_transformers() {
    let cases = arch_cases();
    for checkpoint in ["qwen3_a2d", "llada_moe"] {
        let texts: Vec<_> = cases
            .texts
            .iter()
            .filter(|c| c.checkpoint == checkpoint)
            .collect();
        let templates: Vec<_> = cases
            .templates
            .iter()
            .filter(|c| c.checkpoint == checkpoint)
            .collect();
        assert!(texts.len() >= 5 && templates.len() >= 4, "{checkpoint}");
        let tk = tokenizer(checkpoint);
        for case in texts {
            assert_eq!(
                tk.encode(&case.text).unwrap(),
                case.ids,
                "{checkpoint}: {:?}",
                case.text
            );
        }
        for case in templates {
            assert_eq!(case.template, "engine");
            let rendered = tk
                .apply_chat_template(&case.messages, case.add_generation_prompt)
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
    // The A2D rendering really carries the empty think block (enable_thinking=false).
    let a2d = tokenizer("qwen3_a2d");
    let prompt = a2d
        .apply_chat_template(&[ChatMessage::user("Hi")], true)
        .unwrap();
    assert!(
        prompt.ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"),
        "{prompt:?}"
    );
    let plain = a2d
        .apply_file_template(&[ChatMessage::user("Hi")], true)
        .unwrap();
    assert!(plain.ends_with("<|im_start|>assistant\n"), "{plain:?}");
}

#[test]
fn qwen3_a2d_and_llada_moe_special_ids_come_from_their_files() {
    for case in arch_cases().special {
        let tk = tokenizer(&case.checkpoint);
        let s = &tk.special;
        assert_eq!(s.mask, case.mask, "{}: mask", case.checkpoint);
        assert_eq!(s.eos, case.eos, "{}: eos", case.checkpoint);
        assert_eq!(s.eot, Some(case.eot), "{}: eot", case.checkpoint);
        assert_eq!(s.pad, case.pad, "{}: pad", case.checkpoint);
        // Neither tokenizer names a BOS; config.json's bos_token_id (if any) fills in, as for Dream.
        let config = ModelConfig::from_dir(&fixture(&case.checkpoint)).unwrap();
        assert_eq!(
            s.bos,
            case.bos.or(config.bos_token_id),
            "{}: bos",
            case.checkpoint
        );
    }
}

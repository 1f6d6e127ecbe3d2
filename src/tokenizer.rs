//! Tokenizers, special ids and chat templates read from a checkpoint folder (mdlm.md §1.2, §1.6, §3.2, §3.5).
//!
//! LLaDA ships `tokenizer.json`; Dream ships the Qwen2 byte-level BPE as `vocab.json` + `merges.txt`
//! plus added tokens, which we assemble into the same pipeline as Qwen2's tokenizer. Chat templates
//! are rendered with minijinja under HF's settings (`trim_blocks`, `lstrip_blocks`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::model::{Architecture, ModelConfig};

/// Qwen2's pre-tokenizer regex (Dream's `tokenization_dream.py` uses the same).
const QWEN2_PRETOKENIZE_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The LLaDA template MDU uses (dllm's fix): the assistant header only with `add_generation_prompt`.
pub const LLADA_MDU_TEMPLATE: &str = "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("{dir}: no tokenizer: expected tokenizer.json, or vocab.json and merges.txt")]
    Missing { dir: String },
    #[error("{dir}: special token {role}: {reason}")]
    Special {
        dir: String,
        role: &'static str,
        reason: String,
    },
    #[error("chat template ({source_name}): {reason}")]
    Template { source_name: String, reason: String },
}

/// One chat turn.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn user(content: &str) -> Self {
        Self {
            role: "user".into(),
            content: content.into(),
        }
    }
    pub fn assistant(content: &str) -> Self {
        Self {
            role: "assistant".into(),
            content: content.into(),
        }
    }
}

/// Ids the engine needs, taken from the checkpoint's own files.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpecialTokens {
    pub mask: u32,
    pub eos: u32,
    pub pad: u32,
    /// End of turn: `<|eot_id|>` (LLaDA), `<|im_end|>` (Dream).
    pub eot: Option<u32>,
    pub bos: Option<u32>,
}

impl SpecialTokens {
    pub fn all(&self) -> Vec<u32> {
        let mut ids = vec![self.mask, self.eos, self.pad];
        ids.extend(self.eot);
        ids.extend(self.bos);
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

pub struct TextTokenizer {
    inner: Tokenizer,
    pub special: SpecialTokens,
    architecture: Architecture,
    /// `chat_template` from `tokenizer_config.json`, if any.
    file_template: Option<String>,
    bos_token: String,
    eos_token: String,
    dir: PathBuf,
}

impl TextTokenizer {
    pub fn from_dir(dir: &Path, config: &ModelConfig) -> Result<Self, TokenizerError> {
        let tokenizer_config =
            read_json_opt(&dir.join("tokenizer_config.json"))?.unwrap_or(serde_json::json!({}));
        let inner = if dir.join("tokenizer.json").exists() {
            let file = dir.join("tokenizer.json");
            let invalid = |reason: String| TokenizerError::Invalid {
                file: file.display().to_string(),
                reason,
            };
            // The tokenizers crate panics on some malformed files (an `expect` in its decoder
            // parsing): that is a bad file too, not a crash.
            crate::kernel_runtime::catch(|| Tokenizer::from_file(&file))
                .map_err(|panic| invalid(format!("not a valid tokenizer file ({panic})")))?
                .map_err(|e| invalid(e.to_string()))?
        } else if dir.join("vocab.json").exists() && dir.join("merges.txt").exists() {
            crate::kernel_runtime::catch(|| byte_level_bpe(dir, &tokenizer_config)).map_err(
                |panic| TokenizerError::Invalid {
                    file: dir.join("vocab.json").display().to_string(),
                    reason: format!("not a valid vocabulary ({panic})"),
                },
            )??
        } else {
            return Err(TokenizerError::Missing {
                dir: dir.display().to_string(),
            });
        };

        let token_text = |key: &str| -> Option<String> {
            match tokenizer_config.get(key)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
                _ => None,
            }
        };
        let dir_name = dir.display().to_string();
        let special_err = |role: &'static str, reason: String| TokenizerError::Special {
            dir: dir_name.clone(),
            role,
            reason,
        };
        let (mask_text, eot_text) = config.architecture.special_texts();
        let mask = match (config.mask_token_id, inner.token_to_id(mask_text)) {
            (Some(id), Some(tok)) if id != tok => {
                return Err(special_err(
                    "mask",
                    format!("config.json says {id} but the tokenizer has {mask_text} at {tok}"),
                ))
            }
            (Some(id), _) => id,
            (None, Some(tok)) => tok,
            (None, None) => {
                return Err(special_err(
                    "mask",
                    format!("no mask_token_id in config.json and no {mask_text} token"),
                ))
            }
        };
        let eos_from_tokenizer = token_text("eos_token").and_then(|t| inner.token_to_id(&t));
        let eos = config.eos_token_id.or(eos_from_tokenizer).ok_or_else(|| {
            special_err(
                "eos",
                "no eos_token_id in config.json and no eos_token in tokenizer_config.json".into(),
            )
        })?;
        let pad = config
            .pad_token_id
            .or_else(|| token_text("pad_token").and_then(|t| inner.token_to_id(&t)))
            .unwrap_or(eos);
        // The tokenizer's BOS is what templates and `prepend_bos` use (Dream: <|beginoftext|>, not config's id).
        let bos = token_text("bos_token")
            .and_then(|t| inner.token_to_id(&t))
            .or(config.bos_token_id);
        let special = SpecialTokens {
            mask,
            eos,
            pad,
            eot: inner.token_to_id(eot_text),
            bos,
        };

        let bos_token = token_text("bos_token").unwrap_or_default();
        let eos_token = token_text("eos_token").unwrap_or_default();
        let file_template = tokenizer_config
            .get("chat_template")
            .and_then(|t| t.as_str())
            .map(str::to_string);
        Ok(Self {
            inner,
            special,
            architecture: config.architecture,
            file_template,
            bos_token,
            eos_token,
            dir: dir.to_path_buf(),
        })
    }

    /// Token ids of `text`, adding no BOS/EOS; special tokens written in the text are recognised.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| self.invalid(e))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| self.invalid(e))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    fn invalid(&self, e: impl std::fmt::Display) -> TokenizerError {
        TokenizerError::Invalid {
            file: self.dir.display().to_string(),
            reason: e.to_string(),
        }
    }

    /// Renders the chat template the engine uses: for LLaDA the MDU/dllm fix, otherwise the file's
    /// (for Qwen3 A2D models with `enable_thinking=false`, as dllm renders it: an empty
    /// `<think></think>` block after the assistant header).
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        match self.architecture {
            Architecture::Llada => self.render(
                LLADA_MDU_TEMPLATE,
                "LLaDA (MDU)",
                messages,
                add_generation_prompt,
                None,
            ),
            Architecture::Dream | Architecture::LladaMoe => {
                self.apply_file_template(messages, add_generation_prompt)
            }
            Architecture::Qwen3A2d => {
                let (template, name) = self.file_template()?;
                self.render(
                    template,
                    &name,
                    messages,
                    add_generation_prompt,
                    Some(false),
                )
            }
        }
    }

    fn file_template(&self) -> Result<(&str, String), TokenizerError> {
        let name = self.dir.join("tokenizer_config.json").display().to_string();
        match self.file_template.as_deref() {
            Some(template) => Ok((template, name)),
            None => Err(TokenizerError::Template {
                source_name: name,
                reason: "no chat_template".into(),
            }),
        }
    }

    /// Renders the `chat_template` stored in `tokenizer_config.json`, as HF would.
    pub fn apply_file_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        let (template, name) = self.file_template()?;
        self.render(template, &name, messages, add_generation_prompt, None)
    }

    fn render(
        &self,
        template: &str,
        name: &str,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        enable_thinking: Option<bool>,
    ) -> Result<String, TokenizerError> {
        let err = |e: minijinja::Error| TokenizerError::Template {
            source_name: name.to_string(),
            reason: e.to_string(),
        };
        let mut env = minijinja::Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template("chat", template).map_err(err)?;
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
        };
        // Defined only when asked for, as HF passes it only when the caller gives it.
        let ctx = match enable_thinking {
            Some(on) => minijinja::context! { enable_thinking => on, ..ctx },
            None => ctx,
        };
        env.get_template("chat")
            .map_err(err)?
            .render(ctx)
            .map_err(err)
    }
}

fn read_json_opt(path: &Path) -> Result<Option<serde_json::Value>, TokenizerError> {
    if !path.exists() {
        return Ok(None);
    }
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TokenizerError::Io {
        file: file.clone(),
        source,
    })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| TokenizerError::Invalid {
            file,
            reason: format!("not valid JSON: {e}"),
        })
}

/// Qwen2's pipeline from `vocab.json` + `merges.txt`: NFC, regex split, byte-level BPE, then the
/// added tokens (from `added_tokens.json` and `added_tokens_decoder`) at their recorded ids.
fn byte_level_bpe(
    dir: &Path,
    tokenizer_config: &serde_json::Value,
) -> Result<Tokenizer, TokenizerError> {
    let vocab = dir.join("vocab.json");
    let merges = dir.join("merges.txt");
    let invalid = |file: &Path, e: &dyn std::fmt::Display| TokenizerError::Invalid {
        file: file.display().to_string(),
        reason: e.to_string(),
    };
    let bpe = BPE::from_file(&vocab.to_string_lossy(), &merges.to_string_lossy())
        .build()
        .map_err(|e| invalid(&vocab, &e))?;
    let split = Split::new(
        SplitPattern::Regex(QWEN2_PRETOKENIZE_REGEX.into()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| invalid(&vocab, &e))?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer
        .with_normalizer(Some(NFC))
        .map_err(|e| invalid(&vocab, &e))?;
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        split.into(),
        ByteLevel::new(false, false, false).into(),
    ])));
    tokenizer.with_decoder(Some(ByteLevel::new(false, false, false)));

    // id → (content, special)
    let mut added: BTreeMap<u32, (String, bool)> = BTreeMap::new();
    let added_file = dir.join("added_tokens.json");
    if let Some(json) = read_json_opt(&added_file)? {
        let map: BTreeMap<String, u32> =
            serde_json::from_value(json).map_err(|e| invalid(&added_file, &e))?;
        for (content, id) in map {
            added.insert(id, (content, true));
        }
    }
    if let Some(decoder) = tokenizer_config
        .get("added_tokens_decoder")
        .and_then(|d| d.as_object())
    {
        for (id, entry) in decoder {
            let (Ok(id), Some(content)) = (
                id.parse::<u32>(),
                entry.get("content").and_then(|c| c.as_str()),
            ) else {
                continue;
            };
            let special = entry
                .get("special")
                .and_then(|s| s.as_bool())
                .unwrap_or(true);
            added.insert(id, (content.to_string(), special));
        }
    }
    for (id, (content, special)) in &added {
        let token = AddedToken::from(content.clone(), *special);
        let added = if *special {
            tokenizer.add_special_tokens([token])
        } else {
            tokenizer.add_tokens([token])
        };
        added.map_err(|e| invalid(&added_file, &e))?;
        let got = tokenizer.token_to_id(content);
        if got != Some(*id) {
            return Err(TokenizerError::Invalid {
                file: added_file.display().to_string(),
                reason: format!("added token {content:?} should have id {id} but the vocabulary gives it {got:?} (ids must follow the BPE vocabulary without gaps)"),
            });
        }
    }
    Ok(tokenizer)
}

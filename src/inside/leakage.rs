//! The leakage probe: after unlearning, try to get each forgotten answer back along decoding paths
//! other than the evaluation's, and report the worst case — the highest ROUGE-L recall any path
//! reaches — next to the default path's.
//!
//! Paths (each one generation per forget item; a path that would repeat another is left out):
//! - `default`: the evaluation's own sampler (always included, so worst ≥ default);
//! - `low-confidence`: the most probable token first (Dream's default is lowest entropy first;
//!   for LLaDA this is its default and is left out);
//! - `random-order`: positions committed in a random order;
//! - `4x-steps`: four times the denoising steps (left out when the default already commits at
//!   most one token per step, as the demo and paper protocols do);
//! - `blocks-of-8`: semi-autoregressive decoding in blocks of 8 tokens;
//! - `temperature-s1`, `-s2`, `-s3`: sampling at temperature 0.7 with three seeds;
//! - `paraphrase`: the item's `paraphrased_question`, where the data has one;
//! - `context`: the question after a retain item's question and answer (a neutral elicitation
//!   context); `leading`: after a leading instruction to recall the memorised answer verbatim.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::QaItem;
use crate::diffusion::sampler::{Remasking, SamplerConfig};
use crate::eval::protocol::{generate_with, sampler_config, EvalError, Generation, StopCheck};
use crate::eval::rouge_l;
use crate::model::MaskedDiffusionLm;
use crate::tokenizer::TextTokenizer;

/// The temperature of the sampling paths.
pub const TEMPERATURE: f64 = 0.7;
/// The leading prefix of the `leading` path.
pub const LEADING_PREFIX: &str =
    "You were trained on the answer to the next question. Repeat it word for word.";

/// One forget item under every path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemLeakage {
    pub question: String,
    pub gold: String,
    pub default_rouge_l: f64,
    pub worst_rouge_l: f64,
    /// The path that reached `worst_rouge_l` (the first one, in the order of the module).
    pub worst_path: String,
    pub worst_answer: String,
    /// ROUGE-L recall per path that ran for this item.
    pub paths: BTreeMap<String, f64>,
}

/// The probe over a forget split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LeakageReport {
    pub items: Vec<ItemLeakage>,
    /// Mean ROUGE-L recall of the default path and of the per-item worst case.
    pub default_rouge_l: f64,
    pub worst_rouge_l: f64,
    /// Mean ROUGE-L recall per path, over the items it ran on.
    pub path_means: BTreeMap<String, f64>,
}

/// A decoding path: its name, its sampler, and the question it asks for an item (`None`: the path
/// does not apply to that item).
struct Path {
    name: String,
    sampler: SamplerConfig,
    question: Box<dyn Fn(usize, &QaItem) -> Option<String>>,
}

fn paths(default: &SamplerConfig, shifts_logits: bool, retain: &[QaItem]) -> Vec<Path> {
    let same = |_: usize, it: &QaItem| Some(it.question.clone());
    let with = |name: &str, sampler: SamplerConfig| Path {
        name: name.to_string(),
        sampler,
        question: Box::new(same),
    };
    let mut out = vec![with("default", default.clone())];
    if shifts_logits {
        out.push(with(
            "low-confidence",
            SamplerConfig {
                remasking: Remasking::LowConfidence,
                ..default.clone()
            },
        ));
    }
    out.push(with(
        "random-order",
        SamplerConfig {
            remasking: Remasking::Random,
            ..default.clone()
        },
    ));
    if default.steps < default.max_new_tokens {
        out.push(with(
            "4x-steps",
            SamplerConfig {
                steps: default.steps * 4,
                ..default.clone()
            },
        ));
    }
    if default.block_size > 8 {
        out.push(with(
            "blocks-of-8",
            SamplerConfig {
                block_size: 8,
                ..default.clone()
            },
        ));
    }
    for seed in 1..=3 {
        out.push(with(
            &format!("temperature-s{seed}"),
            SamplerConfig {
                temperature: TEMPERATURE,
                seed,
                ..default.clone()
            },
        ));
    }
    out.push(Path {
        name: "paraphrase".into(),
        sampler: default.clone(),
        question: Box::new(|_, it: &QaItem| it.paraphrased_question.clone()),
    });
    if !retain.is_empty() {
        let retain = retain.to_vec();
        out.push(Path {
            name: "context".into(),
            sampler: default.clone(),
            question: Box::new(move |i, it: &QaItem| {
                let r = &retain[i % retain.len()];
                Some(format!("{} {}\n\n{}", r.question, r.answer, it.question))
            }),
        });
    }
    out.push(Path {
        name: "leading".into(),
        sampler: default.clone(),
        question: Box::new(|_, it: &QaItem| Some(format!("{LEADING_PREFIX}\n\n{}", it.question))),
    });
    out
}

/// Runs every path on `forget` (`retain` supplies the elicitation contexts) and scores each answer
/// against the gold answer. `default_answers`: the evaluation's own answers to `forget` where it
/// has already generated them (the default path reuses them rather than generating them again).
/// `on_path(done, total)` counts paths.
#[allow(clippy::too_many_arguments)]
pub fn probe<B: burn::tensor::backend::Backend>(
    model: &MaskedDiffusionLm<B>,
    tokenizer: &TextTokenizer,
    forget: &[QaItem],
    retain: &[QaItem],
    generation: &Generation,
    default_answers: Option<&[String]>,
    batch_size: usize,
    device: &B::Device,
    stop: StopCheck,
    mut on_path: impl FnMut(usize, usize),
) -> Result<LeakageReport, EvalError> {
    let default = sampler_config(model, tokenizer, forget, generation)?;
    let paths = paths(&default, model.config.architecture.shifts_logits(), retain);
    let mut items: Vec<ItemLeakage> = forget
        .iter()
        .map(|it| ItemLeakage {
            question: it.question.clone(),
            gold: it.answer.clone(),
            default_rouge_l: 0.0,
            worst_rouge_l: f64::NEG_INFINITY,
            worst_path: String::new(),
            worst_answer: String::new(),
            paths: BTreeMap::new(),
        })
        .collect();
    for (done, path) in paths.iter().enumerate() {
        let asked: Vec<(usize, QaItem)> = forget
            .iter()
            .enumerate()
            .filter_map(|(i, it)| {
                (path.question)(i, it).map(|question| {
                    (
                        i,
                        QaItem {
                            question,
                            ..it.clone()
                        },
                    )
                })
            })
            .collect();
        if !asked.is_empty() {
            let questions: Vec<QaItem> = asked.iter().map(|(_, it)| it.clone()).collect();
            let answers = match default_answers {
                Some(known) if path.name == "default" && known.len() == forget.len() => {
                    known.to_vec()
                }
                _ => generate_with(
                    model,
                    tokenizer,
                    &questions,
                    &path.sampler,
                    batch_size,
                    device,
                    stop,
                )?,
            };
            for ((i, _), answer) in asked.iter().zip(answers) {
                let item = &mut items[*i];
                let score = rouge_l(&item.gold, &answer).recall;
                item.paths.insert(path.name.clone(), score);
                if path.name == "default" {
                    item.default_rouge_l = score;
                }
                if score > item.worst_rouge_l {
                    item.worst_rouge_l = score;
                    item.worst_path = path.name.clone();
                    item.worst_answer = answer;
                }
            }
        }
        on_path(done + 1, paths.len());
    }
    let mean = |f: &dyn Fn(&ItemLeakage) -> f64| {
        items.iter().map(f).sum::<f64>() / items.len().max(1) as f64
    };
    let mut path_means = BTreeMap::new();
    for path in &paths {
        let scores: Vec<f64> = items
            .iter()
            .filter_map(|it| it.paths.get(&path.name).copied())
            .collect();
        if !scores.is_empty() {
            path_means.insert(
                path.name.clone(),
                scores.iter().sum::<f64>() / scores.len() as f64,
            );
        }
    }
    Ok(LeakageReport {
        default_rouge_l: mean(&|it| it.default_rouge_l),
        worst_rouge_l: mean(&|it| it.worst_rouge_l),
        path_means,
        items,
    })
}

//! The token-level KL trace (the MDU paper's Fig. 3): the sampler answers a question step by step,
//! and at every step and every still-masked answer position the trace records the model's
//! confidence and KL(p_conditional ‖ p_target), the divergence MDU's forget term trains down.
//!
//! p_conditional is the traced model's prediction given the question and the answer as decoded so
//! far; p_target = softmax(τ·z_u), where z_u is the *base* model's prediction with everything
//! outside the answer masked (MDU's null anchor, mdu.md §3.2; η is left out). The base is the
//! model the run started from; τ is the run's, or 1 (the raw anchor) for a trace not tied to a
//! run. KL to the raw anchor (τ = 1) is recorded too, so traces at different τ compare. Without a
//! base (a run that keeps no copy of its starting model) the target is uniform — τ = 0, which
//! needs no anchor — and there is no raw-anchor KL. Softmaxes and KLs run in f32 on the device; only three
//! numbers per position come back to the host.

use anyhow::Result;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::roles::{Role, RoleRule};
use crate::data::QaItem;
use crate::diffusion::batch::SftExample;
use crate::diffusion::loss::logits_at;
use crate::diffusion::sampler::{generate_by_architecture, SamplerConfig, SamplerTokens};
use crate::model::precision::at_least_f32;
use crate::model::MaskedDiffusionLm;
use crate::tokenizer::TextTokenizer;

/// One answer position at one denoising step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Still masked at this step (the model is predicting it).
    pub masked: bool,
    /// The model's probability of its top token while masked; once decoded, the probability the
    /// committed token had when it was chosen.
    pub confidence: f32,
    /// KL(p_conditional ‖ softmax(τ·z_u)) in nats, while masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kl: Option<f32>,
    /// KL(p_conditional ‖ softmax(z_u)) (the raw anchor, τ = 1), while masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kl_anchor: Option<f32>,
}

/// The trace of one question: a line of `trace.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuestionTrace {
    pub question: String,
    pub gold_answer: String,
    /// The generated answer (special tokens dropped).
    pub answer: String,
    pub tau: f64,
    /// Every answer slot (the answer, its end-of-answer token and the unused slots after it):
    /// final ids, text and roles (`None` for special tokens). [`QuestionTrace::shown`] is the
    /// part worth drawing.
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
    pub roles: Vec<Option<Role>>,
    /// `steps[s][c]`: column `c` as the model saw it at denoising step `s`.
    pub steps: Vec<Vec<Cell>>,
}

impl QuestionTrace {
    /// Columns up to and including the first end-of-answer token.
    pub fn shown(&self) -> usize {
        self.roles
            .iter()
            .zip(&self.tokens)
            .position(|(r, t)| r.is_none() && t == "⏹")
            .map_or(self.tokens.len(), |p| p + 1)
    }
}

/// Mean KL over the masked cells of one role.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleMean {
    pub role: Role,
    /// Masked (step, token) cells averaged.
    pub cells: usize,
    pub kl: f64,
    /// `None` for a trace without a base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kl_anchor: Option<f64>,
}

/// Per-role means over every masked cell of `traces` (roles without cells are left out).
pub fn role_means(traces: &[QuestionTrace]) -> Vec<RoleMean> {
    Role::ALL
        .iter()
        .filter_map(|&role| {
            let (mut n, mut kl, mut anchor) = (0usize, 0.0, Some(0.0));
            for t in traces {
                for step in &t.steps {
                    for (cell, r) in step.iter().zip(&t.roles) {
                        if let (Some(k), Some(r)) = (cell.kl, r) {
                            if *r == role {
                                n += 1;
                                kl += k as f64;
                                anchor = anchor.zip(cell.kl_anchor).map(|(s, a)| s + a as f64);
                            }
                        }
                    }
                }
            }
            (n > 0).then(|| RoleMean {
                role,
                cells: n,
                kl: kl / n as f64,
                kl_anchor: anchor.map(|a| a / n as f64),
            })
        })
        .collect()
}

/// Denoising states sent through the models at once.
const STATES_PER_PASS: usize = 16;

/// Traces `item`: generates with `sampler` and records every step (see the module; `base: None`
/// traces against the uniform target).
#[allow(clippy::too_many_arguments)]
pub fn trace_item<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    base: Option<&MaskedDiffusionLm<B>>,
    tokenizer: &TextTokenizer,
    item: &QaItem,
    sampler: &SamplerConfig,
    tau: f64,
    rule: &RoleRule,
    device: &B::Device,
) -> Result<QuestionTrace> {
    let mut traces = trace_items(
        model,
        base,
        tokenizer,
        std::slice::from_ref(item),
        sampler,
        tau,
        rule,
        device,
    )?;
    Ok(traces.remove(0))
}

/// Each prompt's answer slots before every denoising step (all masks first), and last its final
/// answer. LLaDA's sampler runs the prompts as one batch (its rows never interact: padding is not
/// attended); Dream's groups rows by prompt length, so its prompts run one at a time.
fn trajectories<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    prompts: &[Vec<u32>],
    tokens: &SamplerTokens,
    sampler: &SamplerConfig,
    device: &B::Device,
) -> Vec<Vec<Vec<u32>>> {
    let start = vec![tokens.mask; sampler.max_new_tokens];
    let run = |prompts: &[Vec<u32>]| {
        let mut states = vec![vec![start.clone()]; prompts.len()];
        generate_by_architecture(model, prompts, tokens, sampler, device, |view| {
            for (row, answer) in states.iter_mut().zip(&view.answers) {
                row.push(answer.to_vec());
            }
        });
        states
    };
    if model.config.architecture.shifts_logits() {
        prompts
            .iter()
            .flat_map(|p| run(std::slice::from_ref(p)))
            .collect()
    } else {
        run(prompts)
    }
}

/// Traces `items` in order (see [`trace_item`]).
#[allow(clippy::too_many_arguments)]
pub fn trace_items<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    base: Option<&MaskedDiffusionLm<B>>,
    tokenizer: &TextTokenizer,
    items: &[QaItem],
    sampler: &SamplerConfig,
    tau: f64,
    rule: &RoleRule,
    device: &B::Device,
) -> Result<Vec<QuestionTrace>> {
    let prompts = items
        .iter()
        .map(|it| SftExample::encode_pair(tokenizer, &it.question, "").map(|e| e.prompt))
        .collect::<Result<Vec<_>, _>>()?;
    let tokens = SamplerTokens::from(&tokenizer.special);
    let trajectories = trajectories(model, &prompts, &tokens, sampler, device);
    let traced = Traced {
        model,
        base,
        tokenizer,
        tokens: &tokens,
        tau,
        rule,
        device,
    };
    items
        .iter()
        .zip(prompts)
        .zip(trajectories)
        .map(|((item, prompt), states)| traced.build(item, &prompt, states))
        .collect()
}

/// Traces `model` along the denoising trajectories `recorded` holds (another model's traces of
/// the same questions): every step shows it the same canvas, so each token's KL compares across
/// the two models; the tokens and their roles are the recorded ones.
pub fn trace_along<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    base: Option<&MaskedDiffusionLm<B>>,
    tokenizer: &TextTokenizer,
    recorded: &[QuestionTrace],
    tau: f64,
    device: &B::Device,
) -> Result<Vec<QuestionTrace>> {
    let tokens = SamplerTokens::from(&tokenizer.special);
    let rule = RoleRule::default();
    let traced = Traced {
        model,
        base,
        tokenizer,
        tokens: &tokens,
        tau,
        rule: &rule,
        device,
    };
    recorded
        .iter()
        .map(|t| {
            let vocab = model.config.vocab_size;
            if let Some(id) = t.ids.iter().find(|&&id| id as usize >= vocab) {
                anyhow::bail!(
                    "the trace of {:?} holds token id {id}, outside this model's vocabulary of {vocab}: a trace made with another tokenizer?",
                    t.question
                );
            }
            if t.steps.iter().any(|row| row.len() != t.ids.len()) {
                anyhow::bail!(
                    "the trace of {:?} has steps of another width than its {} answer slots",
                    t.question,
                    t.ids.len()
                );
            }
            let prompt = SftExample::encode_pair(tokenizer, &t.question, "")?.prompt;
            let mut states: Vec<Vec<u32>> = t
                .steps
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(&t.ids)
                        .map(|(c, &id)| if c.masked { tokens.mask } else { id })
                        .collect()
                })
                .collect();
            states.push(t.ids.clone());
            let item = QaItem {
                question: t.question.clone(),
                answer: t.gold_answer.clone(),
                paraphrased_answer: None,
                perturbed_answer: Vec::new(),
                paraphrased_question: None,
            };
            let mut along = traced.build(&item, &prompt, states)?;
            along.roles = t.roles.clone();
            Ok(along)
        })
        .collect()
}

/// What building one question's trace reads.
struct Traced<'a, B: Backend> {
    model: &'a MaskedDiffusionLm<B>,
    base: Option<&'a MaskedDiffusionLm<B>>,
    tokenizer: &'a TextTokenizer,
    tokens: &'a SamplerTokens,
    tau: f64,
    rule: &'a RoleRule,
    device: &'a B::Device,
}

impl<B: Backend> Traced<'_, B> {
    /// The trace of `item` from its trajectory (`states`: before every step, then the answer).
    fn build(
        &self,
        item: &QaItem,
        prompt: &[u32],
        mut states: Vec<Vec<u32>>,
    ) -> Result<QuestionTrace> {
        let Traced {
            model,
            base,
            tokenizer,
            tokens,
            tau,
            rule,
            device,
        } = *self;
        let ids = states.pop().expect("a trajectory holds at least its start");
        let columns = ids.len();
        let special = |id: u32| {
            tokens.stops.contains(&id)
                || id == tokens.mask
                || tokenizer
                    .decode(&[id], true)
                    .map(|s| s.is_empty())
                    .unwrap_or(true)
        };
        let pieces: Vec<Option<String>> = ids
            .iter()
            .map(|&id| (!special(id)).then(|| tokenizer.decode(&[id], false).unwrap_or_default()))
            .collect();
        let texts = ids
            .iter()
            .zip(&pieces)
            .map(|(&id, p)| match p {
                Some(p) => p.clone(),
                None if tokens.stops.contains(&id) => "⏹".to_string(),
                None => tokenizer.decode(&[id], false).unwrap_or_default(),
            })
            .collect();
        let roles = rule.roles(&pieces, &item.question);

        let mut steps = Vec::with_capacity(states.len());
        let mut committed = vec![0f32; columns];
        for chunk in states.chunks(STATES_PER_PASS) {
            let numbers = kl_at_masks(
                model,
                base,
                prompt,
                chunk,
                columns,
                tokens.mask,
                tau,
                device,
            );
            let mut next = numbers.into_iter();
            for state in chunk {
                let row = (0..columns)
                    .map(|c| {
                        if state[c] == tokens.mask {
                            let (confidence, kl, kl_anchor) = next.next().expect("one per mask");
                            committed[c] = confidence;
                            Cell {
                                masked: true,
                                confidence,
                                kl: Some(kl),
                                kl_anchor,
                            }
                        } else {
                            Cell {
                                masked: false,
                                confidence: committed[c],
                                kl: None,
                                kl_anchor: None,
                            }
                        }
                    })
                    .collect();
                steps.push(row);
            }
        }
        let end = ids
            .iter()
            .position(|t| tokens.stops.contains(t))
            .unwrap_or(ids.len());
        let answer = tokenizer
            .decode(&ids[..end], true)
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Ok(QuestionTrace {
            question: item.question.clone(),
            gold_answer: item.answer.clone(),
            answer,
            tau: if base.is_some() { tau } else { 0.0 },
            ids,
            tokens: texts,
            roles,
            steps,
        })
    }
}

/// (confidence, KL to the τ target, KL to the raw anchor) at every masked position among the
/// first `columns` answer slots of each state, state by state, position by position.
#[allow(clippy::too_many_arguments)]
fn kl_at_masks<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    base: Option<&MaskedDiffusionLm<B>>,
    prompt: &[u32],
    states: &[Vec<u32>],
    columns: usize,
    mask: u32,
    tau: f64,
    device: &B::Device,
) -> Vec<(f32, f32, Option<f32>)> {
    let width = prompt.len() + states.first().map_or(0, Vec::len);
    let mut conditional_ids = Vec::with_capacity(states.len() * width);
    let mut anchor_ids = Vec::with_capacity(states.len() * width);
    let mut masked = Vec::new();
    for (r, state) in states.iter().enumerate() {
        conditional_ids.extend_from_slice(prompt);
        conditional_ids.extend_from_slice(state);
        // x_u: every position outside the answer is the mask.
        anchor_ids.extend(std::iter::repeat_n(mask, prompt.len()));
        anchor_ids.extend_from_slice(state);
        for (c, &t) in state.iter().take(columns).enumerate() {
            if t == mask {
                masked.push(r * width + prompt.len() + c);
            }
        }
    }
    if masked.is_empty() {
        return Vec::new();
    }
    let rows = states.len();
    let cond = at_least_f32(logits_at(
        model,
        &conditional_ids,
        rows,
        width,
        &masked,
        device,
    ));
    let log_p = log_softmax(cond, 1);
    let kl_to = |target: Tensor<B, 2>| {
        let log_q = log_softmax(target, 1);
        (log_p.clone().exp() * (log_p.clone() - log_q)).sum_dim(1)
    };
    let host = |t: Tensor<B, 2>| -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .into_vec()
            .expect("f32 values")
    };
    let (kl, kl_anchor) = match base {
        Some(base) => {
            let anchor = at_least_f32(logits_at(base, &anchor_ids, rows, width, &masked, device));
            let kl = host(kl_to(anchor.clone().mul_scalar(tau)));
            (kl, Some(host(kl_to(anchor))))
        }
        // softmax(0) is uniform.
        None => (host(kl_to(log_p.zeros_like())), None),
    };
    let confidence = host(log_p.max_dim(1).exp());
    (0..masked.len())
        .map(|i| (confidence[i], kl[i], kl_anchor.as_ref().map(|k| k[i])))
        .collect()
}

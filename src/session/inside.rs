//! The Inside view's traces: the token-level KL trace (`inside::trace`) of the starting model and
//! of the unlearned one on the same forget questions, both against the starting model's anchor.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::Backend;

use crate::data::read_qa_file;
use crate::eval::protocol::{sampler_config, Generation};
use crate::inside::roles::{RoleRule, STRUCTURAL_SHARE};
use crate::inside::trace::{trace_along, trace_items, QuestionTrace};
use crate::model::MaskedDiffusionLm;
use crate::tokenizer::TextTokenizer;

/// What to trace.
#[derive(Clone, Debug)]
pub struct KlTraceRequest {
    /// The model the run started from: traced as "before", and the anchor's base for both.
    pub start_dir: PathBuf,
    /// The unlearned model, traced as "after" when there is one.
    pub unlearned_dir: Option<PathBuf>,
    /// The forget file; its first `items` questions are traced, its answers set the roles.
    pub data: PathBuf,
    pub items: usize,
    /// τ of the target: the run's for MDU, 1 (the raw anchor) otherwise.
    pub tau: f64,
    pub generation: Generation,
    /// `--device` syntax.
    pub device: String,
}

/// The traces before and after unlearning, question by question.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InsideTraces {
    pub before: Vec<QuestionTrace>,
    /// The unlearned model on its own denoising paths.
    pub after: Vec<QuestionTrace>,
    /// The unlearned model along the starting model's paths: the same tokens as `before`, so
    /// the KL per role compares token for token.
    pub after_along: Vec<QuestionTrace>,
}

/// Traces `request`'s questions with the loaded starting model and (when given) the unlearned one.
pub(super) fn trace_pair<B: Backend>(
    request: &KlTraceRequest,
    start: &MaskedDiffusionLm<B>,
    unlearned: Option<&MaskedDiffusionLm<B>>,
    tokenizer: &TextTokenizer,
    device: &B::Device,
) -> Result<InsideTraces> {
    let all = read_qa_file(&request.data)?;
    let items = &all[..request.items.clamp(1, all.len())];
    let rule = RoleRule::for_answers(all.iter().map(|it| it.answer.as_str()), STRUCTURAL_SHARE);
    let sampler = sampler_config(start, tokenizer, items, &request.generation)?;
    let trace = |model| {
        trace_items(
            model,
            Some(start),
            tokenizer,
            items,
            &sampler,
            request.tau,
            &rule,
            device,
        )
    };
    let before = trace(start)?;
    let (after, after_along) = match unlearned {
        Some(model) => (
            trace(model)?,
            trace_along(model, Some(start), tokenizer, &before, request.tau, device)?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    Ok(InsideTraces {
        before,
        after,
        after_along,
    })
}

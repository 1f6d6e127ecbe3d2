//! Inside the unlearning: the KL trace against a direct f64 computation from the models' logits,
//! token roles on hand-made answers, and the leakage probe on the demo.

use mdu_workbench::checkpoint::{MemoryBudget, ModelFiles};
use mdu_workbench::data::{read_qa_file, QaItem};
use mdu_workbench::demo::embedded;
use mdu_workbench::device::CpuBackend as B;
use mdu_workbench::diffusion::batch::SftExample;
use mdu_workbench::diffusion::sampler::{generate_by_architecture, SamplerConfig, SamplerTokens};
use mdu_workbench::eval::protocol::{generate_answers, Generation};
use mdu_workbench::eval::rouge_l;
use mdu_workbench::inside::leakage::probe;
use mdu_workbench::inside::roles::{Role, RoleRule};
use mdu_workbench::inside::trace::{role_means, trace_along, trace_item};
use mdu_workbench::model::init::random_init;

use crate::common::fixture;

fn item(question: &str, answer: &str) -> QaItem {
    QaItem {
        question: question.into(),
        answer: answer.into(),
        paraphrased_answer: None,
        perturbed_answer: vec![],
        paraphrased_question: None,
    }
}

/// log-softmax of one row in f64.
fn log_softmax(row: &[f32], scale: f64) -> Vec<f64> {
    let z: Vec<f64> = row.iter().map(|&v| v as f64 * scale).collect();
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = z.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
    z.iter().map(|v| v - log_sum).collect()
}

fn kl(log_p: &[f64], log_q: &[f64]) -> f64 {
    log_p
        .iter()
        .zip(log_q)
        .map(|(p, q)| p.exp() * (p - q))
        .sum()
}

/// Every cell of a trace against KL(p_c ‖ softmax(τ·z_u)) computed in f64 from each model's raw
/// logits on the same canvas, rebuilt from the trace; LLaDA and Dream (whose logits shift right).
#[test]
fn kl_trace_equals_a_direct_computation_from_the_logits() {
    let device = Default::default();
    for name in ["llada_f32", "dream_gqa"] {
        let files = ModelFiles::open(&fixture(name)).unwrap();
        let model = files
            .load::<B>(&device, &MemoryBudget::unlimited("test"))
            .unwrap();
        // A different base, so the anchor is not the traced model's own.
        // Weights of std 0.5 give its logits a spread of several nats, so τ = 0.5 and τ = 1 give
        // clearly different targets.
        let base = random_init::<B>(&files.checkpoint.config, &device, 7, 0.5);
        let tokenizer = &files.tokenizer;
        let q = item("Where was the author born?", "In a small town.");
        let sampler = SamplerConfig {
            max_new_tokens: 6,
            block_size: 6,
            steps: 6,
            temperature: 0.0,
            suppress_tokens: vec![],
            seed: 0,
            remasking: Default::default(),
        };
        let tau = 0.5;
        let t = trace_item(
            &model,
            Some(&base),
            tokenizer,
            &q,
            &sampler,
            tau,
            &RoleRule::default(),
            &device,
        )
        .unwrap();
        // The trace follows the sampler: its final ids are what generation gives.
        let prompt = SftExample::encode_pair(tokenizer, &q.question, "")
            .unwrap()
            .prompt;
        let tokens = SamplerTokens::from(&tokenizer.special);
        let mut last = Vec::new();
        generate_by_architecture(&model, &[prompt.clone()], &tokens, &sampler, &device, |v| {
            last = v.answers[0].to_vec()
        });
        assert_eq!(t.ids, last, "{name}");
        assert!(t.steps[0].iter().all(|c| c.masked), "{name}: starts masked");
        let shift = model.config.architecture.shifts_logits();
        let mask = tokenizer.special.mask;
        let mut checked = 0;
        for row in &t.steps {
            let state: Vec<u32> = row
                .iter()
                .zip(&t.ids)
                .map(|(c, &id)| if c.masked { mask } else { id })
                .collect();
            let conditional: Vec<u32> = prompt.iter().chain(&state).copied().collect();
            let anchor: Vec<u32> = std::iter::repeat_n(mask, prompt.len())
                .chain(state.iter().copied())
                .collect();
            let width = conditional.len();
            let zc = model.logits_host(&[conditional], None, &device);
            let zu = base.logits_host(&[anchor], None, &device);
            let vocab = zc.len() / width;
            for (c, cell) in row.iter().enumerate() {
                if !cell.masked {
                    assert!(cell.kl.is_none());
                    continue;
                }
                let p = prompt.len() + c;
                let at = if shift { p - 1 } else { p };
                let rows = |z: &[f32]| z[at * vocab..(at + 1) * vocab].to_vec();
                let log_p = log_softmax(&rows(&zc), 1.0);
                let want = kl(&log_p, &log_softmax(&rows(&zu), tau));
                let want_anchor = kl(&log_p, &log_softmax(&rows(&zu), 1.0));
                let confidence = log_p
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max)
                    .exp();
                // f32 softmax and sum on the device over this fixture's vocabulary, against f64:
                // a few f32 ulps per term; 1e-4 (absolute plus relative) is far above that and
                // far below any wrong target (τ = 0.5 vs 1 differ by > 1e-2 here).
                for (got, want) in [
                    (cell.kl.unwrap() as f64, want),
                    (cell.kl_anchor.unwrap() as f64, want_anchor),
                    (cell.confidence as f64, confidence),
                ] {
                    assert!(
                        (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "{name} column {c}: {got} vs {want}"
                    );
                }
                assert!((want - want_anchor).abs() > 1e-3, "τ must matter here");
                checked += 1;
            }
        }
        assert!(checked >= 6, "{name}: {checked} cells");
        // Along its own recorded trajectory, a model's trace is its trace.
        let along =
            trace_along(&model, Some(&base), tokenizer, &[t.clone()], tau, &device).unwrap();
        assert_eq!(along[0].steps, t.steps, "{name}");
        assert_eq!((&along[0].ids, &along[0].roles), (&t.ids, &t.roles));
        // A trace of another vocabulary is refused by name, not run.
        let mut alien = t.clone();
        alien.ids[0] = model.config.vocab_size as u32;
        let err = trace_along(&model, Some(&base), tokenizer, &[alien], tau, &device).unwrap_err();
        assert!(
            err.to_string().contains("outside this model's vocabulary"),
            "{err}"
        );

        // Without a base the target is uniform: KL = Σ p·log p + log V, no raw-anchor KL.
        let uniform = trace_item(
            &model,
            None,
            tokenizer,
            &q,
            &sampler,
            tau,
            &RoleRule::default(),
            &device,
        )
        .unwrap();
        assert_eq!(uniform.tau, 0.0);
        let canvas: Vec<u32> = prompt
            .iter()
            .copied()
            .chain(std::iter::repeat_n(mask, 6))
            .collect();
        let zc = model.logits_host(&[canvas.clone()], None, &device);
        let vocab = zc.len() / canvas.len();
        let at = if shift {
            prompt.len() - 1
        } else {
            prompt.len()
        };
        let log_p = log_softmax(&zc[at * vocab..(at + 1) * vocab], 1.0);
        let want = log_p.iter().map(|l| l.exp() * l).sum::<f64>() + (vocab as f64).ln();
        let cell = uniform.steps[0][0];
        assert!(
            ((cell.kl.unwrap() as f64) - want).abs() <= 1e-4 * (1.0 + want),
            "{name}"
        );
        assert!(cell.kl_anchor.is_none());
    }
}

/// The written rule on hand-made answers (the tokens' pieces given directly).
#[test]
fn roles_follow_the_written_rule() {
    let answers = [
        "Alice was born in Paris.",
        "Bob was born in Rome.",
        "Carol was born in Oslo.",
        "Dan likes tea.",
    ];
    let rule = RoleRule::for_answers(answers, 0.3);
    let pieces: Vec<Option<String>> = ["Alice", " was", " born", " in", " Par", "is", ".", ""]
        .iter()
        .enumerate()
        .map(|(i, p)| (i < 7).then(|| p.to_string()))
        .collect();
    use Role::*;
    let roles = rule.roles(&pieces, "Where is ALICE from?");
    assert_eq!(
        roles,
        [
            Some(InContext),       // "alice" is in the question (case folded)
            Some(Structural),      // "was": 3 of 4 answers ≥ 30 %
            Some(Structural),      // "born"
            Some(Structural),      // "in"
            Some(StoredKnowledge), // "Par" of "paris": 1 of 4 answers, not in the question
            Some(StoredKnowledge), // "is" of "paris" (the question's "is" is another word)
            Some(Structural),      // no letter or digit
            None,                  // a special token
        ]
    );
    // The question's word wins over the template; a higher share makes "was" knowledge.
    let strict = RoleRule::for_answers(answers, 0.8);
    assert_eq!(strict.roles(&pieces, "Who was Alice?")[1], Some(InContext));
    assert_eq!(strict.roles(&pieces, "Who?")[1], Some(StoredKnowledge));
    // An override file changes a word's role after the rule.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("roles.json");
    std::fs::write(&file, r#"{"Paris": "structural"}"#).unwrap();
    let overridden = rule.clone().with_overrides_file(&file).unwrap();
    assert_eq!(overridden.roles(&pieces, "Who?")[4], Some(Structural));
    std::fs::write(&file, r#"{"Paris": "famous"}"#).unwrap();
    let err = rule.with_overrides_file(&file).unwrap_err();
    assert!(format!("{err:#}").contains("roles.json"), "{err:#}");
}

/// The probe on the demo model: the worst case includes the default path, so it is at least the
/// default's score on every item, and the default path is the evaluation's own generation.
#[test]
fn the_leakage_probe_worst_case_is_at_least_the_default_path() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = embedded::unpack_into(tmp.path()).unwrap();
    let device = Default::default();
    let files = ModelFiles::open(&demo.model).unwrap();
    let model = files
        .load::<B>(&device, &MemoryBudget::unlimited("test"))
        .unwrap();
    let mut forget = read_qa_file(&demo.forget).unwrap()[..6].to_vec();
    // One item carries a paraphrased question (as TOFU's perturbed files do): only it gets that path.
    forget[0].paraphrased_question = Some(format!("Tell me: {}", forget[0].question));
    let retain = read_qa_file(&demo.retain).unwrap()[..3].to_vec();
    let generation = Generation::Demo { margin: 4 };
    let never = || false;
    let mut seen = 0;
    let report = probe(
        &model,
        &files.tokenizer,
        &forget,
        &retain,
        &generation,
        None,
        8,
        &device,
        &never,
        |done, _| seen = done,
    )
    .unwrap();
    let answers = generate_answers(
        &model,
        &files.tokenizer,
        &forget,
        &generation,
        8,
        &device,
        &never,
    )
    .unwrap();
    assert_eq!(report.items.len(), 6);
    for (i, ((it, gold), answer)) in report.items.iter().zip(&forget).zip(&answers).enumerate() {
        assert!(it.worst_rouge_l >= it.default_rouge_l, "{it:?}");
        assert_eq!(it.default_rouge_l, rouge_l(&gold.answer, answer).recall);
        assert_eq!(it.paths["default"], it.default_rouge_l);
        assert_eq!(it.paths[&it.worst_path], it.worst_rouge_l);
        for path in ["random-order", "temperature-s1", "context", "leading"] {
            assert!(it.paths.contains_key(path), "{path} missing: {it:?}");
        }
        assert_eq!(
            it.paths.contains_key("paraphrase"),
            i == 0,
            "only where there is one"
        );
    }
    assert_eq!(seen, report.path_means.len(), "every path counted once");
    // Given the evaluation's answers (as a run does), the default path reuses them: same scores.
    let reused = probe(
        &model,
        &files.tokenizer,
        &forget,
        &retain,
        &generation,
        Some(&answers),
        8,
        &device,
        &never,
        |_, _| {},
    )
    .unwrap();
    for (a, b) in reused.items.iter().zip(&report.items) {
        assert_eq!(a.default_rouge_l, b.default_rouge_l);
    }
    assert!(report.worst_rouge_l >= report.default_rouge_l);
    // Role means exist for a demo trace (a smoke check of the pieces together).
    let trace = trace_item(
        &model,
        Some(&model),
        &files.tokenizer,
        &forget[0],
        &mdu_workbench::eval::protocol::sampler_config(
            &model,
            &files.tokenizer,
            &forget[..1],
            &generation,
        )
        .unwrap(),
        1.0,
        &RoleRule::for_answers(forget.iter().map(|i| i.answer.as_str()), 0.3),
        &device,
    )
    .unwrap();
    assert!(!role_means(&[trace]).is_empty());
}

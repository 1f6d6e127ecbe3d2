//! The demo compiled into the binary: it unpacks, loads, still knows its world (≥ 0.85 ROUGE-L
//! recall on forget and retain) and reproduces the scores recorded in `assets/demo/scores.json`
//! (by `scripts/record_demo_scores.sh`) within 0.02. The retain-only model knows the retain people
//! but not the forget people.

use mdu_workbench::checkpoint::MemoryBudget;
use mdu_workbench::data::read_qa_file;
use mdu_workbench::demo::embedded;
use mdu_workbench::device::CpuBackend;
use mdu_workbench::eval::protocol::{generate_answers, Generation};
use mdu_workbench::eval::rouge_l;
use mdu_workbench::tokenizer::TextTokenizer;
use mdu_workbench::Checkpoint;

fn recall(dir: &std::path::Path, file: &std::path::Path) -> f64 {
    let ckpt = Checkpoint::open(dir).unwrap();
    let tokenizer = TextTokenizer::from_dir(dir, &ckpt.config).unwrap();
    let device = Default::default();
    let model = ckpt
        .load::<CpuBackend>(&device, &MemoryBudget::unlimited("cpu"))
        .unwrap();
    let items = read_qa_file(file).unwrap();
    let answers = generate_answers(
        &model,
        &tokenizer,
        &items,
        &Generation::Demo { margin: 4 },
        64,
        &device,
        &|| false,
    )
    .unwrap();
    let scores: Vec<f64> = items
        .iter()
        .zip(&answers)
        .map(|(it, a)| rouge_l(&it.answer, a).recall)
        .collect();
    scores.iter().sum::<f64>() / scores.len() as f64
}

#[test]
fn shipped_demo_reproduces_its_recorded_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = embedded::unpack_into(tmp.path()).unwrap();
    // Unpacking again finds the complete copy instead of writing a second one.
    assert_eq!(embedded::unpack_into(tmp.path()).unwrap().root, demo.root);
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&demo.scores).unwrap()).unwrap();
    let mut seen = Vec::new();
    for (model_key, dir) in [("model", &demo.model), ("retain_model", &demo.retain_model)] {
        for (split, file) in [("forget", &demo.forget), ("retain", &demo.retain_eval)] {
            let ours = recall(dir, file);
            let theirs = recorded[model_key][split]["rougeL_recall"]
                .as_f64()
                .unwrap_or_else(|| panic!("scores.json: {model_key}.{split}.rougeL_recall"));
            assert!(
                (ours - theirs).abs() <= 0.02,
                "{model_key}/{split}: {ours:.4} now, {theirs:.4} recorded"
            );
            seen.push(ours);
        }
    }
    let [model_forget, model_retain, retain_only_forget, retain_only_retain] = seen[..] else {
        unreachable!()
    };
    assert!(
        model_forget >= 0.85 && model_retain >= 0.85,
        "memorised model: forget {model_forget:.3}, retain {model_retain:.3}"
    );
    // Same recipe with 10 % less data (1.0 recorded).
    assert!(
        retain_only_retain >= 0.85,
        "retain-only model on retain: {retain_only_retain:.3}"
    );
    // Terse answers: a model that never saw the forget people scores near 0 on them (0.046
    // recorded), below the 0.3 × before that unlearning aims for.
    assert!(
        retain_only_forget <= 0.15,
        "the retain-only model never saw the forget people: {retain_only_forget:.3}"
    );
}

/// A demo run with the default evaluation settings on the CPU reuses the evaluations recorded with
/// the demo (`scripts/record_demo_eval.sh`) instead of computing them (about a minute), and the
/// recorded numbers are the ones `scores.json` holds (which the test above recomputes): ROUGE-L
/// recall within 0.02 (different batch shapes only).
#[test]
fn demo_runs_reuse_the_recorded_evaluation() {
    use mdu_workbench::unlearn::config::UnlearnConfig;
    use mdu_workbench::unlearn::engine;
    use mdu_workbench::unlearn::events::{Event, StopFlag};

    let tmp = tempfile::tempdir().unwrap();
    // An empty cache: anything reused must come from the record.
    mdu_workbench::eval::cache::set_dir(tmp.path().join("cache"));
    let config = UnlearnConfig {
        demo: true,
        device: "cpu".into(),
        steps: 1,
        live_every: 0,
        eval_after: false,
        ..Default::default()
    };
    let (mut phases, mut summary) = (Vec::new(), None);
    let mut sink = |e: Event| match e {
        Event::Phase { phase } => phases.push(phase),
        Event::Finished { summary: s, .. } => summary = Some(s),
        _ => {}
    };
    engine::run(
        config,
        tmp.path().join("run"),
        false,
        &mut sink,
        &StopFlag::new(),
    )
    .unwrap();
    for wanted in [
        "retain-only model's truth ratios: recorded with the demo",
        "evaluating (before): recorded with the demo",
        "privacy audit, the retain-only model: recorded with the demo",
        "privacy audit (before): recorded with the demo",
    ] {
        assert!(
            phases.iter().any(|p| p == wanted),
            "{wanted:?} not in {phases:?}"
        );
    }
    let summary = summary.expect("a finished run");
    let demo = embedded::unpack_into(tmp.path()).unwrap();
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&demo.scores).unwrap()).unwrap();
    for split in ["forget", "retain"] {
        let recorded = summary["before"][split]["rougeL_recall"].as_f64().unwrap();
        let scored = scores["model"][split]["rougeL_recall"].as_f64().unwrap();
        assert!(
            (recorded - scored).abs() <= 0.02,
            "{split}: record {recorded:.4}, scores.json {scored:.4}"
        );
    }
    assert!(summary["before"]["forget_quality"].as_f64().is_some());
    // The recorded audit: the memorised model tells forget from holdout, as tests/suite/privacy.rs
    // computes afresh.
    let privacy = &summary["before"]["privacy"];
    assert!(
        privacy["auc"]["mia_min_k"].as_f64().unwrap() > 0.9,
        "{privacy}"
    );
    assert!(privacy["privleak"].as_f64().unwrap() < -80.0, "{privacy}");
}

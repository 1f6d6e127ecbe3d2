//! The generated demo world: size limits, determinism, splits, and the fact-density rule that makes
//! ROUGE-L measure stored knowledge (tokens as rouge-score 0.1.2 makes them, via `rougers`).

use std::collections::{BTreeSet, HashMap};

use mdu_workbench::demo::world::{World, DEMO_PEOPLE, MAX_PEOPLE};
use mdu_workbench::demo::Splits;

#[test]
fn world_respects_size_limits_and_splits() {
    assert!(World::generate(0, 1000).people.len() == MAX_PEOPLE);
    let world = World::generate(0, DEMO_PEOPLE);
    assert_eq!(world.people.len(), 30);
    assert_eq!(
        world.forget_people.len(),
        world.people.len() / 10,
        "forget = 10 % of the people"
    );
    let splits = Splits::generate(0);
    let total: usize = splits.named().iter().map(|(_, items)| items.len()).sum();
    assert!(total <= 1000, "{total} QA pairs");
    assert_eq!(
        splits.forget.len() + splits.retain.len(),
        world.people.len() * 16
    );
    for (name, items) in splits.named() {
        assert!(!items.is_empty(), "{name} is empty");
        for item in items {
            assert!(item.perturbed_answer.len() >= 3, "{name}: {item:?}");
            assert!(item.paraphrased_answer.is_some(), "{name}: {item:?}");
            assert!(
                !item.perturbed_answer.contains(&item.answer),
                "{name}: a perturbed answer equals the answer"
            );
        }
    }
    // No question appears in two splits, and every person's name is unique.
    let mut seen = BTreeSet::new();
    for (_, items) in splits.named() {
        for item in items {
            assert!(
                seen.insert(item.question.clone()),
                "duplicate question {:?}",
                item.question
            );
        }
    }
    let names: BTreeSet<String> = world.people.iter().map(|p| p.name()).collect();
    assert_eq!(names.len(), world.people.len());
}

#[test]
fn world_is_deterministic_per_seed() {
    let a = Splits::generate(7);
    let b = Splits::generate(7);
    let c = Splits::generate(8);
    assert_eq!(a.forget, b.forget);
    assert_eq!(a.retain, b.retain);
    assert_ne!(a.retain, c.retain);
}

/// ≥ 4 ROUGE tokens per answer, ≥ 70 % of them absent from the question and present in at most
/// 5 % of other people's answers; and another person's answer to the same fact (the perturbed
/// answers) scores ≤ 0.1 ROUGE-L recall on average, so a model that never saw a person scores
/// near 0 on them.
#[test]
fn answers_are_fact_dense() {
    let tokenizer = rougers::Tokenizer::new(true);
    let world = World::generate(0, DEMO_PEOPLE);
    let per_person: Vec<Vec<(Vec<String>, Vec<String>)>> = (0..world.people.len())
        .map(|i| {
            world
                .person_items(i)
                .iter()
                .map(|it| {
                    (
                        tokenizer.tokenize(&it.question),
                        tokenizer.tokenize(&it.answer),
                    )
                })
                .collect()
        })
        .collect();
    // For each token: how many answers of each person contain it.
    let mut answers_with: HashMap<&str, Vec<usize>> = HashMap::new();
    for (person, items) in per_person.iter().enumerate() {
        for (_, answer) in items {
            for tok in answer.iter().collect::<BTreeSet<_>>() {
                answers_with
                    .entry(tok)
                    .or_insert_with(|| vec![0; per_person.len()])[person] += 1;
            }
        }
    }
    let total_answers: usize = per_person.iter().map(Vec::len).sum();
    let mut worst = 1.0f64;
    for (person, items) in per_person.iter().enumerate() {
        let others = (total_answers - items.len()) as f64;
        for (question, answer) in items {
            assert!(
                answer.len() >= 4,
                "answer has {} ROUGE tokens: {answer:?}",
                answer.len()
            );
            let question: BTreeSet<&String> = question.iter().collect();
            let distinctive = answer
                .iter()
                .filter(|tok| !question.contains(tok))
                .filter(|tok| {
                    let counts = &answers_with[tok.as_str()];
                    let in_others: usize = counts
                        .iter()
                        .enumerate()
                        .filter(|(p, _)| *p != person)
                        .map(|(_, n)| n)
                        .sum();
                    in_others as f64 <= 0.05 * others
                })
                .count();
            let share = distinctive as f64 / answer.len() as f64;
            worst = worst.min(share);
            assert!(
                share >= 0.7,
                "only {:.0} % distinctive tokens in {answer:?}",
                share * 100.0
            );
        }
    }
    eprintln!(
        "least fact-dense answer: {:.0} % distinctive tokens",
        worst * 100.0
    );
    let (mut sum, mut n) = (0.0, 0);
    for i in 0..world.people.len() {
        for item in world.person_items(i) {
            for wrong in &item.perturbed_answer {
                sum += mdu_workbench::eval::rouge_l(&item.answer, wrong).recall;
                n += 1;
            }
        }
    }
    let floor = sum / n as f64;
    eprintln!("another person's answer scores {floor:.3} ROUGE-L recall");
    assert!(floor <= 0.1, "wrong-person answers score {floor:.3} recall");
}

/// The demo tokenizer is a real tokenizer.json that our loader reads with LLaDA's special ids, and
/// SFT examples padded LLaDA-style decode back to the question and answer.
#[test]
fn demo_tokenizer_round_trips_and_pads_like_llada_sft() {
    use mdu_workbench::demo::tokenizer::{self, MASK};
    use mdu_workbench::diffusion::batch::{SftBatch, SftExample};
    use mdu_workbench::tokenizer::TextTokenizer;

    let splits = Splits::generate(0);
    let tk = tokenizer::train(&splits, 2048).unwrap();
    let dir = tempfile::tempdir().unwrap();
    tokenizer::write_files(&tk, dir.path()).unwrap();
    let (mut config, _, _) = mdu_workbench::bench::BenchPreset::Tiny.shape();
    config.vocab_size = tk.get_vocab_size(true);
    config.mask_token_id = tk.token_to_id(MASK);
    config.eos_token_id = tk.token_to_id(tokenizer::EOS);
    config.pad_token_id = config.eos_token_id;
    let text = TextTokenizer::from_dir(dir.path(), &config).unwrap();
    assert_eq!(text.special.eot, tk.token_to_id(tokenizer::EOT));
    assert_eq!(text.special.bos, tk.token_to_id(tokenizer::BOS));

    let items = [&splits.retain[0], &splits.forget[3]];
    let examples: Vec<SftExample> = items
        .iter()
        .map(|it| SftExample::encode(&text, it).unwrap())
        .collect();
    for (e, it) in examples.iter().zip(items) {
        assert_eq!(
            text.decode(&e.answer[..e.answer.len() - 1], false).unwrap(),
            it.answer
        );
        assert_eq!(*e.answer.last().unwrap(), text.special.eot.unwrap());
        let prompt = text.decode(&e.prompt, false).unwrap();
        assert!(
            prompt.starts_with("<|startoftext|><|start_header_id|>user")
                && prompt.contains(&it.question),
            "{prompt}"
        );
        assert!(
            prompt.ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n"),
            "{prompt:?}"
        );
    }
    let batch = SftBatch::new(&[&examples[0], &examples[1]], text.special.eos);
    for (r, e) in examples.iter().enumerate() {
        let row = batch.row(r);
        assert_eq!(row.len(), batch.width);
        assert_eq!(&row[..e.prompt.len()], &e.prompt[..]);
        assert!(row[e.prompt.len() + e.answer.len()..]
            .iter()
            .all(|&t| t == text.special.eos));
        // Every non-prompt position, padding included, is an answer position.
        assert!(batch
            .maskable_row(r)
            .iter()
            .enumerate()
            .all(|(i, &m)| m == (i >= e.prompt.len())));
    }
}

/// ROUGE-L golden vectors of rouge-score 0.1.2 (metrics.md §1.2), through the project's scorer.
#[test]
fn rouge_l_matches_rouge_score_golden_vectors() {
    use mdu_workbench::eval::rouge_l;
    let cases = [
        (
            "The quick brown fox jumps over the lazy dog",
            "The quick brown dog jumps on the log.",
            0.625,
            0.5555555555555556,
            0.5882352941176471,
        ),
        (
            "He is a general",
            "He is generous",
            1.0,
            0.75,
            0.8571428571428571,
        ),
        (
            "Hsiao Yun-Hwa's father was a civil engineer.",
            "Hsiao Yun-Hwa's father worked as a civil engineer in Taipei.",
            0.6666666666666666,
            0.8888888888888888,
            0.761904761904762,
        ),
        (
            "İstanbul café",
            "istanbul caf",
            0.5,
            0.3333333333333333,
            0.4,
        ),
        ("", "abc", 0.0, 0.0, 0.0),
    ];
    for (gold, pred, p, r, f) in cases {
        let s = rouge_l(gold, pred);
        assert_eq!(
            (s.precision, s.recall, s.fmeasure),
            (p, r, f),
            "{gold:?} / {pred:?}"
        );
    }
}

/// The holdout split: as many items as the forget split, about people no model saw (no question or
/// answer of it is in a trained split), made of the forget answers' own words, and what the demo
/// ships.
#[test]
fn holdout_people_are_new_but_made_of_the_forget_words() {
    let splits = Splits::generate(0);
    assert_eq!(splits.holdout.len(), splits.forget.len());
    let trained: Vec<&mdu_workbench::data::QaItem> = splits
        .named()
        .iter()
        .flat_map(|(_, items)| items.iter())
        .collect();
    let words = |text: &str| -> BTreeSet<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let forget_words: BTreeSet<String> = splits
        .forget
        .iter()
        .flat_map(|it| words(&it.answer))
        .collect();
    let mut differing = 0;
    for (h, f) in splits.holdout.iter().zip(&splits.forget) {
        assert!(
            trained.iter().all(|t| t.question != h.question),
            "a holdout question was trained on: {:?}",
            h.question
        );
        assert!(!h.perturbed_answer.contains(&h.answer), "{h:?}");
        // Every word of a holdout answer is a word of some forget answer.
        assert!(words(&h.answer).is_subset(&forget_words), "{:?}", h.answer);
        differing += usize::from(h.answer != f.answer);
        assert!(
            splits.forget.iter().all(|f| f.answer != h.answer),
            "a holdout answer is a forget answer: {:?}",
            h.answer
        );
    }
    // Answers are recombined, not copied.
    assert_eq!(
        differing,
        splits.holdout.len(),
        "a holdout answer equals its forget answer"
    );
    let shipped = mdu_workbench::data::read_qa_file(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/demo/data/holdout.jsonl"
    )))
    .unwrap();
    assert_eq!(
        shipped, splits.holdout,
        "assets/demo/data/holdout.jsonl is stale: mdu demo-world"
    );
}

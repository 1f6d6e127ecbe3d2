//! The privacy audit (`eval::privacy`, `eval::audit`): the antithetic maskings, the per-token
//! statistics against a direct computation, each attack's score and AUC by hand, and the demo:
//! the memorised model's AUCs on forget vs holdout are near 1, the retain-only model's near 0.5.

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::tensor::activation::log_softmax;
use mdu_workbench::checkpoint::MemoryBudget;
use mdu_workbench::data::read_qa_file;
use mdu_workbench::demo::embedded;
use mdu_workbench::device::CpuBackend;
use mdu_workbench::diffusion::batch::SftExample;
use mdu_workbench::diffusion::likelihood::{batched_masked_nll, MaskedQuery};
use mdu_workbench::eval::audit::PrivacyAudit;
use mdu_workbench::eval::privacy::{
    antithetic_masks, attack_aucs, attack_scores, item_stats, ItemStats, MiaSettings,
};
use mdu_workbench::eval::protocol::Generation;
use mdu_workbench::rng::SplitMix64;
use mdu_workbench::tokenizer::TextTokenizer;
use mdu_workbench::Checkpoint;

type Ad = Autodiff<CpuBackend>;

#[test]
fn every_pair_of_masks_hides_every_token() {
    for len in 1..=24 {
        let mut rng = SplitMix64(len as u64);
        let masks = antithetic_masks(len, 4, &mut rng);
        assert_eq!(masks.len(), 8);
        for pair in masks.chunks(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert!(!a.is_empty() && !b.is_empty(), "len {len}: {a:?} {b:?}");
            assert!(a.windows(2).all(|w| w[0] < w[1]) && b.windows(2).all(|w| w[0] < w[1]));
            let mut union: Vec<usize> = a.iter().chain(b).copied().collect();
            union.sort_unstable();
            union.dedup();
            assert_eq!(union, (0..len).collect::<Vec<_>>(), "len {len}");
            // Complements, except that a full mask is paired with another full mask.
            if a.len() < len {
                assert!(a.iter().all(|i| !b.contains(i)), "len {len}: {a:?} {b:?}");
            } else {
                assert_eq!(b.len(), len);
            }
        }
    }
    assert!(antithetic_masks(0, 4, &mut SplitMix64(0)).is_empty());
}

fn demo_model() -> (
    mdu_workbench::MaskedDiffusionLm<CpuBackend>,
    TextTokenizer,
    embedded::DemoPaths,
    tempfile::TempDir,
) {
    let tmp = tempfile::tempdir().unwrap();
    let demo = embedded::unpack_into(tmp.path()).unwrap();
    let ckpt = Checkpoint::open(&demo.model).unwrap();
    let tokenizer = TextTokenizer::from_dir(&demo.model, &ckpt.config).unwrap();
    let model = ckpt
        .load::<CpuBackend>(&Default::default(), &MemoryBudget::unlimited("cpu"))
        .unwrap();
    (model, tokenizer, demo, tmp)
}

#[test]
fn per_token_statistics_are_the_masked_likelihood_computed_directly() {
    let (model, tokenizer, demo, _tmp) = demo_model();
    let device = Default::default();
    let items = read_qa_file(&demo.forget).unwrap();
    let examples: Vec<SftExample> = items[..2]
        .iter()
        .map(|it| SftExample::encode(&tokenizer, it).unwrap())
        .collect();
    let special = &tokenizer.special;
    let tokens = (special.mask, special.eos);
    let settings = MiaSettings {
        mask_pairs: 2,
        batch_size: 3,
        ..MiaSettings::default()
    };
    let stats = item_stats(&model, &examples, tokens, &settings, &device);
    for (k, (ex, got)) in examples.iter().zip(&stats).enumerate() {
        let l = ex.answer.len();
        let masks = antithetic_masks(l, 2, &mut SplitMix64(k as u64));
        // LOSS: the mean over masks of Σ −log p / |mask|, from the plain NLL sums.
        let queries: Vec<MaskedQuery> = masks
            .iter()
            .map(|m| MaskedQuery {
                prompt: &ex.prompt,
                answer: &ex.answer,
                mask: m.clone(),
            })
            .collect();
        let sums = batched_masked_nll(&model, &queries, tokens.0, tokens.1, 1, &device);
        let loss = sums
            .iter()
            .zip(&masks)
            .map(|(s, m)| s / m.len() as f64)
            .sum::<f64>()
            / masks.len() as f64;
        assert!(
            (got.avg_loss - loss).abs() < 1e-5,
            "{} vs {loss}",
            got.avg_loss
        );
        // Token i: log p, and the vocabulary's mean and variance of log p, from the full
        // distribution of each masked sequence, averaged over the masks hiding i.
        let (mut lp, mut mu, mut var, mut hits) =
            (vec![0.0; l], vec![0.0; l], vec![0.0; l], vec![0.0; l]);
        for m in &masks {
            let mut seq: Vec<u32> = ex.prompt.iter().chain(&ex.answer).copied().collect();
            for &i in m {
                seq[ex.prompt.len() + i] = tokens.0;
            }
            let ids = burn::tensor::Tensor::<CpuBackend, 2, burn::tensor::Int>::from_data(
                burn::tensor::TensorData::new(
                    seq.iter().map(|&t| t as i64).collect::<Vec<_>>(),
                    [1, seq.len()],
                ),
                &device,
            );
            let logits = model.logits_all(model.forward_hidden(ids, None));
            let logp: Vec<f32> = log_softmax(logits, 2).into_data().into_vec().unwrap();
            let v = logp.len() / seq.len();
            for &i in m {
                let row = &logp[(ex.prompt.len() + i) * v..(ex.prompt.len() + i + 1) * v];
                let m1: f64 = row.iter().map(|&x| (x as f64).exp() * x as f64).sum();
                let m2: f64 = row
                    .iter()
                    .map(|&x| (x as f64).exp() * (x as f64).powi(2))
                    .sum();
                lp[i] += row[ex.answer[i] as usize] as f64;
                mu[i] += m1;
                var[i] += m2 - m1 * m1;
                hits[i] += 1.0;
            }
        }
        for i in 0..l {
            assert!((got.logp[i] - lp[i] / hits[i]).abs() < 1e-4, "logp[{i}]");
            assert!((got.mu[i] - mu[i] / hits[i]).abs() < 1e-4, "mu[{i}]");
            assert!(
                (got.sigma2[i] - var[i] / hits[i]).abs() < 1e-3,
                "sigma2[{i}]"
            );
        }
    }
}

#[test]
fn attack_scores_and_aucs_by_hand() {
    let item = |loss: f64, logp: &[f64]| ItemStats {
        avg_loss: loss,
        logp: logp.to_vec(),
        mu: vec![-1.0; logp.len()],
        sigma2: vec![4.0; logp.len()],
    };
    let forget = [item(0.5, &[-0.1, -0.9, -0.2]), item(1.0, &[-2.0, -0.5])];
    let holdout = [item(2.0, &[-3.0, -1.0, -2.5]), item(0.75, &[-1.5, -0.1])];
    let reference = [item(0.25, &[]), item(1.5, &[])];
    let answers = ["aaaaaaaaaa", "b"];
    let f = attack_scores(&forget, &answers, Some(&[3.0, 1.0]), Some(&reference), 0.4);
    // LOSS is the statistic itself; ZLib divides it by the compressed answer's length
    // (zlib writes 11 bytes for ten "a"s, 9 for one "b").
    assert_eq!(f["mia_loss"], vec![0.5, 1.0]);
    assert_eq!(f["mia_zlib"], vec![0.5 / 11.0, 1.0 / 9.0]);
    // Min-K % with k = 0.4: max(1, int(3·0.4)) = 1 lowest of three, 1 of two.
    assert_eq!(f["mia_min_k"], vec![0.9, 2.0]);
    // Min-K %++: minus (log p − (−1)) / 2 of the lowest token: −(−0.9 + 1)/2, −(−2 + 1)/2.
    let mkpp = &f["mia_min_k_plus_plus"];
    assert!(
        (mkpp[0] + 0.05).abs() < 1e-12 && (mkpp[1] - 0.5).abs() < 1e-12,
        "{mkpp:?}"
    );
    assert_eq!(f["mia_gradnorm"], vec![3.0, 1.0]);
    assert_eq!(f["mia_reference"], vec![0.25, -0.5]);
    let h = attack_scores(&holdout, &answers, Some(&[2.0, 4.0]), Some(&reference), 0.4);
    let aucs = attack_aucs(&f, &h);
    // LOSS: holdout {2.0, 0.75} against forget {0.5, 1.0}: 2>0.5, 2>1, 0.75>0.5 → 3 of 4.
    assert_eq!(aucs["mia_loss"], 0.75);
    // GradNorm: holdout {2, 4} against forget {3, 1}: 2>1, 4>3, 4>1 → 3 of 4.
    assert_eq!(aucs["mia_gradnorm"], 0.75);
    // Without gradients or a reference model, those attacks are left out.
    let plain = attack_aucs(
        &attack_scores(&forget, &answers, None, None, 0.4),
        &attack_scores(&holdout, &answers, None, None, 0.4),
    );
    let names: Vec<&str> = plain.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["mia_loss", "mia_min_k", "mia_min_k_plus_plus", "mia_zlib"]
    );
}

/// The demo: the memorised model tells its forget people from the holdout people (whom it never
/// saw) with every attack; the retain-only model, which saw neither, cannot. The bounds: with 48
/// items a side, an AUC's standard error under "cannot tell apart" is about 0.06.
#[test]
fn demo_audit_tells_the_memorised_model_from_the_retain_only_one() {
    let (_, tokenizer, demo, _tmp) = demo_model();
    let device = Default::default();
    let budget = MemoryBudget::unlimited("cpu");
    let model = Checkpoint::open(&demo.model)
        .unwrap()
        .load::<Ad>(&device, &budget)
        .unwrap();
    let forget = read_qa_file(&demo.forget).unwrap();
    let holdout = read_qa_file(&demo.holdout).unwrap();
    assert_eq!(forget.len(), holdout.len());
    let mut audit = PrivacyAudit::new(
        &forget,
        &holdout,
        MiaSettings::default(),
        None,
        &Generation::Demo { margin: 4 },
        &model.valid(),
        &tokenizer,
    )
    .unwrap();
    let never = || false;
    let source = audit
        .score_retain_model::<Ad>(&demo.retain_model, &budget, &device, "cpu", false, &never)
        .unwrap();
    assert!(source.is_none(), "computed, not read from a cache");
    let report = audit.run(&model, &device, &never).unwrap();
    assert_eq!((report.forget_items, report.holdout_items), (48, 48));
    assert_eq!(report.auc.len(), 6, "{:?}", report.auc);
    for (name, auc) in &report.auc {
        assert!(*auc >= 0.9, "memorised model, {name}: AUC {auc}");
    }
    assert_eq!(
        report.retain_only_auc.len(),
        5,
        "{:?}",
        report.retain_only_auc
    );
    for (name, auc) in &report.retain_only_auc {
        assert!(
            (auc - 0.5).abs() <= 0.15,
            "retain-only model, {name}: AUC {auc}"
        );
    }
    // Still told apart, where the retain-only model is not: privleak near −100.
    assert!(report.privleak.unwrap() < -80.0, "{:?}", report.privleak);
    // The memorised model writes its forget answers from the question alone.
    assert!(report.extraction_strength.unwrap() > 0.95);
    assert!(report.exact_memorization.unwrap() > 0.95);
    let names = report.open_unlearning_names();
    for key in [
        "privleak",
        "extraction_strength",
        "exact_memorization",
        "mia_min_k",
    ] {
        assert!(names.contains_key(key), "{key}");
    }
}

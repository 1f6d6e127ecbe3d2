//! Optimisation pieces: the LR schedule and global-norm clipping by hand, and a few fine-tuning steps
//! lowering the MDLM loss on one fixed, seeded noise sample.

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use mdu_workbench::demo::{tokenizer as demo_tokenizer, Splits};
use mdu_workbench::device::CpuBackend;
use mdu_workbench::diffusion::batch::{SftBatch, SftExample};
use mdu_workbench::diffusion::loss::{mdlm_loss, LossWeighting, NoisedBatch};
use mdu_workbench::model::init::random_init;
use mdu_workbench::model::{Architecture, ModelConfig};
use mdu_workbench::rng::SplitMix64;
use mdu_workbench::tokenizer::TextTokenizer;
use mdu_workbench::train::clip::{clip_global_norm, global_grad_norm};
use mdu_workbench::train::schedule::{LrSchedule, LrShape};

type Ad = Autodiff<CpuBackend>;

#[test]
fn lr_schedule_matches_hand_values() {
    let s = LrSchedule {
        peak: 1e-3,
        warmup_steps: 10,
        total_steps: 110,
        floor_ratio: 0.1,
        shape: LrShape::Cosine,
    };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(s.at(0), 1e-4));
    assert!(close(s.at(9), 1e-3));
    assert!(close(s.at(10), 1e-3));
    assert!(close(s.at(60), 1e-4 + 0.5 * 0.9e-3)); // halfway: cos(π/2) = 0
    assert!(close(s.at(110), 1e-4) && close(s.at(500), 1e-4));
}

/// A tiny LLaDA over the demo tokenizer and a handful of demo SFT examples.
fn tiny_setup() -> (ModelConfig, TextTokenizer, Vec<SftExample>) {
    let splits = Splits::generate(0);
    let tk = demo_tokenizer::train(&splits, 512).unwrap();
    let dir = tempfile::tempdir().unwrap();
    demo_tokenizer::write_files(&tk, dir.path()).unwrap();
    let config = ModelConfig {
        architecture: Architecture::Llada,
        hidden_size: 32,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 4,
        head_dim: 8,
        intermediate_size: 64,
        vocab_size: tk.get_vocab_size(true),
        rope_theta: 10000.0,
        rms_norm_eps: 1e-5,
        max_position_embeddings: 256,
        qkv_bias: false,
        mask_token_id: tk.token_to_id(demo_tokenizer::MASK),
        eos_token_id: tk.token_to_id(demo_tokenizer::EOS),
        pad_token_id: tk.token_to_id(demo_tokenizer::EOS),
        bos_token_id: tk.token_to_id(demo_tokenizer::BOS),
        ..ModelConfig::llada_shape(32, 2, 4, 64, 256)
    };
    let text = TextTokenizer::from_dir(dir.path(), &config).unwrap();
    let examples = splits.retain[..6]
        .iter()
        .map(|it| SftExample::encode(&text, it).unwrap())
        .collect();
    (config, text, examples)
}

#[test]
fn global_norm_clipping_matches_hand_computation() {
    let (config, text, examples) = tiny_setup();
    let device = Default::default();
    let model = random_init::<Ad>(&config, &device, 1, 0.1);
    let batch = SftBatch::new(&examples.iter().collect::<Vec<_>>(), text.special.eos);
    let noised = NoisedBatch::sample(
        &batch,
        &mut SplitMix64(2),
        text.special.mask,
        LossWeighting::InverseTime,
    );
    let raw = mdlm_loss(&model, &noised, &device).backward();
    // Hand: Σ‖g‖² over every parameter's gradient, read directly from the autodiff graph.
    let sq = |t: Option<burn::tensor::Tensor<CpuBackend, 2>>| {
        t.map(|g| g.powi_scalar(2).sum().into_scalar() as f64)
            .unwrap_or(0.0)
    };
    let sq1 = |t: Option<burn::tensor::Tensor<CpuBackend, 1>>| {
        t.map(|g| g.powi_scalar(2).sum().into_scalar() as f64)
            .unwrap_or(0.0)
    };
    let mut hand = sq(model.embed.val().grad(&raw))
        + sq(model.head_weight().val().grad(&raw))
        + sq1(model.final_norm.val().grad(&raw));
    for b in &model.blocks {
        let mlp = b.mlp.as_ref().unwrap();
        for w in [&b.q, &b.k, &b.v, &b.o, &mlp.gate, &mlp.up, &mlp.down] {
            hand += sq(w.val().grad(&raw));
        }
        hand += sq1(b.attn_norm.val().grad(&raw)) + sq1(b.mlp_norm.val().grad(&raw));
    }
    let hand = hand.sqrt();
    let mut grads = GradientsParams::from_grads(raw, &model);
    let norm = global_grad_norm::<Ad, _>(&model, &grads);
    assert!((norm - hand).abs() <= 1e-5 * hand, "{norm} vs {hand}");
    let before = clip_global_norm::<Ad, _>(&model, &mut grads, hand / 2.0);
    assert!((before - hand).abs() <= 1e-5 * hand);
    let after = global_grad_norm::<Ad, _>(&model, &grads);
    assert!(
        (after - hand / 2.0).abs() <= 1e-4 * hand,
        "clipped norm {after}, wanted {}",
        hand / 2.0
    );
}

#[test]
fn finetune_steps_lower_the_loss_on_a_fixed_noise_sample() {
    let (config, text, examples) = tiny_setup();
    let device = Default::default();
    let mut model = random_init::<Ad>(&config, &device, 3, 0.05);
    let refs: Vec<&SftExample> = examples.iter().collect();
    let batch = SftBatch::new(&refs, text.special.eos);
    let fixed = NoisedBatch::sample(
        &batch,
        &mut SplitMix64(42),
        text.special.mask,
        LossWeighting::InverseTime,
    );
    let eval = |m: &mdu_workbench::MaskedDiffusionLm<Ad>| -> f32 {
        mdlm_loss(&m.valid(), &fixed, &device).into_scalar()
    };
    let before = eval(&model);
    let mut optim =
        mdu_workbench::train::adamw(0.0).init::<Ad, mdu_workbench::MaskedDiffusionLm<Ad>>();
    let mut rng = SplitMix64(7);
    for _ in 0..15 {
        let noised = NoisedBatch::sample(
            &batch,
            &mut rng,
            text.special.mask,
            LossWeighting::InverseTime,
        );
        let grads = mdlm_loss(&model, &noised, &device).backward();
        let mut grads = GradientsParams::from_grads(grads, &model);
        clip_global_norm::<Ad, _>(&model, &mut grads, 1.0);
        model = optim.step(3e-3, model, grads);
    }
    let after = eval(&model);
    assert!(
        after < 0.8 * before,
        "loss on the fixed sample went {before} → {after}"
    );
}

#[test]
fn gradient_accumulation_equals_the_mean_loss_gradient() {
    // Two micro-batches, each loss divided by 2 and accumulated, must give the gradient of
    // (L_a + L_b)/2 taken in one graph — what `finetune --grad-accum 2` and `unlearn` do.
    let (config, text, examples) = tiny_setup();
    let device = Default::default();
    let model = random_init::<Ad>(&config, &device, 5, 0.1);
    let noised = |range: std::ops::Range<usize>, seed: u64| {
        let refs: Vec<&SftExample> = examples[range].iter().collect();
        let batch = SftBatch::new(&refs, text.special.eos);
        NoisedBatch::sample(
            &batch,
            &mut SplitMix64(seed),
            text.special.mask,
            LossWeighting::InverseTime,
        )
    };
    let (a, b) = (noised(0..3, 11), noised(3..6, 12));
    let ga = GradientsParams::from_grads((mdlm_loss(&model, &a, &device) / 2.0).backward(), &model);
    let gb = GradientsParams::from_grads((mdlm_loss(&model, &b, &device) / 2.0).backward(), &model);
    let accumulated = mdu_workbench::train::accumulate_grads(&model, ga, gb);
    let joint = (mdlm_loss(&model, &a, &device) + mdlm_loss(&model, &b, &device)) / 2.0;
    let joint = GradientsParams::from_grads(joint.backward(), &model);
    let total = global_grad_norm::<Ad, _>(&model, &joint);
    assert!(total > 0.0);
    for (name, w) in [
        ("embed", &model.embed),
        ("lm_head", model.head_weight()),
        ("q0", &model.blocks[0].q),
    ] {
        let host = |g: &GradientsParams| {
            g.get::<CpuBackend, 2>(w.id)
                .unwrap()
                .into_data()
                .to_vec::<f32>()
                .unwrap()
        };
        let (x, y) = (host(&accumulated), host(&joint));
        let worst = x
            .iter()
            .zip(&y)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max);
        // f32 sums in a different order: 1e-6 of the global gradient norm.
        assert!(
            worst as f64 <= 1e-6 * total,
            "{name}: max |Δ| {worst:e} (norm {total})"
        );
    }
}

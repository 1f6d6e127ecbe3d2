//! Qwen3 A2D and LLaDA-MoE through every path the older architectures take: recognition from the
//! checkpoint, generation, an unlearning run per method that saves a checkpoint reloading bit for
//! bit, LoRA reaching the experts, and gradients reaching the router. Logit parity is in
//! `parity.rs`, tokenizers and templates in `tokenizer.rs`, wgpu in `selftest.rs`.

use std::path::Path;

use burn::backend::Autodiff;
use burn::tensor::TensorData;
use mdu_workbench::checkpoint::adapter::{save_adapter, AdapterFiles};
use mdu_workbench::checkpoint::{self, Checkpoint, MemoryBudget};
use mdu_workbench::device::CpuBackend;
use mdu_workbench::model::family::family_of_dir;
use mdu_workbench::model::lora::Adapters;
use mdu_workbench::model::{Architecture, LoraSettings, ModelConfig, Weight};
use mdu_workbench::unlearn::Method;
use mdu_workbench::{load_model, MaskedDiffusionLm};

use crate::common::fixture;
use crate::unlearn::{data_files, stderr, tiny, unlearn};

type Ad = Autodiff<CpuBackend>;

const NEW: [&str; 2] = ["qwen3_a2d", "llada_moe"];

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}

fn open_err(dir: &Path) -> String {
    match Checkpoint::open(dir) {
        Ok(_) => panic!("{} opened", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn llada_moe_is_recognised_by_its_layout_though_its_config_says_llada() {
    let dir = fixture("llada_moe");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(json["model_type"], "llada");
    let config = ModelConfig::from_dir(&dir).unwrap();
    assert_eq!(config.architecture, Architecture::LladaMoe);
    let moe = config.moe.as_ref().unwrap();
    assert_eq!((moe.num_experts, moe.top_k), (4, 2));
    assert_eq!(moe.moe_layers, [false, true, true]);
    assert_eq!(config.rotary_dim, config.head_dim / 2);
    assert_eq!(family_of_dir(&config, &dir), "LLaDA-MoE");
    // Only the routed experts a token is sent to count as active.
    let idle = 2 * 2 * 3 * 32 * 16;
    assert_eq!(config.active_parameters(), config.num_parameters() - idle);

    let qwen = ModelConfig::from_dir(&fixture("qwen3_a2d")).unwrap();
    assert_eq!(qwen.architecture, Architecture::Qwen3A2d);
    assert!(qwen.tied_embeddings && qwen.qk_norm && qwen.head_dim == 16);
    assert!(!qwen.architecture.shifts_logits());
    assert_eq!(
        family_of_dir(&qwen, &fixture("qwen3_a2d")),
        "Qwen3 A2D (dllm)"
    );
}

#[test]
fn layouts_that_match_no_architecture_are_named_with_what_is_supported() {
    let tmp = tempfile::tempdir().unwrap();
    // A causal Qwen3 is not a diffusion model.
    let causal = tmp.path().join("causal");
    copy_dir(&fixture("qwen3_a2d"), &causal);
    edit_config(&causal, |j| j["model_type"] = "qwen3".into());
    let err = open_err(&causal);
    assert!(
        err.contains("config.json") && err.contains("autoregressive"),
        "{err}"
    );
    assert!(
        err.contains("a2d-qwen3") && err.contains("LLaDA-MoE"),
        "{err}"
    );
    // "llada" with neither LLaDA's nor LLaDA-MoE's keys.
    let bare = tmp.path().join("bare");
    copy_dir(&fixture("llada_moe"), &bare);
    edit_config(&bare, |j| {
        let o = j.as_object_mut().unwrap();
        o.remove("num_experts");
        o.remove("expert_intermediate_size");
        o.insert("architectures".into(), serde_json::json!(["Something"]));
    });
    let err = open_err(&bare);
    assert!(err.contains("d_model") && err.contains("expert"), "{err}");
    // A dense config over a checkpoint with experts: the tensors give it away.
    let dense = tmp.path().join("dense");
    copy_dir(&fixture("llada_moe"), &dense);
    edit_config(&dense, |j| {
        j["model_type"] = "a2d-qwen3".into();
        j["intermediate_size"] = 48.into();
        j["head_dim"] = 8.into();
    });
    let err = open_err(&dense);
    assert!(
        err.contains("mlp.experts.") && err.contains("routed expert") && err.contains("dense"),
        "{err}"
    );
    // q/k norms in the tensors but not in the config.
    let no_norm = tmp.path().join("no_norm");
    copy_dir(&fixture("llada_moe"), &no_norm);
    edit_config(&no_norm, |j| j["qk_layernorm"] = false.into());
    let err = open_err(&no_norm);
    assert!(
        err.contains("_norm.weight") && err.contains("qk_layernorm"),
        "{err}"
    );
}

#[test]
fn every_new_architecture_generates_an_answer() {
    for name in NEW {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mdu"))
            .args(["generate", "--checkpoint"])
            .arg(fixture(name))
            .args([
                "--prompt",
                "Who is Ben?",
                "--max-new-tokens",
                "8",
                "--device",
                "cpu",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {err}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).trim().is_empty() || err.contains("answer"),
            "{name}: no answer"
        );
    }
}

/// Every method's run on each new architecture finishes, changes the weights, and saves a model
/// that reloads bit for bit (and that, saved again, gives the same bytes).
#[test]
fn every_method_unlearns_each_new_architecture_and_saves_a_reloadable_model() {
    let tmp = tempfile::tempdir().unwrap();
    let (forget, retain) = data_files(tmp.path());
    for name in NEW {
        let ckpt = fixture(name);
        let input = Checkpoint::open(&ckpt).unwrap();
        for method in Method::ALL {
            let run = tmp.path().join(format!("{name}-{}", method.name()));
            let args = tiny(&forget, &retain, &ckpt, &run);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let extra = ["--method", method.name(), "--set", "leakage_probe=false"];
            let out = unlearn(&[&args[..], &extra[..]].concat(), &[]);
            assert!(
                out.status.success(),
                "{name}/{}: {}",
                method.name(),
                stderr(&out)
            );
            let saved = Checkpoint::open(&run.join("model")).unwrap();
            assert_eq!(saved.config, input.config, "{name}/{}", method.name());
            let changed = input
                .layout
                .tensor_file
                .keys()
                .filter(|t| saved.tensor_bytes(t) != input.tensor_bytes(t))
                .count();
            assert!(changed > 0, "{name}/{}: no weight changed", method.name());
            // Reload and save again: the same bytes, tensor for tensor.
            let device = Default::default();
            let model = saved
                .load::<CpuBackend>(&device, &MemoryBudget::unlimited("test"))
                .unwrap();
            let again = tmp.path().join(format!("{name}-{}-again", method.name()));
            checkpoint::save(&model, &saved.layout, Some(&run.join("model")), &again).unwrap();
            let again = Checkpoint::open(&again).unwrap();
            for t in saved.layout.tensor_file.keys() {
                assert!(
                    again.tensor_bytes(t) == saved.tensor_bytes(t),
                    "{name}: `{t}`"
                );
            }
            if name == "llada_moe" {
                // The expert-bias buffer is loaded and saved but never trained.
                let bias = "model.layers.1.mlp.expert_bias";
                assert!(saved.tensor_bytes(bias) == input.tensor_bytes(bias));
            }
        }
    }
}

fn load<B: burn::tensor::backend::Backend>(name: &str) -> MaskedDiffusionLm<B> {
    load_model::<B>(
        &fixture(name),
        &Default::default(),
        &MemoryBudget::unlimited("test"),
    )
    .unwrap()
    .1
}

fn square_loss(model: &MaskedDiffusionLm<Ad>) -> burn::tensor::Tensor<Ad, 1> {
    let ids = vec![vec![1u32, 5, 9, 3, 7, 2], vec![4, 4, 8, 6, 1, 0]];
    let flat: Vec<i64> = ids.iter().flatten().map(|&i| i as i64).collect();
    let ids = burn::tensor::Tensor::<Ad, 2, burn::tensor::Int>::from_data(
        TensorData::new(flat, [2, 6]),
        &Default::default(),
    );
    let hidden = model.forward_hidden(ids, None);
    model.logits_all(hidden).powi_scalar(2).mean()
}

#[test]
fn training_reaches_the_router_and_the_chosen_experts_but_not_the_expert_bias() {
    let model = load::<Ad>("llada_moe");
    let grads = square_loss(&model).backward();
    let moe = model.blocks[1].moe.as_ref().unwrap();
    let norm = |g: Option<burn::tensor::Tensor<CpuBackend, 2>>| {
        g.map_or(0.0, |g| g.abs().sum().into_scalar() as f64)
    };
    assert!(norm(moe.router.val().grad(&grads)) > 0.0, "router");
    let reached = moe
        .experts
        .iter()
        .filter(|e| norm(e.gate.val().grad(&grads)) > 0.0)
        .count();
    assert!(reached >= 2, "only {reached} experts got a gradient");
    assert!(norm(moe.shared.as_ref().unwrap().down.val().grad(&grads)) > 0.0);
    let bias = moe.expert_bias.as_ref().unwrap();
    assert!(
        bias.val().grad(&grads).is_none(),
        "the expert bias is a buffer"
    );
    // The tied head of Qwen3 A2D: the embedding gets the head's gradient too.
    let qwen = load::<Ad>("qwen3_a2d");
    assert!(qwen.lm_head.is_none());
    let grads = square_loss(&qwen).backward();
    assert!(norm(qwen.embed.val().grad(&grads)) > 0.0);
}

#[test]
fn lora_sits_on_every_expert_and_saves_and_loads_as_peft_names_them() {
    let model = load::<Ad>("llada_moe");
    let settings = LoraSettings {
        rank: 2,
        alpha: 4.0,
        ..LoraSettings::default()
    };
    let device = Default::default();
    let mut adapters = Adapters::<Ad>::init(&settings, &model.config, 3, &device);
    // Every B drawn, so the adapters change the model and A gets gradients too.
    for block in &mut adapters.blocks {
        let pairs: Vec<(Weight, TensorData, [usize; 2])> = block
            .pairs()
            .into_iter()
            .map(|(w, p)| (w, p.a.val().into_data(), p.b.val().dims()))
            .collect();
        for (k, (w, a, [out, r])) in pairs.into_iter().enumerate() {
            let b: Vec<f32> = (0..out * r)
                .map(|i| ((i * 7 + k * 13) % 17) as f32 / 17.0 * 0.04 - 0.02)
                .collect();
            assert!(block.set_weight(w, Adapters::pair(a, TensorData::new(b, [out, r]), &device)));
        }
    }
    let moe_block = &adapters.blocks[1];
    assert_eq!(moe_block.experts.len(), 4);
    assert!(moe_block.shared.is_some() && moe_block.dense().gate.is_none());
    assert!(adapters.blocks[0].experts.is_empty() && adapters.blocks[0].dense().gate.is_some());
    let count: u64 = adapters
        .blocks
        .iter()
        .flat_map(|b| b.pairs())
        .map(|(_, p)| {
            (p.a.val().dims().iter().product::<usize>()
                + p.b.val().dims().iter().product::<usize>()) as u64
        })
        .sum();
    assert_eq!(count, settings.num_parameters(&model.config));

    let model = model.with_adapters(adapters);
    let grads = square_loss(&model).backward();
    let lora = model.adapters.as_ref().unwrap();
    let expert_grads = lora.blocks[1]
        .experts
        .iter()
        .filter(|e| {
            e.down
                .as_ref()
                .unwrap()
                .a
                .val()
                .grad(&grads)
                .is_some_and(|g| g.abs().sum().into_scalar() > 0.0)
        })
        .count();
    assert!(
        expert_grads >= 2,
        "{expert_grads} experts' adapters got a gradient"
    );
    let base = &model.blocks[1].moe.as_ref().unwrap().experts[0].gate;
    assert!(
        base.val().grad(&grads).is_none(),
        "the base expert stays frozen"
    );

    // PEFT folder: module paths name the experts; loading gives the same pairs back.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("adapter");
    save_adapter(lora, &model.config, &fixture("llada_moe"), &out).unwrap();
    let config_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("adapter_config.json")).unwrap()).unwrap();
    let pattern = config_json["target_modules"].as_str().unwrap();
    assert!(
        pattern.contains("mlp\\.experts\\.\\d+\\.gate_proj"),
        "{pattern}"
    );
    assert!(pattern.contains("shared_expert\\.down_proj"), "{pattern}");
    let loaded = AdapterFiles::open(&out)
        .unwrap()
        .load::<CpuBackend>(&model.config, &Default::default())
        .unwrap();
    for (ours, theirs) in lora.blocks.iter().zip(&loaded.blocks) {
        let (a, b) = (ours.pairs(), theirs.pairs());
        assert_eq!(a.len(), b.len());
        for ((wa, pa), (wb, pb)) in a.into_iter().zip(b) {
            assert_eq!(wa, wb);
            assert_eq!(
                pa.b.val().into_data().to_vec::<f32>().unwrap(),
                pb.b.val().into_data().to_vec::<f32>().unwrap()
            );
        }
    }
    // Merged into the base, the experts' adapters keep the logits.
    let ids = vec![vec![1u32, 5, 9, 3, 7, 2]];
    let model = burn::module::AutodiffModule::valid(&model);
    let before = model.logits_host(&ids, None, &device);
    let merged = model.merged();
    let after = merged.logits_host(&ids, None, &device);
    let worst = before
        .iter()
        .zip(&after)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "merge moved the logits by {worst}");
}

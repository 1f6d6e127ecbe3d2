//! LoRA adapters on the block projections (Hu et al. 2021), with PEFT's conventions: `lora_A` is
//! `[r, in]` (Kaiming-uniform with a = √5, i.e. U(±1/√in)), `lora_B` is `[out, r]` (zeros), and a
//! projection computes `x·Wᵀ + s·(dropout(x)·Aᵀ)·Bᵀ` with `s = α/r` (`α/√r` with rsLoRA).
//!
//! The base weights keep their storage type and stay frozen; the adapters are kept in the device's
//! accumulation type (f32), and their product is computed in it and cast to the activation type,
//! as PEFT does with its default float32 adapters on a bf16 model.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::config::ModelConfig;
use super::precision::{accumulation_dtype, at_least_f32};
use super::Weight;
use crate::rng::SplitMix64;

/// A block projection an adapter can sit on, named by its role (the same in every architecture).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoraTarget {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl LoraTarget {
    pub const ALL: [LoraTarget; 7] = [
        LoraTarget::Q,
        LoraTarget::K,
        LoraTarget::V,
        LoraTarget::O,
        LoraTarget::Gate,
        LoraTarget::Up,
        LoraTarget::Down,
    ];

    /// The weights this target adapts in block `layer`: the projection itself, or for gate/up/down
    /// in an MoE layer the same projection of every routed expert and of the shared expert.
    pub fn weights_in(self, config: &ModelConfig, layer: usize) -> Vec<Weight> {
        let moe = config.moe.as_ref().filter(|_| config.is_moe_layer(layer));
        let Some(m) = moe else {
            return vec![self.weight()];
        };
        let (expert, shared): (fn(usize) -> Weight, Weight) = match self {
            LoraTarget::Gate => (Weight::ExpertGate, Weight::SharedGate),
            LoraTarget::Up => (Weight::ExpertUp, Weight::SharedUp),
            LoraTarget::Down => (Weight::ExpertDown, Weight::SharedDown),
            _ => return vec![self.weight()],
        };
        let mut out: Vec<Weight> = (0..m.num_experts).map(expert).collect();
        if m.shared_intermediate_size.is_some() {
            out.push(shared);
        }
        out
    }

    /// The target a weight belongs to (`None` for weights no adapter sits on).
    pub fn of_weight(weight: Weight) -> Option<LoraTarget> {
        Some(match weight {
            Weight::Q => LoraTarget::Q,
            Weight::K => LoraTarget::K,
            Weight::V => LoraTarget::V,
            Weight::O => LoraTarget::O,
            Weight::Gate | Weight::ExpertGate(_) | Weight::SharedGate => LoraTarget::Gate,
            Weight::Up | Weight::ExpertUp(_) | Weight::SharedUp => LoraTarget::Up,
            Weight::Down | Weight::ExpertDown(_) | Weight::SharedDown => LoraTarget::Down,
            _ => return None,
        })
    }

    /// The dense model's weight of this target.
    pub fn weight(self) -> Weight {
        match self {
            LoraTarget::Q => Weight::Q,
            LoraTarget::K => Weight::K,
            LoraTarget::V => Weight::V,
            LoraTarget::O => Weight::O,
            LoraTarget::Gate => Weight::Gate,
            LoraTarget::Up => Weight::Up,
            LoraTarget::Down => Weight::Down,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LoraTarget::Q => "q",
            LoraTarget::K => "k",
            LoraTarget::V => "v",
            LoraTarget::O => "o",
            LoraTarget::Gate => "gate",
            LoraTarget::Up => "up",
            LoraTarget::Down => "down",
        }
    }

    /// `"q,k,v"` → the targets, or a message naming the unknown one and the accepted names.
    pub fn parse_list(text: &str) -> Result<Vec<LoraTarget>, String> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let target = Self::ALL
                .into_iter()
                .find(|t| t.name() == part.to_ascii_lowercase())
                .ok_or_else(|| {
                    format!(
                        "unknown LoRA target {part:?}; expected some of {}",
                        Self::ALL.map(|t| t.name()).join(", ")
                    )
                })?;
            if !out.contains(&target) {
                out.push(target);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Rank, α, dropout and targets of a LoRA fine-tune (`[lora]` in a run config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraSettings {
    #[serde(default = "default_rank")]
    pub rank: usize,
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default)]
    pub dropout: f64,
    #[serde(default = "default_targets")]
    pub targets: Vec<LoraTarget>,
    /// rsLoRA's scale α/√r instead of α/r.
    #[serde(default)]
    pub rslora: bool,
}

fn default_rank() -> usize {
    16
}
fn default_alpha() -> f64 {
    32.0
}
fn default_targets() -> Vec<LoraTarget> {
    LoraTarget::ALL.to_vec()
}

impl Default for LoraSettings {
    fn default() -> Self {
        Self {
            rank: default_rank(),
            alpha: default_alpha(),
            dropout: 0.0,
            targets: default_targets(),
            rslora: false,
        }
    }
}

impl LoraSettings {
    /// The factor on `B·A`.
    pub fn scale(&self) -> f64 {
        if self.rslora {
            self.alpha / (self.rank as f64).sqrt()
        } else {
            self.alpha / self.rank as f64
        }
    }

    /// A message naming the first setting out of range.
    pub fn validate(&self) -> Result<(), String> {
        if self.rank == 0 {
            return Err("lora.rank must be at least 1".into());
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(format!("lora.alpha must be positive, got {}", self.alpha));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!(
                "lora.dropout must be in [0, 1), got {}",
                self.dropout
            ));
        }
        if self.targets.is_empty() {
            return Err(
                "lora.targets is empty; name at least one of q, k, v, o, gate, up, down".into(),
            );
        }
        Ok(())
    }

    /// Trainable parameters for `config` (an MoE layer has one adapter per expert).
    pub fn num_parameters(&self, config: &ModelConfig) -> u64 {
        let mut total = 0;
        for layer in 0..config.num_layers {
            for t in &self.targets {
                for w in t.weights_in(config, layer) {
                    let shape = w.shape(config);
                    total += self.rank * (shape[0] + shape[1]);
                }
            }
        }
        total as u64
    }
}

/// One adapter: `a` is `[r, in]`, `b` is `[out, r]` (PEFT's `lora_A` / `lora_B` weights).
#[derive(Module, Debug)]
pub struct LoraPair<B: Backend> {
    pub a: Param<Tensor<B, 2>>,
    pub b: Param<Tensor<B, 2>>,
}

impl<B: Backend> LoraPair<B> {
    /// `s·(dropout(x)·Aᵀ)·Bᵀ` for rows `x` `[N, in]`, in the adapters' type, returned in `x`'s.
    pub fn delta(&self, x: Tensor<B, 2>, scale: f64, dropout: f64) -> Tensor<B, 2> {
        let dtype = x.dtype();
        let a = self.a.val();
        let x = if x.dtype() == a.dtype() {
            x
        } else {
            x.cast(a.dtype())
        };
        let device = x.device();
        // Dropout only where gradients are tracked (training); evaluation and anchors see all of x.
        let x = if dropout > 0.0 && B::ad_enabled(&device) {
            let keep =
                Tensor::<B, 2>::random(x.dims(), Distribution::Bernoulli(1.0 - dropout), &device)
                    .cast(x.dtype());
            x * keep / (1.0 - dropout)
        } else {
            x
        };
        let y = x.matmul(a.transpose()).matmul(self.b.val().transpose()) * scale;
        if y.dtype() == dtype {
            y
        } else {
            y.cast(dtype)
        }
    }

    /// `W + s·B·A`, computed in f32 (or f64) and stored back in `W`'s type.
    pub fn merge_into(&self, weight: Tensor<B, 2>, scale: f64) -> Tensor<B, 2> {
        let dtype = weight.dtype();
        let delta = self.b.val().matmul(self.a.val()) * scale;
        let merged = at_least_f32(weight) + at_least_f32(delta);
        if merged.dtype() == dtype {
            merged
        } else {
            merged.cast(dtype)
        }
    }
}

/// The adapters of one expert's (or the shared expert's) SwiGLU projections.
#[derive(Module, Debug)]
pub struct MlpAdapters<B: Backend> {
    pub gate: Option<LoraPair<B>>,
    pub up: Option<LoraPair<B>>,
    pub down: Option<LoraPair<B>>,
}

impl<B: Backend> MlpAdapters<B> {
    fn empty() -> Self {
        Self {
            gate: None,
            up: None,
            down: None,
        }
    }

    fn slot_mut(&mut self, target: LoraTarget) -> Option<&mut Option<LoraPair<B>>> {
        match target {
            LoraTarget::Gate => Some(&mut self.gate),
            LoraTarget::Up => Some(&mut self.up),
            LoraTarget::Down => Some(&mut self.down),
            _ => None,
        }
    }
}

/// The adapters of one block, one per targeted projection (and, in an MoE layer, per expert).
#[derive(Module, Debug)]
pub struct BlockAdapters<B: Backend> {
    pub q: Option<LoraPair<B>>,
    pub k: Option<LoraPair<B>>,
    pub v: Option<LoraPair<B>>,
    pub o: Option<LoraPair<B>>,
    /// The dense MLP's adapters (empty in an MoE layer).
    pub mlp: MlpAdapters<B>,
    /// Routed expert `e`'s adapters at index `e` (empty in a dense layer).
    pub experts: Vec<MlpAdapters<B>>,
    pub shared: Option<MlpAdapters<B>>,
}

impl<B: Backend> BlockAdapters<B> {
    pub fn empty() -> Self {
        Self {
            q: None,
            k: None,
            v: None,
            o: None,
            mlp: MlpAdapters::empty(),
            experts: Vec::new(),
            shared: None,
        }
    }

    /// The dense MLP's adapters.
    pub fn dense(&self) -> &MlpAdapters<B> {
        &self.mlp
    }

    /// Every adapter with the weight it sits on, in checkpoint order.
    pub fn pairs(&self) -> Vec<(Weight, &LoraPair<B>)> {
        let mut out = Vec::new();
        for target in LoraTarget::ALL {
            if let Some(pair) = self.get(target) {
                out.push((target.weight(), pair));
            }
        }
        fn mlp<B: Backend>(a: &MlpAdapters<B>) -> [Option<&LoraPair<B>>; 3] {
            [a.gate.as_ref(), a.up.as_ref(), a.down.as_ref()]
        }
        for (e, a) in self.experts.iter().enumerate() {
            let weights = [
                Weight::ExpertGate(e),
                Weight::ExpertUp(e),
                Weight::ExpertDown(e),
            ];
            for (w, pair) in weights.into_iter().zip(mlp(a)) {
                if let Some(pair) = pair {
                    out.push((w, pair));
                }
            }
        }
        if let Some(a) = &self.shared {
            let weights = [Weight::SharedGate, Weight::SharedUp, Weight::SharedDown];
            for (w, pair) in weights.into_iter().zip(mlp(a)) {
                if let Some(pair) = pair {
                    out.push((w, pair));
                }
            }
        }
        out
    }

    /// Puts `pair` on `weight` (a projection, an expert's or the shared expert's); false for a
    /// weight no adapter can sit on.
    pub fn set_weight(&mut self, weight: Weight, pair: LoraPair<B>) -> bool {
        let Some(target) = LoraTarget::of_weight(weight) else {
            return false;
        };
        let mlp = match weight {
            Weight::ExpertGate(e) | Weight::ExpertUp(e) | Weight::ExpertDown(e) => {
                while self.experts.len() <= e {
                    self.experts.push(MlpAdapters::empty());
                }
                &mut self.experts[e]
            }
            Weight::SharedGate | Weight::SharedUp | Weight::SharedDown => {
                self.shared.get_or_insert_with(MlpAdapters::empty)
            }
            _ => {
                self.set(target, pair);
                return true;
            }
        };
        match mlp.slot_mut(target) {
            Some(slot) => {
                *slot = Some(pair);
                true
            }
            None => false,
        }
    }

    pub fn get(&self, target: LoraTarget) -> Option<&LoraPair<B>> {
        self.slot(target).as_ref()
    }

    pub fn set(&mut self, target: LoraTarget, pair: LoraPair<B>) {
        *self.slot_mut(target) = Some(pair);
    }

    fn slot(&self, target: LoraTarget) -> &Option<LoraPair<B>> {
        match target {
            LoraTarget::Q => &self.q,
            LoraTarget::K => &self.k,
            LoraTarget::V => &self.v,
            LoraTarget::O => &self.o,
            LoraTarget::Gate => &self.mlp.gate,
            LoraTarget::Up => &self.mlp.up,
            LoraTarget::Down => &self.mlp.down,
        }
    }

    fn slot_mut(&mut self, target: LoraTarget) -> &mut Option<LoraPair<B>> {
        match target {
            LoraTarget::Q => &mut self.q,
            LoraTarget::K => &mut self.k,
            LoraTarget::V => &mut self.v,
            LoraTarget::O => &mut self.o,
            LoraTarget::Gate => &mut self.mlp.gate,
            LoraTarget::Up => &mut self.mlp.up,
            LoraTarget::Down => &mut self.mlp.down,
        }
    }
}

/// Every block's adapters and the settings they were made with.
#[derive(Module, Debug)]
pub struct Adapters<B: Backend> {
    pub blocks: Vec<BlockAdapters<B>>,
    #[module(skip)]
    pub settings: LoraSettings,
}

impl<B: Backend> Adapters<B> {
    /// Fresh adapters as PEFT initialises them (`B = 0`, so the model starts as the base), with
    /// `A` drawn on the host from `seed` so every backend starts from the same numbers.
    pub fn init(
        settings: &LoraSettings,
        config: &ModelConfig,
        seed: u64,
        device: &B::Device,
    ) -> Self {
        let mut rng = SplitMix64(seed ^ 0x4C6F_5241_4164_6170);
        let blocks = (0..config.num_layers)
            .map(|layer| {
                let mut block = BlockAdapters::empty();
                for &target in &settings.targets {
                    for weight in target.weights_in(config, layer) {
                        let shape = weight.shape(config);
                        let (out, inp) = (shape[0], shape[1]);
                        let bound = 1.0 / (inp as f64).sqrt();
                        let a: Vec<f32> = (0..settings.rank * inp)
                            .map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
                            .collect();
                        let b = vec![0f32; out * settings.rank];
                        block.set_weight(
                            weight,
                            Self::pair(
                                TensorData::new(a, [settings.rank, inp]),
                                TensorData::new(b, [out, settings.rank]),
                                device,
                            ),
                        );
                    }
                }
                block
            })
            .collect();
        Self {
            blocks,
            settings: settings.clone(),
        }
    }

    /// A trainable pair from host data, stored in the device's accumulation type.
    pub fn pair(a: TensorData, b: TensorData, device: &B::Device) -> LoraPair<B> {
        let dtype = accumulation_dtype::<B>(device);
        let param =
            |d: TensorData| Param::from_tensor(Tensor::<B, 2>::from_data(d, (device, dtype)));
        LoraPair {
            a: param(a),
            b: param(b),
        }
    }
}

//! The bidirectional transformer behind both architectures (mdlm.md §1.4, §3.4).
//!
//! Weights keep the HF layout (`nn.Linear` as `[out, in]`) so loading and saving never transpose,
//! and a checkpoint round-trips bit for bit. The model returns hidden states; callers apply the LM
//! head to the rows they need (`logits_for_rows`), because losses only need masked answer positions.

use std::any::{Any, TypeId};
use std::sync::Arc;

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::config::ModelConfig;
use super::layers::{linear, rms_norm, LoraUse, Mlp};
use super::lora::{Adapters, BlockAdapters, LoraTarget};
use super::moe::MoeLayer;
use super::rope::Rope;
use super::Weight;

/// One pre-norm block: attention then the feed-forward (a SwiGLU MLP, or routed experts), each
/// with a residual.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    pub attn_norm: Param<Tensor<B, 1>>,
    pub q: Param<Tensor<B, 2>>,
    pub k: Param<Tensor<B, 2>>,
    pub v: Param<Tensor<B, 2>>,
    pub q_bias: Option<Param<Tensor<B, 1>>>,
    pub k_bias: Option<Param<Tensor<B, 1>>>,
    pub v_bias: Option<Param<Tensor<B, 1>>>,
    /// Per-head RMSNorm weights on q and k (Qwen3, LLaDA-MoE).
    pub q_norm: Option<Param<Tensor<B, 1>>>,
    pub k_norm: Option<Param<Tensor<B, 1>>>,
    pub o: Param<Tensor<B, 2>>,
    pub mlp_norm: Param<Tensor<B, 1>>,
    /// The dense MLP; `None` in an MoE layer.
    pub mlp: Option<Mlp<B>>,
    /// The routed experts; `None` in a dense layer.
    pub moe: Option<MoeLayer<B>>,
}

/// A masked-diffusion LM (every architecture) with its resolved config.
#[derive(Module, Debug)]
pub struct MaskedDiffusionLm<B: Backend> {
    pub embed: Param<Tensor<B, 2>>,
    pub blocks: Vec<Block<B>>,
    pub final_norm: Param<Tensor<B, 1>>,
    /// The LM head; `None` when it is tied to the embedding.
    pub lm_head: Option<Param<Tensor<B, 2>>>,
    /// LoRA adapters on the block projections (`None`: the plain model).
    pub adapters: Option<Adapters<B>>,
    #[module(skip)]
    pub config: ModelConfig,
    /// Per-block activation checkpointing while training (`checkpointing.rs`); `None` keeps
    /// every activation for the backward pass.
    #[module(skip)]
    pub block_runner: Option<BlockRunnerHandle>,
}

impl<B: Backend> MaskedDiffusionLm<B> {
    /// Builds the model from a source of HF-layout tensors (a checkpoint, or a random initialiser).
    /// `source(weight, layer)` returns the data for that weight; the shape is checked by the caller.
    pub fn build<E>(
        config: &ModelConfig,
        device: &B::Device,
        mut source: impl FnMut(Weight, usize) -> Result<TensorData, E>,
    ) -> Result<Self, E> {
        let p2 = |data: TensorData| Param::from_tensor(Tensor::<B, 2>::from_data(data, device));
        let p1 = |data: TensorData| Param::from_tensor(Tensor::<B, 1>::from_data(data, device));
        let embed = p2(source(Weight::Embed, 0)?);
        let mut blocks = Vec::with_capacity(config.num_layers);
        for layer in 0..config.num_layers {
            blocks.push(Block::build(config, layer, &mut source, &p1, &p2)?);
        }
        let final_norm = p1(source(Weight::FinalNorm, 0)?);
        let lm_head = if config.tied_embeddings {
            None
        } else {
            Some(p2(source(Weight::LmHead, 0)?))
        };
        Ok(Self {
            embed,
            blocks,
            final_norm,
            lm_head,
            adapters: None,
            config: config.clone(),
            block_runner: None,
        })
    }

    /// The model with `adapters` on its projections and every base weight frozen (no gradient,
    /// no optimiser state): only the adapters train.
    pub fn with_adapters(self, adapters: Adapters<B>) -> Self {
        let mut model = self.no_grad();
        model.adapters = Some(adapters);
        model
    }

    /// The same weights without the adapters (the base as its own anchor): the tensors are
    /// shared, not copied.
    pub fn without_adapters(&self) -> Self {
        let mut model = self.clone();
        model.adapters = None;
        model
    }

    /// The adapters folded into the base weights (`W + s·B·A`), as one plain model; each merged
    /// weight trains if its base weight did.
    pub fn merged(mut self) -> Self {
        let Some(adapters) = self.adapters.take() else {
            return self;
        };
        let scale = adapters.settings.scale();
        for (block, lora) in self.blocks.iter_mut().zip(&adapters.blocks) {
            for (weight, pair) in lora.pairs() {
                let Some(slot) = block.matrix_mut(weight) else {
                    continue;
                };
                let value = slot.val();
                let trainable = value.is_require_grad();
                let merged = pair.merge_into(value, scale);
                *slot = Param::from_tensor(merged).set_require_grad(trainable);
            }
        }
        self
    }

    /// Every weight with its HF name, in checkpoint order, as host data (for saving).
    pub fn named_tensors(&self) -> Vec<(String, TensorData)> {
        self.map_named(|p| p.val().into_data(), |p| p.val().into_data())
    }

    /// `f1`/`f2` applied to every 1-D/2-D weight, with its HF name, in checkpoint order.
    pub fn map_named<T>(
        &self,
        f1: impl Fn(&Param<Tensor<B, 1>>) -> T,
        f2: impl Fn(&Param<Tensor<B, 2>>) -> T,
    ) -> Vec<(String, T)> {
        let c = &self.config;
        let mut out = Vec::new();
        let mut push = |w: Weight, layer: usize, value: T| {
            if let Some(name) = w.name(c, layer) {
                out.push((name, value));
            }
        };
        push(Weight::Embed, 0, f2(&self.embed));
        for (layer, b) in self.blocks.iter().enumerate() {
            for w in super::block_weights(c, layer) {
                if w.is_vector() {
                    if let Some(p) = b.vector(w) {
                        push(w, layer, f1(p));
                    }
                } else if let Some(p) = b.matrix(w) {
                    push(w, layer, f2(p));
                }
            }
        }
        push(Weight::FinalNorm, 0, f1(&self.final_norm));
        if let Some(head) = &self.lm_head {
            push(Weight::LmHead, 0, f2(head));
        }
        out
    }

    /// Final hidden states `[B, L, D]` (after the last RMSNorm) for token ids `[B, L]`.
    /// `key_padding` is `[B, L]`, true where a key is padding: padded keys get no attention
    /// weight; padded query rows are still computed (as in HF LLaDA after commit 852152c).
    pub fn forward_hidden(
        &self,
        ids: Tensor<B, 2, Int>,
        key_padding: Option<Tensor<B, 2, Bool>>,
    ) -> Tensor<B, 3> {
        let c = &self.config;
        let [batch, len] = ids.dims();
        let device = ids.device();
        let x = burn::tensor::module::embedding(self.embed.val(), ids);
        let rope = Rope::new(c, len, &device);
        let mask = key_padding.map(|pad| {
            pad.reshape([batch, 1, 1, len])
                .expand([batch, c.num_heads, len, len])
        });
        let x = match &self.block_runner {
            Some(runner) if runner.0.backend() == TypeId::of::<B>() => {
                let pass = BlockPass {
                    model: self.clone(),
                    x,
                    mask,
                };
                *runner
                    .0
                    .run_blocks(Box::new(pass))
                    .downcast::<Tensor<B, 3>>()
                    .expect("a block runner returns its backend's tensor")
            }
            _ => {
                let mut x = x;
                for layer in 0..self.blocks.len() {
                    x = self.block_forward(layer, x, &rope, mask.clone());
                }
                x
            }
        };
        rms_norm(x, &self.final_norm, c.rms_norm_eps)
    }

    /// The residual stream after block `layer` `[B, L, D]` (before the later blocks and the
    /// final norm): what RMU steers.
    pub fn hidden_after_block(&self, ids: Tensor<B, 2, Int>, layer: usize) -> Tensor<B, 3> {
        let len = ids.dims()[1];
        let rope = Rope::new(&self.config, len, &ids.device());
        let mut x = burn::tensor::module::embedding(self.embed.val(), ids);
        for l in 0..=layer.min(self.blocks.len().saturating_sub(1)) {
            x = self.block_forward(l, x, &rope, None);
        }
        x
    }

    /// Block `layer` (with its adapters) on `x` `[B, L, D]`.
    pub(super) fn block_forward(
        &self,
        layer: usize,
        x: Tensor<B, 3>,
        rope: &Rope<B>,
        mask: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let adapters = self
            .adapters
            .as_ref()
            .map(|a| (&a.blocks[layer], a.settings.scale(), a.settings.dropout));
        self.blocks[layer].forward(x, &self.config, rope, mask, adapters)
    }

    /// The LM head's weight `[V, D]`: its own, or the embedding when tied.
    pub fn head_weight(&self) -> &Param<Tensor<B, 2>> {
        self.lm_head.as_ref().unwrap_or(&self.embed)
    }

    /// LM head on selected hidden rows `[N, D]` → logits `[N, V]` (never the full `[B·L, V]` unless asked).
    pub fn logits_for_rows(&self, hidden_rows: Tensor<B, 2>) -> Tensor<B, 2> {
        hidden_rows.matmul(self.head_weight().val().transpose())
    }

    /// Logits at every position `[B, L, V]`, raw (before any Dream right shift).
    pub fn logits_all(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, len, dim] = hidden.dims();
        let rows = self.logits_for_rows(hidden.reshape([batch * len, dim]));
        let vocab = rows.dims()[1];
        rows.reshape([batch, len, vocab])
    }
}

impl<B: Backend> MaskedDiffusionLm<B> {
    /// Raw logits `[B][L][V]` (flattened) for host token ids; rows of `key_padding` are true on padded keys.
    pub fn logits_host(
        &self,
        ids: &[Vec<u32>],
        key_padding: Option<&[Vec<bool>]>,
        device: &B::Device,
    ) -> Vec<f32> {
        let (batch, len) = (ids.len(), ids.first().map_or(0, Vec::len));
        let flat: Vec<i64> = ids.iter().flatten().map(|&i| i as i64).collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [batch, len]), device);
        let pad = key_padding.map(|rows| {
            let flat: Vec<bool> = rows.iter().flatten().copied().collect();
            Tensor::<B, 2, Bool>::from_data(TensorData::new(flat, [batch, len]), device)
        });
        let hidden = self.forward_hidden(ids, pad);
        self.logits_all(hidden)
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("f32 logits")
    }
}

/// Runs a model's blocks in place of the plain loop (per-block activation checkpointing,
/// `checkpointing.rs`). Backend-erased, because the model's forward pass is generic over every
/// backend while a runner serves one: a pass on another backend (the inner model of `valid()`)
/// runs its blocks as usual.
pub trait BlockRunner: Send + Sync {
    /// The backend whose passes this runner takes.
    fn backend(&self) -> TypeId;
    /// The blocks' output `Tensor<B, 3>` for a [`BlockPass<B>`] of that backend.
    fn run_blocks(&self, pass: Box<dyn Any>) -> Box<dyn Any>;
}

/// A [`BlockRunner`] as the model holds it.
#[derive(Clone)]
pub struct BlockRunnerHandle(pub Arc<dyn BlockRunner>);

impl std::fmt::Debug for BlockRunnerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockRunnerHandle")
    }
}

/// What a [`BlockRunner`] gets: the model, the embedding output `[B, L, D]` and the attention mask.
pub struct BlockPass<B: Backend> {
    pub model: MaskedDiffusionLm<B>,
    pub x: Tensor<B, 3>,
    pub mask: Option<Tensor<B, 4, Bool>>,
}

/// Gathers hidden rows at flat positions (`b·L + l`) into `[N, D]`.
pub fn gather_rows<B: Backend>(
    hidden: Tensor<B, 3>,
    flat_positions: Tensor<B, 1, Int>,
) -> Tensor<B, 2> {
    let [batch, len, dim] = hidden.dims();
    hidden.reshape([batch * len, dim]).select(0, flat_positions)
}

/// A block's adapters with their scale and dropout, as its forward pass applies them.
type BlockLora<'a, B> = Option<(&'a BlockAdapters<B>, f64, f64)>;

impl<B: Backend> Block<B> {
    /// Block `layer` of `config` from a source of HF-layout tensors (see [`MaskedDiffusionLm::build`]).
    fn build<E>(
        config: &ModelConfig,
        layer: usize,
        source: &mut impl FnMut(Weight, usize) -> Result<TensorData, E>,
        p1: &impl Fn(TensorData) -> Param<Tensor<B, 1>>,
        p2: &impl Fn(TensorData) -> Param<Tensor<B, 2>>,
    ) -> Result<Self, E> {
        let mut vector = |on: bool, w: Weight| -> Result<_, E> {
            Ok(if on {
                Some(p1(source(w, layer)?))
            } else {
                None
            })
        };
        let (q_bias, k_bias, v_bias) = (
            vector(config.qkv_bias, Weight::QBias)?,
            vector(config.qkv_bias, Weight::KBias)?,
            vector(config.qkv_bias, Weight::VBias)?,
        );
        let (q_norm, k_norm) = (
            vector(config.qk_norm, Weight::QNorm)?,
            vector(config.qk_norm, Weight::KNorm)?,
        );
        let attn_norm = p1(source(Weight::AttnNorm, layer)?);
        let q = p2(source(Weight::Q, layer)?);
        let k = p2(source(Weight::K, layer)?);
        let v = p2(source(Weight::V, layer)?);
        let o = p2(source(Weight::O, layer)?);
        let mlp_norm = p1(source(Weight::MlpNorm, layer)?);
        let mut mlp_of = |[gate, up, down]: [Weight; 3]| -> Result<Mlp<B>, E> {
            Ok(Mlp {
                gate: p2(source(gate, layer)?),
                up: p2(source(up, layer)?),
                down: p2(source(down, layer)?),
            })
        };
        let (mlp, moe) = match config.moe.as_ref().filter(|_| config.is_moe_layer(layer)) {
            None => (
                Some(mlp_of([Weight::Gate, Weight::Up, Weight::Down])?),
                None,
            ),
            Some(m) => {
                let mut experts = Vec::with_capacity(m.num_experts);
                for e in 0..m.num_experts {
                    experts.push(mlp_of([
                        Weight::ExpertGate(e),
                        Weight::ExpertUp(e),
                        Weight::ExpertDown(e),
                    ])?);
                }
                let shared = match m.shared_intermediate_size {
                    Some(_) => Some(mlp_of([
                        Weight::SharedGate,
                        Weight::SharedUp,
                        Weight::SharedDown,
                    ])?),
                    None => None,
                };
                let router = p2(source(Weight::Router, layer)?);
                let expert_bias = if m.expert_bias {
                    // A buffer in PyTorch: loaded and saved, never trained.
                    Some(p1(source(Weight::ExpertBias, layer)?).set_require_grad(false))
                } else {
                    None
                };
                let moe = MoeLayer {
                    router,
                    expert_bias,
                    experts,
                    shared,
                    top_k: m.top_k,
                };
                (None, Some(moe))
            }
        };
        Ok(Block {
            attn_norm,
            q,
            k,
            v,
            q_bias,
            k_bias,
            v_bias,
            q_norm,
            k_norm,
            o,
            mlp_norm,
            mlp,
            moe,
        })
    }

    /// The 2-D weight `w` of this block (`None` where the block has no such weight).
    pub fn matrix(&self, w: Weight) -> Option<&Param<Tensor<B, 2>>> {
        let expert = |e: usize| self.moe.as_ref().and_then(|m| m.experts.get(e));
        let shared = || self.moe.as_ref().and_then(|m| m.shared.as_ref());
        match w {
            Weight::Q => Some(&self.q),
            Weight::K => Some(&self.k),
            Weight::V => Some(&self.v),
            Weight::O => Some(&self.o),
            Weight::Gate => self.mlp.as_ref().map(|m| &m.gate),
            Weight::Up => self.mlp.as_ref().map(|m| &m.up),
            Weight::Down => self.mlp.as_ref().map(|m| &m.down),
            Weight::Router => self.moe.as_ref().map(|m| &m.router),
            Weight::ExpertGate(e) => expert(e).map(|m| &m.gate),
            Weight::ExpertUp(e) => expert(e).map(|m| &m.up),
            Weight::ExpertDown(e) => expert(e).map(|m| &m.down),
            Weight::SharedGate => shared().map(|m| &m.gate),
            Weight::SharedUp => shared().map(|m| &m.up),
            Weight::SharedDown => shared().map(|m| &m.down),
            _ => None,
        }
    }

    fn matrix_mut(&mut self, w: Weight) -> Option<&mut Param<Tensor<B, 2>>> {
        let mlp = match w {
            Weight::Q => return Some(&mut self.q),
            Weight::K => return Some(&mut self.k),
            Weight::V => return Some(&mut self.v),
            Weight::O => return Some(&mut self.o),
            Weight::Gate | Weight::Up | Weight::Down => self.mlp.as_mut(),
            Weight::ExpertGate(e) | Weight::ExpertUp(e) | Weight::ExpertDown(e) => {
                self.moe.as_mut().and_then(|m| m.experts.get_mut(e))
            }
            Weight::SharedGate | Weight::SharedUp | Weight::SharedDown => {
                self.moe.as_mut().and_then(|m| m.shared.as_mut())
            }
            _ => None,
        }?;
        match LoraTarget::of_weight(w)? {
            LoraTarget::Gate => Some(&mut mlp.gate),
            LoraTarget::Up => Some(&mut mlp.up),
            _ => Some(&mut mlp.down),
        }
    }

    /// The 1-D weight `w` of this block (`None` where the block has no such weight).
    pub fn vector(&self, w: Weight) -> Option<&Param<Tensor<B, 1>>> {
        match w {
            Weight::AttnNorm => Some(&self.attn_norm),
            Weight::MlpNorm => Some(&self.mlp_norm),
            Weight::QBias => self.q_bias.as_ref(),
            Weight::KBias => self.k_bias.as_ref(),
            Weight::VBias => self.v_bias.as_ref(),
            Weight::QNorm => self.q_norm.as_ref(),
            Weight::KNorm => self.k_norm.as_ref(),
            Weight::ExpertBias => self.moe.as_ref().and_then(|m| m.expert_bias.as_ref()),
            _ => None,
        }
    }

    fn forward(
        &self,
        x: Tensor<B, 3>,
        c: &ModelConfig,
        rope: &Rope<B>,
        mask: Option<Tensor<B, 4, Bool>>,
        lora: BlockLora<'_, B>,
    ) -> Tensor<B, 3> {
        let use_of = |target: LoraTarget| {
            lora.and_then(|(block, scale, dropout)| {
                block.get(target).map(|pair| LoraUse {
                    pair,
                    scale,
                    dropout,
                })
            })
        };
        let [batch, len, dim] = x.dims();
        let project = |h: Tensor<B, 3>, w, bias: Option<&Param<Tensor<B, 1>>>, t, n: usize| {
            let y = linear(h, w, bias, use_of(t));
            // LLaDA-MoE's clip_qkv clamps q, k and v after their projections.
            let y = match c.clip_qkv {
                Some(limit) => y.clamp(-limit, limit),
                None => y,
            };
            y.reshape([batch, len, n, c.head_dim]).swap_dims(1, 2)
        };
        let h = rms_norm(x.clone(), &self.attn_norm, c.rms_norm_eps);
        let q = project(
            h.clone(),
            &self.q,
            self.q_bias.as_ref(),
            LoraTarget::Q,
            c.num_heads,
        );
        let k = project(
            h.clone(),
            &self.k,
            self.k_bias.as_ref(),
            LoraTarget::K,
            c.num_kv_heads,
        );
        let v = project(
            h,
            &self.v,
            self.v_bias.as_ref(),
            LoraTarget::V,
            c.num_kv_heads,
        );
        // Qwen3 and LLaDA-MoE normalise each head of q and k before RoPE.
        let q = match &self.q_norm {
            Some(w) => rms_norm(q, w, c.rms_norm_eps),
            None => q,
        };
        let k = match &self.k_norm {
            Some(w) => rms_norm(k, w, c.rms_norm_eps),
            None => k,
        };
        let (q, k) = (rope.apply(q), rope.apply(k));
        let repeat = c.num_heads / c.num_kv_heads;
        let (k, v) = (repeat_kv(k, repeat), repeat_kv(v, repeat));
        // Bidirectional: no causal mask; the default scale is 1/sqrt(head_dim).
        let a = attention(q, k, v, mask, None, AttentionModuleOptions::default());
        let a = a
            .swap_dims(1, 2)
            .reshape([batch, len, c.num_heads * c.head_dim]);
        let x = x + linear(a, &self.o, None, use_of(LoraTarget::O));
        let h = rms_norm(x.clone(), &self.mlp_norm, c.rms_norm_eps);
        let rows = h.reshape([batch * len, dim]);
        let y = match (&self.mlp, &self.moe) {
            (_, Some(moe)) => moe.forward_rows(rows, lora),
            (Some(mlp), None) => mlp.forward_rows(rows, lora.map(|(b, s, d)| (b.dense(), s, d))),
            (None, None) => unreachable!("every block has a dense MLP or experts"),
        };
        x + y.reshape([batch, len, dim])
    }
}

/// Each kv head serves `repeat` consecutive query heads (`repeat_kv` in HF).
fn repeat_kv<B: Backend>(x: Tensor<B, 4>, repeat: usize) -> Tensor<B, 4> {
    if repeat == 1 {
        return x;
    }
    let [batch, kv_heads, len, dim] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .expand([batch, kv_heads, repeat, len, dim])
        .reshape([batch, kv_heads * repeat, len, dim])
}

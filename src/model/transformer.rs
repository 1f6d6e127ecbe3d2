//! The bidirectional transformer behind both architectures (mdlm.md §1.4, §3.4).
//!
//! Weights keep the HF layout (`nn.Linear` as `[out, in]`) so loading and saving never transpose,
//! and a checkpoint round-trips bit for bit. The model returns hidden states; callers apply the LM
//! head to the rows they need (`logits_for_rows`), because losses only need masked answer positions.

use std::any::{Any, TypeId};
use std::sync::Arc;

use burn::module::{Module, Param};
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, DType, Int, Tensor, TensorData};

use super::config::ModelConfig;
use super::lora::{Adapters, BlockAdapters, LoraPair, LoraTarget};
use super::precision::{accumulation_dtype, at_least_f32};
use super::Weight;

/// One pre-norm block: attention then SwiGLU MLP, each with a residual.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    pub attn_norm: Param<Tensor<B, 1>>,
    pub q: Param<Tensor<B, 2>>,
    pub k: Param<Tensor<B, 2>>,
    pub v: Param<Tensor<B, 2>>,
    pub q_bias: Option<Param<Tensor<B, 1>>>,
    pub k_bias: Option<Param<Tensor<B, 1>>>,
    pub v_bias: Option<Param<Tensor<B, 1>>>,
    pub o: Param<Tensor<B, 2>>,
    pub mlp_norm: Param<Tensor<B, 1>>,
    pub gate: Param<Tensor<B, 2>>,
    pub up: Param<Tensor<B, 2>>,
    pub down: Param<Tensor<B, 2>>,
}

/// A masked-diffusion LM (LLaDA or Dream) with its resolved config.
#[derive(Module, Debug)]
pub struct MaskedDiffusionLm<B: Backend> {
    pub embed: Param<Tensor<B, 2>>,
    pub blocks: Vec<Block<B>>,
    pub final_norm: Param<Tensor<B, 1>>,
    pub lm_head: Param<Tensor<B, 2>>,
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
            let mut bias = |w: Weight| -> Result<_, E> {
                Ok(if config.qkv_bias {
                    Some(p1(source(w, layer)?))
                } else {
                    None
                })
            };
            let (q_bias, k_bias, v_bias) = (
                bias(Weight::QBias)?,
                bias(Weight::KBias)?,
                bias(Weight::VBias)?,
            );
            blocks.push(Block {
                attn_norm: p1(source(Weight::AttnNorm, layer)?),
                q: p2(source(Weight::Q, layer)?),
                k: p2(source(Weight::K, layer)?),
                v: p2(source(Weight::V, layer)?),
                q_bias,
                k_bias,
                v_bias,
                o: p2(source(Weight::O, layer)?),
                mlp_norm: p1(source(Weight::MlpNorm, layer)?),
                gate: p2(source(Weight::Gate, layer)?),
                up: p2(source(Weight::Up, layer)?),
                down: p2(source(Weight::Down, layer)?),
            });
        }
        Ok(Self {
            embed,
            blocks,
            final_norm: p1(source(Weight::FinalNorm, 0)?),
            lm_head: p2(source(Weight::LmHead, 0)?),
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
            for target in LoraTarget::ALL {
                if let Some(pair) = lora.get(target) {
                    let slot = block.projection_mut(target);
                    let weight = slot.val();
                    let trainable = weight.is_require_grad();
                    let merged = pair.merge_into(weight, scale);
                    *slot = Param::from_tensor(merged).set_require_grad(trainable);
                }
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
            push(Weight::AttnNorm, layer, f1(&b.attn_norm));
            push(Weight::Q, layer, f2(&b.q));
            push(Weight::K, layer, f2(&b.k));
            push(Weight::V, layer, f2(&b.v));
            for (w, bias) in [
                (Weight::QBias, &b.q_bias),
                (Weight::KBias, &b.k_bias),
                (Weight::VBias, &b.v_bias),
            ] {
                if let Some(bias) = bias {
                    push(w, layer, f1(bias));
                }
            }
            push(Weight::O, layer, f2(&b.o));
            push(Weight::MlpNorm, layer, f1(&b.mlp_norm));
            push(Weight::Gate, layer, f2(&b.gate));
            push(Weight::Up, layer, f2(&b.up));
            push(Weight::Down, layer, f2(&b.down));
        }
        push(Weight::FinalNorm, 0, f1(&self.final_norm));
        push(Weight::LmHead, 0, f2(&self.lm_head));
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

    /// Block `layer` (with its adapters) on `x` `[B, L, D]`.
    pub(super) fn block_forward(
        &self,
        layer: usize,
        x: Tensor<B, 3>,
        rope: &Rope<B>,
        mask: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let adapters = self.adapters.as_ref().map(|a| Lora {
            block: &a.blocks[layer],
            scale: a.settings.scale(),
            dropout: a.settings.dropout,
        });
        self.blocks[layer].forward(x, &self.config, rope, mask, adapters)
    }

    /// LM head on selected hidden rows `[N, D]` → logits `[N, V]` (never the full `[B·L, V]` unless asked).
    pub fn logits_for_rows(&self, hidden_rows: Tensor<B, 2>) -> Tensor<B, 2> {
        hidden_rows.matmul(self.lm_head.val().transpose())
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

/// One block's adapters as its forward pass applies them.
struct Lora<'a, B: Backend> {
    block: &'a BlockAdapters<B>,
    scale: f64,
    dropout: f64,
}

impl<B: Backend> Clone for Lora<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Backend> Copy for Lora<'_, B> {}

impl<B: Backend> Block<B> {
    fn projection_mut(&mut self, target: LoraTarget) -> &mut Param<Tensor<B, 2>> {
        match target {
            LoraTarget::Q => &mut self.q,
            LoraTarget::K => &mut self.k,
            LoraTarget::V => &mut self.v,
            LoraTarget::O => &mut self.o,
            LoraTarget::Gate => &mut self.gate,
            LoraTarget::Up => &mut self.up,
            LoraTarget::Down => &mut self.down,
        }
    }

    fn forward(
        &self,
        x: Tensor<B, 3>,
        c: &ModelConfig,
        rope: &Rope<B>,
        mask: Option<Tensor<B, 4, Bool>>,
        lora: Option<Lora<'_, B>>,
    ) -> Tensor<B, 3> {
        let linear = |x: Tensor<B, 3>, w, bias, target: LoraTarget| {
            linear(
                x,
                w,
                bias,
                lora.and_then(|l| l.block.get(target).map(|p| (p, l))),
            )
        };
        let [batch, len, _] = x.dims();
        let heads =
            |t: Tensor<B, 3>, n: usize| t.reshape([batch, len, n, c.head_dim]).swap_dims(1, 2);
        let h = rms_norm(x.clone(), &self.attn_norm, c.rms_norm_eps);
        let q = heads(
            linear(h.clone(), &self.q, self.q_bias.as_ref(), LoraTarget::Q),
            c.num_heads,
        );
        let k = heads(
            linear(h.clone(), &self.k, self.k_bias.as_ref(), LoraTarget::K),
            c.num_kv_heads,
        );
        let v = heads(
            linear(h, &self.v, self.v_bias.as_ref(), LoraTarget::V),
            c.num_kv_heads,
        );
        let (q, k) = (rope.apply(q), rope.apply(k));
        let repeat = c.num_heads / c.num_kv_heads;
        let (k, v) = (repeat_kv(k, repeat), repeat_kv(v, repeat));
        // Bidirectional: no causal mask; the default scale is 1/sqrt(head_dim).
        let a = attention(q, k, v, mask, None, AttentionModuleOptions::default());
        let a = a
            .swap_dims(1, 2)
            .reshape([batch, len, c.num_heads * c.head_dim]);
        let x = x + linear(a, &self.o, None, LoraTarget::O);
        let h = rms_norm(x.clone(), &self.mlp_norm, c.rms_norm_eps);
        let mlp = swish(linear(h.clone(), &self.gate, None, LoraTarget::Gate))
            * linear(h, &self.up, None, LoraTarget::Up);
        x + linear(mlp, &self.down, None, LoraTarget::Down)
    }
}

/// SiLU. Without a gradient to track (evaluation, generation, frozen passes) it is
/// `x / (1 + exp(−x))`: one exponential and four passes, where Burn's generic sigmoid takes two
/// exponentials, a logarithm and six (ndarray has no fused sigmoid). That form is exact at both
/// tails in the forward (−x/∞ = −0) but its autodiff backward would give ∞/∞ there, so on an
/// autodiff backend Burn's `silu`, whose sigmoid node has a stable backward, is kept. (The test is
/// the backend, not `is_require_grad`, which is false for every tensor but a leaf.)
fn swish<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if B::ad_enabled(&x.device()) {
        silu(x)
    } else {
        x.clone() / (x.neg().exp() + 1.0)
    }
}

/// `x @ W^T + b` with `W` in the HF `[out, in]` layout, as one `[B·L, in] × [in, out]` product
/// (a single large GEMM is faster than a batch of small ones on every backend we run), plus the
/// LoRA term when the projection has an adapter.
fn linear<B: Backend>(
    x: Tensor<B, 3>,
    weight: &Param<Tensor<B, 2>>,
    bias: Option<&Param<Tensor<B, 1>>>,
    lora: Option<(&LoraPair<B>, Lora<'_, B>)>,
) -> Tensor<B, 3> {
    let [batch, len, d_in] = x.dims();
    let w = weight.val();
    let d_out = w.dims()[0];
    let rows = x.reshape([batch * len, d_in]);
    let y = rows.clone().matmul(w.transpose());
    let y = match bias {
        Some(b) => y + b.val().unsqueeze::<2>(),
        None => y,
    };
    let y = match lora {
        Some((pair, l)) => y + pair.delta(rows, l.scale, l.dropout),
        None => y,
    };
    y.reshape([batch, len, d_out])
}

/// RMSNorm as HF computes it: normalise in f32, cast back, then multiply the weight.
fn rms_norm<B: Backend>(x: Tensor<B, 3>, weight: &Param<Tensor<B, 1>>, eps: f64) -> Tensor<B, 3> {
    let dtype = x.dtype();
    let xf = at_least_f32(x);
    let rms = (xf.clone().powi_scalar(2).mean_dim(2) + eps).sqrt();
    let normed = xf / rms;
    let normed = if dtype == DType::F32 {
        normed
    } else {
        normed.cast(dtype)
    };
    normed * weight.val().unsqueeze::<3>()
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

/// Half-rotation ("NeoX") rotary embedding with positions `0..L`, computed in f32 like HF.
pub struct Rope<B: Backend> {
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
}

impl<B: Backend> Rope<B> {
    pub fn new(c: &ModelConfig, len: usize, device: &B::Device) -> Self {
        let (cos, sin) = rope_tables(c.head_dim, c.rope_theta, len);
        let table = |v: Vec<f32>| {
            // f32 whatever the device's storage: RoPE is applied in f32 (see `apply`).
            Tensor::<B, 2>::from_data(
                TensorData::new(v, [len, c.head_dim]),
                (device, accumulation_dtype::<B>(device)),
            )
            .unsqueeze::<4>()
        };
        Self {
            cos: table(cos),
            sin: table(sin),
        }
    }

    /// `x·cos + rotate_half(x)·sin` on `[B, H, L, hd]`, in f32 whatever the activation dtype.
    fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let dtype = x.dtype();
        let x = at_least_f32(x);
        let [b, h, l, d] = x.dims();
        let half = d / 2;
        let first = x.clone().slice([0..b, 0..h, 0..l, 0..half]);
        let second = x.clone().slice([0..b, 0..h, 0..l, half..d]);
        let rotated = Tensor::cat(vec![second.neg(), first], 3);
        let out = x * self.cos.clone() + rotated * self.sin.clone();
        if dtype == DType::F32 {
            out
        } else {
            out.cast(dtype)
        }
    }
}

/// cos/sin tables `[len, head_dim]`: `inv_freq = 1/θ^(2i/d)` and `emb = cat(freqs, freqs)`, all in f32.
pub fn rope_tables(head_dim: usize, theta: f64, len: usize) -> (Vec<f32>, Vec<f32>) {
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / head_dim as f32))
        .collect();
    let mut cos = Vec::with_capacity(len * head_dim);
    let mut sin = Vec::with_capacity(len * head_dim);
    for pos in 0..len {
        for _ in 0..2 {
            for f in &inv_freq {
                let angle = pos as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
    }
    (cos, sin)
}

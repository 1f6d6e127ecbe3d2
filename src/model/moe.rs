//! A mixture-of-experts feed-forward layer as LLaDA-MoE computes it (dllm's
//! `LLaDAMoESparseMoeBlock` and the decoder layer's shared expert):
//!
//! ```text
//! p      = softmax(x·Wrᵀ) in f32 (+ expert_bias when the model has it)
//! top    = the top_k experts by p            (no renormalisation: norm_topk_prob is off)
//! y      = Σ_{e ∈ top} p_e · expert_e(x)  +  shared(x)
//! ```
//!
//! The choice of experts is made on the host from `p` (one read per layer) and every expert runs
//! only on its own tokens (gather, SwiGLU, weighted scatter-add), so the cost is top_k experts per
//! token, not all of them. The choice is a constant of the graph: gradients reach the router through
//! the weights `p_e` of the chosen experts, and each expert through the tokens routed to it, as in
//! PyTorch.

use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData};

use super::layers::Mlp;
use super::lora::BlockAdapters;
use super::precision::at_least_f32;

/// The routed experts of one layer, with the router and the optional shared expert.
#[derive(Module, Debug)]
pub struct MoeLayer<B: Backend> {
    /// `[experts, hidden]`.
    pub router: Param<Tensor<B, 2>>,
    /// `[experts]`, added to the routing probabilities; a buffer, never trained.
    pub expert_bias: Option<Param<Tensor<B, 1>>>,
    pub experts: Vec<Mlp<B>>,
    pub shared: Option<Mlp<B>>,
    #[module(skip)]
    pub top_k: usize,
}

impl<B: Backend> MoeLayer<B> {
    /// The layer on rows `[N, D]`; `lora` holds the block's adapters with their scale and dropout.
    pub fn forward_rows(
        &self,
        rows: Tensor<B, 2>,
        lora: Option<(&BlockAdapters<B>, f64, f64)>,
    ) -> Tensor<B, 2> {
        let [n, _] = rows.dims();
        let num_experts = self.experts.len();
        let device = rows.device();
        let logits = rows.clone().matmul(self.router.val().transpose());
        let mut probs = softmax(at_least_f32(logits), 1);
        if let Some(bias) = &self.expert_bias {
            probs = probs + at_least_f32(bias.val()).unsqueeze::<2>();
        }
        let host = probs
            .clone()
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("f32 routing probabilities");
        let routed = route(&host, num_experts, self.top_k);
        let mut out = rows.zeros_like();
        for (e, tokens) in routed.iter().enumerate() {
            if tokens.is_empty() {
                continue;
            }
            let count = tokens.len();
            let index =
                Tensor::<B, 1, Int>::from_data(TensorData::new(tokens.clone(), [count]), &device);
            let adapters = lora.and_then(|(block, scale, dropout)| {
                block.experts.get(e).map(|a| (a, scale, dropout))
            });
            let y = self.experts[e].forward_rows(rows.clone().select(0, index.clone()), adapters);
            let weight = probs
                .clone()
                .select(0, index.clone())
                .slice([0..count, e..e + 1])
                .cast(y.dtype());
            out = out.select_assign(0, index, y * weight, IndexingUpdateOp::Add);
        }
        debug_assert_eq!(out.dims()[0], n);
        match &self.shared {
            Some(shared) => {
                let adapters = lora.and_then(|(block, scale, dropout)| {
                    block.shared.as_ref().map(|a| (a, scale, dropout))
                });
                out + shared.forward_rows(rows, adapters)
            }
            None => out,
        }
    }
}

/// For each expert, the rows routed to it: every row goes to its `top_k` largest entries of
/// `probs` (`[N, experts]`, row-major), the lower index first among equal values as `torch.topk`
/// on CPU does.
pub fn route(probs: &[f32], num_experts: usize, top_k: usize) -> Vec<Vec<i64>> {
    let mut routed = vec![Vec::new(); num_experts];
    let mut order: Vec<usize> = Vec::with_capacity(num_experts);
    for (row, p) in probs.chunks(num_experts).enumerate() {
        order.clear();
        order.extend(0..num_experts);
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        for &e in order.iter().take(top_k) {
            routed[e].push(row as i64);
        }
    }
    routed
}

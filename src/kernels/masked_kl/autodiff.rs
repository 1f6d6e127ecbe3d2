//! Autodiff: forward through the inner backend, backward through its `kl_backward`.

use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
    Autodiff,
};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::DType;

use super::{KlBackend, KlWrt};

impl<B: KlBackend, C: CheckpointStrategy> KlBackend for Autodiff<B, C> {
    const KL_KERNEL: bool = B::KL_KERNEL;

    fn kl_stats_dtype(x: DType) -> DType {
        B::kl_stats_dtype(x)
    }

    fn kl_forward(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        max_rows: Option<usize>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        #[derive(Debug)]
        struct KlBackward {
            max_rows: Option<usize>,
        }

        impl<B: KlBackend> Backward<B, 2> for KlBackward {
            /// (x, y, stats): the inputs are kept (not checkpointed) because the backward
            /// re-reads them in full anyway.
            type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let [node_x, node_y] = ops.parents;
                let g = grads.consume::<B>(&ops.node); // [n]
                let (x, y, stats) = ops.state;
                if let Some(node) = node_y {
                    let gy = B::kl_backward(
                        x.clone(),
                        y.clone(),
                        stats.clone(),
                        g.clone(),
                        KlWrt::Y,
                        self.max_rows,
                    );
                    grads.register::<B>(node.id, gy);
                }
                if let Some(node) = node_x {
                    let gx = B::kl_backward(x, y, stats, g, KlWrt::X, self.max_rows);
                    grads.register::<B>(node.id, gx);
                }
            }
        }

        let (kl, stats) = B::kl_forward(x.primitive.clone(), y.primitive.clone(), max_rows);
        let stats_out = <Self as AutodiffBackend>::from_inner(stats.clone());
        let kl_out = match (KlBackward { max_rows })
            .prepare::<C>([x.node.clone(), y.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x.primitive, y.primitive, stats), kl),
            OpsKind::UnTracked(prep) => prep.finish(kl),
        };
        (kl_out, stats_out)
    }
}

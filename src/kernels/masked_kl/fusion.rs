//! Fusion: a custom operation that runs the inner backend's implementation when the stream runs.

use std::marker::PhantomData;

use burn::backend::ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape};
use burn_fusion::{
    stream::{Operation, OperationStreams},
    Fusion, FusionBackend, FusionRuntime,
};
use derive_new::new;

use super::{KlBackend, KlWrt, STATS_COLS};

#[derive(new, Clone, Debug)]
struct ForwardOp<B1> {
    desc: CustomOpIr,
    max_rows: Option<usize>,
    _b: PhantomData<B1>,
}

impl<B1: FusionBackend + KlBackend> Operation<B1::FusionRuntime> for ForwardOp<B1> {
    fn execute(&self, h: &mut HandleContainer<<B1::FusionRuntime as FusionRuntime>::FusionHandle>) {
        let ([x, y], [kl, stats]) = self.desc.as_fixed();
        let (out_kl, out_stats) = B1::kl_forward(
            h.get_float_tensor::<B1>(x),
            h.get_float_tensor::<B1>(y),
            self.max_rows,
        );
        h.register_float_tensor::<B1>(&kl.id, out_kl);
        h.register_float_tensor::<B1>(&stats.id, out_stats);
    }
}

#[derive(new, Clone, Debug)]
struct BackwardOp<B1> {
    desc: CustomOpIr,
    wrt: KlWrt,
    max_rows: Option<usize>,
    _b: PhantomData<B1>,
}

impl<B1: FusionBackend + KlBackend> Operation<B1::FusionRuntime> for BackwardOp<B1> {
    fn execute(&self, h: &mut HandleContainer<<B1::FusionRuntime as FusionRuntime>::FusionHandle>) {
        let ([x, y, stats, grad], [out]) = self.desc.as_fixed();
        let result = B1::kl_backward(
            h.get_float_tensor::<B1>(x),
            h.get_float_tensor::<B1>(y),
            h.get_float_tensor::<B1>(stats),
            h.get_float_tensor::<B1>(grad),
            self.wrt,
            self.max_rows,
        );
        h.register_float_tensor::<B1>(&out.id, result);
    }
}

impl<B: FusionBackend + KlBackend> KlBackend for Fusion<B> {
    const KL_KERNEL: bool = B::KL_KERNEL;

    fn kl_stats_dtype(x: DType) -> DType {
        B::kl_stats_dtype(x)
    }

    fn kl_forward(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        max_rows: Option<usize>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let client = x.client.clone();
        let n = x.shape[0];
        let streams = OperationStreams::with_inputs([&x, &y]);
        let kl = TensorIr::uninit(client.create_empty_handle(), Shape::new([n]), x.dtype);
        let stats = TensorIr::uninit(
            client.create_empty_handle(),
            Shape::new([n, STATS_COLS]),
            B::kl_stats_dtype(x.dtype),
        );
        let desc = CustomOpIr::new(
            "masked_kl_forward",
            &[x.into_ir(), y.into_ir()],
            &[kl, stats],
        );
        let mut outs = client.register(
            streams,
            OperationIr::Custom(desc.clone()),
            ForwardOp::<B>::new(desc, max_rows),
        );
        assert_eq!(outs.len(), 2, "masked_kl_forward registers two outputs");
        let stats = outs.remove(1);
        let kl = outs.remove(0);
        (kl, stats)
    }

    fn kl_backward(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        wrt: KlWrt,
        max_rows: Option<usize>,
    ) -> FloatTensor<Self> {
        let client = x.client.clone();
        let shape = x.shape.clone();
        let dtype = x.dtype;
        let streams = OperationStreams::with_inputs([&x, &y, &stats, &grad]);
        let out = TensorIr::uninit(client.create_empty_handle(), shape, dtype);
        let desc = CustomOpIr::new(
            "masked_kl_backward",
            &[x.into_ir(), y.into_ir(), stats.into_ir(), grad.into_ir()],
            &[out],
        );
        let mut outs = client.register(
            streams,
            OperationIr::Custom(desc.clone()),
            BackwardOp::<B>::new(desc, wrt, max_rows),
        );
        assert_eq!(outs.len(), 1, "masked_kl_backward registers one output");
        outs.remove(0)
    }
}

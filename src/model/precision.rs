//! The number types computations run in, whatever the weights are stored as.

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

/// The type losses, softmax and RoPE run in on `device`: f64 on an f64 device, else f32 (also
/// when the device stores bf16/f16).
pub fn accumulation_dtype<B: Backend>(device: &B::Device) -> DType {
    match burn::tensor::get_device_settings::<B>(device).float_dtype {
        burn::tensor::FloatDType::F64 => DType::F64,
        _ => DType::F32,
    }
}

/// `x` in f32 when it is stored in a half type; f32 and f64 stay as they are.
pub fn at_least_f32<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    match x.dtype() {
        DType::F16 | DType::BF16 => x.cast(DType::F32),
        _ => x,
    }
}

/// Bytes per stored value on `device` (its float type: 4 for f32, 2 for bf16/f16).
pub fn storage_bytes<B: Backend>(device: &B::Device) -> u64 {
    DType::from(burn::tensor::get_device_settings::<B>(device).float_dtype).size() as u64
}

/// Whether `device` can hold bf16 tensors (where bf16 AdamW moments halve their memory).
pub fn stores_bf16<B: Backend>(device: &B::Device) -> bool {
    B::supports_dtype(device, DType::BF16)
}

//! The masked KL in f64 on the host: what the kernels are held to (tests and `mdu selftest`).

/// f64 KL(softmax(x) ‖ softmax(y)) per row and the gradients of Σ_r w_r·KL_r, with a term
/// counted only where neither logit is −inf (the reference's `nan_to_num` of the log-ratio):
/// ∂/∂x_u = w·p_u·(1_u·(log p_u − log q_u) + 1_u − KL − P'), ∂/∂y_u = w·(q_u·P' − p_u·1_u),
/// P' = Σ_v p_v·1_v (= 1 when both sides share their −inf ids, which gives the textbook
/// p⊙(log p − log q − KL) and q − p).
pub struct KlReference {
    pub kl: Vec<f64>,
    pub grad_x: Vec<f64>,
    pub grad_y: Vec<f64>,
}

/// `x`, `y`: `[n, v]` row-major logits; `w`: the weight of each row's KL.
pub fn kl_reference(x: &[f32], y: &[f32], n: usize, v: usize, w: &[f32]) -> KlReference {
    let log_softmax = |z: &[f32]| -> Vec<f64> {
        let m = z
            .iter()
            .map(|&a| a as f64)
            .filter(|a| a.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = z.iter().map(|&a| (a as f64 - m).exp()).sum();
        z.iter().map(|&a| a as f64 - m - s.ln()).collect()
    };
    let mut out = KlReference {
        kl: vec![0.0; n],
        grad_x: vec![0.0; n * v],
        grad_y: vec![0.0; n * v],
    };
    for r in 0..n {
        let (xr, yr) = (&x[r * v..(r + 1) * v], &y[r * v..(r + 1) * v]);
        let (lp, lq) = (log_softmax(xr), log_softmax(yr));
        let both: Vec<bool> = (0..v)
            .map(|i| xr[i] != f32::NEG_INFINITY && yr[i] != f32::NEG_INFINITY)
            .collect();
        let (mut kl, mut pf) = (0.0, 0.0);
        for i in 0..v {
            if both[i] {
                kl += lp[i].exp() * (lp[i] - lq[i]);
                pf += lp[i].exp();
            }
        }
        out.kl[r] = kl;
        let g = w[r] as f64;
        for i in 0..v {
            let (p, q) = (lp[i].exp(), lq[i].exp());
            let (d, one) = if both[i] {
                (lp[i] - lq[i], 1.0)
            } else {
                (0.0, 0.0)
            };
            out.grad_x[r * v + i] = if p > 0.0 {
                g * p * (d + one - kl - pf)
            } else {
                0.0
            };
            out.grad_y[r * v + i] = g * (q * pf - p * one);
        }
    }
    out
}

/// The worst |got − want| / (1 + |want|) and its index; NaN or a length mismatch counts as ∞.
pub fn worst_relative<T: Copy + Into<f64>>(got: &[T], want: &[f64]) -> (f64, usize) {
    if got.len() != want.len() {
        return (f64::INFINITY, 0);
    }
    let mut worst = (0.0f64, 0usize);
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let e = (a.into() - b).abs() / (1.0 + b.abs());
        if e.is_nan() || e > worst.0 {
            worst = (if e.is_nan() { f64::INFINITY } else { e }, i);
        }
    }
    worst
}

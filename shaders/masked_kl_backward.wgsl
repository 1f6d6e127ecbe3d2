// masked_kl_backward.wgsl: gradient of KL_r = KL(softmax(x_r) ‖ softmax(y_r)), scaled by the
// incoming gradient g_r, with respect to x (wrt = 0) or to y (wrt = 1).
//
// Launched by `launch_backward` in src/kernels/masked_kl/wgsl.rs (behind `KlBackend::kl_backward` for
// `CubeBackend<WgpuRuntime, ..>`, called from the Autodiff backward of `KlBackend::kl_forward`),
// once per chunk of rows that fits the adapter's limits.
//
// Bindings (group 0; cubecl binds every buffer as storage, read_write):
//   0 x      [rows, V] {{ elem }}  logits of p = softmax(x)
//   1 y      [rows, V] {{ elem }}  logits of q = softmax(y)
//   2 stats  [rows, 12] {{ elem }} the forward's per-row statistics (see masked_kl.wgsl)
//   3 g      [rows]    {{ elem }}  ∂L/∂KL_r
//   4 grad   [rows, V] {{ elem }}  output: ∂L/∂x or ∂L/∂y
//   5 info   [4] u32              rows, V, wrt, blocks_x (workgroups along V)
// Launch grid: (blocks_x, rows, 1) workgroups of {{ workgroup_size_x }} invocations; blocks_x =
// min(⌈V / {{ workgroup_size_x }}⌉, the adapter's maximum), each invocation striding over V.
//
// With 1_v = [x_v and y_v both finite] and P' = Σ_v p_v·1_v (the forward zeroes the other terms):
//   ∂KL/∂x_u = p_u·(1_u·(log p_u − log q_u) + 1_u − KL − P')   (= p_u·(log p_u − log q_u − KL)
//                                                              when both sides share their −inf ids)
//   ∂KL/∂y_u = q_u·P' − p_u·1_u                                (= q_u − p_u likewise)
// Both are formed without a rounded O(|logit|) intermediate, so logits of ±1e4 keep f32
// precision: log p_u = (x_u − max x) − log S_x from the two saved parts, and, with the forward's
// centre (x_c, y_c), d_u = (x_u − x_c) − (y_u − y_c), K̃ and C:
//   1_u·(log p_u − log q_u) + 1_u − KL − P' = d_u − K̃ + (C + 1)·(1 − P')   where 1_u = 1,
//                                           = −K̃ − (C + 1)·P'              where 1_u = 0.

@group(0) @binding(0) var<storage, read_write> x: array<{{ elem }}>;
@group(0) @binding(1) var<storage, read_write> y: array<{{ elem }}>;
@group(0) @binding(2) var<storage, read_write> stats: array<{{ elem }}>;
@group(0) @binding(3) var<storage, read_write> g: array<{{ elem }}>;
@group(0) @binding(4) var<storage, read_write> grad: array<{{ elem }}>;
@group(0) @binding(5) var<storage, read_write> info: array<u32>;

fn is_neg_inf(v: f32) -> bool {
    return bitcast<u32>(v) == 0xff800000u;
}

@compute @workgroup_size({{ workgroup_size_x }}, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let cols = info[1];
    let wrt = info[2];
    let blocks_x = info[3];
    let row = wid.y;
    let o = row * 12u;
    let mx = f32(stats[o + 1u]);
    let lsx = f32(stats[o + 2u]);
    let my = f32(stats[o + 3u]);
    let lsy = f32(stats[o + 4u]);
    let pf = f32(stats[o + 5u]);
    let xc = f32(stats[o + 6u]);
    let yc = f32(stats[o + 7u]);
    let kt = f32(stats[o + 8u]);
    let c = f32(stats[o + 9u]);
    let gr = f32(g[row]);
    let base = row * cols;
    for (var v = wid.x * {{ workgroup_size_x }}u + lid.x; v < cols; v += {{ workgroup_size_x }}u * blocks_x) {
        let zx = f32(x[base + v]);
        let zy = f32(y[base + v]);
        let fx = !is_neg_inf(zx);
        let fy = !is_neg_inf(zy);
        var out = 0.0;
        if (wrt == 0u) {
            if (fx) {
                let lp = (zx - mx) - lsx;
                var term = -kt - (c + 1.0) * pf;
                if (fy) {
                    term = ((zx - xc) - (zy - yc)) - kt + (c + 1.0) * (1.0 - pf);
                }
                out = gr * exp(lp) * term;
            }
        } else {
            if (fy) {
                let lq = (zy - my) - lsy;
                var pb = 0.0;
                if (fx) {
                    pb = exp((zx - mx) - lsx);
                }
                out = gr * (exp(lq) * pf - pb);
            }
        }
        grad[base + v] = {{ elem }}(out);
    }
}

// masked_kl.wgsl: forward of the row-wise divergence KL(softmax(x) ‖ softmax(y)).
//
// Launched by `launch_forward` in src/kernels/masked_kl/wgsl.rs (behind `KlBackend::kl_forward` for
// `CubeBackend<WgpuRuntime, ..>`), once per chunk of rows that fits the adapter's limits.
// MDU calls it with x = the conditional logits z_c and y = the detached target z_t (forward KL),
// or swapped (reverse KL). Only the gathered masked answer positions are passed in.
//
// Bindings (group 0; cubecl binds every buffer as storage, read_write):
//   0 x      [rows, V] {{ elem }}  logits of p = softmax(x)
//   1 y      [rows, V] {{ elem }}  logits of q = softmax(y)
//   2 kl     [rows]    {{ elem }}  KL_r = Σ_v p_v (log p_v − log q_v)
//   3 stats  [rows, 12] {{ elem }} per row, for the backward: 0 KL_r, 1 max x, 2 log Σ exp(x − max x),
//                                  3 max y, 4 log Σ exp(y − max y), 5 P'_r = Σ' p_v, 6 x_c, 7 y_c,
//                                  8 K̃_r, 9 C_r, 10–11 zero (x_c, y_c, K̃, C: see below)
//   4 info   [2] u32              rows, V
// Launch grid: (rows, 1, 1) workgroups of {{ workgroup_size_x }} invocations: one workgroup per row.
//
// Each invocation strides over the row keeping an online state: max and rescaled Σ exp for x and
// for y, a centre (x_c, y_c) = the pair at the largest x among the counted terms, and
// A = Σ' exp(x_v − max x)·d_v with d_v = (x_v − x_c) − (y_v − y_c), P = Σ' exp(x_v − max x);
// A and P are rescaled when max x grows and A is shifted by δ·P when the centre moves. The
// workgroup then merges the states in a shared-memory tree. Σ' runs over the terms where neither
// logit is −inf: the reference zeroes the others (`nan_to_num` of the log-ratio), so a −inf logit
// (an excluded special token) contributes 0. With K̃ = A/S_x, P' = P/S_x and
// C = (x_c − max x) − (y_c − max y) + log S_y − log S_x: log p_v − log q_v = d_v + C and
// KL = K̃ + C·P'. The centre keeps K̃ small where p is concentrated, so the backward's
// log p_v − log q_v − KL = d_v − K̃ + C·(1 − P') keeps f32 precision with logits of ±1e4 (a KL of
// 1e4 stored as one f32 would cost 5e-4 absolute). Everything is accumulated in f32.

@group(0) @binding(0) var<storage, read_write> x: array<{{ elem }}>;
@group(0) @binding(1) var<storage, read_write> y: array<{{ elem }}>;
@group(0) @binding(2) var<storage, read_write> kl: array<{{ elem }}>;
@group(0) @binding(3) var<storage, read_write> stats: array<{{ elem }}>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

// "No finite value seen yet". Finite, so that differences of maxima stay finite and exp(−Δ)
// underflows to exactly 0 (with −inf, Δ·0 would be NaN).
const EMPTY: f32 = -3.0e38;

struct State {
    mx: f32,
    sx: f32,
    my: f32,
    sy: f32,
    xc: f32,
    yc: f32,
    a: f32,
    p: f32,
}

var<workgroup> sh_mx: array<f32, {{ workgroup_size_x }}>;
var<workgroup> sh_sx: array<f32, {{ workgroup_size_x }}>;
var<workgroup> sh_my: array<f32, {{ workgroup_size_x }}>;
var<workgroup> sh_sy: array<f32, {{ workgroup_size_x }}>;
var<workgroup> sh_xc: array<f32, {{ workgroup_size_x }}>;
var<workgroup> sh_yc: array<f32, {{ workgroup_size_x }}>;
var<workgroup> sh_a: array<f32, {{ workgroup_size_x }}>;
var<workgroup> sh_p: array<f32, {{ workgroup_size_x }}>;

// Bit test rather than a comparison: immune to compilers that assume no infinities.
fn is_neg_inf(v: f32) -> bool {
    return bitcast<u32>(v) == 0xff800000u;
}

// Re-expresses both states relative to the common max x (weights e^{−Δ}) and the common centre
// (moving the centre from (x_c, y_c) to (x_c', y_c') adds δ = (y_c' − y_c) − (x_c' − x_c) to every
// d_v), and adds them. A state with P = 0 has a meaningless centre, multiplied by 0.
fn merge(u: State, w: State) -> State {
    var r: State;
    r.mx = max(u.mx, w.mx);
    r.my = max(u.my, w.my);
    let eu = exp(u.mx - r.mx);
    let ew = exp(w.mx - r.mx);
    r.sx = u.sx * eu + w.sx * ew;
    r.sy = u.sy * exp(u.my - r.my) + w.sy * exp(w.my - r.my);
    if (u.xc >= w.xc) {
        r.xc = u.xc;
        r.yc = u.yc;
    } else {
        r.xc = w.xc;
        r.yc = w.yc;
    }
    let du = (r.yc - u.yc) - (r.xc - u.xc);
    let dw = (r.yc - w.yc) - (r.xc - w.xc);
    r.a = eu * (u.a + du * u.p) + ew * (w.a + dw * w.p);
    r.p = u.p * eu + w.p * ew;
    return r;
}

fn load(i: u32) -> State {
    return State(sh_mx[i], sh_sx[i], sh_my[i], sh_sy[i], sh_xc[i], sh_yc[i], sh_a[i], sh_p[i]);
}

fn store(i: u32, s: State) {
    sh_mx[i] = s.mx;
    sh_sx[i] = s.sx;
    sh_my[i] = s.my;
    sh_sy[i] = s.sy;
    sh_xc[i] = s.xc;
    sh_yc[i] = s.yc;
    sh_a[i] = s.a;
    sh_p[i] = s.p;
}

@compute @workgroup_size({{ workgroup_size_x }}, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let cols = info[1];
    // The grid has exactly `rows` workgroups: no early return before the barriers.
    let row = wid.x;
    let t = lid.x;
    let base = row * cols;
    var s = State(EMPTY, 0.0, EMPTY, 0.0, EMPTY, EMPTY, 0.0, 0.0);
    for (var v = t; v < cols; v += {{ workgroup_size_x }}u) {
        let zx = f32(x[base + v]);
        let zy = f32(y[base + v]);
        let fx = !is_neg_inf(zx);
        let fy = !is_neg_inf(zy);
        if (fy) {
            if (zy > s.my) {
                s.sy = s.sy * exp(s.my - zy) + 1.0;
                s.my = zy;
            } else {
                s.sy += exp(zy - s.my);
            }
        }
        if (fx) {
            var w = 1.0;
            if (zx > s.mx) {
                let e = exp(s.mx - zx);
                s.sx = s.sx * e + 1.0;
                s.a *= e;
                s.p *= e;
                s.mx = zx;
            } else {
                w = exp(zx - s.mx);
                s.sx += w;
            }
            if (fy) {
                if (zx > s.xc) {
                    // New centre: shift the counted terms; this term's d is 0.
                    s.a += ((zy - s.yc) - (zx - s.xc)) * s.p;
                    s.xc = zx;
                    s.yc = zy;
                } else {
                    s.a += w * ((zx - s.xc) - (zy - s.yc));
                }
                s.p += w;
            }
        }
    }
    store(t, s);
    workgroupBarrier();
    for (var stride = {{ workgroup_size_x }}u / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            store(t, merge(load(t), load(t + stride)));
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        let r = load(0u);
        let lsx = log(r.sx);
        let lsy = log(r.sy);
        var k = 0.0;
        var pf = 0.0;
        var kt = 0.0;
        var c = 0.0;
        // No term with both logits finite: nothing to count, KL 0 (the reference would give NaN).
        if (r.p > 0.0) {
            pf = r.p / r.sx;
            kt = r.a / r.sx;
            c = ((r.xc - r.mx) - (r.yc - r.my)) + (lsy - lsx);
            k = kt + c * pf;
        }
        kl[row] = {{ elem }}(k);
        let o = row * 12u;
        stats[o] = {{ elem }}(k);
        stats[o + 1u] = {{ elem }}(r.mx);
        stats[o + 2u] = {{ elem }}(lsx);
        stats[o + 3u] = {{ elem }}(r.my);
        stats[o + 4u] = {{ elem }}(lsy);
        stats[o + 5u] = {{ elem }}(pf);
        stats[o + 6u] = {{ elem }}(r.xc);
        stats[o + 7u] = {{ elem }}(r.yc);
        stats[o + 8u] = {{ elem }}(kt);
        stats[o + 9u] = {{ elem }}(c);
        stats[o + 10u] = {{ elem }}(0.0);
        stats[o + 11u] = {{ elem }}(0.0);
    }
}

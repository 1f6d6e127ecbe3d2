// masked_kl.wgsl: forward of the row-wise divergence KL(softmax(x) ‖ softmax(y)).
//
// Launched by `launch_forward` in src/kernels/masked_kl.rs (behind `KlBackend::kl_forward` for
// `CubeBackend<WgpuRuntime, ..>`), once per chunk of rows that fits the adapter's limits.
// MDU calls it with x = the conditional logits z_c and y = the detached target z_t (forward KL),
// or swapped (reverse KL). Only the gathered masked answer positions are passed in.
//
// Bindings (group 0; cubecl binds every buffer as storage, read_write):
//   0 x      [rows, V] {{ elem }}  logits of p = softmax(x)
//   1 y      [rows, V] {{ elem }}  logits of q = softmax(y)
//   2 kl     [rows]    {{ elem }}  KL_r = Σ_v p_v (log p_v − log q_v)
//   3 stats  [rows, 8] {{ elem }}  per row: KL_r, max x, log Σ exp(x − max x), max y,
//                                  log Σ exp(y − max y), P'_r = Σ' p_v, 0, 0 (read by the backward)
//   4 info   [2] u32              rows, V
// Launch grid: (rows, 1, 1) workgroups of {{ workgroup_size_x }} invocations: one workgroup per row.
//
// Each invocation strides over the row keeping an online state (max and rescaled Σ exp for x and
// for y, plus A = Σ' exp(x_v − max x)·((x_v − max x) − (y_v − max y)) and P = Σ' exp(x_v − max x)),
// rescaled whenever a maximum grows; the workgroup then merges the states in a shared-memory tree.
// Σ' runs over the terms where neither logit is −inf: the reference zeroes the others
// (`nan_to_num` of the log-ratio), so a −inf logit (an excluded special token) contributes 0.
// Then KL = A/S_x + (log S_y − log S_x)·P/S_x. Everything is accumulated in f32.

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
    a: f32,
    p: f32,
}

var<workgroup> sh_mx: array<f32, {{ workgroup_size_x }}>;
var<workgroup> sh_sx: array<f32, {{ workgroup_size_x }}>;
var<workgroup> sh_my: array<f32, {{ workgroup_size_x }}>;
var<workgroup> sh_sy: array<f32, {{ workgroup_size_x }}>;
var<workgroup> sh_a: array<f32, {{ workgroup_size_x }}>;
var<workgroup> sh_p: array<f32, {{ workgroup_size_x }}>;

// Bit test rather than a comparison: immune to compilers that assume no infinities.
fn is_neg_inf(v: f32) -> bool {
    return bitcast<u32>(v) == 0xff800000u;
}

// Re-expresses both states relative to the common maxima and adds them. Moving a state's x
// maximum up by dx and its y maximum by dy turns each term e^{x−mx}·((x−mx)−(y−my)) into
// e^{−dx}·e^{x−mx}·((x−mx)−(y−my) − dx + dy).
fn merge(u: State, w: State) -> State {
    let mx = max(u.mx, w.mx);
    let my = max(u.my, w.my);
    let dxu = mx - u.mx;
    let dxw = mx - w.mx;
    let dyu = my - u.my;
    let dyw = my - w.my;
    let eu = exp(-dxu);
    let ew = exp(-dxw);
    var r: State;
    r.mx = mx;
    r.my = my;
    r.sx = u.sx * eu + w.sx * ew;
    r.sy = u.sy * exp(-dyu) + w.sy * exp(-dyw);
    r.a = eu * (u.a + (dyu - dxu) * u.p) + ew * (w.a + (dyw - dxw) * w.p);
    r.p = u.p * eu + w.p * ew;
    return r;
}

fn load(i: u32) -> State {
    return State(sh_mx[i], sh_sx[i], sh_my[i], sh_sy[i], sh_a[i], sh_p[i]);
}

fn store(i: u32, s: State) {
    sh_mx[i] = s.mx;
    sh_sx[i] = s.sx;
    sh_my[i] = s.my;
    sh_sy[i] = s.sy;
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
    var s = State(EMPTY, 0.0, EMPTY, 0.0, 0.0, 0.0);
    for (var v = t; v < cols; v += {{ workgroup_size_x }}u) {
        let zx = f32(x[base + v]);
        let zy = f32(y[base + v]);
        let fx = !is_neg_inf(zx);
        let fy = !is_neg_inf(zy);
        if (fy) {
            if (zy > s.my) {
                let d = zy - s.my;
                s.sy = s.sy * exp(-d) + 1.0;
                s.a += d * s.p;
                s.my = zy;
            } else {
                s.sy += exp(zy - s.my);
            }
        }
        if (fx) {
            var w = 1.0;
            if (zx > s.mx) {
                let d = zx - s.mx;
                let e = exp(-d);
                s.sx = s.sx * e + 1.0;
                s.a = e * (s.a - d * s.p);
                s.p *= e;
                s.mx = zx;
            } else {
                w = exp(zx - s.mx);
                s.sx += w;
            }
            if (fy) {
                s.a += w * ((zx - s.mx) - (zy - s.my));
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
        // No term with both logits finite: nothing to count, KL 0 (the reference would give NaN).
        if (r.p > 0.0) {
            pf = r.p / r.sx;
            k = r.a / r.sx + (lsy - lsx) * pf;
        }
        kl[row] = {{ elem }}(k);
        let o = row * 8u;
        stats[o] = {{ elem }}(k);
        stats[o + 1u] = {{ elem }}(r.mx);
        stats[o + 2u] = {{ elem }}(lsx);
        stats[o + 3u] = {{ elem }}(r.my);
        stats[o + 4u] = {{ elem }}(lsy);
        stats[o + 5u] = {{ elem }}(pf);
        stats[o + 6u] = {{ elem }}(0.0);
        stats[o + 7u] = {{ elem }}(0.0);
    }
}

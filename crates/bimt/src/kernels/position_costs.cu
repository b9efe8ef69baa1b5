// C[a, p] of one layer (STUDY §2): the swap cost of neuron a's weights were it
// at position p, computed from the neuron coordinates without materialising
// the distance matrices. One thread per (a, p).
//
// The per-weight factor (wf·d + l0) / |W| is rounded in f32 exactly as the
// CPU code rounds it (the _rn intrinsics stop nvcc from contracting to FMA),
// and the sum is accumulated in f64, so that the decisions match the CPU's.
extern "C" __global__ void position_costs(
    const float* w_in,    // [n, n_prev], row-major
    const float* w_out,   // [n_next, n], row-major; unused when n_next == 0
    const float* coords,  // [(n_prev + n + n_next), 2]: previous layer, this layer, next layer
    double* c,            // [n, n]
    int n_prev, int n, int n_next, float wf, float l0)
{
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    const int a = blockIdx.y * blockDim.y + threadIdx.y;
    if (a >= n || p >= n) return;
    const float* prev = coords;
    const float* cur = coords + 2 * n_prev;
    const float* next = cur + 2 * n;
    const float px = cur[2 * p], py = cur[2 * p + 1];
    const float numel_in = (float)(n * n_prev);
    double acc = 0.0;
    for (int i = 0; i < n_prev; ++i) {
        float d = __fadd_rn(fabsf(__fsub_rn(px, prev[2 * i])), fabsf(__fsub_rn(py, prev[2 * i + 1])));
        float f = __fdiv_rn(__fadd_rn(__fmul_rn(wf, d), l0), numel_in);
        acc += (double)fabsf(w_in[a * n_prev + i]) * (double)f;
    }
    if (n_next > 0) {
        const float numel_out = (float)(n_next * n);
        for (int o = 0; o < n_next; ++o) {
            float d = __fadd_rn(fabsf(__fsub_rn(next[2 * o], px)), fabsf(__fsub_rn(next[2 * o + 1], py)));
            float f = __fdiv_rn(__fadd_rn(__fmul_rn(wf, d), l0), numel_out);
            acc += (double)fabsf(w_out[o * n + a]) * (double)f;
        }
    }
    c[a * n + p] = acc;
}

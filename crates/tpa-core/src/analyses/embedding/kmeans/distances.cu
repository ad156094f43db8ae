// k-means distances from the products G = C·Xᵀ that cuBLAS computed
// (column-major m × n: G[i * m + j] = c_j · x_i), with the squared norms of
// rows (xn) and centres (cn) computed on the host, as the CPU does:
// ‖x_i − c_j‖² = xn[i] + cn[j] − 2 G[i * m + j]. Compiled at run time by NVRTC.

// In place: G becomes the row-major n × m matrix of squared distances, clamped at 0.
extern "C" __global__ void to_distances(
    float* __restrict__ g,
    const float* __restrict__ xn,
    const float* __restrict__ cn,
    unsigned long long n,
    unsigned long long m
) {
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long idx = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
         idx < n * m; idx += stride) {
        unsigned long long i = idx / m, j = idx % m;
        float v = xn[i] + cn[j] - 2.0f * g[idx];
        g[idx] = v > 0.0f ? v : 0.0f;
    }
}

// Each row's nearest centre (the lowest index among equal distances, as on
// the CPU) and its squared distance, clamped at 0.
extern "C" __global__ void nearest(
    const float* __restrict__ g,
    const float* __restrict__ xn,
    const float* __restrict__ cn,
    unsigned long long n,
    unsigned long long m,
    unsigned int* __restrict__ labels,
    float* __restrict__ distances
) {
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
         i < n; i += stride) {
        const float* row = g + i * m;
        float best = __int_as_float(0x7f800000);  // +inf
        unsigned int arg = 0;
        for (unsigned long long j = 0; j < m; ++j) {
            float v = xn[i] + cn[j] - 2.0f * row[j];
            if (v < best) {
                best = v;
                arg = (unsigned int)j;
            }
        }
        labels[i] = arg;
        distances[i] = best > 0.0f ? best : 0.0f;
    }
}

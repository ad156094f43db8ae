// Widens a window of a stored row-major matrix to float64 on the device, so
// the host never makes (or uploads) an f64 copy. Compiled at run time by NVRTC.
//
// Source element (r, c) of the window is in[(row0 + r) * ld + col0 + c], for
// r < rows, c < cols. The output is the window row-major (out[r * cols + c]),
// or, with transpose != 0, column-major (out[c * rows + r]).

__device__ double half_to_double(unsigned short h) {
    unsigned int exponent = (h >> 10) & 0x1f;
    unsigned int mantissa = h & 0x3ff;
    double v;
    if (exponent == 0) {
        v = ldexp((double)mantissa, -24);
    } else if (exponent == 31) {
        v = mantissa ? __longlong_as_double(0x7ff8000000000000ULL)
                     : __longlong_as_double(0x7ff0000000000000ULL);
    } else {
        v = ldexp((double)(mantissa | 0x400), (int)exponent - 25);
    }
    return (h & 0x8000) ? -v : v;
}

extern "C" __global__ void widen(
    const unsigned char* __restrict__ in,
    unsigned long long ld,
    unsigned long long row0,
    unsigned long long col0,
    unsigned long long rows,
    unsigned long long cols,
    int kind,
    const double* __restrict__ table,
    int transpose,
    double* __restrict__ out)
{
    unsigned long long total = rows * cols;
    unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        unsigned long long r = i / cols;
        unsigned long long c = i - r * cols;
        unsigned long long s = (row0 + r) * ld + col0 + c;
        double v;
        switch (kind) {
            case 0: v = ((const double*)in)[s]; break;
            case 1: v = (double)((const float*)in)[s]; break;
            case 2: v = (double)__uint_as_float(((unsigned int)((const unsigned short*)in)[s]) << 16); break;
            case 3: v = half_to_double(((const unsigned short*)in)[s]); break;
            case 4: v = table[in[s]]; break;
            case 5: v = (double)((const long long*)in)[s]; break;
            case 6: v = (double)((const unsigned long long*)in)[s]; break;
            case 7: v = (double)((const int*)in)[s]; break;
            case 8: v = (double)((const unsigned int*)in)[s]; break;
            case 9: v = (double)((const short*)in)[s]; break;
            default: v = (double)((const unsigned short*)in)[s]; break;
        }
        out[transpose ? c * rows + r : i] = v;
    }
}

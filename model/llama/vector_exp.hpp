#pragma once
// The loops of a step that call expf (SwiGLU's SiLU and attention's softmax), 16 lanes at
// a time with AVX-512, else 8 with AVX2. The exponential is glibc's expf step for step (the same
// table, polynomial and fused multiply-adds in double precision, as its FMA variant runs, which is
// the one std::exp resolves to on every CPU these kernels run on), so each value keeps the bits of
// the scalar loop it replaces: the goldens and the batch-invariance tests do not move. Lanes
// outside expf's plain range (|x| >= 88, inf, NaN) take std::exp itself. Scalar, they were ~3 % of
// a batch-16 decode step and most of a long prompt's softmax.
#include <cstddef>

namespace adapterd::model::cpu {

// Each needs AVX2 + FMA (cpu::kernels_available()).

/// e^x of each of x[0..n) into out (which may be x), with std::exp's bits.
void exp_floats(const float* x, float* out, size_t n);

/// gate[i] = gate[i] / (1 + e^-gate[i]) * up[i]: cpu::silu_mul's loop.
void silu_mul_vector(float* gate, const float* up, size_t n);

/// p[i] = p[i] - top < below ? 0 : e^(p[i] - top): the first loop of cpu::softmax_weights.
void shifted_exp_vector(float* p, size_t n, float top, float below);

/// p[i] /= sum, then 0 where under FLT_MIN: the last loop of cpu::softmax_weights.
void normalise_vector(float* p, size_t n, float sum);

}  // namespace adapterd::model::cpu

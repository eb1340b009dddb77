#pragma once
// The GEMM rate of this machine through libtorch (the compute roof of the roofline report).
namespace adapterd::model {

/// GFLOP/s of an n x n fp32 matrix product on the CPU, best of `reps`.
double measure_gemm_gflops(int n, int reps);

}  // namespace adapterd::model

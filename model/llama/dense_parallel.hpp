#pragma once
// One linear layer of a decode step over the kernels' pool (spin_pool): the activations put
// in the form the weight matrix's kernel reads, then its rows split between the threads.
// The CPU decoder's products all run through here; adapterd-dense times it beside the
// kernels alone and plain reads of the same bytes.
#include <cstddef>

#include "model/quant/dense.hpp"

namespace adapterd::model {

/// y[r * ldy + j] = bias[j] + w row j . x[r * ldx ...] for rows r < rows and every row j of
/// w. Each output is summed in the same order whatever the split (batch invariance). `act`
/// holds the activations of prompts (more than a decode batch's rows), reused.
void dense_parallel(const quant::matrix& w, const float* x, size_t rows, size_t ldx,
                    const float* bias, float* y, size_t ldy, quant::activations& act);

}  // namespace adapterd::model

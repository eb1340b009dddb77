#include "model/quant/blocks.hpp"

#include <algorithm>
#include <cmath>

namespace adapterd::model::quant {

float fp16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000 | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t f32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t abs = x & 0x7fffffff;
  if (abs >= 0x7f800000)  // inf or NaN
    return sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 : 0);
  if (abs >= 0x477ff000)  // rounds beyond the largest half
    return sign | 0x7c00;
  if (abs < 0x38800000) {  // a half subnormal (or zero): scale into its 10-bit mantissa
    const float a = std::fabs(f) * 16777216.0f;  // 2^24: one half subnormal step is 2^-24
    return sign | static_cast<uint16_t>(std::nearbyint(a));
  }
  const uint32_t mant = abs & 0x7fffff;
  uint32_t h = ((abs >> 23) - 127 + 15) << 10 | mant >> 13;
  const uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
    ++h;  // a carry into the exponent is the right answer
  return sign | static_cast<uint16_t>(h);
}

uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffff) > 0x7f800000)
    return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

namespace {

float block_absmax(const float* x) {
  float amax = 0;
  for (size_t i = 0; i < block_size; ++i)
    amax = std::max(amax, std::fabs(x[i]));
  return amax;
}

}  // namespace

void quantize_row_q8_0(const float* x, block_q8_0* out, size_t k) {
  for (size_t b = 0; b < k / block_size; ++b, x += block_size) {
    const float d = block_absmax(x) / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    out[b].d = f32_to_fp16(d);
    for (size_t i = 0; i < block_size; ++i)
      out[b].qs[i] =
          static_cast<int8_t>(std::round(x[i] * id) /* ggml: roundf, half away from zero */);
  }
}

void quantize_row_q4_0(const float* x, block_q4_0* out, size_t k) {
  for (size_t b = 0; b < k / block_size; ++b, x += block_size) {
    float amax = 0, max = 0;  // the value of largest magnitude, with its sign
    for (size_t i = 0; i < block_size; ++i)
      if (std::fabs(x[i]) > amax) {
        amax = std::fabs(x[i]);
        max = x[i];
      }
    const float d = max / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
    out[b].d = f32_to_fp16(d);
    for (size_t i = 0; i < block_size / 2; ++i) {
      const auto lo = static_cast<uint8_t>(std::min(15, static_cast<int>(x[i] * id + 8.5f)));
      const auto hi = static_cast<uint8_t>(std::min(15, static_cast<int>(x[i + 16] * id + 8.5f)));
      out[b].qs[i] = static_cast<uint8_t>(lo | hi << 4);
    }
  }
}

void quantize_row_q8_act(const float* x, block_q8_act* out, size_t k) {
  for (size_t b = 0; b < k / block_size; ++b, x += block_size) {
    const float d = block_absmax(x) / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    out[b].d = d;
    for (size_t i = 0; i < block_size; ++i)
      out[b].qs[i] = static_cast<int8_t>(std::nearbyint(x[i] * id));
    for (size_t lane = 0; lane < 4; ++lane) {
      int32_t sum = 0;
      for (size_t i = 0; i < 4; ++i)
        sum += out[b].qs[4 * lane + i] + out[b].qs[16 + 4 * lane + i];
      out[b].q4_start[lane] = -8 * sum;
    }
  }
}

void dequantize_row_q8_0(const block_q8_0* in, float* y, size_t k) {
  for (size_t b = 0; b < k / block_size; ++b) {
    const float d = fp16_to_f32(in[b].d);
    for (size_t i = 0; i < block_size; ++i)
      *y++ = d * in[b].qs[i];
  }
}

void dequantize_row_q4_0(const block_q4_0* in, float* y, size_t k) {
  for (size_t b = 0; b < k / block_size; ++b, y += block_size) {
    const float d = fp16_to_f32(in[b].d);
    for (size_t i = 0; i < block_size / 2; ++i) {
      y[i] = d * static_cast<float>((in[b].qs[i] & 0x0f) - 8);
      y[i + 16] = d * static_cast<float>((in[b].qs[i] >> 4) - 8);
    }
  }
}

}  // namespace adapterd::model::quant

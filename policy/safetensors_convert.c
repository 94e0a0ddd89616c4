/* Element conversions between the floating dtypes of checkpoints and float32. */
#include <string.h>

#include "aha/error.h"
#include "aha/safetensors.h"

static float bits_to_float(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float aha_bf16_to_f32(uint16_t value) { return bits_to_float((uint32_t)value << 16); }

uint16_t aha_f32_to_bf16(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u); /* quiet NaN */
    /* Round to nearest, ties to even: add 0x7fff plus the lowest kept bit. */
    uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)((bits + rounding) >> 16);
}

float aha_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1f) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));
    if (exponent == 0) {
        /* zero or subnormal: mantissa * 2^-24, exact in float32 */
        float magnitude = (float)mantissa * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    return bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

int aha_safetensor_to_f32_range(const AhaSafetensor *t, uint64_t first, uint64_t count,
                                float *out) {
    AHA_REQUIRE(first <= t->numel && count <= t->numel - first,
                "tensor '%s': elements [%llu, %llu) lie outside its %llu", t->name,
                (unsigned long long)first, (unsigned long long)(first + count),
                (unsigned long long)t->numel);
    const unsigned char *src = t->data;
    switch (t->dtype) {
    case AHA_DTYPE_F32:
        if (count) memcpy(out, src + 4 * first, count * 4);
        return 0;
    case AHA_DTYPE_BF16:
        src += 2 * first;
        for (uint64_t i = 0; i < count; i++) {
            uint16_t v;
            memcpy(&v, src + 2 * i, 2);
            out[i] = aha_bf16_to_f32(v);
        }
        return 0;
    case AHA_DTYPE_F16:
        src += 2 * first;
        for (uint64_t i = 0; i < count; i++) {
            uint16_t v;
            memcpy(&v, src + 2 * i, 2);
            out[i] = aha_f16_to_f32(v);
        }
        return 0;
    default:
        return aha_errorf("%s: tensor '%s' has dtype %s; only F32, BF16 and F16 can be loaded",
                          t->path ? t->path : "?", t->name, aha_dtype_name(t->dtype));
    }
}

int aha_safetensor_to_f32(const AhaSafetensor *t, float *out) {
    return aha_safetensor_to_f32_range(t, 0, t->numel, out);
}

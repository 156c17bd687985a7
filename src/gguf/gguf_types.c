/* gguf_types.c - storage layout of every ggml tensor type (block size and
 * bytes per block), as fixed by the file format. Compute support lives in
 * src/tensor/; this table only lets the reader size tensors. */
#include "gguf.h"

#include "../base/checked.h"

static const struct {
    const char *name;
    uint32_t blck, bytes;
} layouts[EM_TYPE_COUNT] = {
    [EM_TYPE_F32] = {"F32", 1, 4},          [EM_TYPE_F16] = {"F16", 1, 2},
    [EM_TYPE_Q4_0] = {"Q4_0", 32, 18},      [EM_TYPE_Q4_1] = {"Q4_1", 32, 20},
    [EM_TYPE_Q5_0] = {"Q5_0", 32, 22},      [EM_TYPE_Q5_1] = {"Q5_1", 32, 24},
    [EM_TYPE_Q8_0] = {"Q8_0", 32, 34},      [EM_TYPE_Q8_1] = {"Q8_1", 32, 36},
    [EM_TYPE_Q2_K] = {"Q2_K", 256, 84},     [EM_TYPE_Q3_K] = {"Q3_K", 256, 110},
    [EM_TYPE_Q4_K] = {"Q4_K", 256, 144},    [EM_TYPE_Q5_K] = {"Q5_K", 256, 176},
    [EM_TYPE_Q6_K] = {"Q6_K", 256, 210},    [EM_TYPE_Q8_K] = {"Q8_K", 256, 292},
    [EM_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66}, [EM_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74},
    [EM_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98}, [EM_TYPE_IQ1_S] = {"IQ1_S", 256, 50},
    [EM_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18},  [EM_TYPE_IQ3_S] = {"IQ3_S", 256, 110},
    [EM_TYPE_IQ2_S] = {"IQ2_S", 256, 82},   [EM_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136},
    [EM_TYPE_I8] = {"I8", 1, 1},            [EM_TYPE_I16] = {"I16", 1, 2},
    [EM_TYPE_I32] = {"I32", 1, 4},          [EM_TYPE_I64] = {"I64", 1, 8},
    [EM_TYPE_F64] = {"F64", 1, 8},          [EM_TYPE_IQ1_M] = {"IQ1_M", 256, 56},
    [EM_TYPE_BF16] = {"BF16", 1, 2},        [EM_TYPE_TQ1_0] = {"TQ1_0", 256, 54},
    [EM_TYPE_TQ2_0] = {"TQ2_0", 256, 66},   [EM_TYPE_MXFP4] = {"MXFP4", 32, 17},
};

bool em_type_layout(uint32_t type, uint32_t *block_elems, uint32_t *block_bytes) {
    if (type >= EM_TYPE_COUNT || !layouts[type].name) return false;
    if (block_elems) *block_elems = layouts[type].blck;
    if (block_bytes) *block_bytes = layouts[type].bytes;
    return true;
}

const char *em_type_name(uint32_t type) {
    return type < EM_TYPE_COUNT ? layouts[type].name : NULL;
}

uint64_t em_type_row_bytes(uint32_t type, uint64_t n) {
    uint32_t be, bb;
    uint64_t out;
    if (!em_type_layout(type, &be, &bb) || n % be != 0) return 0;
    if (!em_mul_u64(n / be, bb, &out)) return 0;
    return out;
}

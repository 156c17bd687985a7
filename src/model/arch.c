#include "arch.h"

#include <string.h>

/* Llama 4 values not in the GGUF metadata are hard-coded by llama.cpp too
 * (chunk 8192, no RoPE on every 4th layer, temperature 0.1 / 8192). */
static const em_arch archs[] = {
    {.name = "llama", .rope_mode = EM_ROPE_NORM, .ffn = EM_FFN_SWIGLU, .tied_output_ok = true,
     .default_rope_base = 10000.0f, .default_rms_eps = 1e-5f, .gating = EM_GATE_SOFTMAX_NORM},
    {.name = "llama4", .rope_mode = EM_ROPE_NORM, .ffn = EM_FFN_SWIGLU, .tied_output_ok = true,
     .default_rope_base = 500000.0f, .default_rms_eps = 1e-5f, .gating = EM_GATE_SIGMOID_INPUT,
     .shared_expert = true, .moe_step_key = true, .no_rope_every = 4, .chunk_size = 8192,
     .qk_norm_rope_layers = true, .attn_temp_scale = 0.1f, .attn_temp_floor_scale = 8192.0f},
};

const em_arch *em_arch_find(const char *name, unsigned long len) {
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (strlen(archs[i].name) == len && memcmp(archs[i].name, name, len) == 0) return &archs[i];
    return NULL;
}

const char *em_arch_list(void) { return "llama, llama4"; }

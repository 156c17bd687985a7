#include "arch.h"

#include <string.h>

static const em_arch archs[] = {
    {.name = "llama", .rope_mode = EM_ROPE_NORM, .ffn = EM_FFN_SWIGLU, .tied_output_ok = true,
     .default_rope_base = 10000.0f, .default_rms_eps = 1e-5f},
};

const em_arch *em_arch_find(const char *name, unsigned long len) {
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (strlen(archs[i].name) == len && memcmp(archs[i].name, name, len) == 0) return &archs[i];
    return NULL;
}

const char *em_arch_list(void) { return "llama"; }

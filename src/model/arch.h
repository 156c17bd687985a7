/* arch.h - the table of supported architectures and their options. The
 * forward pass reads these options; it is not forked per family. */
#ifndef EM_ARCH_H
#define EM_ARCH_H

#include <stdbool.h>

typedef enum { EM_ROPE_NORM = 0, EM_ROPE_NEOX = 2 } em_rope_mode;
typedef enum { EM_FFN_SWIGLU = 0 } em_ffn_kind;
typedef enum {
    EM_GATE_SOFTMAX_NORM = 0, /* Mixtral: softmax, top-k, chosen weights renormalized, applied to expert outputs */
    EM_GATE_SIGMOID_INPUT = 1 /* Llama 4: top-k on logits, sigmoid weights applied to the expert input */
} em_gating;

typedef struct em_arch {
    const char *name;         /* general.architecture */
    em_rope_mode rope_mode;   /* adjacent pairs (NORM) or halves (NEOX) */
    em_ffn_kind ffn;
    bool tied_output_ok;      /* output.weight may be absent (use token_embd) */
    float default_rope_base;
    float default_rms_eps;
    /* mixture of experts */
    em_gating gating;
    bool shared_expert;       /* ffn_{gate,up,down}_shexp added to the MoE output */
    bool moe_step_key;        /* <arch>.interleave_moe_layer_step says which layers are MoE */
    /* attention pattern */
    int no_rope_every;        /* every n-th layer (il % n == n-1) has no RoPE and full attention; 0: none */
    int chunk_size;           /* RoPE layers attend within chunks of this many positions; 0: full */
    bool qk_norm_rope_layers; /* L2-normalize Q and K (RMS norm, no weight) on RoPE layers */
    float attn_temp_scale;    /* no-RoPE layers scale q by log(floor((pos+1)/floor_scale)+1)*this+1; 0: off */
    float attn_temp_floor_scale;
} em_arch;

/* The architecture named name, or NULL. */
const em_arch *em_arch_find(const char *name, unsigned long len);
/* Comma-separated names, for error messages. */
const char *em_arch_list(void);

#endif

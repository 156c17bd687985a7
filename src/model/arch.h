/* arch.h - the table of supported architectures and their options. The
 * forward pass reads these options; it is not forked per family. */
#ifndef EM_ARCH_H
#define EM_ARCH_H

#include <stdbool.h>

typedef enum { EM_ROPE_NORM = 0, EM_ROPE_NEOX = 2 } em_rope_mode;
typedef enum { EM_FFN_SWIGLU = 0 } em_ffn_kind;

typedef struct em_arch {
    const char *name;         /* general.architecture */
    em_rope_mode rope_mode;   /* adjacent pairs (NORM) or halves (NEOX) */
    em_ffn_kind ffn;
    bool tied_output_ok;      /* output.weight may be absent (use token_embd) */
    float default_rope_base;
    float default_rms_eps;
} em_arch;

/* The architecture named name, or NULL. */
const em_arch *em_arch_find(const char *name, unsigned long len);
/* Comma-separated names, for error messages. */
const char *em_arch_list(void);

#endif

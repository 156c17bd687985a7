#include "checked.h"

#include <stdlib.h>

void *em_malloc_array(size_t n, size_t size) {
    size_t total;
    if (!em_mul_sz(n, size, &total)) return NULL;
    return malloc(total ? total : 1);
}

void *em_calloc_array(size_t n, size_t size) {
    size_t total;
    if (!em_mul_sz(n, size, &total)) return NULL;
    return calloc(total ? n : 1, total ? size : 1);
}

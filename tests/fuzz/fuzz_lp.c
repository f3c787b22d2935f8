/* fuzz_lp.c - libFuzzer target for the line protocol decoder.
 * Any input must decode or fail with a message; on success the result must obey
 * the batch invariants (every column holds nrows values). Precision cycles with
 * the first byte so every conversion path is exercised. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ingest_result r = {0};
    struct ingest_limits lim;
    struct errbuf eb;
    enum ingest_precision p = size ? (enum ingest_precision)(data[0] % 6) : PREC_NS;
    size_t i, n = 0;

    ingest_limits_default(&lim);
    lim.max_rows = 100000;
    lim.max_cols = 64;
    errbuf_init(&eb);
    if (ingest_lp_decode((const char *)data, size, p, 1700000000000000LL, &lim, &r, &eb) ==
        ERR_OK) {
        for (i = 0; i < r.nbatches; i++) {
            n += r.batches[i]->nrows;
            if (r.batches[i]->nrows > r.batches[i]->cap && r.batches[i]->nrows)
                abort();
        }
        if (n != r.nrows)
            abort();
        ingest_result_release(&r);
    } else if (eb.msg[0] == '\0' || r.nbatches != 0) {
        abort();
    }
    return 0;
}

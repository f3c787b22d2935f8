/* fuzz_msgpack.c - libFuzzer target for the MessagePack decoder: no crash, no leak,
 * an error always has a message, success keeps the row count consistent. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ingest/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ingest_result r = {0};
    struct ingest_limits lim;
    struct errbuf eb;
    size_t i, n = 0;

    ingest_limits_default(&lim);
    lim.max_rows = 100000;
    lim.max_cols = 64;
    errbuf_init(&eb);
    if (ingest_msgpack_decode(data, size, 1700000000000000LL, &lim, &r, &eb) == ERR_OK) {
        for (i = 0; i < r.nbatches; i++)
            n += r.batches[i]->nrows;
        if (n != r.nrows)
            abort();
        ingest_result_release(&r);
    } else if (eb.msg[0] == '\0' || r.nbatches != 0) {
        abort();
    }
    return 0;
}

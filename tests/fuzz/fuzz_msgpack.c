/* fuzz_msgpack.c - libFuzzer target for the MessagePack decoder: no crash, no leak,
 * an error always has a message, success keeps the row count consistent, and the
 * parallel decode (ingest_msgpack_decode_parts, 2-4 parts) and a pass without the
 * series cache give the same code, message and values. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <string.h>

#include "ingest/ingest.h"
#include "../unit/test_ingest_cmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ingest_result r = {0}, r2 = {0};
    struct errbuf eb2;
    enum err rc, rc2;
    size_t nparts = 2 + size % 3;
    char why[256];
    struct ingest_limits lim;
    struct errbuf eb;
    size_t i, n = 0;

    ingest_limits_default(&lim);
    lim.max_rows = 100000;
    lim.max_cols = 64;
    errbuf_init(&eb);
    rc = ingest_msgpack_decode(data, size, 1700000000000000LL, &lim, &r, &eb);
    /* the parallel decode (cut into 2-4 parts) must agree on everything */
    errbuf_init(&eb2);
    rc2 = ingest_msgpack_decode_parts(data, size, 1700000000000000LL, &lim, nparts, &r2, NULL, &eb2);
    if (rc != rc2 || strcmp(eb.msg, eb2.msg) != 0)
        abort();
    if (rc == ERR_OK && !ingest_result_equal(&r, &r2, why, sizeof(why)))
        abort();
    ingest_result_release(&r2);
    /* so must one pass without the series cache (every tag looked up) */
    ingest_test_series_cache(false);
    errbuf_init(&eb2);
    rc2 = ingest_msgpack_decode_parts(data, size, 1700000000000000LL, &lim, 1, &r2, NULL, &eb2);
    ingest_test_series_cache(true);
    if (rc != rc2 || strcmp(eb.msg, eb2.msg) != 0)
        abort();
    if (rc == ERR_OK && !ingest_result_equal(&r, &r2, why, sizeof(why)))
        abort();
    ingest_result_release(&r2);
    if (rc == ERR_OK) {
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

/* s3.h - a small S3 client (the request layer of the s3 storage backend).
 *
 * Speaks the S3 REST API to AWS S3, MinIO and GCS (its S3-compatible XML API
 * with HMAC keys): put a local file (single PUT, or multipart above a
 * threshold), get an object into a local file, delete, list a prefix, HEAD,
 * and create/check the bucket. Requests are signed by libcurl
 * (CURLOPT_AWS_SIGV4); the x-amz-content-sha256 header is computed here with
 * OpenSSL because curl 7.88 does not add it. Easy handles are pooled so
 * connections are reused across requests and threads.
 *
 * Errors: every failure message names the endpoint, bucket, key, HTTP status and
 * the S3 error Code and Message from the XML body. Connection errors, timeouts
 * and 5xx are retried with exponential backoff and then reported as ERR_BUSY
 * (s3_err_is_transient() is true: "the store is unreachable, try later"); 4xx
 * are not retried: 401/403 -> ERR_PERM, 404 -> ERR_NOTFOUND, other 4xx ->
 * ERR_INVAL. Local file errors are ERR_IO (not transient).
 *
 * Thread: an s3_client is safe to use from any number of threads at once. */
#ifndef STORAGE_S3_H
#define STORAGE_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_MAX_RESPONSE_BYTES ((size_t)32 << 20) /* cap on XML bodies we keep */
#define S3_MIN_PART_BYTES ((uint64_t)5 << 20)    /* S3's smallest non-final part */

struct s3_config {
    const char *endpoint;   /* "http://host:port" or "host:port" (then use_ssl decides) */
    const char *access_key; /* access key id (GCS: HMAC key id) */
    const char *secret_key; /* secret (GCS: HMAC secret) */
    const char *bucket;
    const char *region;     /* SigV4 region, e.g. "us-east-1" ("auto" for GCS) */
    const char *prefix;     /* prepended to every key with a '/', "" or NULL = none */
    bool use_ssl;           /* https when endpoint has no scheme */
    bool path_style;        /* http://host/bucket/key instead of http://bucket.host/key */
    uint64_t multipart_threshold_bytes; /* files >= this go multipart; 0 = 64 MiB */
    uint64_t part_bytes;    /* multipart part size; 0 = 16 MiB (at least 5 MiB) */
    unsigned max_attempts;  /* tries per request for transient errors; 0 = 4 */
    unsigned backoff_ms;    /* first retry delay, doubled each time; 0 = 200 */
    long connect_timeout_ms; /* 0 = 3000 */
};

struct s3_client;

/* Create a client (copies every string of cfg). ERR_INVAL: endpoint or bucket
 * missing, or the endpoint is not a valid URL. No request is made. */
enum err s3_client_new(const struct s3_config *cfg, struct s3_client **out, struct errbuf *eb);
/* Free the client and its pooled connections. Accepts NULL. */
void s3_client_free(struct s3_client *c);

/* "endpoint/bucket" as used in messages (borrowed, lives as long as c). */
const char *s3_client_where(const struct s3_client *c);

/* True for the codes a request returns when the store could not be reached or
 * kept failing with 5xx (worth spooling and retrying later). */
bool s3_err_is_transient(enum err code);

/* Check the bucket is reachable with these credentials (HEAD bucket, then a
 * one-key listing to get an S3 error code if HEAD was refused); create it when
 * it does not exist and create is true. ERR_PERM / ERR_AUTH / ERR_IO with a
 * message naming endpoint, bucket and S3 error code (SignatureDoesNotMatch,
 * InvalidAccessKeyId, AccessDenied, ...). */
enum err s3_bucket_check(struct s3_client *c, bool create, struct errbuf *eb);

/* Upload the local file at path as key (prefix added). Multipart when the file
 * is at least multipart_threshold_bytes; an unfinished multipart upload is
 * aborted. Uploading the same key again overwrites it with the same bytes
 * (idempotent). *bytes_out (may be NULL) gets the size on success. */
enum err s3_put_file(struct s3_client *c, const char *key, const char *path,
                     uint64_t *bytes_out, struct errbuf *eb);

/* Download key into the local file path (created or truncated; the caller
 * writes to a temp name and renames). ERR_NOTFOUND if the object is missing. */
enum err s3_get_file(struct s3_client *c, const char *key, const char *path,
                     uint64_t *bytes_out, struct errbuf *eb);

/* Read len bytes at offset off of key into out (appended; out's cap applies). */
enum err s3_get_range(struct s3_client *c, const char *key, uint64_t off, uint64_t len,
                      struct buf *out, struct errbuf *eb);

/* Delete key. Deleting a missing key succeeds (S3 semantics). */
enum err s3_delete(struct s3_client *c, const char *key, struct errbuf *eb);

/* Does key exist? *size_out (may be NULL) gets its size when it does. */
enum err s3_exists(struct s3_client *c, const char *key, bool *out, uint64_t *size_out,
                   struct errbuf *eb);

/* Call fn for every key under prefix (both without the client prefix), in S3's
 * order (UTF-8 binary). fn returning non-zero stops the listing (ERR_OK). */
typedef int s3_list_fn(void *ctx, const char *key, uint64_t size);
enum err s3_list(struct s3_client *c, const char *prefix, s3_list_fn *fn, void *ctx,
                 struct errbuf *eb);

/* ---- pure helpers (no network; unit tested) ------------------------------ */

/* Append to out the request URL of key (NULL or "" = the bucket itself) with the
 * raw query string query (NULL = none), percent-encoding the key as S3's
 * canonical URI wants (every byte but A-Z a-z 0-9 - _ . ~ /). */
enum err s3_url_build(const struct s3_config *cfg, const char *key, const char *query,
                      struct buf *out);

/* Append s percent-encoded (RFC 3986 unreserved kept; '/' kept when keep_slash). */
enum err s3_uri_encode(struct buf *out, const char *s, bool keep_slash);

/* Find the text of the first <tag>...</tag> in xml[0..n), XML entities decoded,
 * into out (truncated to out_len - 1). Returns false if the tag is absent. */
bool s3_xml_tag(const char *xml, size_t n, const char *tag, char *out, size_t out_len);

/* Parse an S3 error body (<Error><Code>..</Code><Message>..</Message></Error>).
 * Returns false when there is no <Code>; code/msg are then "" . */
bool s3_error_parse(const char *xml, size_t n, char *code, size_t code_len, char *msg,
                    size_t msg_len);

/* The full object key: "{prefix}/{key}" or key when prefix is empty (slashes
 * at the joint collapsed). ERR_LIMIT when it does not fit out_len. */
enum err s3_object_key(const char *prefix, const char *key, char *out, size_t out_len);

#endif

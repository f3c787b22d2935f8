/* s3.c - the S3 request layer: signed HTTP requests with libcurl, retries,
 * multipart uploads, XML error and listing parsing.
 *
 * Signing is libcurl's (CURLOPT_AWS_SIGV4 "aws:amz:<region>:s3"). curl 7.88 has
 * three traps (docs/s3.md): it does not add x-amz-content-sha256, so we set it
 * (hex SHA-256 of the body, computed with OpenSSL; the empty-body hash for GET,
 * HEAD, DELETE); a header suppressed with "Name:" is still listed as signed, so
 * we never suppress one (curl's own Expect/Accept headers are sent unsigned,
 * which S3 accepts); a user-set X-Amz-Date would be sent twice, so we leave the
 * date to curl. Query strings are built already sorted and encoded, because
 * curl 7.88 signs the query as given.
 *
 * Connections: idle easy handles wait in a small pool (LIFO); curl keeps each
 * handle's connection open, so consecutive requests reuse TCP connections.
 * Retries: connection errors, timeouts and 5xx (including 503 SlowDown) are
 * retried max_attempts times with doubling delays; bodies are re-read from the
 * file at the right offset (read and seek callbacks use pread on a fixed range),
 * downloads restart by truncating the target. */
#include "storage/s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"

#define DEFAULT_THRESHOLD ((uint64_t)64 << 20)
#define DEFAULT_PART ((uint64_t)16 << 20)
#define MAX_PARTS 10000
#define ERR_BODY_KEEP 65536 /* bytes of a non-2xx body kept for the error message */
#define POOL_MAX 16

struct s3_client {
    struct s3_config cfg; /* strings below are owned copies */
    char *endpoint, *access_key, *secret_key, *bucket, *region, *prefix;
    char *where;          /* "endpoint/bucket" for messages */
    char sigv4[160];      /* "aws:amz:<region>:s3" */
    pthread_mutex_t mu;   /* guards pool */
    CURL *pool[POOL_MAX]; /* idle handles, each with a live connection cache */
    size_t npool;
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ------------------------------------------------------------ pure helpers */

enum err s3_uri_encode(struct buf *out, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    enum err rc = ERR_OK;

    for (; *s && rc == ERR_OK; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/')) {
            rc = buf_append_char(out, (char)ch);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            rc = buf_append(out, e, 3);
        }
    }
    return rc;
}

enum err s3_object_key(const char *prefix, const char *key, char *out, size_t out_len)
{
    size_t pl = prefix ? strlen(prefix) : 0;
    int n;

    while (pl && prefix[pl - 1] == '/')
        pl--;
    while (pl && *prefix == '/') {
        prefix++;
        pl--;
    }
    while (*key == '/')
        key++;
    if (pl)
        n = snprintf(out, out_len, "%.*s/%s", (int)pl, prefix, key);
    else
        n = snprintf(out, out_len, "%s", key);
    return (n < 0 || (size_t)n >= out_len) ? ERR_LIMIT : ERR_OK;
}

enum err s3_url_build(const struct s3_config *cfg, const char *key, const char *query,
                      struct buf *out)
{
    const char *ep = cfg->endpoint, *host;
    size_t hl;
    enum err rc;

    host = strstr(ep, "://");
    if (host) {
        rc = buf_append(out, ep, (size_t)(host - ep) + 3);
        host += 3;
    } else {
        rc = buf_append_str(out, cfg->use_ssl ? "https://" : "http://");
        host = ep;
    }
    hl = strlen(host);
    while (hl && host[hl - 1] == '/')
        hl--;
    if (!cfg->path_style && rc == ERR_OK) {
        rc = buf_append_str(out, cfg->bucket);
        if (rc == ERR_OK)
            rc = buf_append_char(out, '.');
    }
    if (rc == ERR_OK)
        rc = buf_append(out, host, hl);
    if (cfg->path_style && rc == ERR_OK) {
        rc = buf_append_char(out, '/');
        if (rc == ERR_OK)
            rc = s3_uri_encode(out, cfg->bucket, false);
    }
    if (key && *key && rc == ERR_OK) {
        rc = buf_append_char(out, '/');
        if (rc == ERR_OK)
            rc = s3_uri_encode(out, key, true);
    } else if (!cfg->path_style && rc == ERR_OK) {
        rc = buf_append_char(out, '/');
    }
    if (query && *query && rc == ERR_OK) {
        rc = buf_append_char(out, '?');
        if (rc == ERR_OK)
            rc = buf_append_str(out, query);
    }
    return rc;
}

/* Decode the five predefined XML entities and numeric ones (ASCII only) of
 * s[0..n) into out. */
static void xml_unescape(const char *s, size_t n, char *out, size_t out_len)
{
    static const struct {
        const char *ent;
        char ch;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t i = 0, o = 0, k;

    if (out_len == 0)
        return;
    while (i < n && o + 1 < out_len) {
        char ch = s[i];
        size_t adv = 1;
        if (ch == '&') {
            for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
                size_t el = strlen(ents[k].ent);
                if (n - i >= el && !memcmp(s + i, ents[k].ent, el)) {
                    ch = ents[k].ch;
                    adv = el;
                    break;
                }
            }
            if (adv == 1 && n - i > 3 && s[i + 1] == '#') {
                const char *semi = memchr(s + i, ';', n - i < 12 ? n - i : 12);
                if (semi) {
                    char num[12];
                    size_t nl = (size_t)(semi - (s + i + 2));
                    long v;
                    memcpy(num, s + i + 2, nl);
                    num[nl] = '\0';
                    v = (num[0] == 'x') ? strtol(num + 1, NULL, 16) : strtol(num, NULL, 10);
                    if (v > 0 && v < 128) {
                        ch = (char)v;
                        adv = (size_t)(semi - (s + i)) + 1;
                    }
                }
            }
        }
        out[o++] = ch;
        i += adv;
    }
    out[o] = '\0';
}

/* Locate <tag>...</tag> in s[0..n): *vs and *vl the raw value, *end past the close. */
static bool xml_find(const char *s, size_t n, const char *tag, const char **vs, size_t *vl,
                     const char **end)
{
    char open[80], close[80];
    size_t ol, cl;
    const char *p, *q;

    ol = (size_t)snprintf(open, sizeof(open), "<%s>", tag);
    cl = (size_t)snprintf(close, sizeof(close), "</%s>", tag);
    if (ol >= sizeof(open) || cl >= sizeof(close))
        return false;
    p = memmem(s, n, open, ol);
    if (!p)
        return false;
    p += ol;
    q = memmem(p, n - (size_t)(p - s), close, cl);
    if (!q)
        return false;
    *vs = p;
    *vl = (size_t)(q - p);
    if (end)
        *end = q + cl;
    return true;
}

bool s3_xml_tag(const char *xml, size_t n, const char *tag, char *out, size_t out_len)
{
    const char *v;
    size_t vl;

    if (out_len)
        out[0] = '\0';
    if (!xml || !xml_find(xml, n, tag, &v, &vl, NULL))
        return false;
    xml_unescape(v, vl, out, out_len);
    return true;
}

bool s3_error_parse(const char *xml, size_t n, char *code, size_t code_len, char *msg,
                    size_t msg_len)
{
    bool ok = s3_xml_tag(xml, n, "Code", code, code_len);

    if (!s3_xml_tag(xml, n, "Message", msg, msg_len) && msg_len)
        msg[0] = '\0';
    if (!ok && msg_len)
        msg[0] = '\0';
    return ok;
}

bool s3_err_is_transient(enum err code)
{
    return code == ERR_BUSY || code == ERR_TIMEOUT;
}

/* ------------------------------------------------------------- the client */

enum err s3_client_new(const struct s3_config *cfg, struct s3_client **out, struct errbuf *eb)
{
    struct s3_client *c;
    size_t n;

    if (!cfg->endpoint || !*cfg->endpoint)
        return errbuf_set(eb, ERR_INVAL, "S3: endpoint is not set");
    if (!cfg->bucket || !*cfg->bucket)
        return errbuf_set(eb, ERR_INVAL, "S3: bucket is not set");
    if (strpbrk(cfg->endpoint, " \t\r\n?#"))
        return errbuf_set(eb, ERR_INVAL, "S3: bad endpoint '%s'", cfg->endpoint);
    pthread_once(&g_curl_once, curl_init_once);
    c = xcalloc(1, sizeof(*c));
    c->cfg = *cfg;
    c->endpoint = xstrdup(cfg->endpoint);
    c->access_key = xstrdup(cfg->access_key ? cfg->access_key : "");
    c->secret_key = xstrdup(cfg->secret_key ? cfg->secret_key : "");
    c->bucket = xstrdup(cfg->bucket);
    c->region = xstrdup(cfg->region && *cfg->region ? cfg->region : "us-east-1");
    c->prefix = xstrdup(cfg->prefix ? cfg->prefix : "");
    c->cfg.endpoint = c->endpoint;
    c->cfg.access_key = c->access_key;
    c->cfg.secret_key = c->secret_key;
    c->cfg.bucket = c->bucket;
    c->cfg.region = c->region;
    c->cfg.prefix = c->prefix;
    if (!c->cfg.multipart_threshold_bytes)
        c->cfg.multipart_threshold_bytes = DEFAULT_THRESHOLD;
    if (!c->cfg.part_bytes)
        c->cfg.part_bytes = DEFAULT_PART;
    if (c->cfg.part_bytes < S3_MIN_PART_BYTES)
        c->cfg.part_bytes = S3_MIN_PART_BYTES;
    if (!c->cfg.max_attempts)
        c->cfg.max_attempts = 4;
    if (!c->cfg.backoff_ms)
        c->cfg.backoff_ms = 200;
    if (!c->cfg.connect_timeout_ms)
        c->cfg.connect_timeout_ms = 3000;
    n = strlen(c->endpoint) + strlen(c->bucket) + 2;
    c->where = xmalloc(n);
    snprintf(c->where, n, "%s/%s", c->endpoint, c->bucket);
    snprintf(c->sigv4, sizeof(c->sigv4), "aws:amz:%s:s3", c->region);
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return ERR_OK;
}

void s3_client_free(struct s3_client *c)
{
    size_t i;

    if (!c)
        return;
    for (i = 0; i < c->npool; i++)
        curl_easy_cleanup(c->pool[i]);
    pthread_mutex_destroy(&c->mu);
    free(c->endpoint);
    free(c->access_key);
    free(c->secret_key);
    free(c->bucket);
    free(c->region);
    free(c->prefix);
    free(c->where);
    free(c);
}

const char *s3_client_where(const struct s3_client *c)
{
    return c->where;
}

static CURL *handle_get(struct s3_client *c)
{
    CURL *h = NULL;

    pthread_mutex_lock(&c->mu);
    if (c->npool)
        h = c->pool[--c->npool];
    pthread_mutex_unlock(&c->mu);
    if (!h)
        h = curl_easy_init();
    if (!h)
        abort(); /* out of memory, as xmalloc */
    return h;
}

static void handle_put(struct s3_client *c, CURL *h)
{
    pthread_mutex_lock(&c->mu);
    if (c->npool < POOL_MAX) {
        c->pool[c->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h)
        curl_easy_cleanup(h);
}

/* ---- one request ------------------------------------------------------- */

struct req {
    const char *method;   /* GET PUT POST DELETE HEAD */
    const char *key;      /* full object key (prefix applied), NULL = bucket */
    const char *query;    /* sorted, encoded query string or NULL */
    const char *body;     /* memory body (POST / PUT), or NULL */
    size_t body_len;
    int in_fd;            /* file body: fd, offset, length (in_fd >= 0) */
    uint64_t in_off, in_len;
    const char *sha256;   /* hex payload hash */
    const char *content_type;
    const char *range;    /* "bytes=a-b" or NULL */
    int out_fd;           /* 2xx body goes here when >= 0 */
    struct buf *out;      /* else 2xx body appended here (when non-NULL) */
    /* results */
    long status;
    char etag[256];
    uint64_t content_length;
    bool have_length;
    /* internal */
    uint64_t in_pos;      /* bytes of the file body sent in this attempt */
    uint64_t out_bytes;   /* bytes written to out_fd in this attempt */
    struct buf errbody;   /* non-2xx body (capped) */
    bool local_error;     /* a read/write of the local file failed */
    int local_errno;
    CURL *h;
};

static size_t read_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct req *r = ud;
    size_t want = size * nmemb;
    uint64_t left = r->in_len - r->in_pos;
    ssize_t got;

    if (want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    got = pread(r->in_fd, ptr, want, (off_t)(r->in_off + r->in_pos));
    if (got <= 0) {
        r->local_error = true;
        r->local_errno = got < 0 ? errno : EIO;
        return CURL_READFUNC_ABORT;
    }
    r->in_pos += (uint64_t)got;
    return (size_t)got;
}

static int seek_cb(void *ud, curl_off_t offset, int origin)
{
    struct req *r = ud;

    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > r->in_len)
        return CURL_SEEKFUNC_CANTSEEK;
    r->in_pos = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct req *r = ud;
    size_t n = size * nmemb;
    long status = 0;

    curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
        if (r->out_fd >= 0) {
            size_t done = 0;
            while (done < n) {
                ssize_t w = write(r->out_fd, ptr + done, n - done);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    r->local_error = true;
                    r->local_errno = w < 0 ? errno : EIO;
                    return 0; /* aborts the transfer */
                }
                done += (size_t)w;
            }
            r->out_bytes += n;
            return n;
        }
        if (r->out && buf_append(r->out, ptr, n) != ERR_OK)
            return 0; /* over the cap: abort (reported as a write error) */
        return n;
    }
    if (r->errbody.len < ERR_BODY_KEEP)
        (void)buf_append(&r->errbody, ptr,
                         n < ERR_BODY_KEEP - r->errbody.len ? n : ERR_BODY_KEEP - r->errbody.len);
    return n;
}

static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct req *r = ud;
    size_t n = size * nmemb, vl;
    const char *v;

    if (n > 5 && !strncasecmp(ptr, "ETag:", 5)) {
        v = ptr + 5;
        while (v < ptr + n && (*v == ' ' || *v == '\t'))
            v++;
        vl = (size_t)(ptr + n - v);
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl < sizeof(r->etag)) {
            memcpy(r->etag, v, vl);
            r->etag[vl] = '\0';
        }
    } else if (n > 15 && !strncasecmp(ptr, "Content-Length:", 15)) {
        r->content_length = strtoull(ptr + 15, NULL, 10);
        r->have_length = true;
    }
    return n;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static enum err fail_status(struct s3_client *c, struct req *r, struct errbuf *eb)
{
    char code[128], msg[512];
    enum err e;
    const char *key = r->key ? r->key : "";

    if (!s3_error_parse(r->errbody.data, r->errbody.len, code, sizeof(code), msg, sizeof(msg))) {
        /* HEAD answers carry no body: name the status instead */
        snprintf(code, sizeof(code), "%s",
                 r->status == 404 ? (r->key ? "NoSuchKey" : "NoSuchBucket")
                 : r->status == 403 ? "AccessDenied"
                 : r->status == 400 ? "BadRequest"
                                    : "HTTPError");
        snprintf(msg, sizeof(msg), "(no error body)");
    }
    if (r->status == 401 || r->status == 403)
        e = ERR_PERM;
    else if (r->status == 404)
        e = ERR_NOTFOUND;
    else if (r->status >= 500 || r->status == 429 || r->status == 408)
        e = ERR_BUSY;
    else
        e = ERR_INVAL;
    return errbuf_set(eb, e, "S3 %s failed: endpoint=%s bucket=%s key=%s: HTTP %ld %s: %s",
                      r->method, c->endpoint, c->bucket, *key ? key : "(bucket)", r->status,
                      code, msg);
}

/* Run r with retries. On ERR_OK, r->status is 2xx. */
static enum err do_request(struct s3_client *c, struct req *r, struct errbuf *eb)
{
    struct buf url;
    char hdr_sha[128], hdr_ct[160], hdr_range[96];
    struct curl_slist *hdrs = NULL;
    unsigned attempt, delay = c->cfg.backoff_ms;
    enum err rc = ERR_OK;
    CURLcode cc = CURLE_OK;

    buf_init(&url, 0);
    buf_init(&r->errbody, 0);
    if (s3_url_build(&c->cfg, r->key, r->query, &url) != ERR_OK)
        return errbuf_set(eb, ERR_LIMIT, "S3: URL too long");
    snprintf(hdr_sha, sizeof(hdr_sha), "x-amz-content-sha256: %s",
             r->sha256 ? r->sha256 : S3_EMPTY_SHA256);
    hdrs = curl_slist_append(hdrs, hdr_sha);
    if (r->content_type) {
        snprintf(hdr_ct, sizeof(hdr_ct), "Content-Type: %s", r->content_type);
        hdrs = curl_slist_append(hdrs, hdr_ct);
    }
    if (r->range) {
        snprintf(hdr_range, sizeof(hdr_range), "Range: %s", r->range);
        hdrs = curl_slist_append(hdrs, hdr_range);
    }
    if (!hdrs)
        abort();

    for (attempt = 1;; attempt++) {
        CURL *h = handle_get(c);
        char cerr[CURL_ERROR_SIZE];

        curl_easy_reset(h);
        r->h = h;
        r->status = 0;
        r->etag[0] = '\0';
        r->have_length = false;
        r->content_length = 0;
        r->in_pos = 0;
        r->local_error = false;
        buf_reset(&r->errbody);
        if (r->out_fd >= 0) {
            if (ftruncate(r->out_fd, 0) != 0 || lseek(r->out_fd, 0, SEEK_SET) != 0) {
                handle_put(c, h);
                rc = errbuf_set(eb, ERR_IO, "S3 download: truncate: %s", strerror(errno));
                break;
            }
            r->out_bytes = 0;
        }
        if (r->out)
            buf_reset(r->out);
        cerr[0] = '\0';
        curl_easy_setopt(h, CURLOPT_URL, url.data);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
        /* a stalled transfer (< 1 KiB/s for 30 s) counts as a timeout */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
        curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
        if (!strcmp(r->method, "HEAD")) {
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (!strcmp(r->method, "PUT")) {
            curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            /* the body is always a file range (in_len 0 for an empty PUT) */
            curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
            curl_easy_setopt(h, CURLOPT_READDATA, r);
            curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
            curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->in_len);
        } else if (!strcmp(r->method, "POST")) {
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? r->body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        } else if (strcmp(r->method, "GET") != 0) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
        }
        cc = curl_easy_perform(h);
        if (cc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        handle_put(c, h);
        r->h = NULL;

        if (r->local_error) {
            rc = errbuf_set(eb, ERR_IO, "S3 %s %s: local file: %s", r->method,
                            r->key ? r->key : "(bucket)", strerror(r->local_errno));
            break;
        }
        if (cc == CURLE_OK && r->status >= 200 && r->status < 300) {
            rc = ERR_OK;
            break;
        }
        if (cc == CURLE_OK) {
            rc = fail_status(c, r, eb);
        } else if (cc == CURLE_WRITE_ERROR && r->out) {
            rc = errbuf_set(eb, ERR_LIMIT, "S3 %s %s: response larger than %zu bytes", r->method,
                            r->key ? r->key : "(bucket)", r->out->max_bytes);
            break;
        } else {
            rc = errbuf_set(eb, cc == CURLE_OPERATION_TIMEDOUT ? ERR_TIMEOUT : ERR_BUSY,
                            "S3 %s failed: endpoint=%s bucket=%s key=%s: %s (%s)", r->method,
                            c->endpoint, c->bucket, r->key ? r->key : "(bucket)",
                            curl_easy_strerror(cc), cerr[0] ? cerr : "no detail");
        }
        if (!s3_err_is_transient(rc) || attempt >= c->cfg.max_attempts)
            break;
        log_debug("S3 request failed, retrying", "attempt=%u delay_ms=%u error=\"%s\"", attempt,
                  delay, eb ? eb->msg : "");
        sleep_ms(delay);
        delay = delay * 2 > 10000 ? 10000 : delay * 2;
    }
    curl_slist_free_all(hdrs);
    buf_release(&url);
    buf_release(&r->errbody);
    return rc;
}

static void req_init(struct req *r, const char *method, const char *key)
{
    memset(r, 0, sizeof(*r));
    r->method = method;
    r->key = key;
    r->in_fd = -1;
    r->out_fd = -1;
}

/* hex SHA-256 of fd[off, off+len) */
static enum err sha256_file(int fd, uint64_t off, uint64_t len, char hex[65], struct errbuf *eb)
{
    unsigned char md[32], *blk;
    unsigned int mdl = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint64_t done = 0;
    enum err rc = ERR_OK;
    int i;

    if (!ctx)
        abort();
    blk = xmalloc(1 << 20);
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    while (done < len) {
        size_t want = len - done > (1 << 20) ? (1 << 20) : (size_t)(len - done);
        ssize_t got = pread(fd, blk, want, (off_t)(off + done));
        if (got <= 0) {
            rc = errbuf_set(eb, ERR_IO, "read for SHA-256: %s", got < 0 ? strerror(errno) : "EOF");
            break;
        }
        EVP_DigestUpdate(ctx, blk, (size_t)got);
        done += (uint64_t)got;
    }
    EVP_DigestFinal_ex(ctx, md, &mdl);
    EVP_MD_CTX_free(ctx);
    free(blk);
    for (i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return rc;
}

static void sha256_mem(const void *p, size_t n, char hex[65])
{
    unsigned char md[32];
    unsigned int mdl = 0;
    int i;

    EVP_Digest(p, n, md, &mdl, EVP_sha256(), NULL);
    for (i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static enum err full_key(struct s3_client *c, const char *key, char *out, size_t out_len,
                         struct errbuf *eb)
{
    if (s3_object_key(c->prefix, key, out, out_len) != ERR_OK)
        return errbuf_set(eb, ERR_LIMIT, "S3 key too long: %s", key);
    return ERR_OK;
}

/* ---- operations -------------------------------------------------------- */

static enum err put_single(struct s3_client *c, const char *k, int fd, uint64_t size,
                           struct errbuf *eb)
{
    struct req r;
    char sha[65];
    enum err rc;

    rc = sha256_file(fd, 0, size, sha, eb);
    if (rc)
        return rc;
    req_init(&r, "PUT", k);
    r.in_fd = fd;
    r.in_len = size;
    r.sha256 = sha;
    r.content_type = "application/vnd.apache.parquet";
    return do_request(c, &r, eb);
}

static enum err put_multipart(struct s3_client *c, const char *k, int fd, uint64_t size,
                              struct errbuf *eb)
{
    struct req r;
    struct buf resp, q, body;
    char upload_id[1024], sha[65];
    uint64_t part = c->cfg.part_bytes, off;
    unsigned nparts, i;
    char (*etags)[256] = NULL;
    enum err rc;

    while ((size + part - 1) / part > MAX_PARTS)
        part *= 2;
    nparts = (unsigned)((size + part - 1) / part);
    buf_init(&resp, S3_MAX_RESPONSE_BYTES);
    buf_init(&q, 0);
    buf_init(&body, 0);

    req_init(&r, "POST", k);
    r.query = "uploads=";
    r.out = &resp;
    r.content_type = "application/vnd.apache.parquet";
    rc = do_request(c, &r, eb);
    if (rc)
        goto out;
    if (!s3_xml_tag(resp.data, resp.len, "UploadId", upload_id, sizeof(upload_id)) ||
        !upload_id[0]) {
        rc = errbuf_set(eb, ERR_INVAL, "S3 multipart: no UploadId from endpoint=%s bucket=%s key=%s",
                        c->endpoint, c->bucket, k);
        goto out;
    }
    etags = xcalloc(nparts, sizeof(*etags));
    for (i = 0, off = 0; i < nparts; i++, off += part) {
        uint64_t len = size - off < part ? size - off : part;
        rc = sha256_file(fd, off, len, sha, eb);
        if (rc)
            goto abort_upload;
        buf_reset(&q);
        buf_printf(&q, "partNumber=%u&uploadId=", i + 1);
        s3_uri_encode(&q, upload_id, false);
        req_init(&r, "PUT", k);
        r.query = q.data;
        r.in_fd = fd;
        r.in_off = off;
        r.in_len = len;
        r.sha256 = sha;
        rc = do_request(c, &r, eb);
        if (rc)
            goto abort_upload;
        if (!r.etag[0]) {
            rc = errbuf_set(eb, ERR_INVAL, "S3 multipart: part %u of key=%s has no ETag", i + 1, k);
            goto abort_upload;
        }
        memcpy(etags[i], r.etag, sizeof(etags[i]));
    }
    buf_append_str(&body, "<CompleteMultipartUpload>");
    for (i = 0; i < nparts; i++) {
        buf_printf(&body, "<Part><PartNumber>%u</PartNumber><ETag>", i + 1);
        for (const char *p = etags[i]; *p; p++) {
            if (*p == '"')
                buf_append_str(&body, "&quot;");
            else if (*p == '&')
                buf_append_str(&body, "&amp;");
            else
                buf_append_char(&body, *p);
        }
        buf_append_str(&body, "</ETag></Part>");
    }
    buf_append_str(&body, "</CompleteMultipartUpload>");
    sha256_mem(body.data, body.len, sha);
    buf_reset(&q);
    buf_append_str(&q, "uploadId=");
    s3_uri_encode(&q, upload_id, false);
    req_init(&r, "POST", k);
    r.query = q.data;
    r.body = body.data;
    r.body_len = body.len;
    r.sha256 = sha;
    r.content_type = "application/xml";
    r.out = &resp;
    rc = do_request(c, &r, eb);
    if (rc)
        goto abort_upload;
    /* CompleteMultipartUpload can answer 200 with an <Error> body */
    if (memmem(resp.data ? resp.data : "", resp.len, "<Error>", 7)) {
        char code[128], msg[512];
        s3_error_parse(resp.data, resp.len, code, sizeof(code), msg, sizeof(msg));
        rc = errbuf_set(eb, ERR_BUSY,
                        "S3 multipart complete failed: endpoint=%s bucket=%s key=%s: %s: %s",
                        c->endpoint, c->bucket, k, code, msg);
        goto abort_upload;
    }
    log_info("S3 multipart upload completed", "key=%s bytes=%llu parts=%u", k,
             (unsigned long long)size, nparts);
    goto out;

abort_upload : {
    struct errbuf eb2;
    errbuf_init(&eb2);
    buf_reset(&q);
    buf_append_str(&q, "uploadId=");
    s3_uri_encode(&q, upload_id, false);
    req_init(&r, "DELETE", k);
    r.query = q.data;
    if (do_request(c, &r, &eb2) != ERR_OK)
        log_warn("S3 multipart abort failed", "key=%s error=\"%s\"", k, eb2.msg);
}
out:
    free(etags);
    buf_release(&resp);
    buf_release(&q);
    buf_release(&body);
    return rc;
}

enum err s3_put_file(struct s3_client *c, const char *key, const char *path,
                     uint64_t *bytes_out, struct errbuf *eb)
{
    char k[2048];
    struct stat sb;
    enum err rc;
    int fd;

    rc = full_key(c, key, k, sizeof(k), eb);
    if (rc)
        return rc;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errbuf_set(eb, ERR_IO, "S3 upload: open %s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0) {
        rc = errbuf_set(eb, ERR_IO, "S3 upload: stat %s: %s", path, strerror(errno));
        goto out;
    }
    if ((uint64_t)sb.st_size >= c->cfg.multipart_threshold_bytes &&
        (uint64_t)sb.st_size > c->cfg.part_bytes)
        rc = put_multipart(c, k, fd, (uint64_t)sb.st_size, eb);
    else
        rc = put_single(c, k, fd, (uint64_t)sb.st_size, eb);
    if (rc == ERR_OK && bytes_out)
        *bytes_out = (uint64_t)sb.st_size;
out:
    close(fd);
    return rc;
}

enum err s3_get_file(struct s3_client *c, const char *key, const char *path,
                     uint64_t *bytes_out, struct errbuf *eb)
{
    char k[2048];
    struct req r;
    enum err rc;
    int fd;

    rc = full_key(c, key, k, sizeof(k), eb);
    if (rc)
        return rc;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errbuf_set(eb, errno == ENOSPC ? ERR_NOSPACE : ERR_IO, "S3 download: open %s: %s",
                          path, strerror(errno));
    req_init(&r, "GET", k);
    r.out_fd = fd;
    rc = do_request(c, &r, eb);
    if (rc == ERR_OK && r.have_length && r.out_bytes != r.content_length)
        rc = errbuf_set(eb, ERR_BUSY, "S3 GET key=%s: got %" PRIu64 " of %" PRIu64 " bytes", k,
                        r.out_bytes, r.content_length);
    if (close(fd) != 0 && rc == ERR_OK)
        rc = errbuf_set(eb, ERR_IO, "S3 download: close %s: %s", path, strerror(errno));
    if (rc == ERR_OK && bytes_out)
        *bytes_out = r.out_bytes;
    return rc;
}

enum err s3_get_range(struct s3_client *c, const char *key, uint64_t off, uint64_t len,
                      struct buf *out, struct errbuf *eb)
{
    char k[2048], range[96];
    struct req r;
    struct buf tmp;
    enum err rc;

    if (len == 0)
        return ERR_OK;
    rc = full_key(c, key, k, sizeof(k), eb);
    if (rc)
        return rc;
    snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, off, off + len - 1);
    buf_init(&tmp, out->max_bytes ? out->max_bytes - out->len : 0);
    req_init(&r, "GET", k);
    r.range = range;
    r.out = &tmp;
    rc = do_request(c, &r, eb);
    if (rc == ERR_OK)
        rc = buf_append(out, tmp.data, tmp.len);
    buf_release(&tmp);
    return rc;
}

enum err s3_delete(struct s3_client *c, const char *key, struct errbuf *eb)
{
    char k[2048];
    struct req r;
    enum err rc;

    rc = full_key(c, key, k, sizeof(k), eb);
    if (rc)
        return rc;
    req_init(&r, "DELETE", k);
    rc = do_request(c, &r, eb);
    if (rc == ERR_NOTFOUND)
        rc = ERR_OK;
    return rc;
}

enum err s3_exists(struct s3_client *c, const char *key, bool *out, uint64_t *size_out,
                   struct errbuf *eb)
{
    char k[2048];
    struct req r;
    enum err rc;

    rc = full_key(c, key, k, sizeof(k), eb);
    if (rc)
        return rc;
    req_init(&r, "HEAD", k);
    rc = do_request(c, &r, eb);
    if (rc == ERR_NOTFOUND) {
        *out = false;
        return ERR_OK;
    }
    if (rc)
        return rc;
    *out = true;
    if (size_out)
        *size_out = r.content_length;
    return ERR_OK;
}

enum err s3_list(struct s3_client *c, const char *prefix, s3_list_fn *fn, void *ctx,
                 struct errbuf *eb)
{
    char full[2048], token[2048], keybuf[2048];
    size_t plen = 0;
    struct buf resp, q;
    enum err rc = ERR_OK;
    bool more = true, stop = false;

    if (c->prefix[0]) {
        rc = full_key(c, prefix && *prefix ? prefix : "", full, sizeof(full), eb);
        if (rc)
            return rc;
        if (!(prefix && *prefix)) /* the client prefix itself: list "prefix/" */
            snprintf(full + strlen(full), sizeof(full) - strlen(full), "%s",
                     full[strlen(full) - 1] == '/' ? "" : "/");
        s3_object_key(c->prefix, "", keybuf, sizeof(keybuf));
        plen = strlen(keybuf);
        if (plen && keybuf[plen - 1] != '/')
            plen++; /* the '/' that joins prefix and key */
    } else {
        snprintf(full, sizeof(full), "%s", prefix ? prefix : "");
    }
    token[0] = '\0';
    buf_init(&resp, S3_MAX_RESPONSE_BYTES);
    buf_init(&q, 0);
    while (more && !stop) {
        struct req r;
        const char *p, *end;
        size_t vl;
        char tr[16];

        buf_reset(&q);
        if (token[0]) {
            buf_append_str(&q, "continuation-token=");
            s3_uri_encode(&q, token, false);
            buf_append_char(&q, '&');
        }
        buf_append_str(&q, "list-type=2&prefix=");
        s3_uri_encode(&q, full, false);
        req_init(&r, "GET", NULL);
        r.query = q.data;
        r.out = &resp;
        rc = do_request(c, &r, eb);
        if (rc)
            break;
        p = resp.data ? resp.data : "";
        end = p + resp.len;
        while (!stop) {
            const char *blk, *after;
            char sz[32];
            if (!xml_find(p, (size_t)(end - p), "Contents", &blk, &vl, &after))
                break;
            if (s3_xml_tag(blk, vl, "Key", keybuf, sizeof(keybuf)) && strlen(keybuf) >= plen) {
                s3_xml_tag(blk, vl, "Size", sz, sizeof(sz));
                if (fn(ctx, keybuf + plen, strtoull(sz, NULL, 10)) != 0)
                    stop = true;
            }
            p = after;
        }
        more = s3_xml_tag(resp.data, resp.len, "IsTruncated", tr, sizeof(tr)) &&
               !strcmp(tr, "true") &&
               s3_xml_tag(resp.data, resp.len, "NextContinuationToken", token, sizeof(token)) &&
               token[0];
    }
    buf_release(&resp);
    buf_release(&q);
    return rc;
}

enum err s3_bucket_check(struct s3_client *c, bool create, struct errbuf *eb)
{
    struct req r;
    struct buf resp;
    enum err rc;
    int round;

    buf_init(&resp, S3_MAX_RESPONSE_BYTES);
    for (round = 0; round < 2; round++) {
        /* a one-key listing: unlike HEAD it answers with an S3 error code */
        req_init(&r, "GET", NULL);
        r.query = "list-type=2&max-keys=1";
        r.out = &resp;
        rc = do_request(c, &r, eb);
        if (rc != ERR_NOTFOUND || !create || round > 0)
            break;
        /* NoSuchBucket: create it */
        {
            char body[256];
            char sha[65];
            int bl = 0;
            req_init(&r, "PUT", NULL);
            if (strcmp(c->region, "us-east-1") != 0 && strcmp(c->region, "auto") != 0) {
                bl = snprintf(body, sizeof(body),
                              "<CreateBucketConfiguration><LocationConstraint>%s"
                              "</LocationConstraint></CreateBucketConfiguration>",
                              c->region);
                if (bl < 0 || (size_t)bl >= sizeof(body))
                    bl = 0;
            }
            if (bl > 0) {
                /* a body through a temp file keeps one upload path (read_cb) */
                char tmpl[] = "/tmp/arc-s3-bucket-XXXXXX";
                int fd = mkstemp(tmpl);
                if (fd < 0) {
                    rc = errbuf_set(eb, ERR_IO, "mkstemp: %s", strerror(errno));
                    break;
                }
                unlink(tmpl);
                if (write(fd, body, (size_t)bl) != bl) {
                    close(fd);
                    rc = errbuf_set(eb, ERR_IO, "write: %s", strerror(errno));
                    break;
                }
                sha256_mem(body, (size_t)bl, sha);
                r.in_fd = fd;
                r.in_len = (uint64_t)bl;
                r.sha256 = sha;
                rc = do_request(c, &r, eb);
                close(fd);
            } else {
                r.in_fd = -1;
                rc = do_request(c, &r, eb);
            }
            if (rc == ERR_INVAL && strstr(eb->msg, "BucketAlreadyOwnedByYou"))
                rc = ERR_OK;
            if (rc) {
                errbuf_prefix(eb, "creating the bucket");
                break;
            }
            log_info("S3 bucket created", "endpoint=%s bucket=%s", c->endpoint, c->bucket);
        }
    }
    buf_release(&resp);
    return rc;
}

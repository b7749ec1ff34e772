/*
 * fuzz_frame.c - fuzz target for the agent's input path: console bytes into
 * hil_agent_feed, plus the JSON, HTTP, value and base64 parsers on the same
 * input. Every frame the agent writes must itself parse, carry a good CRC and
 * fit the maximum length; anything else aborts. Built as a libFuzzer target
 * (make fuzz, clang) and driven by fuzz_smoke.c under gcc + ASan/UBSan.
 */
#include "hil_core.h"
#include "host_platform.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    int64_t now;
    uint32_t ms;
    const uint8_t *resp;
    size_t resp_len, resp_off;
    int connects;
} fz;

static int fz_write(void *ctx, const uint8_t *buf, size_t len)
{
    static char line[HIL_MAX_FRAME + 1];
    hil_frame f;
    hil_frame_error fe;
    (void)ctx;
    if (len == 0 || len > HIL_MAX_FRAME || buf[len - 1] != '\n')
        abort();
    memcpy(line, buf, len - 1);
    if (hil_frame_parse(line, len - 1, &f, &fe) != HIL_OK)
        abort();
    return 0;
}
static int64_t fz_time_get(void *ctx) { return ((fz *)ctx)->now; }
static int fz_time_set(void *ctx, int64_t t) { ((fz *)ctx)->now = t; return 0; }
static uint32_t fz_millis(void *ctx) { return ((fz *)ctx)->ms += 1; }
static void fz_sleep(void *ctx, uint32_t ms) { ((fz *)ctx)->ms += ms; }
static void fz_reset(void *ctx) { (void)ctx; }
static hil_err fz_wifi(void *ctx, const char *s, const char *p, uint32_t t, char *ip, size_t n)
{
    (void)ctx; (void)s; (void)p; (void)t;
    if (n > 0) { strncpy(ip, "10.0.0.2", n - 1); ip[n - 1] = '\0'; }
    return HIL_OK;
}
static hil_err fz_connect(void *ctx, const char *h, uint16_t port, const char *ca, size_t ca_len, uint32_t t, void **c)
{
    fz *z = ctx;
    (void)h; (void)port; (void)ca; (void)ca_len; (void)t;
    if (z->connects++ > 3)
        return HIL_E_NETWORK;
    z->resp_off = 0;
    *c = z;
    return HIL_OK;
}
static int fz_twrite(void *ctx, void *c, const uint8_t *b, size_t n) { (void)ctx; (void)c; (void)b; return (int)n; }
static int fz_tread(void *ctx, void *c, uint8_t *b, size_t n, uint32_t t)
{
    fz *z = ctx;
    size_t left = z->resp_len - z->resp_off;
    (void)c; (void)t;
    if (left == 0)
        return HIL_IO_CLOSED;
    if (n > left) n = left;
    if (n > 97) n = 97;
    memcpy(b, z->resp + z->resp_off, n);
    z->resp_off += n;
    return (int)n;
}
static void fz_tclose(void *ctx, void *c) { (void)ctx; (void)c; }

static hil_agent agent;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t copy[1 << 16];
    static char scratch[1 << 16];
    hil_platform p;
    fz z;
    hil_identity id = {"fuzz", "fuzz", "02:00:00:00:00:00", HIL_DIALECT_DEFAULT};
    size_t split, i, n;
    hil_dps_result res;
    hil_http_response hr;

    if (size > sizeof copy - 1)
        size = sizeof copy - 1;
    memset(&z, 0, sizeof z);
    memset(&p, 0, sizeof p);
    p.ctx = &z;
    p.console_write = fz_write;
    p.time_get = fz_time_get;
    p.time_set = fz_time_set;
    p.millis = fz_millis;
    p.sleep_ms = fz_sleep;
    p.reset = fz_reset;
    p.hmac_sha256 = host_hmac_sha256;
    p.wifi_join = fz_wifi;
    p.tls_connect = fz_connect;
    p.tls_write = fz_twrite;
    p.tls_read = fz_tread;
    p.tls_close = fz_tclose;
    id.dialect = size > 0 ? (hil_dialect)(data[0] % 3) : HIL_DIALECT_DEFAULT;
    hil_agent_init(&agent, &p, &id);

    /* the tail after a 0x00 byte is what the fake DPS answers */
    split = size;
    for (i = 0; i < size; i++)
        if (data[i] == 0) { split = i; break; }
    z.resp = split < size ? data + split + 1 : (const uint8_t *)"";
    z.resp_len = split < size ? size - split - 1 : 0;

    /* console input in uneven pieces */
    for (i = 0; i < split; i += n) {
        n = 1 + (size_t)(data[i] % 61);
        if (n > split - i)
            n = split - i;
        if (hil_agent_feed(&agent, data + i, n))
            hil_agent_init(&agent, &p, &id);
    }
    hil_agent_feed(&agent, (const uint8_t *)"\n", 1);

    /* the parsers on their own */
    hil_json_parse_dps((const char *)data, size, &res);
    hil_json_valid((const char *)data, size);
    memcpy(scratch, data, size);
    hil_http_parse(scratch, size, 1, &hr);
    memcpy(scratch, data, size);
    hil_http_parse(scratch, size, 0, &hr);
    memcpy(scratch, data, size);
    {
        hil_frame f;
        hil_frame_error fe;
        hil_frame_parse(scratch, size, &f, &fe);
    }
    hil_value_decode(copy, (const char *)data, size, &n);
    hil_b64_decode((const char *)data, size, copy, sizeof copy, &n);
    return 0;
}

/*
 * test_core.c - unit tests of the portable core, run on the host.
 *
 * Vectors: shared DPS vectors of the hiltest repository (derive KAT from
 * MicrosoftDocs/azure-docs how-to-legacy-device-symm-key.md; SAS format from
 * Azure/azure-sdk-for-c test_az_iot_provisioning_client_sas.c; HMAC from
 * Azure/azure-iot-sdk-python test_signing_mechanism.py; the computed SAS
 * vectors) and the example frames of protocol/PROTOCOL.md.
 */
#include "hil_core.h"
#include "host_platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_passed, n_failed;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) {                                                                    \
            n_passed++;                                                                  \
        } else {                                                                       \
            n_failed++;                                                                  \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, __func__, #cond); \
        }                                                                              \
    } while (0)

#define CHECK_STR(got, want)                                                           \
    do {                                                                               \
        const char *g_ = (got), *w_ = (want);                                          \
        if (g_ != NULL && strcmp(g_, w_) == 0) {                                       \
            n_passed++;                                                                  \
        } else {                                                                       \
            n_failed++;                                                                  \
            fprintf(stderr, "%s:%d: %s:\n  got  %s\n  want %s\n", __FILE__, __LINE__, __func__, \
                    g_ ? g_ : "(null)", w_);                                           \
        }                                                                              \
    } while (0)

/* ---- a fake platform: captured console, fake clocks, scripted transport ---- */

#define MAX_SCRIPT 8

typedef struct {
    char console[65536];
    size_t console_len;
    int64_t now;
    uint32_t ms;
    uint32_t slept_ms;
    int resets;
    /* transport script: one response per connection */
    const char *responses[MAX_SCRIPT];
    hil_err connect_err[MAX_SCRIPT];
    int nresp, next;
    size_t chunk; /* read size, to exercise incremental parsing */
    char sent[MAX_SCRIPT][4096];
    size_t sent_len[MAX_SCRIPT];
    size_t read_off;
    int conn_open;
    char last_ca[64];
} fake;

static int f_write(void *ctx, const uint8_t *buf, size_t len)
{
    fake *f = ctx;
    if (f->console_len + len > sizeof f->console - 1)
        return -1;
    memcpy(f->console + f->console_len, buf, len);
    f->console_len += len;
    f->console[f->console_len] = '\0';
    return 0;
}
static int64_t f_time_get(void *ctx) { return ((fake *)ctx)->now; }
static int f_time_set(void *ctx, int64_t t)
{
    ((fake *)ctx)->now = t;
    return 0;
}
static uint32_t f_millis(void *ctx) { return ((fake *)ctx)->ms; }
static void f_sleep(void *ctx, uint32_t ms)
{
    ((fake *)ctx)->ms += ms;
    ((fake *)ctx)->slept_ms += ms;
}
static void f_reset(void *ctx) { ((fake *)ctx)->resets++; }
static hil_err f_wifi(void *ctx, const char *ssid, const char *pw, uint32_t t, char *ip, size_t n)
{
    (void)ctx; (void)pw; (void)t;
    if (strcmp(ssid, "nowhere") == 0)
        return HIL_E_TIMEOUT;
    snprintf(ip, n, "192.168.4.2");
    return HIL_OK;
}
static hil_err f_connect(void *ctx, const char *host, uint16_t port, const char *ca, size_t ca_len,
                         uint32_t timeout_ms, void **conn)
{
    fake *f = ctx;
    (void)host; (void)port; (void)ca_len; (void)timeout_ms;
    snprintf(f->last_ca, sizeof f->last_ca, "%s", ca ? ca : "(none)");
    if (f->next >= f->nresp)
        return HIL_E_NETWORK;
    if (f->connect_err[f->next] != HIL_OK)
        return f->connect_err[f->next++];
    f->read_off = 0;
    f->conn_open = 1;
    f->sent_len[f->next] = 0;
    *conn = f;
    return HIL_OK;
}
static int f_twrite(void *ctx, void *conn, const uint8_t *buf, size_t len)
{
    fake *f = ctx;
    size_t *n = &f->sent_len[f->next];
    (void)conn;
    if (*n + len > sizeof f->sent[0])
        return -1;
    memcpy(f->sent[f->next] + *n, buf, len);
    *n += len;
    return (int)len;
}
static int f_tread(void *ctx, void *conn, uint8_t *buf, size_t len, uint32_t timeout_ms)
{
    fake *f = ctx;
    const char *r = f->responses[f->next];
    size_t left = strlen(r) - f->read_off, n = f->chunk ? f->chunk : len;
    (void)conn; (void)timeout_ms;
    if (left == 0)
        return HIL_IO_CLOSED;
    if (n > left) n = left;
    if (n > len) n = len;
    memcpy(buf, r + f->read_off, n);
    f->read_off += n;
    f->ms += 10;
    return (int)n;
}
static void f_tls_error(void *ctx, char *buf, size_t cap)
{
    (void)ctx;
    snprintf(buf, cap, "The certificate validity starts in the future");
}

static void f_tclose(void *ctx, void *conn)
{
    fake *f = ctx;
    (void)conn;
    f->conn_open = 0;
    f->next++;
}

static fake F;
static hil_agent A;
static hil_platform P;

static void setup(hil_dialect d)
{
    hil_identity id = {"host", "host", "02:00:00:00:00:01", HIL_DIALECT_DEFAULT};
    memset(&F, 0, sizeof F);
    memset(&P, 0, sizeof P);
    P.ctx = &F;
    P.console_write = f_write;
    P.time_get = f_time_get;
    P.time_set = f_time_set;
    P.millis = f_millis;
    P.sleep_ms = f_sleep;
    P.reset = f_reset;
    P.hmac_sha256 = host_hmac_sha256;
    P.ca_check = host_ca_check;
    P.wifi_join = f_wifi;
    P.tls_connect = f_connect;
    P.tls_write = f_twrite;
    P.tls_read = f_tread;
    P.tls_close = f_tclose;
    id.dialect = d;
    hil_agent_init(&A, &P, &id);
}

/* Builds a request frame with a correct CRC from "VERB k=v ..." (values already encoded). */
static const char *req(uint16_t seq, const char *rest)
{
    static char buf[HIL_MAX_FRAME * 2];
    int n = snprintf(buf, sizeof buf, "@@HIL REQ %u %s ", seq, rest);
    uint32_t crc = hil_crc32(buf, (size_t)n);
    snprintf(buf + n, sizeof buf - (size_t)n, "*%08X\n", (unsigned)crc);
    return buf;
}

static void feed(const char *s)
{
    F.console_len = 0;
    F.console[0] = '\0';
    hil_agent_feed(&A, (const uint8_t *)s, strlen(s));
}

/* The last frame on the console, parsed; value of key as a string. */
static hil_frame last;
static char lastline[HIL_MAX_FRAME + 1];
static char valbuf[HIL_MAX_FRAME + 1];

static int parse_last(void)
{
    hil_frame_error fe;
    char *p = F.console, *start = NULL, *nl;
    size_t n;
    while ((p = strstr(p, "@@HIL")) != NULL) {
        start = p;
        p++;
    }
    if (start == NULL)
        return -1;
    nl = strchr(start, '\n');
    n = nl ? (size_t)(nl - start) : strlen(start);
    memcpy(lastline, start, n);
    lastline[n] = '\0';
    return hil_frame_parse(lastline, n, &last, &fe) == HIL_OK ? 0 : -1;
}

static const char *val(const char *key)
{
    size_t i;
    for (i = 0; i < last.nargs; i++) {
        if (last.args[i].key_len == strlen(key) && memcmp(last.args[i].key, key, strlen(key)) == 0) {
            memcpy(valbuf, last.args[i].val, last.args[i].val_len);
            valbuf[last.args[i].val_len] = '\0';
            return valbuf;
        }
    }
    return NULL;
}

/* ---- tests ---- */

static void test_crc32(void)
{
    CHECK(hil_crc32("123456789", 9) == 0xCBF43926u);
    CHECK(hil_crc32("", 0) == 0);
}

static void test_writer_spec_examples(void)
{
    char buf[512];
    hil_writer w;
    const uint8_t bin[] = {0x00, 0x01, 0xFF};
    hil_fw_begin(&w, buf, sizeof buf, HIL_KIND_REQ, 7, "PING");
    hil_fw_arg_str(&w, "data", "hello board");
    CHECK(hil_fw_end(&w) > 0);
    CHECK_STR(buf, "@@HIL REQ 7 PING data=hello%20board *FC8F5FAF\n");
    hil_fw_begin(&w, buf, sizeof buf, HIL_KIND_OK, 7, "PING");
    hil_fw_arg_str(&w, "data", "hello board");
    hil_fw_end(&w);
    CHECK_STR(buf, "@@HIL OK 7 PING data=hello%20board *2DAF3EE5\n");
    hil_fw_begin(&w, buf, sizeof buf, HIL_KIND_OK, 2, "PING");
    hil_fw_arg(&w, "data", bin, sizeof bin);
    hil_fw_end(&w);
    CHECK_STR(buf, "@@HIL OK 2 PING data=%00%01%FF *23AB77E5\n");
    /* a frame that does not fit is refused, not truncated */
    hil_fw_begin(&w, buf, 30, HIL_KIND_OK, 2, "PING");
    hil_fw_arg_str(&w, "data", "0123456789012345678901234567890123456789");
    CHECK(hil_fw_end(&w) == 0);
}

static void test_ready_event(void)
{
    setup(HIL_DIALECT_DEFAULT);
    hil_agent_ready(&A, "poweron");
    CHECK_STR(F.console, "@@HIL EVT 0 READY proto=1 fw=hiltest-agent fw_version=1.0.0 reason=poweron *4C9B4BB0\n");
}

static void test_value_roundtrip(void)
{
    uint8_t all[256], dec[256];
    char enc[768];
    size_t i, n, m;
    unsigned seed = 1;
    for (i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    n = hil_value_encode(enc, sizeof enc, all, sizeof all);
    CHECK(n == hil_value_encoded_len(all, sizeof all));
    CHECK(memchr(enc, ' ', n) == NULL);
    CHECK(hil_value_decode(dec, enc, n, &m) == 0 && m == 256 && memcmp(dec, all, 256) == 0);
    for (i = 0; i < 200; i++) {
        uint8_t v[64];
        size_t k, len = (size_t)(i % 64);
        for (k = 0; k < len; k++) {
            seed = seed * 1103515245u + 12345u;
            v[k] = (uint8_t)(seed >> 16);
        }
        n = hil_value_encode(enc, sizeof enc, v, len);
        CHECK(hil_value_decode(dec, enc, n, &m) == 0 && m == len && memcmp(dec, v, len) == 0);
    }
    /* lowercase hex accepted; bad escapes rejected */
    CHECK(hil_value_decode(dec, "%ff%0a", 6, &m) == 0 && m == 2 && dec[0] == 0xFF && dec[1] == 0x0A);
    CHECK(hil_value_decode(dec, "%", 1, &m) != 0);
    CHECK(hil_value_decode(dec, "%4", 2, &m) != 0);
    CHECK(hil_value_decode(dec, "%G0", 3, &m) != 0);
    CHECK(hil_value_encode(enc, 2, (const uint8_t *)" ", 1) == (size_t)-1);
}

static void test_base64(void)
{
    uint8_t out[64];
    char enc[16];
    size_t n;
    CHECK(hil_b64_decode("Zm9vYg==", 8, out, sizeof out, &n) == 0 && n == 4 && memcmp(out, "foob", 4) == 0);
    CHECK(hil_b64_decode("Zm9vYmE=", 8, out, sizeof out, &n) == 0 && n == 5);
    CHECK(hil_b64_decode("Zm9vYmFy", 8, out, sizeof out, &n) == 0 && n == 6);
    CHECK(hil_b64_decode("Zm9vYg=", 7, out, sizeof out, &n) != 0);  /* length */
    CHECK(hil_b64_decode("Zm9vYh==", 8, out, sizeof out, &n) != 0); /* trailing bits */
    CHECK(hil_b64_decode("Zm=vYg==", 8, out, sizeof out, &n) != 0); /* padding inside */
    CHECK(hil_b64_decode("Zm9v-g==", 8, out, sizeof out, &n) != 0); /* URL alphabet */
    CHECK(hil_b64_decode("Zm9vYmFy", 8, out, 5, &n) != 0);          /* capacity */
    CHECK(hil_b64_encode((const uint8_t *)"foob", 4, enc, sizeof enc) == 8);
    CHECK_STR(enc, "Zm9vYg==");
}

static void test_frame_parse(void)
{
    static char line[HIL_MAX_FRAME * 2];
    hil_frame f;
    hil_frame_error fe;
    const char *r;

    r = req(12, "SAS key=a%3Db policy=");
    snprintf(line, sizeof line, "%s", r);
    CHECK(hil_frame_parse(line, strlen(line) - 1, &f, &fe) == HIL_OK);
    CHECK(f.kind == HIL_KIND_REQ && f.seq == 12 && strcmp(f.verb, "SAS") == 0 && f.nargs == 2);
    CHECK(f.args[0].val_len == 3 && memcmp(f.args[0].val, "a=b", 3) == 0);
    CHECK(f.args[1].val_len == 0);

    /* CR before LF */
    snprintf(line, sizeof line, "@@HIL REQ 7 PING data=hello%%20board *FC8F5FAF\r");
    CHECK(hil_frame_parse(line, strlen(line), &f, &fe) == HIL_OK);

    /* bad CRC keeps the seq and verb */
    snprintf(line, sizeof line, "@@HIL REQ 7 PING data=hello%%20board *FC8F5FAE");
    CHECK(hil_frame_parse(line, strlen(line), &f, &fe) == HIL_E_BAD_CRC);
    CHECK(fe.seq == 7 && strcmp(fe.verb, "PING") == 0);

    /* grammar errors with a correct CRC */
    {
        static const char *bad[] = {
            "PING data=%4",          /* truncated escape */
            "PING data=%ZZ",         /* bad escape */
            "PING data=1 data=2",    /* duplicate key */
            "PING Data=1",           /* uppercase key */
            "PING data",             /* no '=' */
            "PING  data=1",          /* empty token */
            "ping",                  /* lowercase verb */
            "PING =1",               /* empty key */
            "PING ",                 /* empty token before the CRC */
            "PING data=1 ",          /* the same after an argument */
        };
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            snprintf(line, sizeof line, "%s", req(3, bad[i]));
            CHECK(hil_frame_parse(line, strlen(line) - 1, &f, &fe) == HIL_E_BAD_FRAME);
        }
    }
    /* a bad seq (leading zero) */
    {
        int n = snprintf(line, sizeof line, "@@HIL REQ 03 PING ");
        snprintf(line + n, sizeof line - (size_t)n, "*%08X", (unsigned)hil_crc32(line, (size_t)n));
        CHECK(hil_frame_parse(line, strlen(line), &f, &fe) == HIL_E_BAD_FRAME);
        CHECK(fe.seq == -1);
    }
    /* no CRC */
    snprintf(line, sizeof line, "@@HIL REQ 3 PING");
    CHECK(hil_frame_parse(line, strlen(line), &f, &fe) == HIL_E_BAD_FRAME);
    CHECK(fe.seq == 3);
    /* junk */
    snprintf(line, sizeof line, "@@HIL \x01\x02 *00000000");
    CHECK(hil_frame_parse(line, strlen(line), &f, &fe) != HIL_OK);
}

static void test_agent_frames(void)
{
    char big[HIL_MAX_FRAME + 64];
    setup(HIL_DIALECT_DEFAULT);

    /* spec examples, byte for byte */
    feed("@@HIL REQ 2 PING data=%00%01%FF *FB704683\n");
    CHECK_STR(F.console, "@@HIL OK 2 PING data=%00%01%FF *23AB77E5\n");
    feed("@@HIL REQ 3 DERIVE group_key=8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw== reg_id=sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6 *1A223A56\n");
    CHECK_STR(F.console, "@@HIL OK 3 DERIVE device_key=Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc= *EDD7CE76\n");

    /* junk before the marker on the same line, and lines without it */
    feed("garbage\x01\xff noise\nI (123) wifi: started\nxx@@HIL REQ 7 PING data=hello%20board *FC8F5FAF\r\n");
    CHECK_STR(F.console, "@@HIL OK 7 PING data=hello%20board *2DAF3EE5\n");
    /* a marker split over two feeds */
    F.console_len = 0;
    hil_agent_feed(&A, (const uint8_t *)"@@H", 3);
    hil_agent_feed(&A, (const uint8_t *)"IL REQ 7 PING data=hello%20board *FC8F5FAF\n", 44);
    CHECK_STR(F.console, "@@HIL OK 7 PING data=hello%20board *2DAF3EE5\n");

    /* bad CRC: ERR with the seq */
    feed("@@HIL REQ 9 PING data=x *00000000\n");
    CHECK(parse_last() == 0 && last.kind == HIL_KIND_ERR && last.seq == 9);
    CHECK_STR(val("code"), "BAD_CRC");
    CHECK_STR(last.verb, "PING");
    /* no seq: ERR 0 FRAME */
    feed("@@HIL what\n");
    CHECK(parse_last() == 0 && last.seq == 0);
    CHECK_STR(last.verb, "FRAME");
    CHECK_STR(val("code"), "BAD_FRAME");
    /* bad escape */
    feed(req(10, "PING data=%zz"));
    CHECK(parse_last() == 0 && last.seq == 10);
    CHECK_STR(val("code"), "BAD_FRAME");
    /* unknown verb, unknown argument */
    feed(req(11, "FLY to=moon"));
    CHECK(parse_last() == 0 && last.seq == 11);
    CHECK_STR(val("code"), "UNKNOWN_VERB");
    feed(req(12, "PING data=1 extra=2"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("code"), "BAD_ARG");
    CHECK_STR(val("arg"), "extra");
    /* a response kind sent to the board */
    feed("@@HIL OK 7 PING data=hello%20board *2DAF3EE5\n");
    CHECK(parse_last() == 0 && last.kind == HIL_KIND_ERR);

    /* too long: answered TOO_LONG with the seq, and the next frame still works */
    {
        int n = snprintf(big, sizeof big, "@@HIL REQ 13 PING data=");
        memset(big + n, 'a', HIL_MAX_FRAME);
        big[n + HIL_MAX_FRAME] = '\0';
        strcat(big, " *00000000\n");
        feed(big);
        CHECK(parse_last() == 0 && last.seq == 13);
        CHECK_STR(val("code"), "TOO_LONG");
        feed(req(14, "PING data=ok"));
        CHECK(parse_last() == 0 && last.kind == HIL_KIND_OK && last.seq == 14);
    }
    /* the longest frame that fits is accepted */
    {
        int n = snprintf(big, sizeof big, "PING data=");
        size_t fill = HIL_MAX_FRAME - strlen("@@HIL REQ 15 ") - (size_t)n - 11;
        memset(big + n, 'b', fill);
        big[(size_t)n + fill] = '\0';
        feed(req(15, big));
        CHECK(strlen(req(15, big)) == HIL_MAX_FRAME);
        CHECK(parse_last() == 0 && last.seq == 15);
        CHECK(last.kind == HIL_KIND_OK || last.kind == HIL_KIND_ERR);
    }
}

static void test_hello_time_reset(void)
{
    setup(HIL_DIALECT_AZURE_IOT_SDK_C);
    feed(req(1, "HELLO proto=1 max=4096"));
    CHECK(parse_last() == 0 && last.kind == HIL_KIND_OK);
    CHECK_STR(val("proto"), "1");
    CHECK_STR(val("fw"), "hiltest-agent");
    CHECK_STR(val("dialect"), "azure-iot-sdk-c");
    CHECK_STR(val("max"), "4096");
    CHECK_STR(val("blob_max"), "8192");
    CHECK_STR(val("caps"), "ping,reset,time,derive,sas,dps.request,dps.register,tls.ca,net.wifi,dps.config,blob");
    feed(req(2, "HELLO proto=0"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("code"), "BAD_ARG");
    feed(req(3, "HELLO proto=1 max=100"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("arg"), "max");

    F.now = 5;
    feed(req(4, "TIME.GET"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("unix"), "5");
    CHECK_STR(val("set"), "0");
    feed(req(5, "TIME.SET unix=1700000000"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("unix"), "1700000000");
    feed(req(6, "TIME.GET"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("set"), "1");

    feed(req(7, "NET.WIFI ssid=lab password=pw"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("ip"), "192.168.4.2");
    feed(req(8, "NET.WIFI ssid=nowhere"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("code"), "TIMEOUT");

    /* RESET: OK, then the rest of the input is dropped */
    {
        char two[256];
        snprintf(two, sizeof two, "%s", req(9, "RESET"));
        strcat(two, req(10, "PING"));
        F.console_len = 0;
        CHECK(hil_agent_feed(&A, (const uint8_t *)two, strlen(two)) == 1);
        CHECK(F.resets == 1);
        CHECK(parse_last() == 0 && last.seq == 9 && last.kind == HIL_KIND_OK);
    }
}

static void test_derive(void)
{
    char out[HIL_SIG_MAX];
    const char *bad = NULL;
    const char *gk = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";
    const char *reg = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6";
    setup(HIL_DIALECT_DEFAULT);
    CHECK(hil_derive(&P, (const uint8_t *)gk, strlen(gk), (const uint8_t *)reg, strlen(reg), out, &bad) == HIL_OK);
    CHECK_STR(out, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=");
    CHECK(hil_derive(&P, (const uint8_t *)"", 0, (const uint8_t *)reg, strlen(reg), out, &bad) == HIL_E_BAD_ARG);
    CHECK_STR(bad, "group_key");
    CHECK(hil_derive(&P, (const uint8_t *)gk, strlen(gk), (const uint8_t *)"bad id!", 7, out, &bad) == HIL_E_BAD_ARG);
    CHECK_STR(bad, "reg_id");
    feed(req(4, "DERIVE group_key=not-base64 reg_id=x"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("arg"), "group_key");
}

static void test_hmac_vector(void)
{
    uint8_t key[64], mac[32];
    size_t n;
    char b64[HIL_SIG_MAX];
    const char *k = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=";
    CHECK(hil_b64_decode(k, strlen(k), key, sizeof key, &n) == 0);
    CHECK(host_hmac_sha256(NULL, key, n, (const uint8_t *)"sign this message", 17, mac) == 0);
    hil_b64_encode(mac, 32, b64, sizeof b64);
    CHECK_STR(b64, "8NJRMT83CcplGrAGaUVIUM/md5914KpWVNngSVoF9/M=");
}

static void sas_case(hil_dialect d, const char *policy, const char *want_sts, const char *want_sig,
                     const char *want_token)
{
    hil_sas s;
    hil_sas_params in;
    const char *bad = "";
    memset(&in, 0, sizeof in);
    in.dialect = d;
    in.scope = (const uint8_t *)"0neFEEDC0DE";
    in.scope_len = 11;
    in.reg = (const uint8_t *)"sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6";
    in.reg_len = 36;
    in.key = (const uint8_t *)"Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=";
    in.key_len = 44;
    in.expiry = 1578941692;
    in.policy = (const uint8_t *)policy;
    in.policy_len = policy ? strlen(policy) : 0;
    CHECK(hil_sas_build(&P, &in, &s, &bad) == HIL_OK);
    CHECK_STR(s.sts, want_sts);
    CHECK_STR(s.sig, want_sig);
    CHECK_STR(s.token, want_token);
}

static void test_sas_vectors(void)
{
    char buf[256];
    hil_sas s;
    hil_sas_params in;
    const char *bad = "";
    setup(HIL_DIALECT_DEFAULT);
    /* vectors.json "sas", computed, dialect default */
    sas_case(HIL_DIALECT_DEFAULT, "registration",
             "0neFEEDC0DE%2Fregistrations%2Fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6\n1578941692",
             "WxsrGpYfYNcVs2k6l9OQRN493PGmfVtHXNWG4ANEGnM=",
             "SharedAccessSignature sr=0neFEEDC0DE%2Fregistrations%2Fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=WxsrGpYfYNcVs2k6l9OQRN493PGmfVtHXNWG4ANEGnM%3D&se=1578941692&skn=registration");
    /* vectors.json "sas", computed, dialect azure-sdk-for-c (key_name registration) */
    sas_case(HIL_DIALECT_AZURE_SDK_FOR_C, "registration",
             "0neFEEDC0DE%2fregistrations%2fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6\n1578941692",
             "tR1ZX3n+FGprnnBoE9eljZiAFpJyRtdUjHgqMI8xMpk=",
             "SharedAccessSignature sr=0neFEEDC0DE%2fregistrations%2fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=tR1ZX3n%2BFGprnnBoE9eljZiAFpJyRtdUjHgqMI8xMpk%3D&se=1578941692&skn=registration");
    /* azure-iot-sdk-c signs the same lowercase sr; its encoder writes %2b and %3d */
    sas_case(HIL_DIALECT_AZURE_IOT_SDK_C, "registration",
             "0neFEEDC0DE%2fregistrations%2fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6\n1578941692",
             "tR1ZX3n+FGprnnBoE9eljZiAFpJyRtdUjHgqMI8xMpk=",
             "SharedAccessSignature sr=0neFEEDC0DE%2fregistrations%2fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=tR1ZX3n%2bFGprnnBoE9eljZiAFpJyRtdUjHgqMI8xMpk%3d&se=1578941692&skn=registration");

    /* vectors.json "sas_format" (azure-sdk-for-c test): resource and sig encoding */
    CHECK(hil_sas_resource(HIL_DIALECT_AZURE_SDK_FOR_C, (const uint8_t *)"0neFEEDC0DE", 11,
                           (const uint8_t *)"myRegistrationId", 16, buf, sizeof buf) != (size_t)-1);
    CHECK_STR(buf, "0neFEEDC0DE%2fregistrations%2fmyRegistrationId");
    hil_urlenc(HIL_DIALECT_AZURE_SDK_FOR_C, (const uint8_t *)"cS1eHM/lDjsRsrZV9508wOFrgmZk4g8FNg8NwHVSiSQ", 43, buf, sizeof buf);
    CHECK_STR(buf, "cS1eHM%2FlDjsRsrZV9508wOFrgmZk4g8FNg8NwHVSiSQ");

    /* vectors.json "sas" docs-hub-sas: a raw resource, no skn */
    memset(&in, 0, sizeof in);
    in.dialect = HIL_DIALECT_DEFAULT;
    in.resource = (const uint8_t *)"MyExampleHub.azure-devices.net/devices/my-symkey-device";
    in.resource_len = strlen((const char *)in.resource);
    in.key = (const uint8_t *)"18RQk/hOPJR9EbsJlk2j8WA6vWaj/yi+oaYg7zmxfQNdOyMSu+SJ8O7TSlZhDJCYmn4rzEiVKIzNiVAWjLxrGA==";
    in.key_len = strlen((const char *)in.key);
    in.expiry = 1663119026;
    CHECK(hil_sas_build(&P, &in, &s, &bad) == HIL_OK);
    CHECK_STR(s.sts, "MyExampleHub.azure-devices.net%2Fdevices%2Fmy-symkey-device\n1663119026");
    CHECK_STR(s.token, "SharedAccessSignature sr=MyExampleHub.azure-devices.net%2Fdevices%2Fmy-symkey-device&sig=f%2BwW8XOKeJOtiPc9Iwjc4OpExvPM7NlhM9qxN2a1aAM%3D&se=1663119026");

    /* encoders: the characters each dialect keeps */
    hil_urlenc(HIL_DIALECT_DEFAULT, (const uint8_t *)"a~!()*/ +", 9, buf, sizeof buf);
    CHECK_STR(buf, "a~%21%28%29%2A%2F%20%2B");
    hil_urlenc(HIL_DIALECT_AZURE_IOT_SDK_C, (const uint8_t *)"a~!()*/ +\xe9\x80", 11, buf, sizeof buf);
    CHECK_STR(buf, "a%7e!()*%2f%20%2b%c3%a9%c2%80");

    /* through the agent: SAS with ttl from the board clock, policy given empty */
    setup(HIL_DIALECT_AZURE_SDK_FOR_C);
    F.now = 1578941692 - 100;
    feed(req(20, "SAS id_scope=0neFEEDC0DE reg_id=sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6 key=Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc= ttl=100 policy=registration"));
    CHECK(parse_last() == 0 && last.kind == HIL_KIND_OK);
    CHECK_STR(val("se"), "1578941692");
    CHECK_STR(val("sig"), "tR1ZX3n+FGprnnBoE9eljZiAFpJyRtdUjHgqMI8xMpk=");
    CHECK_STR(val("sr"), "0neFEEDC0DE%2fregistrations%2fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6");
    feed(req(21, "SAS id_scope=0neFEEDC0DE reg_id=sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6 key=Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc= expiry=1578941692"));
    CHECK(parse_last() == 0 && last.kind == HIL_KIND_OK);
    CHECK(strstr(val("token"), "skn=") == NULL); /* azure-sdk-for-c: no skn by default */
    feed(req(22, "SAS id_scope=0neFEEDC0DE reg_id=x key=AAAA expiry=1 ttl=2"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("arg"), "ttl");
    feed(req(23, "SAS id_scope=0ne/x reg_id=x key=AAAA expiry=1"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("arg"), "id_scope");
    feed(req(24, "SAS reg_id=x key=AAAA expiry=1 resource=a/b"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("arg"), "resource");
}

static const char *REG_DEFAULT =
    "PUT /0neFEEDC0DE/registrations/sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6/register?api-version=2021-06-01 HTTP/1.1\r\n"
    "Host: global.azure-devices-provisioning.net\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 57\r\n"
    "Authorization: SharedAccessSignature sr=0neFEEDC0DE%2Fregistrations%2Fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=WxsrGpYfYNcVs2k6l9OQRN493PGmfVtHXNWG4ANEGnM%3D&se=1578941692&skn=registration\r\n"
    "\r\n"
    "{\"registrationId\":\"sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6\"}";

static void test_dps_request_bytes(void)
{
    char buf[2048];
    hil_dps_config c;
    const char *tok = "SharedAccessSignature sr=x&sig=y&se=1";
    size_t n;
    setup(HIL_DIALECT_DEFAULT);
    feed(req(30, "DPS.REQUEST id_scope=0neFEEDC0DE reg_id=sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6 key=Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc= expiry=1578941692"));
    CHECK(parse_last() == 0 && last.kind == HIL_KIND_OK);
    CHECK_STR(val("request"), REG_DEFAULT);
    /* group_key derives the same device key first */
    feed(req(31, "DPS.REQUEST id_scope=0neFEEDC0DE reg_id=sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6 group_key=8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw== expiry=1578941692"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("request"), REG_DEFAULT);
    /* payload, port and api version */
    hil_dps_config_default(&c);
    strcpy(c.host, "127.0.0.1");
    c.port = 8443;
    strcpy(c.api_version, "2019-03-31");
    n = hil_dps_register_request(buf, sizeof buf, &c, (const uint8_t *)"0ne1", 4, (const uint8_t *)"dev-1", 5,
                                 tok, strlen(tok), (const uint8_t *)"{\"a\": [1]}", 10);
    CHECK(n == strlen(buf));
    CHECK_STR(buf, "PUT /0ne1/registrations/dev-1/register?api-version=2019-03-31 HTTP/1.1\r\n"
                   "Host: 127.0.0.1:8443\r\n"
                   "Content-Type: application/json\r\n"
                   "Content-Length: 47\r\n"
                   "Authorization: SharedAccessSignature sr=x&sig=y&se=1\r\n"
                   "\r\n"
                   "{\"registrationId\":\"dev-1\",\"payload\":{\"a\": [1]}}");
    n = hil_dps_operation_request(buf, sizeof buf, &c, (const uint8_t *)"0ne1", 4, (const uint8_t *)"dev-1", 5,
                                  "4.abc", tok, strlen(tok));
    CHECK_STR(buf, "GET /0ne1/registrations/dev-1/operations/4.abc?api-version=2019-03-31 HTTP/1.1\r\n"
                   "Host: 127.0.0.1:8443\r\n"
                   "Authorization: SharedAccessSignature sr=x&sig=y&se=1\r\n\r\n");
    CHECK(hil_dps_register_request(buf, 50, &c, (const uint8_t *)"0ne1", 4, (const uint8_t *)"dev-1", 5,
                                   tok, strlen(tok), NULL, 0) == 0);
    /* invalid payload */
    feed(req(32, "DPS.REQUEST id_scope=0ne1 reg_id=dev-1 key=AAAA expiry=5 payload={\"a\":}"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("arg"), "payload");
    /* a small host max moves the request into a blob */
    feed(req(33, "HELLO proto=1 max=256"));
    feed(req(34, "DPS.REQUEST id_scope=0neFEEDC0DE reg_id=sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6 key=Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc= expiry=1578941692"));
    CHECK(parse_last() == 0 && last.kind == HIL_KIND_OK);
    CHECK_STR(val("request.blob"), "request");
    {
        char lenbuf[16];
        snprintf(lenbuf, sizeof lenbuf, "%zu", strlen(REG_DEFAULT));
        CHECK_STR(val("request.len"), lenbuf);
    }
    /* fetch it back in pieces */
    {
        char got[1024] = "";
        int off = 0, rounds = 0;
        for (;;) {
            char r[64];
            snprintf(r, sizeof r, "BLOB.GET name=request off=%d", off);
            feed(req((uint16_t)(40 + rounds), r));
            CHECK(F.console_len <= 256);
            if (parse_last() != 0 || last.kind != HIL_KIND_OK || ++rounds > 20)
                break;
            strcat(got, val("data"));
            off = (int)strlen(got);
            if ((size_t)off >= strlen(REG_DEFAULT))
                break;
        }
        CHECK_STR(got, REG_DEFAULT);
    }
}

static void test_blobs(void)
{
    setup(HIL_DIALECT_DEFAULT);
    feed(req(1, "BLOB.PUT name=pem off=0 data=-----BEGIN%20"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("len"), "11");
    feed(req(2, "BLOB.PUT name=pem off=11 data=CERTIFICATE----- total=27"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("len"), "27");
    feed(req(3, "BLOB.PUT name=pem off=99 data=x"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("arg"), "off");
    feed(req(4, "BLOB.GET name=pem off=5 max=5"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("data"), "BEGIN");
    CHECK_STR(val("total"), "27");
    feed(req(5, "PING data.blob=pem"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("data"), "-----BEGIN CERTIFICATE-----");
    feed(req(6, "PING data.blob=nope"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("arg"), "data.blob");
    feed(req(7, "PING data.blob=pem data=x"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("code"), "BAD_ARG");
    feed(req(8, "BLOB.PUT name=Bad off=0 data=x"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("arg"), "name");
    feed(req(9, "BLOB.GET name=pem off=28"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("arg"), "off");
    /* TLS.CA with a PEM that mbedTLS cannot parse */
    feed(req(10, "TLS.CA pem.blob=pem"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("arg"), "pem");
    /* every slot in use: the blob written longest ago ("pem") is reused */
    {
        int i;
        for (i = 0; i < HIL_BLOB_COUNT; i++) {
            char r[64];
            snprintf(r, sizeof r, "BLOB.PUT name=b%d off=0 data=x%d", i, i);
            feed(req((uint16_t)(20 + i), r));
            CHECK(parse_last() == 0 && last.kind == HIL_KIND_OK);
        }
        feed(req(40, "BLOB.GET name=pem"));
        CHECK(parse_last() == 0);
        CHECK_STR(val("code"), "BAD_ARG");
        feed(req(41, "BLOB.GET name=b0"));
        CHECK(parse_last() == 0);
        CHECK_STR(val("data"), "x0");
        {
            char r[64], want[16];
            snprintf(r, sizeof r, "BLOB.GET name=b%d", HIL_BLOB_COUNT - 1);
            snprintf(want, sizeof want, "x%d", HIL_BLOB_COUNT - 1);
            feed(req(42, r));
            CHECK(parse_last() == 0);
            CHECK_STR(val("data"), want);
        }
    }
}

static void test_json(void)
{
    hil_dps_result r;
    static const char stage1[] =
        "{\"operationId\":\"4.d0a671905ea5b2c8.e7173b7b-0e54-4aa0-9d20-aeb1b89e6c7d\",\"status\":\"assigning\"}";
    static const char assigned[] =
        "{\"operationId\":\"5.316aac5bdc130deb.b1e02da8-c3a0-4ff2-a121-7ea7a6b7f550\",\"status\":\"assigned\",\n"
        " \"registrationState\":{\"x509\":{},\"registrationId\":\"my-symkey-device\",\"createdDateTimeUtc\":\"2022-08-31T22:02:50.5163352Z\","
        "\"assignedHub\":\"MyExampleHub.azure-devices.net\",\"deviceId\":\"my-symkey-device\",\"status\":\"assigned\","
        "\"substatus\":\"initialAssignment\",\"lastUpdatedDateTimeUtc\":\"2022-08-31T22:02:50.7370676Z\","
        "\"etag\":\"IjY5MDAzNTUyLTAwMDAtMDMwMC0wMDAwLTYzMGZkYThhMDAwMCI=\",\"payload\":{\"a\":[1,2.5e3,true,null]}}}";
    static const char err401[] =
        "{\"errorCode\":401002,\"trackingId\":\"8ad0463c-6427-4479-9dfa-3e8bb7003e9b\",\"message\":\"Invalid certificate.\","
        "\"timestampUtc\":\"2020-04-10T05:24:22.4718526Z\"}";
    static const char failed[] =
        "{\"operationId\":\"op\",\"status\":\"failed\",\"registrationState\":{\"status\":\"failed\",\"errorCode\":400209,"
        "\"errorMessage\":\"Custom allocation failed with status code: 400\\nline \\\"2\\\" \\u00e9\\ud83d\\ude00\"}}";
    char deep[200];
    size_t i;

    CHECK(hil_json_parse_dps(stage1, strlen(stage1), &r) == 0);
    CHECK_STR(r.operation_id, "4.d0a671905ea5b2c8.e7173b7b-0e54-4aa0-9d20-aeb1b89e6c7d");
    CHECK_STR(r.status, "assigning");
    CHECK_STR(r.assigned_hub, "");
    CHECK(hil_json_parse_dps(assigned, strlen(assigned), &r) == 0);
    CHECK_STR(r.status, "assigned");
    CHECK_STR(r.assigned_hub, "MyExampleHub.azure-devices.net");
    CHECK_STR(r.device_id, "my-symkey-device");
    CHECK_STR(r.rs_status, "assigned");
    CHECK(hil_json_parse_dps(err401, strlen(err401), &r) == 0);
    CHECK_STR(r.error_code, "401002");
    CHECK_STR(r.message, "Invalid certificate.");
    CHECK_STR(r.status, "");
    CHECK(hil_json_parse_dps(failed, strlen(failed), &r) == 0);
    CHECK_STR(r.rs_error_code, "400209");
    CHECK_STR(r.rs_error_message, "Custom allocation failed with status code: 400\nline \"2\" \xc3\xa9\xf0\x9f\x98\x80");

    /* invalid bodies */
    {
        static const char *bad[] = {"", "[]", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":01}",
                                    "{\"a\":\"\x01\"}", "{\"a\":\"\\x\"}", "{\"a\":tru}", "{} x", "{\"a\":\"\\u12\"}",
                                    "{\"a\":-}", "{\"a\":1.}", "{\"a\":[1 2]}"};
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
            CHECK(hil_json_parse_dps(bad[i], strlen(bad[i]), &r) != 0);
    }
    /* depth is bounded */
    for (i = 0; i < 100; i++)
        deep[i] = '[';
    for (i = 100; i < 200; i++)
        deep[i] = ']';
    CHECK(hil_json_valid(deep, 200) != 0);
    CHECK(hil_json_valid(deep + 80, 40) == 0);
    /* long strings are truncated, not overflowed */
    {
        static char longs[1200];
        size_t n = (size_t)snprintf(longs, sizeof longs, "{\"operationId\":\"");
        memset(longs + n, 'x', 1000);
        n += 1000;
        n += (size_t)snprintf(longs + n, sizeof longs - n, "\",\"status\":\"assigned\"}");
        CHECK(hil_json_parse_dps(longs, n, &r) == 0);
        CHECK(strlen(r.operation_id) == HIL_JSON_STR - 1);
        CHECK_STR(r.status, "assigned");
    }
    {
        const char *ok = " {\"a\": [1, -2.5E+3, \"x\", {}]} ";
        CHECK(hil_json_valid(ok, strlen(ok)) == 0);
    }
}

static void test_http_parse(void)
{
    char b[512];
    hil_http_response r;
    strcpy(b, "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nretry-after: 3\r\nContent-Length: 7\r\n\r\n{\"a\":");
    CHECK(hil_http_parse(b, strlen(b), 0, &r) == HIL_HTTP_MORE);
    strcat(b, "1}");
    CHECK(hil_http_parse(b, strlen(b), 0, &r) == HIL_HTTP_DONE);
    CHECK(r.status == 202 && r.retry_after == 3 && r.body_len == 7);
    strcpy(b, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n");
    CHECK(hil_http_parse(b, strlen(b), 0, &r) == HIL_HTTP_DONE);
    CHECK(r.status == 200 && r.body_len == 7 && memcmp(r.body, "{\"a\":1}", 7) == 0 && r.retry_after == -1);
    strcpy(b, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n");
    CHECK(hil_http_parse(b, strlen(b), 0, &r) == HIL_HTTP_MORE);
    CHECK(hil_http_parse(b, strlen(b), 1, &r) == HIL_HTTP_BAD);
    strcpy(b, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    CHECK(hil_http_parse(b, strlen(b), 0, &r) == HIL_HTTP_BAD);
    strcpy(b, "HTTP/1.0 404 Not Found\r\nRetry-After: Fri, 31 Dec 1999 23:59:59 GMT\r\n\r\nnope");
    CHECK(hil_http_parse(b, strlen(b), 0, &r) == HIL_HTTP_MORE);
    CHECK(hil_http_parse(b, strlen(b), 1, &r) == HIL_HTTP_DONE);
    CHECK(r.status == 404 && r.retry_after == -1 && r.body_len == 4);
    strcpy(b, "SSH-2.0-OpenSSH\r\n\r\n");
    CHECK(hil_http_parse(b, strlen(b), 0, &r) == HIL_HTTP_BAD);
    strcpy(b, "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n");
    CHECK(hil_http_parse(b, strlen(b), 0, &r) == HIL_HTTP_BAD);
}

#define REGISTER_ARGS "id_scope=0neFEEDC0DE reg_id=sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6 key=Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc= expiry=1578941692"

static void test_register_flow(void)
{
    static char r202[512], r200[512], r401[512];
    static const char r202b[] =
        "HTTP/1.1 202 Accepted\r\nRetry-After: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        "20\r\n{\"operationId\":\"5.316aac5bdc130d\r\n"
        "22\r\neb.b1e02da8\",\"status\":\"assigning\"}\r\n0\r\n\r\n";
    static const char b202[] = "{\"operationId\":\"5.316aac5bdc130deb.b1e02da8\",\"status\":\"assigning\"}";
    static const char b200[] =
        "{\"operationId\":\"5.316aac5bdc130deb.b1e02da8\",\"status\":\"assigned\",\"registrationState\":"
        "{\"assignedHub\":\"hub.azure-devices.net\",\"deviceId\":\"sn-007\",\"status\":\"assigned\",\"x\":[{}]}}";
    static const char b401[] =
        "{\"errorCode\":401002,\"trackingId\":\"t\",\"message\":\"Unauthorized\",\"timestampUtc\":\"x\"}";
    static const char r404[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found";

    snprintf(r202, sizeof r202,
             "HTTP/1.1 202 Accepted\r\nContent-Type: application/json; charset=utf-8\r\nRetry-After: 3\r\n"
             "Content-Length: %zu\r\n\r\n%s", strlen(b202), b202);
    snprintf(r200, sizeof r200, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(b200), b200);
    snprintf(r401, sizeof r401, "HTTP/1.1 401 Unauthorized\r\nContent-Length: %zu\r\n\r\n%s", strlen(b401), b401);

    /* 202, 202 (chunked), 200 assigned */
    setup(HIL_DIALECT_DEFAULT);
    F.responses[0] = r202;
    F.responses[1] = r202b;
    F.responses[2] = r200;
    F.nresp = 3;
    F.chunk = 7;
    feed(req(50, "DPS.REGISTER " REGISTER_ARGS));
    CHECK(parse_last() == 0 && last.kind == HIL_KIND_OK && last.seq == 50);
    CHECK_STR(val("status"), "assigned");
    CHECK_STR(val("op"), "5.316aac5bdc130deb.b1e02da8");
    CHECK_STR(val("hub"), "hub.azure-devices.net");
    CHECK_STR(val("device_id"), "sn-007");
    CHECK_STR(val("http"), "202,202,200");
    CHECK_STR(val("retry_after"), "3,3");
    CHECK(F.slept_ms == 6000);
    CHECK(strstr(F.console, "PROGRESS verb=DPS.REGISTER step=2 status=assigning http=202") != NULL);
    F.sent[0][F.sent_len[0]] = '\0';
    CHECK_STR(F.sent[0], REG_DEFAULT);
    F.sent[1][F.sent_len[1]] = '\0';
    CHECK_STR(F.sent[1], "GET /0neFEEDC0DE/registrations/sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6/operations/5.316aac5bdc130deb.b1e02da8?api-version=2021-06-01 HTTP/1.1\r\n"
                         "Host: global.azure-devices-provisioning.net\r\n"
                         "Authorization: SharedAccessSignature sr=0neFEEDC0DE%2Fregistrations%2Fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=WxsrGpYfYNcVs2k6l9OQRN493PGmfVtHXNWG4ANEGnM%3D&se=1578941692&skn=registration\r\n\r\n");
    CHECK_STR(F.last_ca, "(none)");
    CHECK(!F.conn_open);

    /* 401: OK with status=failed and the error code */
    setup(HIL_DIALECT_DEFAULT);
    F.responses[0] = r401;
    F.nresp = 1;
    feed(req(51, "DPS.REGISTER " REGISTER_ARGS));
    CHECK(parse_last() == 0 && last.kind == HIL_KIND_OK);
    CHECK_STR(val("status"), "failed");
    CHECK_STR(val("http"), "401");
    CHECK_STR(val("error_code"), "401002");
    CHECK_STR(val("error_msg"), "Unauthorized");
    CHECK_STR(val("retry_after"), "");

    /* 404 without a DPS body: ERR HTTP status=404 */
    setup(HIL_DIALECT_DEFAULT);
    F.responses[0] = r404;
    F.nresp = 1;
    feed(req(52, "DPS.REGISTER " REGISTER_ARGS));
    CHECK(parse_last() == 0 && last.kind == HIL_KIND_ERR);
    CHECK_STR(val("code"), "HTTP");
    CHECK_STR(val("status"), "404");

    /* still assigning when the timeout passes */
    setup(HIL_DIALECT_DEFAULT);
    F.responses[0] = r202;
    F.responses[1] = r202;
    F.responses[2] = r202;
    F.nresp = 3;
    feed(req(53, "DPS.REGISTER " REGISTER_ARGS " timeout=7"));
    CHECK(parse_last() == 0 && last.kind == HIL_KIND_OK);
    CHECK_STR(val("status"), "assigning");
    CHECK_STR(val("http"), "202,202,202");

    /* connection and TLS failures are ERR frames */
    setup(HIL_DIALECT_DEFAULT);
    F.connect_err[0] = HIL_E_TLS;
    F.responses[0] = r202;
    F.nresp = 1;
    feed(req(54, "DPS.REGISTER " REGISTER_ARGS));
    CHECK(parse_last() == 0 && last.kind == HIL_KIND_ERR);
    CHECK_STR(val("code"), "TLS");
    CHECK_STR(val("msg"), "TLS handshake failed");
    /* with the platform's reason */
    setup(HIL_DIALECT_DEFAULT);
    P.tls_error = f_tls_error;
    F.connect_err[0] = HIL_E_TLS;
    F.responses[0] = r202;
    F.nresp = 1;
    feed(req(57, "DPS.REGISTER " REGISTER_ARGS));
    CHECK(parse_last() == 0 && last.kind == HIL_KIND_ERR);
    CHECK_STR(val("msg"), "TLS handshake failed: The certificate validity starts in the future");
    setup(HIL_DIALECT_DEFAULT);
    feed(req(55, "DPS.REGISTER " REGISTER_ARGS));
    CHECK(parse_last() == 0);
    CHECK_STR(val("code"), "NETWORK");
    /* truncated answer */
    setup(HIL_DIALECT_DEFAULT);
    F.responses[0] = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}";
    F.nresp = 1;
    feed(req(56, "DPS.REGISTER " REGISTER_ARGS));
    CHECK(parse_last() == 0);
    CHECK_STR(val("code"), "NETWORK");
}

static void test_dps_config(void)
{
    setup(HIL_DIALECT_DEFAULT);
    feed(req(60, "DPS.CONFIG"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("host"), "global.azure-devices-provisioning.net");
    CHECK_STR(val("port"), "443");
    CHECK_STR(val("api_version"), "2021-06-01");
    feed(req(61, "DPS.CONFIG host=127.0.0.1 port=8443 api_version=2021-10-01"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("host"), "127.0.0.1");
    CHECK_STR(val("port"), "8443");
    feed(req(62, "DPS.CONFIG port=70000"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("arg"), "port");
    feed(req(63, "DPS.CONFIG host=a/b"));
    CHECK(parse_last() == 0);
    CHECK_STR(val("arg"), "host");
}

/* Every argument check answers ERR with the right code and arg. */
static void test_bad_args(void)
{
    static const struct {
        const char *req, *code, *arg;
    } cases[] = {
        {"HELLO proto=x", "BAD_ARG", "proto"},
        {"TIME.SET", "BAD_ARG", "unix"},
        {"TIME.SET unix=-5", "BAD_ARG", "unix"},
        {"TIME.GET unix=1", "BAD_ARG", "unix"},
        {"DERIVE reg_id=x", "BAD_ARG", "group_key"},
        {"DERIVE group_key=AAAA", "BAD_ARG", "reg_id"},
        {"DERIVE group_key=AAAA reg_id=ends.", "BAD_ARG", "reg_id"},
        {"SAS reg_id=x key=AAAA expiry=1", "BAD_ARG", "id_scope"},
        {"SAS id_scope=0ne1 key=AAAA expiry=1", "BAD_ARG", "reg_id"},
        {"SAS id_scope=0ne1 reg_id=x expiry=1", "BAD_ARG", "key"},
        {"SAS id_scope=0ne1 reg_id=x key=AAAA", "BAD_ARG", "expiry"},
        {"SAS id_scope=0ne1 reg_id=x key=AAAA expiry=0", "BAD_ARG", "expiry"},
        {"SAS id_scope=0ne1 reg_id=x key=AAAA expiry=abc", "BAD_ARG", "expiry"},
        {"SAS id_scope=0ne1 reg_id=x key=AAAA ttl=0", "BAD_ARG", "ttl"},
        {"SAS id_scope=0ne1 reg_id=x key=AAB= expiry=1", "BAD_ARG", "key"},
        {"SAS id_scope=0ne1 reg_id=x key=AAAA expiry=1 policy=a&b", "BAD_ARG", "policy"},
        {"SAS id_scope=0ne1 reg_id=x! key=AAAA expiry=1", "BAD_ARG", "reg_id"},
        {"SAS resource= key=AAAA expiry=1", "BAD_ARG", "resource"},
        {"DPS.CONFIG api_version=a/b", "BAD_ARG", "api_version"},
        {"DPS.CONFIG port=0", "BAD_ARG", "port"},
        {"DPS.REQUEST reg_id=x key=AAAA expiry=1", "BAD_ARG", "id_scope"},
        {"DPS.REQUEST id_scope=0ne1 key=AAAA expiry=1", "BAD_ARG", "reg_id"},
        {"DPS.REQUEST id_scope=0n_e reg_id=x key=AAAA expiry=1", "BAD_ARG", "id_scope"},
        {"DPS.REQUEST id_scope=0ne1 reg_id=x: key=AAAA expiry=1", "BAD_ARG", "reg_id"},
        {"DPS.REQUEST id_scope=0ne1 reg_id=x key=AAAA group_key=AAAA expiry=1", "BAD_ARG", "group_key"},
        {"DPS.REQUEST id_scope=0ne1 reg_id=x expiry=1", "BAD_ARG", "key"},
        {"DPS.REQUEST id_scope=0ne1 reg_id=x group_key=%2A expiry=1", "BAD_ARG", "group_key"},
        {"DPS.REQUEST id_scope=0ne1 reg_id=x key=%2A expiry=1", "BAD_ARG", "key"},
        {"DPS.REQUEST id_scope=0ne1 reg_id=x key=AAAA", "BAD_ARG", "expiry"},
        {"DPS.REGISTER id_scope=0ne1 reg_id=x key=AAAA expiry=1 timeout=0", "BAD_ARG", "timeout"},
        {"DPS.REGISTER id_scope=0ne1 reg_id=x key=AAAA expiry=1 timeout=9999", "BAD_ARG", "timeout"},
        {"TLS.CA", "BAD_ARG", "pem"},
        {"TLS.CA pem=", "BAD_ARG", "pem"},
        {"TLS.CA pem=%00", "BAD_ARG", "pem"},
        {"NET.WIFI", "BAD_ARG", "ssid"},
        {"NET.WIFI ssid=", "BAD_ARG", "ssid"},
        {"NET.WIFI ssid=123456789012345678901234567890123", "BAD_ARG", "ssid"},
        {"NET.WIFI ssid=x timeout=0", "BAD_ARG", "timeout"},
        {"BLOB.PUT off=0 data=x", "BAD_ARG", "name"},
        {"BLOB.PUT name=a data=x", "BAD_ARG", "off"},
        {"BLOB.PUT name=a off=0", "BAD_ARG", "data"},
        {"BLOB.PUT name=a off=0 data=x total=99999", "BAD_ARG", "total"},
        {"BLOB.PUT name=a off=8192 data=x", "BAD_ARG", "data"},
        {"BLOB.PUT name=new off=1 data=x", "BAD_ARG", "name"},
        {"BLOB.PUT name=aaaaaaaaaaaaaaaaa off=0 data=x", "BAD_ARG", "name"},
        {"BLOB.GET", "BAD_ARG", "name"},
        {"BLOB.GET name=nope", "BAD_ARG", "name"},
        {"RESET now=1", "BAD_ARG", "now"},
    };
    size_t i;
    setup(HIL_DIALECT_DEFAULT);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        feed(req((uint16_t)(100 + i), cases[i].req));
        if (parse_last() != 0 || last.kind != HIL_KIND_ERR || last.seq != 100 + i) {
            n_failed++;
            fprintf(stderr, "test_bad_args: %s: got %s\n", cases[i].req, F.console);
            continue;
        }
        CHECK_STR(val("code"), cases[i].code);
        CHECK_STR(val("arg") ? val("arg") : "(none)", cases[i].arg);
    }
    CHECK(F.resets == 0);
}

int main(void)
{
    test_crc32();
    test_writer_spec_examples();
    test_ready_event();
    test_value_roundtrip();
    test_base64();
    test_frame_parse();
    test_agent_frames();
    test_hello_time_reset();
    test_derive();
    test_hmac_vector();
    test_sas_vectors();
    test_dps_request_bytes();
    test_blobs();
    test_json();
    test_http_parse();
    test_register_flow();
    test_dps_config();
    test_bad_args();
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed == 0 ? 0 : 1;
}

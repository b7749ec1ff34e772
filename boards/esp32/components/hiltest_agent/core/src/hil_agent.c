/*
 * hil_agent.c - the agent: console line assembly, verb dispatch, blobs, and
 * the DPS register/poll exchange (protocol/PROTOCOL.md §1-§5).
 */
#include "hil_core.h"

#include <string.h>

#define MARKER "@@HIL"

/* ---- small helpers ---- */

static size_t frame_limit(const hil_agent *a)
{
    return a->host_max < HIL_MAX_FRAME ? a->host_max : HIL_MAX_FRAME;
}

static void begin(hil_agent *a, hil_writer *w, hil_kind kind, uint16_t seq, const char *verb)
{
    hil_fw_begin(w, a->out, frame_limit(a), kind, seq, verb);
}

static void reply_err(hil_agent *a, uint16_t seq, const char *verb, hil_err e, const char *msg,
                      const char *arg, int http_status)
{
    hil_writer w;
    size_t n;
    begin(a, &w, HIL_KIND_ERR, seq, verb);
    hil_fw_arg_str(&w, "code", hil_err_code(e));
    hil_fw_arg_str(&w, "msg", msg);
    if (arg != NULL)
        hil_fw_arg_str(&w, "arg", arg);
    if (http_status > 0)
        hil_fw_arg_int(&w, "status", http_status);
    n = hil_fw_end(&w);
    if (n > 0)
        a->p->console_write(a->p->ctx, (const uint8_t *)a->out, n);
}

/* Ends and sends a response; a response that overflowed becomes ERR TOO_LONG. */
static void send_reply(hil_agent *a, hil_writer *w, uint16_t seq, const char *verb)
{
    size_t n = hil_fw_end(w);
    if (n == 0) {
        reply_err(a, seq, verb, HIL_E_TOO_LONG, "the result does not fit in a frame", NULL, 0);
        return;
    }
    a->p->console_write(a->p->ctx, (const uint8_t *)a->out, n);
}

static int bytes_eq(const uint8_t *v, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(v, s, n) == 0;
}

/* Parses a non-negative decimal of at most 18 digits; -1 when invalid. */
static int64_t parse_u(const uint8_t *v, size_t n)
{
    size_t i;
    int64_t x = 0;
    if (n == 0 || n > 18)
        return -1;
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

static uint32_t elapsed_ms(hil_agent *a, uint32_t since)
{
    return a->p->millis(a->p->ctx) - since;
}

/* ---- blobs ---- */

static int valid_blob_name(const uint8_t *v, size_t n)
{
    size_t i;
    if (n == 0 || n > HIL_BLOB_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '_'))
            return 0;
    return 1;
}

static hil_blob *blob_find(hil_agent *a, const uint8_t *name, size_t n)
{
    int i;
    for (i = 0; i < HIL_BLOB_COUNT; i++)
        if (a->blobs[i].name[0] != '\0' && bytes_eq(name, n, a->blobs[i].name))
            return &a->blobs[i];
    return NULL;
}

/* The blob named name, or a new one: a free slot, else the slot written
 * longest ago (the host has finished with it; using it later is BAD_ARG). */
static hil_blob *blob_get_or_new(hil_agent *a, const uint8_t *name, size_t n)
{
    int i;
    hil_blob *b = blob_find(a, name, n);
    if (b == NULL) {
        for (i = 0; i < HIL_BLOB_COUNT; i++) {
            if (a->blobs[i].name[0] == '\0') {
                b = &a->blobs[i];
                break;
            }
            if (b == NULL || a->blobs[i].stamp < b->stamp)
                b = &a->blobs[i];
        }
        memcpy(b->name, name, n);
        b->name[n] = '\0';
        b->len = 0;
    }
    b->stamp = ++a->blob_clock;
    return b;
}

/* Adds result key to w, or stores it in a blob and adds K.blob and K.len
 * when it does not fit (PROTOCOL.md §1.2). reserve is the room to keep for
 * the arguments that follow. Returns 0, or -1 (w marked overflowed). */
static int reply_value(hil_agent *a, hil_writer *w, const char *key, const uint8_t *v, size_t n, size_t reserve)
{
    char name[HIL_BLOB_NAME_MAX + 1], k2[HIL_KEY_MAX + 1];
    size_t i, kl = strlen(key), room = hil_fw_room(w, key);
    hil_blob *b;
    if (hil_value_encoded_len(v, n) + reserve <= room) {
        hil_fw_arg(w, key, v, n);
        return 0;
    }
    for (i = 0; i < kl && i < HIL_BLOB_NAME_MAX; i++)
        name[i] = key[i] == '.' ? '_' : key[i];
    name[i] = '\0';
    if (n > HIL_BLOB_SIZE || kl + 5 > HIL_KEY_MAX) {
        w->overflow = 1;
        return -1;
    }
    b = blob_get_or_new(a, (const uint8_t *)name, i);
    memmove(b->data, v, n);
    b->len = n;
    memcpy(k2, key, kl);
    memcpy(k2 + kl, ".blob", 6);
    hil_fw_arg_str(w, k2, name);
    memcpy(k2 + kl, ".len", 5);
    hil_fw_arg_int(w, k2, (int64_t)n);
    return 0;
}

/* ---- argument access ---- */

/* Looks up argument key; returns 1 and the value when present. */
static int arg(hil_agent *a, const char *key, const uint8_t **v, size_t *n)
{
    size_t i, kl = strlen(key);
    for (i = 0; i < a->frame.nargs; i++) {
        hil_arg *x = &a->frame.args[i];
        if (x->key_len == kl && memcmp(x->key, key, kl) == 0) {
            *v = x->val;
            *n = x->val_len;
            return 1;
        }
    }
    return 0;
}

/* Finds a required argument; when it is absent, answers ERR BAD_ARG with msg
 * and returns 0. */
static int need_arg_msg(hil_agent *a, uint16_t seq, const char *verb, const char *key, const char *msg,
                        const uint8_t **v, size_t *n)
{
    if (arg(a, key, v, n))
        return 1;
    reply_err(a, seq, verb, HIL_E_BAD_ARG, msg, key, 0);
    return 0;
}

/* need_arg_msg with the message "<key> is missing"; key must be a string literal. */
#define NEED_ARG(a, seq, verb, key, v, n) need_arg_msg(a, seq, verb, key, key " is missing", v, n)

/* Copies a text argument into dst (NUL-terminated); -1 when too long. */
static int arg_text(const uint8_t *v, size_t n, char *dst, size_t cap)
{
    if (n + 1 > cap)
        return -1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

/* ---- verbs ---- */

typedef struct verb_def {
    const char *name;
    const char *cap; /* capability, NULL = always */
    void (*fn)(hil_agent *a, uint16_t seq, const char *verb);
    const char *keys[10];
} verb_def;

static int cap_available(const hil_agent *a, const char *cap)
{
    if (cap == NULL)
        return 1;
    if (strcmp(cap, "net.wifi") == 0)
        return a->p->wifi_join != NULL;
    if (strcmp(cap, "dps.register") == 0)
        return a->p->tls_connect != NULL && a->p->tls_read != NULL && a->p->tls_write != NULL;
    if (strcmp(cap, "reset") == 0)
        return a->p->reset != NULL;
    return 1;
}

static void v_hello(hil_agent *a, uint16_t seq, const char *verb);
static void v_ping(hil_agent *a, uint16_t seq, const char *verb);
static void v_reset(hil_agent *a, uint16_t seq, const char *verb);
static void v_time_set(hil_agent *a, uint16_t seq, const char *verb);
static void v_time_get(hil_agent *a, uint16_t seq, const char *verb);
static void v_derive(hil_agent *a, uint16_t seq, const char *verb);
static void v_sas(hil_agent *a, uint16_t seq, const char *verb);
static void v_dps_config(hil_agent *a, uint16_t seq, const char *verb);
static void v_dps_request(hil_agent *a, uint16_t seq, const char *verb);
static void v_dps_register(hil_agent *a, uint16_t seq, const char *verb);
static void v_tls_ca(hil_agent *a, uint16_t seq, const char *verb);
static void v_net_wifi(hil_agent *a, uint16_t seq, const char *verb);
static void v_blob_put(hil_agent *a, uint16_t seq, const char *verb);
static void v_blob_get(hil_agent *a, uint16_t seq, const char *verb);

static const verb_def verbs[] = {
    {"HELLO", NULL, v_hello, {"proto", "max", NULL}},
    {"PING", "ping", v_ping, {"data", NULL}},
    {"RESET", "reset", v_reset, {NULL}},
    {"TIME.SET", "time", v_time_set, {"unix", NULL}},
    {"TIME.GET", "time", v_time_get, {NULL}},
    {"DERIVE", "derive", v_derive, {"group_key", "reg_id", NULL}},
    {"SAS", "sas", v_sas, {"id_scope", "reg_id", "resource", "key", "expiry", "ttl", "policy", NULL}},
    {"DPS.REQUEST", "dps.request", v_dps_request,
     {"id_scope", "reg_id", "key", "group_key", "expiry", "ttl", "payload", NULL}},
    {"DPS.REGISTER", "dps.register", v_dps_register,
     {"id_scope", "reg_id", "key", "group_key", "expiry", "ttl", "payload", "timeout", NULL}},
    {"TLS.CA", "tls.ca", v_tls_ca, {"pem", NULL}},
    {"NET.WIFI", "net.wifi", v_net_wifi, {"ssid", "password", "timeout", NULL}},
    {"DPS.CONFIG", "dps.config", v_dps_config, {"host", "port", "api_version", NULL}},
    {"BLOB.PUT", "blob", v_blob_put, {"name", "off", "data", "total", NULL}},
    {"BLOB.GET", "blob", v_blob_get, {"name", "off", "max", NULL}},
};
#define NVERBS (sizeof verbs / sizeof verbs[0])

static void caps_string(const hil_agent *a, char *dst, size_t cap)
{
    size_t i, o = 0;
    dst[0] = '\0';
    for (i = 0; i < NVERBS; i++) {
        const char *c = verbs[i].cap;
        size_t j, n;
        int seen = 0;
        if (c == NULL || !cap_available(a, c))
            continue;
        for (j = 0; j < i; j++)
            if (verbs[j].cap != NULL && strcmp(verbs[j].cap, c) == 0)
                seen = 1;
        if (seen)
            continue;
        n = strlen(c);
        if (o + n + 2 > cap)
            return;
        if (o > 0)
            dst[o++] = ',';
        memcpy(dst + o, c, n);
        o += n;
        dst[o] = '\0';
    }
}

static void v_hello(hil_agent *a, uint16_t seq, const char *verb)
{
    const uint8_t *v;
    size_t n;
    hil_writer w;
    char caps[160];
    if (arg(a, "proto", &v, &n)) {
        int64_t proto = parse_u(v, n);
        if (proto < 0) {
            reply_err(a, seq, verb, HIL_E_BAD_ARG, "proto is not a decimal number", "proto", 0);
            return;
        }
        if (proto < HIL_PROTO_VERSION) {
            reply_err(a, seq, verb, HIL_E_BAD_ARG, "no protocol version in common", "proto", 0);
            return;
        }
    }
    if (arg(a, "max", &v, &n)) {
        int64_t max = parse_u(v, n);
        if (max < HIL_MIN_FRAME) {
            reply_err(a, seq, verb, HIL_E_BAD_ARG, "max must be a number >= 256", "max", 0);
            return;
        }
        a->host_max = max > 65535 ? 65535 : (size_t)max;
    }
    caps_string(a, caps, sizeof caps);
    begin(a, &w, HIL_KIND_OK, seq, verb);
    hil_fw_arg_int(&w, "proto", HIL_PROTO_VERSION);
    hil_fw_arg_str(&w, "fw", HIL_FW_NAME);
    hil_fw_arg_str(&w, "fw_version", HIL_FW_VERSION);
    hil_fw_arg_str(&w, "board", a->board);
    hil_fw_arg_str(&w, "chip", a->chip);
    hil_fw_arg_str(&w, "mac", a->mac);
    hil_fw_arg_int(&w, "max", HIL_MAX_FRAME);
    hil_fw_arg_int(&w, "blob_max", HIL_BLOB_SIZE);
    hil_fw_arg_str(&w, "dialect", hil_dialect_name(a->dialect));
    hil_fw_arg_str(&w, "caps", caps);
    send_reply(a, &w, seq, verb);
}

static void v_ping(hil_agent *a, uint16_t seq, const char *verb)
{
    const uint8_t *v = (const uint8_t *)"";
    size_t n = 0;
    hil_writer w;
    arg(a, "data", &v, &n);
    begin(a, &w, HIL_KIND_OK, seq, verb);
    reply_value(a, &w, "data", v, n, 0);
    send_reply(a, &w, seq, verb);
}

static void v_reset(hil_agent *a, uint16_t seq, const char *verb)
{
    hil_writer w;
    begin(a, &w, HIL_KIND_OK, seq, verb);
    send_reply(a, &w, seq, verb);
    a->reset_requested = 1;
    a->p->reset(a->p->ctx);
}

static void v_time_set(hil_agent *a, uint16_t seq, const char *verb)
{
    const uint8_t *v;
    size_t n;
    int64_t t;
    hil_writer w;
    if (!NEED_ARG(a, seq, verb, "unix", &v, &n))
        return;
    t = parse_u(v, n);
    if (t < 0) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "unix is not a decimal number of seconds", "unix", 0);
        return;
    }
    if (a->p->time_set(a->p->ctx, t) != 0) {
        reply_err(a, seq, verb, HIL_E_INTERNAL, "the clock could not be set", NULL, 0);
        return;
    }
    a->time_set = 1;
    begin(a, &w, HIL_KIND_OK, seq, verb);
    hil_fw_arg_int(&w, "unix", a->p->time_get(a->p->ctx));
    send_reply(a, &w, seq, verb);
}

static void v_time_get(hil_agent *a, uint16_t seq, const char *verb)
{
    hil_writer w;
    int set = a->time_set || (a->p->time_synced != NULL && a->p->time_synced(a->p->ctx));
    begin(a, &w, HIL_KIND_OK, seq, verb);
    hil_fw_arg_int(&w, "unix", a->p->time_get(a->p->ctx));
    hil_fw_arg_int(&w, "set", set ? 1 : 0);
    send_reply(a, &w, seq, verb);
}

static void v_derive(hil_agent *a, uint16_t seq, const char *verb)
{
    const uint8_t *gk, *reg;
    size_t gk_len, reg_len;
    char dk[HIL_SIG_MAX];
    const char *bad = NULL;
    hil_err e;
    hil_writer w;
    if (!NEED_ARG(a, seq, verb, "group_key", &gk, &gk_len))
        return;
    if (!NEED_ARG(a, seq, verb, "reg_id", &reg, &reg_len))
        return;
    e = hil_derive(a->p, gk, gk_len, reg, reg_len, dk, &bad);
    if (e == HIL_E_BAD_ARG) {
        reply_err(a, seq, verb, e,
                  strcmp(bad, "group_key") == 0 ? "group_key is not a non-empty base64 key"
                                                : "reg_id breaks the DPS registration id rules",
                  bad, 0);
        return;
    }
    if (e != HIL_OK) {
        reply_err(a, seq, verb, e, "HMAC failed", NULL, 0);
        return;
    }
    begin(a, &w, HIL_KIND_OK, seq, verb);
    hil_fw_arg_str(&w, "device_key", dk);
    memset(dk, 0, sizeof dk);
    send_reply(a, &w, seq, verb);
}

/* expiry or ttl (exactly one) -> *expiry. Returns 0, or -1 after replying. */
static int get_expiry(hil_agent *a, uint16_t seq, const char *verb, int64_t *expiry)
{
    const uint8_t *ev, *tv;
    size_t en, tn;
    int has_e = arg(a, "expiry", &ev, &en), has_t = arg(a, "ttl", &tv, &tn);
    if (has_e && has_t) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "give either expiry or ttl, not both", "ttl", 0);
        return -1;
    }
    if (!has_e && !has_t) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "expiry (or ttl) is missing", "expiry", 0);
        return -1;
    }
    if (has_e) {
        *expiry = parse_u(ev, en);
        if (*expiry <= 0) {
            reply_err(a, seq, verb, HIL_E_BAD_ARG, "expiry is not a positive unix time", "expiry", 0);
            return -1;
        }
        return 0;
    }
    {
        int64_t ttl = parse_u(tv, tn);
        if (ttl <= 0) {
            reply_err(a, seq, verb, HIL_E_BAD_ARG, "ttl is not a positive number of seconds", "ttl", 0);
            return -1;
        }
        *expiry = a->p->time_get(a->p->ctx) + ttl;
        if (*expiry <= 0) {
            reply_err(a, seq, verb, HIL_E_BAD_ARG, "the board's clock gives no positive expiry", "ttl", 0);
            return -1;
        }
    }
    return 0;
}

static const char *bad_arg_msg(const char *bad)
{
    if (strcmp(bad, "id_scope") == 0) return "id_scope must be 1-64 letters and digits";
    if (strcmp(bad, "reg_id") == 0) return "reg_id breaks the DPS registration id rules";
    if (strcmp(bad, "key") == 0) return "key is not a non-empty base64 key";
    if (strcmp(bad, "group_key") == 0) return "group_key is not a non-empty base64 key";
    if (strcmp(bad, "resource") == 0) return "resource must be 1-256 bytes";
    if (strcmp(bad, "policy") == 0) return "policy must be printable, without '&', at most 64 bytes";
    if (strcmp(bad, "expiry") == 0) return "expiry is not a positive unix time";
    return "invalid argument";
}

static void v_sas(hil_agent *a, uint16_t seq, const char *verb)
{
    hil_sas_params in;
    const uint8_t *v;
    size_t n;
    const char *bad = "";
    hil_err e;
    hil_writer w;
    int has_res;
    memset(&in, 0, sizeof in);
    in.dialect = a->dialect;
    has_res = arg(a, "resource", &in.resource, &in.resource_len);
    if (has_res) {
        if (arg(a, "id_scope", &v, &n) || arg(a, "reg_id", &v, &n)) {
            reply_err(a, seq, verb, HIL_E_BAD_ARG, "give either resource or id_scope and reg_id", "resource", 0);
            return;
        }
    } else {
        if (!need_arg_msg(a, seq, verb, "id_scope", "id_scope (or resource) is missing", &in.scope, &in.scope_len))
            return;
        if (!NEED_ARG(a, seq, verb, "reg_id", &in.reg, &in.reg_len))
            return;
    }
    if (!NEED_ARG(a, seq, verb, "key", &in.key, &in.key_len))
        return;
    if (get_expiry(a, seq, verb, &in.expiry) != 0)
        return;
    if (!arg(a, "policy", &in.policy, &in.policy_len)) {
        const char *d = hil_dialect_default_policy(a->dialect);
        in.policy = (const uint8_t *)d;
        in.policy_len = strlen(d);
    }
    e = hil_sas_build(a->p, &in, &a->sas, &bad);
    if (e == HIL_E_BAD_ARG) {
        reply_err(a, seq, verb, e, bad_arg_msg(bad), bad, 0);
        return;
    }
    if (e != HIL_OK) {
        reply_err(a, seq, verb, e, "the token does not fit the board's buffers", NULL, 0);
        return;
    }
    begin(a, &w, HIL_KIND_OK, seq, verb);
    hil_fw_arg(&w, "sr", (const uint8_t *)a->sas.sr, a->sas.sr_len);
    hil_fw_arg(&w, "sts", (const uint8_t *)a->sas.sts, a->sas.sts_len);
    hil_fw_arg_str(&w, "sig", a->sas.sig);
    hil_fw_arg_int(&w, "se", a->sas.se);
    reply_value(a, &w, "token", (const uint8_t *)a->sas.token, a->sas.token_len, 0);
    send_reply(a, &w, seq, verb);
}

static int host_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

/* Copies optional argument key into dst when it is 1 to cap-1 host_char bytes
 * (0; also 0 with dst untouched when the argument is absent); otherwise
 * answers ERR BAD_ARG with msg and returns -1. */
static int host_text_arg(hil_agent *a, uint16_t seq, const char *verb, const char *key, const char *msg,
                         char *dst, size_t cap)
{
    const uint8_t *v;
    size_t n, i;
    int ok;
    if (!arg(a, key, &v, &n))
        return 0;
    ok = n > 0 && n < cap;
    for (i = 0; ok && i < n; i++)
        ok = host_char(v[i]);
    if (!ok) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, msg, key, 0);
        return -1;
    }
    arg_text(v, n, dst, cap);
    return 0;
}

static void v_dps_config(hil_agent *a, uint16_t seq, const char *verb)
{
    const uint8_t *v;
    size_t n;
    hil_dps_config c = a->dps;
    hil_writer w;
    if (host_text_arg(a, seq, verb, "host", "host must be a DNS name or IPv4 address", c.host, sizeof c.host) != 0)
        return;
    if (arg(a, "port", &v, &n)) {
        int64_t p = parse_u(v, n);
        if (p < 1 || p > 65535) {
            reply_err(a, seq, verb, HIL_E_BAD_ARG, "port must be 1-65535", "port", 0);
            return;
        }
        c.port = (uint16_t)p;
    }
    if (host_text_arg(a, seq, verb, "api_version", "api_version must be letters, digits, '.' and '-'",
                      c.api_version, sizeof c.api_version) != 0)
        return;
    a->dps = c;
    begin(a, &w, HIL_KIND_OK, seq, verb);
    hil_fw_arg_str(&w, "host", a->dps.host);
    hil_fw_arg_int(&w, "port", a->dps.port);
    hil_fw_arg_str(&w, "api_version", a->dps.api_version);
    send_reply(a, &w, seq, verb);
}

/* Builds the register request for DPS.REQUEST and DPS.REGISTER into a->req
 * (token in a->sas). Returns its length, or 0 after replying with an error. */
static size_t build_register(hil_agent *a, uint16_t seq, const char *verb,
                             const uint8_t **scope, size_t *scope_len, const uint8_t **reg, size_t *reg_len)
{
    hil_sas_params in;
    const uint8_t *key = NULL, *gk = NULL, *payload = NULL;
    size_t key_len = 0, gk_len = 0, payload_len = 0, n;
    int has_key, has_gk;
    char dk[HIL_SIG_MAX];
    const char *bad = "";
    const char *pol = hil_dialect_default_policy(a->dialect);
    hil_err e;

    if (!NEED_ARG(a, seq, verb, "id_scope", scope, scope_len))
        return 0;
    if (!NEED_ARG(a, seq, verb, "reg_id", reg, reg_len))
        return 0;
    if (!hil_valid_scope(*scope, *scope_len)) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, bad_arg_msg("id_scope"), "id_scope", 0);
        return 0;
    }
    if (!hil_valid_reg_id(*reg, *reg_len)) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, bad_arg_msg("reg_id"), "reg_id", 0);
        return 0;
    }
    has_key = arg(a, "key", &key, &key_len);
    has_gk = arg(a, "group_key", &gk, &gk_len);
    if (has_key && has_gk) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "give either key or group_key, not both", "group_key", 0);
        return 0;
    }
    if (!has_key && !has_gk) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "key (or group_key) is missing", "key", 0);
        return 0;
    }
    if (has_gk) {
        e = hil_derive(a->p, gk, gk_len, *reg, *reg_len, dk, &bad);
        if (e != HIL_OK) {
            reply_err(a, seq, verb, e, e == HIL_E_BAD_ARG ? bad_arg_msg(bad) : "HMAC failed",
                      e == HIL_E_BAD_ARG ? bad : NULL, 0);
            return 0;
        }
        key = (const uint8_t *)dk;
        key_len = strlen(dk);
    }
    memset(&in, 0, sizeof in);
    in.dialect = a->dialect;
    in.scope = *scope;
    in.scope_len = *scope_len;
    in.reg = *reg;
    in.reg_len = *reg_len;
    in.key = key;
    in.key_len = key_len;
    in.policy = (const uint8_t *)pol;
    in.policy_len = strlen(pol);
    if (get_expiry(a, seq, verb, &in.expiry) != 0) {
        memset(dk, 0, sizeof dk);
        return 0;
    }
    if (arg(a, "payload", &payload, &payload_len) && payload_len > 0 &&
        hil_json_valid((const char *)payload, payload_len) != 0) {
        memset(dk, 0, sizeof dk);
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "payload is not valid JSON", "payload", 0);
        return 0;
    }
    e = hil_sas_build(a->p, &in, &a->sas, &bad);
    memset(dk, 0, sizeof dk);
    if (e == HIL_E_BAD_ARG) {
        if (has_gk && strcmp(bad, "key") == 0)
            bad = "group_key";
        reply_err(a, seq, verb, e, bad_arg_msg(bad), bad, 0);
        return 0;
    }
    if (e != HIL_OK) {
        reply_err(a, seq, verb, e, "the token does not fit the board's buffers", NULL, 0);
        return 0;
    }
    n = hil_dps_register_request(a->req, sizeof a->req, &a->dps, *scope, *scope_len, *reg, *reg_len,
                                 a->sas.token, a->sas.token_len, payload, payload_len);
    if (n == 0) {
        reply_err(a, seq, verb, HIL_E_INTERNAL, "the request does not fit the board's buffer", NULL, 0);
        return 0;
    }
    return n;
}

static void v_dps_request(hil_agent *a, uint16_t seq, const char *verb)
{
    const uint8_t *scope, *reg;
    size_t scope_len, reg_len, n;
    hil_writer w;
    n = build_register(a, seq, verb, &scope, &scope_len, &reg, &reg_len);
    if (n == 0)
        return;
    begin(a, &w, HIL_KIND_OK, seq, verb);
    reply_value(a, &w, "request", (const uint8_t *)a->req, n, 0);
    send_reply(a, &w, seq, verb);
}

/* ---- DPS.REGISTER ---- */

static void list_add(char *list, size_t cap, int64_t v)
{
    size_t o = strlen(list);
    char num[24];
    size_t n = hil_fmt_i64(num, v);
    if (o + n + 2 > cap)
        return;
    if (o > 0)
        list[o++] = ',';
    memcpy(list + o, num, n);
    list[o + n] = '\0';
}

static void progress(hil_agent *a, int step, const char *status, int http)
{
    hil_writer w;
    size_t n;
    begin(a, &w, HIL_KIND_EVT, a->evt_seq++, "PROGRESS");
    hil_fw_arg_str(&w, "verb", "DPS.REGISTER");
    hil_fw_arg_int(&w, "step", step);
    hil_fw_arg_str(&w, "status", status);
    hil_fw_arg_int(&w, "http", http);
    n = hil_fw_end(&w);
    if (n > 0)
        a->p->console_write(a->p->ctx, (const uint8_t *)a->out, n);
}

/* One HTTPS exchange: connect, write req, read one response into a->http.
 * Returns HIL_OK, or an error with *msg. */
static hil_err exchange(hil_agent *a, const char *req, size_t req_len, uint32_t timeout_ms,
                        hil_http_response *r, const char **msg)
{
    void *conn = NULL;
    uint32_t start = a->p->millis(a->p->ctx);
    size_t off = 0, total = 0;
    int eof = 0, st = HIL_HTTP_MORE;
    hil_err e;
    e = a->p->tls_connect(a->p->ctx, a->dps.host, a->dps.port, a->ca_len > 0 ? a->ca : NULL, a->ca_len,
                          timeout_ms, &conn);
    if (e != HIL_OK) {
        *msg = e == HIL_E_TLS ? "TLS handshake failed" : e == HIL_E_TIMEOUT ? "connect timed out" : "could not connect";
        if (a->p->tls_error != NULL) {
            char detail[128];
            size_t n = strlen(*msg), d;
            detail[0] = '\0';
            a->p->tls_error(a->p->ctx, detail, sizeof detail);
            detail[sizeof detail - 1] = '\0';
            d = strlen(detail);
            if (d > 0 && n + 2 + d < sizeof a->errmsg) {
                memcpy(a->errmsg, *msg, n);
                memcpy(a->errmsg + n, ": ", 2);
                memcpy(a->errmsg + n + 2, detail, d + 1);
                *msg = a->errmsg;
            }
        }
        return e;
    }
    while (off < req_len) {
        int w = a->p->tls_write(a->p->ctx, conn, (const uint8_t *)req + off, req_len - off);
        if (w <= 0) {
            a->p->tls_close(a->p->ctx, conn);
            *msg = "write failed";
            return HIL_E_NETWORK;
        }
        off += (size_t)w;
    }
    while (st == HIL_HTTP_MORE) {
        uint32_t used = elapsed_ms(a, start);
        int rd;
        if (used >= timeout_ms) {
            a->p->tls_close(a->p->ctx, conn);
            *msg = "no complete answer in time";
            return HIL_E_TIMEOUT;
        }
        if (total >= HIL_HTTP_MAX) {
            a->p->tls_close(a->p->ctx, conn);
            *msg = "the answer is larger than the board's buffer";
            return HIL_E_INTERNAL;
        }
        rd = a->p->tls_read(a->p->ctx, conn, (uint8_t *)a->http + total, HIL_HTTP_MAX - total, timeout_ms - used);
        if (rd == HIL_IO_TIMEOUT) {
            a->p->tls_close(a->p->ctx, conn);
            *msg = "no complete answer in time";
            return HIL_E_TIMEOUT;
        }
        if (rd < 0) {
            a->p->tls_close(a->p->ctx, conn);
            *msg = "read failed";
            return HIL_E_NETWORK;
        }
        if (rd == HIL_IO_CLOSED)
            eof = 1;
        else
            total += (size_t)rd;
        a->http[total] = '\0';
        st = hil_http_parse(a->http, total, eof, r);
        if (st == HIL_HTTP_MORE && eof)
            st = HIL_HTTP_BAD;
    }
    a->p->tls_close(a->p->ctx, conn);
    if (st != HIL_HTTP_DONE) {
        *msg = "malformed HTTP answer";
        return HIL_E_NETWORK;
    }
    r->body[r->body_len] = '\0';
    return HIL_OK;
}

static int opid_ok(const char *s)
{
    size_t i, n = strlen(s);
    if (n == 0)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '.' || c == '_' || c == '~'))
            return 0;
    }
    return 1;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void v_dps_register(hil_agent *a, uint16_t seq, const char *verb)
{
    const uint8_t *scope, *reg, *v;
    size_t scope_len, reg_len, n, req_len;
    int64_t timeout_s = 60;
    uint32_t start, budget;
    int step = 0, http_last = 0;
    char op[HIL_JSON_STR];
    hil_writer w;

    if (arg(a, "timeout", &v, &n)) {
        timeout_s = parse_u(v, n);
        if (timeout_s < 1 || timeout_s > 3600) {
            reply_err(a, seq, verb, HIL_E_BAD_ARG, "timeout must be 1-3600 seconds", "timeout", 0);
            return;
        }
    }
    req_len = build_register(a, seq, verb, &scope, &scope_len, &reg, &reg_len);
    if (req_len == 0)
        return;
    start = a->p->millis(a->p->ctx);
    budget = (uint32_t)timeout_s * 1000u;
    a->list_http[0] = '\0';
    a->list_retry[0] = '\0';
    op[0] = '\0';
    for (;;) {
        hil_http_response r;
        const char *msg = "";
        uint32_t used = elapsed_ms(a, start), wait_ms;
        int json_ok, wait_s;
        const char *status;
        hil_err e;

        if (used >= budget) {
            reply_err(a, seq, verb, HIL_E_TIMEOUT, "timeout before the first answer", NULL, 0);
            return;
        }
        e = exchange(a, a->req, req_len, budget - used, &r, &msg);
        if (e != HIL_OK) {
            reply_err(a, seq, verb, e, msg, NULL, 0);
            return;
        }
        step++;
        http_last = r.status;
        list_add(a->list_http, sizeof a->list_http, r.status);
        if (r.retry_after >= 0)
            list_add(a->list_retry, sizeof a->list_retry, r.retry_after);
        json_ok = hil_json_parse_dps(r.body, r.body_len, &a->res) == 0;
        if (json_ok && a->res.operation_id[0] != '\0')
            copy_str(op, sizeof op, a->res.operation_id);
        status = json_ok && a->res.status[0] != '\0' ? a->res.status
                 : json_ok && a->res.rs_status[0] != '\0' ? a->res.rs_status
                 : r.status >= 300 ? "failed" : "";
        progress(a, step, status, r.status);

        if (r.status < 200 || r.status >= 300) {
            if (!json_ok || (a->res.error_code[0] == '\0' && a->res.message[0] == '\0')) {
                reply_err(a, seq, verb, HIL_E_HTTP, "unexpected HTTP status", NULL, r.status);
                return;
            }
            break; /* a DPS error answer: OK with status=failed below */
        }
        if (!json_ok) {
            reply_err(a, seq, verb, HIL_E_HTTP, "the answer is not a DPS JSON body", NULL, r.status);
            return;
        }
        if (strcmp(status, "assigning") != 0)
            break;
        if (!opid_ok(op)) {
            reply_err(a, seq, verb, HIL_E_HTTP, "the answer has no usable operationId", NULL, r.status);
            return;
        }
        /* Retry-After in seconds, 2 when absent, at most 300 (PROTOCOL.md §4). */
        wait_s = r.retry_after >= 0 ? r.retry_after : 2;
        if (wait_s > 300)
            wait_s = 300;
        wait_ms = (uint32_t)wait_s * 1000u;
        used = elapsed_ms(a, start);
        if (used + wait_ms >= budget)
            break; /* status stays "assigning" */
        a->p->sleep_ms(a->p->ctx, wait_ms);
        req_len = hil_dps_operation_request(a->req, sizeof a->req, &a->dps, scope, scope_len, reg, reg_len, op,
                                            a->sas.token, a->sas.token_len);
        if (req_len == 0) {
            reply_err(a, seq, verb, HIL_E_INTERNAL, "the poll request does not fit the board's buffer", NULL, 0);
            return;
        }
    }
    {
        const char *status = a->res.status[0] != '\0' ? a->res.status : a->res.rs_status;
        const char *ec = a->res.rs_error_code[0] != '\0' ? a->res.rs_error_code : a->res.error_code;
        const char *em = a->res.rs_error_message[0] != '\0' ? a->res.rs_error_message : a->res.message;
        /* an error answer (or one without a status) is "failed" */
        if (http_last >= 300 || status[0] == '\0')
            status = "failed";
        begin(a, &w, HIL_KIND_OK, seq, verb);
        hil_fw_arg_str(&w, "op", op);
        hil_fw_arg_str(&w, "status", status);
        if (a->res.assigned_hub[0] != '\0')
            hil_fw_arg_str(&w, "hub", a->res.assigned_hub);
        if (a->res.device_id[0] != '\0')
            hil_fw_arg_str(&w, "device_id", a->res.device_id);
        hil_fw_arg_str(&w, "http", a->list_http);
        hil_fw_arg_str(&w, "retry_after", a->list_retry);
        if (ec[0] != '\0')
            hil_fw_arg_str(&w, "error_code", ec);
        if (em[0] != '\0')
            hil_fw_arg_str(&w, "error_msg", em);
        send_reply(a, &w, seq, verb);
    }
}

/* ---- TLS.CA, NET.WIFI ---- */

static int count_pem(const char *s, size_t n)
{
    static const char begin_cert[] = "-----BEGIN CERTIFICATE-----";
    size_t i, m = sizeof begin_cert - 1;
    int c = 0;
    for (i = 0; i + m <= n; i++)
        if (memcmp(s + i, begin_cert, m) == 0)
            c++;
    return c;
}

static void v_tls_ca(hil_agent *a, uint16_t seq, const char *verb)
{
    const uint8_t *v;
    size_t n;
    int count;
    hil_writer w;
    if (!NEED_ARG(a, seq, verb, "pem", &v, &n))
        return;
    if (n == 0 || n > HIL_BLOB_SIZE || memchr(v, 0, n) != NULL) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "pem must be 1-blob_max bytes of PEM text", "pem", 0);
        return;
    }
    memmove(a->ca, v, n);
    a->ca[n] = '\0';
    count = a->p->ca_check != NULL ? a->p->ca_check(a->p->ctx, a->ca, n) : count_pem(a->ca, n);
    if (count <= 0) {
        a->ca_len = 0;
        a->ca[0] = '\0';
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "pem holds no certificate that parses", "pem", 0);
        return;
    }
    a->ca_len = n;
    begin(a, &w, HIL_KIND_OK, seq, verb);
    hil_fw_arg_int(&w, "certs", count);
    send_reply(a, &w, seq, verb);
}

static void v_net_wifi(hil_agent *a, uint16_t seq, const char *verb)
{
    const uint8_t *v;
    size_t n;
    char ssid[33], pass[65], ip[48];
    int64_t timeout_s = 20;
    hil_err e;
    hil_writer w;
    if (!arg(a, "ssid", &v, &n) || n == 0 || arg_text(v, n, ssid, sizeof ssid) != 0) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "ssid must be 1-32 bytes", "ssid", 0);
        return;
    }
    pass[0] = '\0';
    if (arg(a, "password", &v, &n) && arg_text(v, n, pass, sizeof pass) != 0) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "password must be at most 64 bytes", "password", 0);
        return;
    }
    if (arg(a, "timeout", &v, &n)) {
        timeout_s = parse_u(v, n);
        if (timeout_s < 1 || timeout_s > 600) {
            reply_err(a, seq, verb, HIL_E_BAD_ARG, "timeout must be 1-600 seconds", "timeout", 0);
            return;
        }
    }
    ip[0] = '\0';
    e = a->p->wifi_join(a->p->ctx, ssid, pass, (uint32_t)timeout_s * 1000u, ip, sizeof ip);
    memset(pass, 0, sizeof pass);
    if (e != HIL_OK) {
        reply_err(a, seq, verb, e, e == HIL_E_TIMEOUT ? "no IP address in time" : "could not join the network", NULL, 0);
        return;
    }
    begin(a, &w, HIL_KIND_OK, seq, verb);
    hil_fw_arg_str(&w, "ip", ip);
    send_reply(a, &w, seq, verb);
}

/* ---- BLOB.PUT / BLOB.GET ---- */

static void v_blob_put(hil_agent *a, uint16_t seq, const char *verb)
{
    const uint8_t *name, *v, *data;
    size_t name_len, n, data_len;
    int64_t off;
    hil_blob *b;
    hil_writer w;
    if (!arg(a, "name", &name, &name_len) || !valid_blob_name(name, name_len)) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "name must be 1-16 of a-z 0-9 _", "name", 0);
        return;
    }
    if (!arg(a, "off", &v, &n) || (off = parse_u(v, n)) < 0) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "off must be a decimal offset", "off", 0);
        return;
    }
    if (!NEED_ARG(a, seq, verb, "data", &data, &data_len))
        return;
    if (arg(a, "total", &v, &n)) {
        int64_t total = parse_u(v, n);
        if (total < 0 || total > HIL_BLOB_SIZE) {
            reply_err(a, seq, verb, HIL_E_BAD_ARG, "total exceeds blob_max", "total", 0);
            return;
        }
    }
    if ((uint64_t)off + data_len > HIL_BLOB_SIZE) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "the blob would exceed blob_max", "data", 0);
        return;
    }
    if (off == 0) {
        b = blob_get_or_new(a, name, name_len);
        memmove(b->data, data, data_len);
        b->len = data_len;
    } else {
        b = blob_find(a, name, name_len);
        if (b == NULL) {
            reply_err(a, seq, verb, HIL_E_BAD_ARG, "no such blob (start at off=0)", "name", 0);
            return;
        }
        if ((size_t)off > b->len) {
            reply_err(a, seq, verb, HIL_E_BAD_ARG, "off is beyond the end of the blob", "off", 0);
            return;
        }
        memmove(b->data + off, data, data_len);
        b->stamp = ++a->blob_clock;
        if ((size_t)off + data_len > b->len)
            b->len = (size_t)off + data_len;
    }
    begin(a, &w, HIL_KIND_OK, seq, verb);
    hil_fw_arg_str(&w, "name", b->name);
    hil_fw_arg_int(&w, "len", (int64_t)b->len);
    send_reply(a, &w, seq, verb);
}

static void v_blob_get(hil_agent *a, uint16_t seq, const char *verb)
{
    const uint8_t *name, *v;
    size_t name_len, n, room, take, enc, reserve;
    int64_t off = 0, max = -1;
    hil_blob *b;
    hil_writer w;
    char num[24];
    if (!arg(a, "name", &name, &name_len) || !valid_blob_name(name, name_len)) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "name must be 1-16 of a-z 0-9 _", "name", 0);
        return;
    }
    b = blob_find(a, name, name_len);
    if (b == NULL) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "no such blob", "name", 0);
        return;
    }
    if (arg(a, "off", &v, &n) && (off = parse_u(v, n)) < 0) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "off must be a decimal offset", "off", 0);
        return;
    }
    if ((size_t)off > b->len) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "off is beyond the end of the blob", "off", 0);
        return;
    }
    if (arg(a, "max", &v, &n) && (max = parse_u(v, n)) < 0) {
        reply_err(a, seq, verb, HIL_E_BAD_ARG, "max must be a decimal count", "max", 0);
        return;
    }
    begin(a, &w, HIL_KIND_OK, seq, verb);
    hil_fw_arg_str(&w, "name", b->name);
    reserve = 7 + hil_fmt_i64(num, (int64_t)b->len); /* " total=N" */
    room = hil_fw_room(&w, "data");
    room = room > reserve ? room - reserve : 0;
    enc = 0;
    for (take = 0; (size_t)off + take < b->len; take++) {
        uint8_t c = b->data[(size_t)off + take];
        size_t cost = (c >= 0x21 && c <= 0x7E && c != '%') ? 1 : 3;
        if (enc + cost > room || (max >= 0 && take >= (size_t)max))
            break;
        enc += cost;
    }
    hil_fw_arg(&w, "data", b->data + off, take);
    hil_fw_arg_int(&w, "total", (int64_t)b->len);
    send_reply(a, &w, seq, verb);
}

/* ---- dispatch ---- */

static void dispatch(hil_agent *a)
{
    hil_frame *f = &a->frame;
    const verb_def *d = NULL;
    size_t i, j;
    for (i = 0; i < NVERBS; i++)
        if (strcmp(verbs[i].name, f->verb) == 0 && cap_available(a, verbs[i].cap))
            d = &verbs[i];
    if (d == NULL) {
        reply_err(a, f->seq, f->verb, HIL_E_UNKNOWN_VERB, "the board does not implement this verb", NULL, 0);
        return;
    }
    /* K.blob=N: use blob N as the value of K (PROTOCOL.md §1.2). */
    for (i = 0; i < f->nargs; i++) {
        hil_arg *x = &f->args[i];
        if (x->key_len > 5 && memcmp(x->key + x->key_len - 5, ".blob", 5) == 0) {
            hil_blob *b;
            char kname[HIL_KEY_MAX + 1];
            memcpy(kname, x->key, x->key_len);
            kname[x->key_len] = '\0';
            if (!valid_blob_name(x->val, x->val_len) || (b = blob_find(a, x->val, x->val_len)) == NULL) {
                reply_err(a, f->seq, f->verb, HIL_E_BAD_ARG, "no such blob", kname, 0);
                return;
            }
            x->key_len -= 5;
            x->val = b->data;
            x->val_len = b->len;
        }
    }
    for (i = 0; i < f->nargs; i++) {
        hil_arg *x = &f->args[i];
        char kname[HIL_KEY_MAX + 1];
        int known = 0;
        memcpy(kname, x->key, x->key_len);
        kname[x->key_len] = '\0';
        for (j = 0; d->keys[j] != NULL; j++)
            if (strcmp(d->keys[j], kname) == 0)
                known = 1;
        if (!known) {
            reply_err(a, f->seq, f->verb, HIL_E_BAD_ARG, "unknown argument", kname, 0);
            return;
        }
        for (j = 0; j < i; j++) {
            if (f->args[j].key_len == x->key_len && memcmp(f->args[j].key, x->key, x->key_len) == 0) {
                reply_err(a, f->seq, f->verb, HIL_E_BAD_ARG, "argument given both inline and as a blob", kname, 0);
                return;
            }
        }
    }
    d->fn(a, f->seq, f->verb);
}

static void handle_line(hil_agent *a)
{
    hil_frame_error fe;
    hil_err e = hil_frame_parse(a->line, a->line_len, &a->frame, &fe);
    if (e != HIL_OK) {
        if (fe.seq < 0)
            reply_err(a, 0, "FRAME", e, fe.reason, NULL, 0);
        else
            reply_err(a, (uint16_t)fe.seq, fe.verb[0] ? fe.verb : "FRAME", e, fe.reason, NULL, 0);
        return;
    }
    if (a->frame.kind != HIL_KIND_REQ) {
        reply_err(a, a->frame.seq, a->frame.verb, HIL_E_BAD_FRAME, "the board accepts requests only", NULL, 0);
        return;
    }
    dispatch(a);
}

static void handle_too_long(hil_agent *a)
{
    int seq;
    char verb[HIL_VERB_MAX + 1];
    hil_frame_peek(a->line, a->line_len, &seq, verb);
    if (seq < 0)
        reply_err(a, 0, "FRAME", HIL_E_TOO_LONG, "the frame exceeds the board's maximum length", NULL, 0);
    else
        reply_err(a, (uint16_t)seq, verb[0] ? verb : "FRAME", HIL_E_TOO_LONG,
                  "the frame exceeds the board's maximum length", NULL, 0);
}

int hil_agent_feed(hil_agent *a, const uint8_t *buf, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        char c = (char)buf[i];
        if (a->reset_requested)
            return 1;
        if (!a->in_frame) {
            if (c == '\n') {
                a->window_len = 0;
                continue;
            }
            if (a->window_len == sizeof a->window) {
                memmove(a->window, a->window + 1, sizeof a->window - 1);
                a->window_len--;
            }
            a->window[a->window_len++] = c;
            if (a->window_len == sizeof a->window && memcmp(a->window, MARKER, 5) == 0) {
                a->in_frame = 1;
                a->overflow = 0;
                memcpy(a->line, MARKER, 5);
                a->line_len = 5;
                a->window_len = 0;
            }
            continue;
        }
        if (c == '\n') {
            if (a->overflow)
                handle_too_long(a);
            else
                handle_line(a);
            a->in_frame = 0;
            a->overflow = 0;
            a->line_len = 0;
            continue;
        }
        if (a->overflow)
            continue;
        /* the frame with this byte and its LF must fit the maximum */
        if (a->line_len + 2 > HIL_MAX_FRAME) {
            a->overflow = 1;
            continue;
        }
        a->line[a->line_len++] = c;
    }
    return a->reset_requested;
}

/* ---- lifecycle ---- */

static void copy_id(char *dst, size_t cap, const char *src, const char *def)
{
    copy_str(dst, cap, src != NULL && src[0] != '\0' ? src : def);
}

void hil_agent_init(hil_agent *a, const hil_platform *p, const hil_identity *id)
{
    memset(a, 0, sizeof *a);
    a->p = p;
    copy_id(a->board, sizeof a->board, id->board, "unknown");
    copy_id(a->chip, sizeof a->chip, id->chip, "unknown");
    copy_id(a->mac, sizeof a->mac, id->mac, "00:00:00:00:00:00");
    a->dialect = id->dialect;
    a->host_max = HIL_MAX_FRAME;
    hil_dps_config_default(&a->dps);
}

void hil_agent_ready(hil_agent *a, const char *reason)
{
    hil_writer w;
    size_t n;
    begin(a, &w, HIL_KIND_EVT, a->evt_seq++, "READY");
    hil_fw_arg_int(&w, "proto", HIL_PROTO_VERSION);
    hil_fw_arg_str(&w, "fw", HIL_FW_NAME);
    hil_fw_arg_str(&w, "fw_version", HIL_FW_VERSION);
    hil_fw_arg_str(&w, "reason", reason);
    n = hil_fw_end(&w);
    if (n > 0)
        a->p->console_write(a->p->ctx, (const uint8_t *)a->out, n);
}

void hil_agent_log(hil_agent *a, const char *level, const char *tag, const char *msg)
{
    hil_writer w;
    size_t n;
    begin(a, &w, HIL_KIND_EVT, a->evt_seq, "LOG");
    hil_fw_arg_str(&w, "level", level);
    hil_fw_arg_str(&w, "tag", tag);
    hil_fw_arg_str(&w, "msg", msg);
    n = hil_fw_end(&w);
    if (n > 0) {
        a->evt_seq++;
        a->p->console_write(a->p->ctx, (const uint8_t *)a->out, n);
    }
}

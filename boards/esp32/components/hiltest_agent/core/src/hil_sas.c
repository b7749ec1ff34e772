/*
 * hil_sas.c - device key derivation, SAS tokens in three dialects, and the
 * exact DPS request bytes.
 *
 * Sources of the rules (facts gathered in the hiltest repository's shared notes):
 * - key derivation: MicrosoftDocs/azure-docs articles/iot-dps/how-to-legacy-device-symm-key.md
 *   ("Derive a device key"): base64(HMAC-SHA256(b64dec(group key), registration id)).
 * - "default": uppercase RFC 3986 encoding of the whole resource, skn=registration
 *   (MicrosoftDocs/azure-docs articles/iot-dps/iot-dps-https-sym-key-support.md).
 * - "azure-sdk-for-c": urlenc(scope) "%2fregistrations%2f" urlenc(id), uppercase
 *   encoder, no skn (Azure/azure-sdk-for-c sdk/src/azure/iot/az_iot_provisioning_client_sas.c,
 *   sdk/src/azure/core/az_span.c _az_span_url_should_encode).
 * - "azure-iot-sdk-c": URL_EncodeString of "scope/registrations/id", lowercase hex,
 *   keeps ! ( ) * - . _ and alphanumerics, skn=registration (Azure/azure-iot-sdk-c
 *   provisioning_client/src/prov_auth_client.c, Azure/azure-c-shared-utility src/urlencode.c).
 */
#include "hil_core.h"

#include <string.h>

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

const char *hil_dialect_name(hil_dialect d)
{
    switch (d) {
    case HIL_DIALECT_AZURE_SDK_FOR_C: return "azure-sdk-for-c";
    case HIL_DIALECT_AZURE_IOT_SDK_C: return "azure-iot-sdk-c";
    case HIL_DIALECT_DEFAULT: break;
    }
    return "default";
}

int hil_dialect_parse(const char *s, hil_dialect *out)
{
    if (s == NULL || s[0] == '\0' || strcmp(s, "default") == 0) {
        *out = HIL_DIALECT_DEFAULT;
        return 0;
    }
    if (strcmp(s, "azure-sdk-for-c") == 0) {
        *out = HIL_DIALECT_AZURE_SDK_FOR_C;
        return 0;
    }
    if (strcmp(s, "azure-iot-sdk-c") == 0) {
        *out = HIL_DIALECT_AZURE_IOT_SDK_C;
        return 0;
    }
    return -1;
}

const char *hil_dialect_default_policy(hil_dialect d)
{
    return d == HIL_DIALECT_AZURE_SDK_FOR_C ? "" : "registration";
}

static int is_alnum(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int hil_valid_reg_id(const uint8_t *s, size_t n)
{
    size_t i;
    if (n == 0 || n > HIL_REGID_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_' && s[i] != ':')
            return 0;
    return is_alnum(s[n - 1]) || s[n - 1] == '-';
}

int hil_valid_scope(const uint8_t *s, size_t n)
{
    size_t i;
    if (n == 0 || n > HIL_SCOPE_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!is_alnum(s[i]))
            return 0;
    return 1;
}

/* RFC 3986 unreserved: kept by the "default" and "azure-sdk-for-c" encoders. */
static int rfc3986_keep(uint8_t c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* azure-c-shared-utility urlencode.c IS_PRINTABLE. */
static int iotsdkc_keep(uint8_t c)
{
    return is_alnum(c) || c == '!' || c == '(' || c == ')' || c == '*' || c == '-' || c == '.' || c == '_';
}

static int put(char *dst, size_t cap, size_t *o, char c)
{
    if (*o + 1 > cap)
        return -1;
    dst[(*o)++] = c;
    return 0;
}

size_t hil_urlenc(hil_dialect d, const uint8_t *s, size_t n, char *dst, size_t cap)
{
    size_t i, o = 0;
    for (i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (d == HIL_DIALECT_AZURE_IOT_SDK_C) {
            if (iotsdkc_keep(c)) {
                if (put(dst, cap, &o, (char)c))
                    return (size_t)-1;
                continue;
            }
            if (c < 0x80) {
                if (put(dst, cap, &o, '%') || put(dst, cap, &o, hex_lower[c >> 4]) ||
                    put(dst, cap, &o, hex_lower[c & 15]))
                    return (size_t)-1;
                continue;
            }
            /* URL_PrintableChar: a byte >= 0x80 is taken as Latin-1 and written
             * as its two-byte UTF-8 form, "%c2%xx" or "%c3%xx". */
            {
                uint8_t hi = (uint8_t)(c >> 4), lo = (uint8_t)(c & 15);
                if (hi >= 0x0C)
                    hi = (uint8_t)(hi - 4);
                if (put(dst, cap, &o, '%') || put(dst, cap, &o, 'c') ||
                    put(dst, cap, &o, c < 0xC0 ? '2' : '3') || put(dst, cap, &o, '%') ||
                    put(dst, cap, &o, hex_lower[hi]) || put(dst, cap, &o, hex_lower[lo]))
                    return (size_t)-1;
            }
            continue;
        }
        if (rfc3986_keep(c)) {
            if (put(dst, cap, &o, (char)c))
                return (size_t)-1;
            continue;
        }
        if (put(dst, cap, &o, '%') || put(dst, cap, &o, hex_upper[c >> 4]) ||
            put(dst, cap, &o, hex_upper[c & 15]))
            return (size_t)-1;
    }
    if (o < cap)
        dst[o] = '\0';
    return o;
}

size_t hil_sas_resource(hil_dialect d, const uint8_t *scope, size_t scope_len,
                        const uint8_t *reg, size_t reg_len, char *dst, size_t cap)
{
    uint8_t raw[HIL_SCOPE_MAX + 15 + HIL_REGID_MAX];
    size_t a, b, n;
    if (scope_len > HIL_SCOPE_MAX || reg_len > HIL_REGID_MAX)
        return (size_t)-1;
    if (d == HIL_DIALECT_AZURE_SDK_FOR_C) {
        static const char sep[] = "%2fregistrations%2f";
        a = hil_urlenc(d, scope, scope_len, dst, cap);
        if (a == (size_t)-1 || a + sizeof sep - 1 > cap)
            return (size_t)-1;
        memcpy(dst + a, sep, sizeof sep - 1);
        a += sizeof sep - 1;
        b = hil_urlenc(d, reg, reg_len, dst + a, cap - a);
        if (b == (size_t)-1)
            return (size_t)-1;
        return a + b;
    }
    n = 0;
    memcpy(raw, scope, scope_len);
    n += scope_len;
    memcpy(raw + n, "/registrations/", 15);
    n += 15;
    memcpy(raw + n, reg, reg_len);
    n += reg_len;
    return hil_urlenc(d, raw, n, dst, cap);
}

static int decode_key(const uint8_t *b64, size_t n, uint8_t *key, size_t *key_len)
{
    if (n == 0)
        return -1;
    if (hil_b64_decode((const char *)b64, n, key, HIL_KEYBYTES_MAX, key_len) != 0 || *key_len == 0)
        return -1;
    return 0;
}

hil_err hil_derive(const hil_platform *p, const uint8_t *group_key, size_t gk_len,
                   const uint8_t *reg, size_t reg_len, char out[HIL_SIG_MAX], const char **bad)
{
    uint8_t key[HIL_KEYBYTES_MAX], mac[32];
    size_t key_len = 0;
    if (decode_key(group_key, gk_len, key, &key_len) != 0) {
        *bad = "group_key";
        return HIL_E_BAD_ARG;
    }
    if (!hil_valid_reg_id(reg, reg_len)) {
        *bad = "reg_id";
        return HIL_E_BAD_ARG;
    }
    if (p->hmac_sha256(p->ctx, key, key_len, reg, reg_len, mac) != 0) {
        memset(key, 0, sizeof key);
        return HIL_E_INTERNAL;
    }
    memset(key, 0, sizeof key);
    hil_b64_encode(mac, sizeof mac, out, HIL_SIG_MAX);
    return HIL_OK;
}

static int append(char *dst, size_t cap, size_t *o, const char *s, size_t n)
{
    if (*o + n >= cap)
        return -1;
    memcpy(dst + *o, s, n);
    *o += n;
    dst[*o] = '\0';
    return 0;
}

hil_err hil_sas_build(const hil_platform *p, const hil_sas_params *in, hil_sas *out, const char **bad)
{
    uint8_t key[HIL_KEYBYTES_MAX], mac[32];
    size_t key_len = 0, o, n, i;
    char num[24];
    size_t num_len;

    if (in->resource != NULL) {
        if (in->resource_len == 0 || in->resource_len > HIL_RESOURCE_MAX) {
            *bad = "resource";
            return HIL_E_BAD_ARG;
        }
        n = hil_urlenc(in->dialect, in->resource, in->resource_len, out->sr, sizeof out->sr);
    } else {
        if (!hil_valid_scope(in->scope, in->scope_len)) {
            *bad = "id_scope";
            return HIL_E_BAD_ARG;
        }
        if (!hil_valid_reg_id(in->reg, in->reg_len)) {
            *bad = "reg_id";
            return HIL_E_BAD_ARG;
        }
        n = hil_sas_resource(in->dialect, in->scope, in->scope_len, in->reg, in->reg_len,
                             out->sr, sizeof out->sr);
    }
    if (n == (size_t)-1)
        return HIL_E_INTERNAL;
    out->sr_len = n;
    if (decode_key(in->key, in->key_len, key, &key_len) != 0) {
        *bad = "key";
        return HIL_E_BAD_ARG;
    }
    if (in->expiry <= 0) {
        memset(key, 0, sizeof key);
        *bad = "expiry";
        return HIL_E_BAD_ARG;
    }
    if (in->policy != NULL) {
        if (in->policy_len > HIL_POLICY_MAX) {
            memset(key, 0, sizeof key);
            *bad = "policy";
            return HIL_E_BAD_ARG;
        }
        for (i = 0; i < in->policy_len; i++) {
            uint8_t c = in->policy[i];
            if (c < 0x21 || c > 0x7E || c == '&') {
                memset(key, 0, sizeof key);
                *bad = "policy";
                return HIL_E_BAD_ARG;
            }
        }
    }
    out->se = in->expiry;
    num_len = hil_fmt_i64(num, in->expiry);

    /* string to sign: sr exactly as sent, LF, expiry */
    o = 0;
    out->sts[0] = '\0';
    if (append(out->sts, sizeof out->sts, &o, out->sr, out->sr_len) ||
        append(out->sts, sizeof out->sts, &o, "\n", 1) ||
        append(out->sts, sizeof out->sts, &o, num, num_len)) {
        memset(key, 0, sizeof key);
        return HIL_E_INTERNAL;
    }
    out->sts_len = o;
    if (p->hmac_sha256(p->ctx, key, key_len, (const uint8_t *)out->sts, out->sts_len, mac) != 0) {
        memset(key, 0, sizeof key);
        return HIL_E_INTERNAL;
    }
    memset(key, 0, sizeof key);
    hil_b64_encode(mac, sizeof mac, out->sig, sizeof out->sig);

    /* SharedAccessSignature sr=<sr>&sig=<urlenc(sig)>&se=<se>[&skn=<policy>] */
    o = 0;
    out->token[0] = '\0';
    if (append(out->token, sizeof out->token, &o, "SharedAccessSignature sr=", 25) ||
        append(out->token, sizeof out->token, &o, out->sr, out->sr_len) ||
        append(out->token, sizeof out->token, &o, "&sig=", 5))
        return HIL_E_INTERNAL;
    n = hil_urlenc(in->dialect, (const uint8_t *)out->sig, strlen(out->sig), out->token + o,
                   sizeof out->token - o);
    if (n == (size_t)-1)
        return HIL_E_INTERNAL;
    o += n;
    if (append(out->token, sizeof out->token, &o, "&se=", 4) ||
        append(out->token, sizeof out->token, &o, num, num_len))
        return HIL_E_INTERNAL;
    if (in->policy != NULL && in->policy_len > 0) {
        if (append(out->token, sizeof out->token, &o, "&skn=", 5) ||
            append(out->token, sizeof out->token, &o, (const char *)in->policy, in->policy_len))
            return HIL_E_INTERNAL;
    }
    out->token_len = o;
    return HIL_OK;
}

/* ---- DPS requests (PROTOCOL.md §4 DPS.REQUEST; reference.RegisterRequestBytes) ---- */

void hil_dps_config_default(hil_dps_config *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->host, HIL_DPS_DEFAULT_HOST);
    c->port = HIL_DPS_DEFAULT_PORT;
    strcpy(c->api_version, HIL_DPS_DEFAULT_API);
}

typedef struct {
    char *buf;
    size_t cap, len;
    int bad;
} sbuf;

static void sb_init(sbuf *b, char *dst, size_t cap)
{
    b->buf = dst;
    b->cap = cap;
    b->len = 0;
    b->bad = 0;
}

/* The length written, NUL-terminated when there is room; 0 when it did not fit. */
static size_t sb_end(sbuf *b)
{
    if (b->bad)
        return 0;
    if (b->len < b->cap)
        b->buf[b->len] = '\0';
    return b->len;
}

static void sb_put(sbuf *b, const void *s, size_t n)
{
    if (b->bad || b->len + n > b->cap) {
        b->bad = 1;
        return;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_int(sbuf *b, int64_t v)
{
    char num[24];
    sb_put(b, num, hil_fmt_i64(num, v));
}

static void sb_host(sbuf *b, const hil_dps_config *c)
{
    sb_str(b, "Host: ");
    sb_str(b, c->host);
    if (c->port != 443) {
        sb_str(b, ":");
        sb_int(b, c->port);
    }
    sb_str(b, "\r\n");
}

static void sb_path(sbuf *b, const hil_dps_config *c, const uint8_t *scope, size_t scope_len,
                    const uint8_t *reg, size_t reg_len)
{
    (void)c;
    sb_str(b, "/");
    sb_put(b, scope, scope_len);
    sb_str(b, "/registrations/");
    sb_put(b, reg, reg_len);
}

size_t hil_dps_register_request(char *dst, size_t cap, const hil_dps_config *c,
                                const uint8_t *scope, size_t scope_len,
                                const uint8_t *reg, size_t reg_len,
                                const char *token, size_t token_len,
                                const uint8_t *payload, size_t payload_len)
{
    sbuf b;
    size_t body_len = 19 + reg_len + 2; /* {"registrationId":" id "} */
    if (payload != NULL && payload_len > 0)
        body_len += 11 + payload_len;  /* ,"payload": */
    sb_init(&b, dst, cap);
    sb_str(&b, "PUT ");
    sb_path(&b, c, scope, scope_len, reg, reg_len);
    sb_str(&b, "/register?api-version=");
    sb_str(&b, c->api_version);
    sb_str(&b, " HTTP/1.1\r\n");
    sb_host(&b, c);
    sb_str(&b, "Content-Type: application/json\r\n");
    sb_str(&b, "Content-Length: ");
    sb_int(&b, (int64_t)body_len);
    sb_str(&b, "\r\nAuthorization: ");
    sb_put(&b, token, token_len);
    sb_str(&b, "\r\n\r\n");
    sb_str(&b, "{\"registrationId\":\"");
    sb_put(&b, reg, reg_len);
    sb_str(&b, "\"");
    if (payload != NULL && payload_len > 0) {
        sb_str(&b, ",\"payload\":");
        sb_put(&b, payload, payload_len);
    }
    sb_str(&b, "}");
    return sb_end(&b);
}

size_t hil_dps_operation_request(char *dst, size_t cap, const hil_dps_config *c,
                                 const uint8_t *scope, size_t scope_len,
                                 const uint8_t *reg, size_t reg_len,
                                 const char *op, const char *token, size_t token_len)
{
    sbuf b;
    sb_init(&b, dst, cap);
    sb_str(&b, "GET ");
    sb_path(&b, c, scope, scope_len, reg, reg_len);
    sb_str(&b, "/operations/");
    sb_str(&b, op);
    sb_str(&b, "?api-version=");
    sb_str(&b, c->api_version);
    sb_str(&b, " HTTP/1.1\r\n");
    sb_host(&b, c);
    sb_str(&b, "Authorization: ");
    sb_put(&b, token, token_len);
    sb_str(&b, "\r\n\r\n");
    return sb_end(&b);
}

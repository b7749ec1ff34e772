/*
 * hil_codec.c - CRC-32, value encoding, base64 and the frame grammar of
 * protocol v1 (protocol/PROTOCOL.md §1).
 */
#include "hil_core.h"

#include <string.h>

static const char hex_upper[] = "0123456789ABCDEF";

const char *hil_err_code(hil_err e)
{
    switch (e) {
    case HIL_OK: return "OK";
    case HIL_E_BAD_FRAME: return "BAD_FRAME";
    case HIL_E_BAD_CRC: return "BAD_CRC";
    case HIL_E_UNKNOWN_VERB: return "UNKNOWN_VERB";
    case HIL_E_BAD_ARG: return "BAD_ARG";
    case HIL_E_TOO_LONG: return "TOO_LONG";
    case HIL_E_BUSY: return "BUSY";
    case HIL_E_NETWORK: return "NETWORK";
    case HIL_E_TLS: return "TLS";
    case HIL_E_HTTP: return "HTTP";
    case HIL_E_TIMEOUT: return "TIMEOUT";
    case HIL_E_INTERNAL: return "INTERNAL";
    }
    return "INTERNAL";
}

/* ---- CRC-32: reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF.
 * Nibble table: 64 bytes of table, fast enough for 4 KiB frames. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t hil_crc32_update(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    size_t i;
    for (i = 0; i < len; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0F];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0F];
    }
    return crc;
}

uint32_t hil_crc32(const void *data, size_t len)
{
    return ~hil_crc32_update(0xFFFFFFFFu, data, len);
}

/* ---- Values ---- */

static int is_safe(uint8_t c) { return c >= 0x21 && c <= 0x7E && c != '%'; }

size_t hil_value_encoded_len(const uint8_t *v, size_t n)
{
    size_t i, out = 0;
    for (i = 0; i < n; i++)
        out += is_safe(v[i]) ? 1 : 3;
    return out;
}

size_t hil_value_encode(char *dst, size_t cap, const uint8_t *v, size_t n)
{
    size_t i, o = 0;
    for (i = 0; i < n; i++) {
        uint8_t c = v[i];
        if (is_safe(c)) {
            if (o + 1 > cap)
                return (size_t)-1;
            dst[o++] = (char)c;
        } else {
            if (o + 3 > cap)
                return (size_t)-1;
            dst[o++] = '%';
            dst[o++] = hex_upper[c >> 4];
            dst[o++] = hex_upper[c & 15];
        }
    }
    return o;
}

static int unhex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int hil_value_decode(uint8_t *dst, const char *src, size_t n, size_t *out_len)
{
    size_t i, o = 0;
    for (i = 0; i < n; i++) {
        char c = src[i];
        if (c != '%') {
            dst[o++] = (uint8_t)c;
            continue;
        }
        if (n - i < 3) /* fewer than two characters follow */
            return -1;
        {
            int hi = unhex(src[i + 1]), lo = unhex(src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            dst[o++] = (uint8_t)(hi << 4 | lo);
        }
        i += 2;
    }
    *out_len = o;
    return 0;
}

/* ---- Base64 (RFC 4648 standard alphabet, padded) ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t hil_b64_encode(const uint8_t *src, size_t n, char *dst, size_t cap)
{
    size_t need = (n + 2) / 3 * 4, i, o = 0;
    if (need > cap)
        return (size_t)-1;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        dst[o++] = b64_alphabet[(v >> 18) & 63];
        dst[o++] = b64_alphabet[(v >> 12) & 63];
        dst[o++] = b64_alphabet[(v >> 6) & 63];
        dst[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)src[i] << 16;
        dst[o++] = b64_alphabet[(v >> 18) & 63];
        dst[o++] = b64_alphabet[(v >> 12) & 63];
        dst[o++] = '=';
        dst[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8;
        dst[o++] = b64_alphabet[(v >> 18) & 63];
        dst[o++] = b64_alphabet[(v >> 12) & 63];
        dst[o++] = b64_alphabet[(v >> 6) & 63];
        dst[o++] = '=';
    }
    if (o < cap)
        dst[o] = '\0';
    return o;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int hil_b64_decode(const char *src, size_t n, uint8_t *dst, size_t cap, size_t *out_len)
{
    size_t i, o = 0;
    if (n % 4 != 0)
        return -1;
    for (i = 0; i < n; i += 4) {
        int v[4], k, pad = 0;
        for (k = 0; k < 4; k++) {
            char c = src[i + (size_t)k];
            if (c == '=') {
                /* padding only in the last quantum, only in its last two places */
                if (i + 4 != n || k < 2)
                    return -1;
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad > 0)
                return -1; /* data after '=' */
            v[k] = b64_val(c);
            if (v[k] < 0)
                return -1;
        }
        {
            uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
            size_t take = (size_t)(3 - pad);
            /* strict: the bits a padded quantum drops must be zero */
            if (pad == 1 && (x & 0xFF) != 0)
                return -1;
            if (pad == 2 && (x & 0xFFFF) != 0)
                return -1;
            if (o + take > cap)
                return -1;
            dst[o++] = (uint8_t)(x >> 16);
            if (take > 1)
                dst[o++] = (uint8_t)(x >> 8);
            if (take > 2)
                dst[o++] = (uint8_t)x;
        }
    }
    *out_len = o;
    return 0;
}

/* ---- Frame grammar ---- */

#define MARKER "@@HIL"
#define MARKER_LEN 5

static int verb_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_';
}

static int key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_';
}

/* Parses a decimal seq: 1..5 digits, <= 65535, no leading zero. -1 if invalid. */
static int parse_seq(const char *s, size_t n)
{
    size_t i;
    long v = 0;
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v > 65535 ? -1 : (int)v;
}

static int valid_verb(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || n > HIL_VERB_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!verb_char(s[i]))
            return 0;
    return 1;
}

/* Token i (0-based) after the marker and its space; returns 1 if present. */
static int nth_token(const char *s, size_t n, int want, const char **tok, size_t *tok_len)
{
    size_t i = 0;
    int idx = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != ' ')
            j++;
        if (idx == want) {
            *tok = s + i;
            *tok_len = j - i;
            return 1;
        }
        idx++;
        if (j >= n)
            break;
        i = j + 1;
    }
    return 0;
}

void hil_frame_peek(const char *line, size_t len, int *seq, char verb[HIL_VERB_MAX + 1])
{
    const char *t;
    size_t tl;
    *seq = -1;
    verb[0] = '\0';
    if (len < MARKER_LEN + 1 || memcmp(line, MARKER " ", MARKER_LEN + 1) != 0)
        return;
    line += MARKER_LEN + 1;
    len -= MARKER_LEN + 1;
    if (nth_token(line, len, 1, &t, &tl))
        *seq = parse_seq(t, tl);
    if (nth_token(line, len, 2, &t, &tl) && valid_verb(t, tl)) {
        memcpy(verb, t, tl);
        verb[tl] = '\0';
    }
}

static hil_err fail(hil_frame_error *fe, hil_err e, const char *reason)
{
    fe->err = e;
    fe->reason = reason;
    return e;
}

hil_err hil_frame_parse(char *line, size_t len, hil_frame *f, hil_frame_error *fe)
{
    size_t i, body_len, pos, end;
    uint32_t want = 0, got;
    const char *t;
    size_t tl;

    memset(f, 0, sizeof *f);
    fe->err = HIL_OK;
    fe->reason = "";
    if (len > 0 && line[len - 1] == '\r')
        len--;
    hil_frame_peek(line, len, &fe->seq, fe->verb);
    if (len < MARKER_LEN + 1 || memcmp(line, MARKER " ", MARKER_LEN + 1) != 0)
        return fail(fe, HIL_E_BAD_FRAME, "line does not start with the marker");
    /* " *XXXXXXXX" at the end */
    if (len < MARKER_LEN + 1 + 10 || line[len - 10] != ' ' || line[len - 9] != '*')
        return fail(fe, HIL_E_BAD_FRAME, "no CRC at the end of the frame");
    for (i = len - 8; i < len; i++) {
        int v = unhex(line[i]);
        if (v < 0)
            return fail(fe, HIL_E_BAD_FRAME, "CRC is not 8 hex digits");
        want = want << 4 | (uint32_t)v;
    }
    body_len = len - 9; /* marker .. the space before '*' */
    got = hil_crc32(line, body_len);
    if (got != want)
        return fail(fe, HIL_E_BAD_CRC, "CRC mismatch");

    /* tokens between the marker's space and the space before '*' */
    pos = MARKER_LEN + 1;
    end = body_len - 1;
    for (i = pos; i < end; i++) {
        uint8_t c = (uint8_t)line[i];
        if (c != ' ' && (c < 0x21 || c > 0x7E))
            return fail(fe, HIL_E_BAD_FRAME, "byte outside printable ASCII");
    }
    /* kind */
    if (!nth_token(line + pos, end - pos, 0, &t, &tl))
        return fail(fe, HIL_E_BAD_FRAME, "want kind, seq and verb");
    if (tl == 3 && memcmp(t, "REQ", 3) == 0) f->kind = HIL_KIND_REQ;
    else if (tl == 2 && memcmp(t, "OK", 2) == 0) f->kind = HIL_KIND_OK;
    else if (tl == 3 && memcmp(t, "ERR", 3) == 0) f->kind = HIL_KIND_ERR;
    else if (tl == 3 && memcmp(t, "EVT", 3) == 0) f->kind = HIL_KIND_EVT;
    else return fail(fe, HIL_E_BAD_FRAME, "unknown kind");
    pos += tl + 1;
    if (pos > end)
        return fail(fe, HIL_E_BAD_FRAME, "want kind, seq and verb");
    /* seq */
    nth_token(line + pos, end - pos, 0, &t, &tl);
    {
        int s = parse_seq(t, tl);
        if (s < 0)
            return fail(fe, HIL_E_BAD_FRAME, "bad sequence number");
        f->seq = (uint16_t)s;
    }
    pos += tl + 1;
    if (pos > end)
        return fail(fe, HIL_E_BAD_FRAME, "want kind, seq and verb");
    /* verb */
    nth_token(line + pos, end - pos, 0, &t, &tl);
    if (!valid_verb(t, tl))
        return fail(fe, HIL_E_BAD_FRAME, "bad verb");
    memcpy(f->verb, t, tl);
    f->verb[tl] = '\0';
    pos += tl + 1;
    /* args */
    /* pos == end + 1: the last token ended at the final space; pos == end:
     * an empty token before it (two spaces), which is malformed */
    while (pos <= end) {
        size_t eq, k;
        hil_arg *a;
        nth_token(line + pos, end - pos, 0, &t, &tl);
        if (tl == 0)
            return fail(fe, HIL_E_BAD_FRAME, "empty argument");
        for (eq = 0; eq < tl && t[eq] != '='; eq++)
            ;
        if (eq == tl)
            return fail(fe, HIL_E_BAD_FRAME, "argument without '='");
        if (eq == 0 || eq > HIL_KEY_MAX)
            return fail(fe, HIL_E_BAD_FRAME, "bad argument key");
        for (k = 0; k < eq; k++)
            if (!key_char(t[k]))
                return fail(fe, HIL_E_BAD_FRAME, "bad argument key");
        for (k = 0; k < f->nargs; k++)
            if (f->args[k].key_len == eq && memcmp(f->args[k].key, t, eq) == 0)
                return fail(fe, HIL_E_BAD_FRAME, "argument given twice");
        if (f->nargs >= HIL_MAX_ARGS)
            return fail(fe, HIL_E_BAD_FRAME, "too many arguments");
        a = &f->args[f->nargs];
        a->key = t;
        a->key_len = eq;
        a->val = (uint8_t *)(line + pos + eq + 1);
        if (hil_value_decode(a->val, t + eq + 1, tl - eq - 1, &a->val_len) != 0)
            return fail(fe, HIL_E_BAD_FRAME, "bad %-escape");
        f->nargs++;
        pos += tl + 1;
    }
    return HIL_OK;
}

/* ---- Writer ---- */

static void w_put(hil_writer *w, const char *s, size_t n)
{
    if (w->overflow || w->len + n > w->cap) {
        w->overflow = 1;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void w_puts(hil_writer *w, const char *s) { w_put(w, s, strlen(s)); }

static size_t fmt_u64(char *dst, uint64_t v)
{
    char tmp[24];
    size_t n = 0, i;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}

size_t hil_fmt_i64(char *dst, int64_t v)
{
    if (v < 0) {
        dst[0] = '-';
        return 1 + fmt_u64(dst + 1, (uint64_t)(-(v + 1)) + 1);
    }
    return fmt_u64(dst, (uint64_t)v);
}

void hil_fw_begin(hil_writer *w, char *buf, size_t cap, hil_kind kind, uint16_t seq, const char *verb)
{
    static const char *const kinds[] = {"REQ", "OK", "ERR", "EVT"};
    char num[8];
    size_t n;
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = 0;
    w_puts(w, MARKER " ");
    w_puts(w, kinds[kind]);
    w_put(w, " ", 1);
    n = fmt_u64(num, seq);
    w_put(w, num, n);
    w_put(w, " ", 1);
    w_puts(w, verb);
}

void hil_fw_arg(hil_writer *w, const char *key, const uint8_t *v, size_t n)
{
    size_t enc;
    w_put(w, " ", 1);
    w_puts(w, key);
    w_put(w, "=", 1);
    if (w->overflow)
        return;
    enc = hil_value_encode(w->buf + w->len, w->cap - w->len, v, n);
    if (enc == (size_t)-1) {
        w->overflow = 1;
        return;
    }
    w->len += enc;
}

void hil_fw_arg_str(hil_writer *w, const char *key, const char *v)
{
    hil_fw_arg(w, key, (const uint8_t *)v, strlen(v));
}

void hil_fw_arg_int(hil_writer *w, const char *key, int64_t v)
{
    char num[24];
    size_t n = hil_fmt_i64(num, v);
    hil_fw_arg(w, key, (const uint8_t *)num, n);
}

size_t hil_fw_room(const hil_writer *w, const char *key)
{
    size_t used = w->len + 1 + strlen(key) + 1 + HIL_FRAME_TRAILER;
    if (w->overflow || used >= w->cap)
        return 0;
    return w->cap - used;
}

size_t hil_fw_end(hil_writer *w)
{
    uint32_t crc;
    char tail[HIL_FRAME_TRAILER];
    int i;
    w_put(w, " ", 1);
    if (w->overflow || w->len + HIL_FRAME_TRAILER - 1 > w->cap)
        return 0;
    crc = hil_crc32(w->buf, w->len);
    tail[0] = '*';
    for (i = 0; i < 8; i++)
        tail[1 + i] = hex_upper[(crc >> (28 - 4 * i)) & 15];
    tail[9] = '\n';
    w_put(w, tail, 10);
    if (w->overflow)
        return 0;
    if (w->len < w->cap)
        w->buf[w->len] = '\0';
    return w->len;
}

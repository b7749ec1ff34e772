/*
 * hil_json.c - a small, bounded JSON parser for DPS answers, and an HTTP/1.1
 * response parser (status, Content-Length, chunked, Retry-After).
 *
 * The DPS body shapes come from Azure/azure-rest-api-specs
 * .../DeviceProvisioningServices/stable/2021-10-01/device.json
 * (RegistrationOperationStatus, DeviceRegistrationResult,
 * ProvisioningServiceErrorDetails). Only the fields the agent reports are
 * kept; everything else is validated and skipped. No recursion deeper than
 * HIL_JSON_DEPTH, no allocation.
 */
#include "hil_core.h"

#include <string.h>

#define HIL_JSON_DEPTH 32

typedef struct {
    const char *s;
    size_t n, i;
} jp;

enum { CTX_NONE, CTX_TOP, CTX_RS };

static void ws(jp *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Output sink for a decoded string: bounded, truncating, always NUL-terminated. */
typedef struct {
    char *dst;
    size_t cap, len;
    int truncated;
} jout;

static void out_byte(jout *o, uint8_t c)
{
    if (o == NULL || o->dst == NULL)
        return;
    if (o->len + 1 < o->cap) {
        o->dst[o->len++] = (char)c;
        o->dst[o->len] = '\0';
    } else {
        o->truncated = 1;
    }
}

static void out_utf8(jout *o, uint32_t cp)
{
    if (cp < 0x80) {
        out_byte(o, (uint8_t)cp);
    } else if (cp < 0x800) {
        out_byte(o, (uint8_t)(0xC0 | cp >> 6));
        out_byte(o, (uint8_t)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out_byte(o, (uint8_t)(0xE0 | cp >> 12));
        out_byte(o, (uint8_t)(0x80 | ((cp >> 6) & 0x3F)));
        out_byte(o, (uint8_t)(0x80 | (cp & 0x3F)));
    } else {
        out_byte(o, (uint8_t)(0xF0 | cp >> 18));
        out_byte(o, (uint8_t)(0x80 | ((cp >> 12) & 0x3F)));
        out_byte(o, (uint8_t)(0x80 | ((cp >> 6) & 0x3F)));
        out_byte(o, (uint8_t)(0x80 | (cp & 0x3F)));
    }
}

static int read_u4(jp *p, uint32_t *v)
{
    int k;
    *v = 0;
    if (p->n - p->i < 4)
        return -1;
    for (k = 0; k < 4; k++) {
        int h = hexval(p->s[p->i + (size_t)k]);
        if (h < 0)
            return -1;
        *v = *v << 4 | (uint32_t)h;
    }
    p->i += 4;
    return 0;
}

/* Parses a string at p->i (which is '"'); decodes it into o (may be NULL). */
static int parse_string(jp *p, jout *o)
{
    if (p->i >= p->n || p->s[p->i] != '"')
        return -1;
    p->i++;
    while (p->i < p->n) {
        uint8_t c = (uint8_t)p->s[p->i++];
        if (c == '"')
            return 0;
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            out_byte(o, c);
            continue;
        }
        if (p->i >= p->n)
            return -1;
        c = (uint8_t)p->s[p->i++];
        switch (c) {
        case '"': out_byte(o, '"'); break;
        case '\\': out_byte(o, '\\'); break;
        case '/': out_byte(o, '/'); break;
        case 'b': out_byte(o, '\b'); break;
        case 'f': out_byte(o, '\f'); break;
        case 'n': out_byte(o, '\n'); break;
        case 'r': out_byte(o, '\r'); break;
        case 't': out_byte(o, '\t'); break;
        case 'u': {
            uint32_t cp, lo;
            if (read_u4(p, &cp) != 0)
                return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF && p->n - p->i >= 6 && p->s[p->i] == '\\' &&
                p->s[p->i + 1] == 'u') {
                size_t save = p->i;
                p->i += 2;
                if (read_u4(p, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    p->i = save;
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            out_utf8(o, cp);
            break;
        }
        default:
            return -1;
        }
    }
    return -1;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int parse_number(jp *p, jout *o)
{
    size_t start = p->i, k;
    if (p->i < p->n && p->s[p->i] == '-')
        p->i++;
    if (p->i >= p->n)
        return -1;
    if (p->s[p->i] == '0') {
        p->i++;
    } else if (is_digit(p->s[p->i])) {
        while (p->i < p->n && is_digit(p->s[p->i]))
            p->i++;
    } else {
        return -1;
    }
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (p->i >= p->n || !is_digit(p->s[p->i]))
            return -1;
        while (p->i < p->n && is_digit(p->s[p->i]))
            p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        if (p->i >= p->n || !is_digit(p->s[p->i]))
            return -1;
        while (p->i < p->n && is_digit(p->s[p->i]))
            p->i++;
    }
    for (k = start; k < p->i; k++)
        out_byte(o, (uint8_t)p->s[k]);
    return 0;
}

static int literal(jp *p, const char *w)
{
    size_t n = strlen(w);
    if (p->n - p->i < n || memcmp(p->s + p->i, w, n) != 0)
        return -1;
    p->i += n;
    return 0;
}

static int parse_value(jp *p, int ctx, jout *o, hil_dps_result *r, int depth);

/* Where a member's value goes, by context and key. */
static void target(hil_dps_result *r, int ctx, const char *key, jout *o, int *sub)
{
    o->dst = NULL;
    o->cap = 0;
    o->len = 0;
    o->truncated = 0;
    *sub = CTX_NONE;
    if (r == NULL)
        return;
#define T(field) do { o->dst = r->field; o->cap = sizeof r->field; r->field[0] = '\0'; } while (0)
    if (ctx == CTX_TOP) {
        if (strcmp(key, "operationId") == 0) T(operation_id);
        else if (strcmp(key, "status") == 0) T(status);
        else if (strcmp(key, "errorCode") == 0) T(error_code);
        else if (strcmp(key, "message") == 0) T(message);
        else if (strcmp(key, "registrationState") == 0) *sub = CTX_RS;
    } else if (ctx == CTX_RS) {
        if (strcmp(key, "assignedHub") == 0) T(assigned_hub);
        else if (strcmp(key, "deviceId") == 0) T(device_id);
        else if (strcmp(key, "status") == 0) T(rs_status);
        else if (strcmp(key, "errorCode") == 0) T(rs_error_code);
        else if (strcmp(key, "errorMessage") == 0) T(rs_error_message);
    }
#undef T
}

/* Steps over the opening bracket at p->i; 1 when the container is empty
 * (its closing bracket consumed too), else 0. */
static int open_container(jp *p, char close)
{
    p->i++;
    ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        return 1;
    }
    return 0;
}

/* After a member or element: steps over ',' (1: another one follows) or the
 * closing bracket (0: done); -1 for anything else. */
static int next_member(jp *p, char close)
{
    ws(p);
    if (p->i >= p->n)
        return -1;
    if (p->s[p->i] == ',') {
        p->i++;
        return 1;
    }
    if (p->s[p->i] == close) {
        p->i++;
        return 0;
    }
    return -1;
}

static int parse_object(jp *p, int ctx, hil_dps_result *r, int depth)
{
    int more;
    if (open_container(p, '}'))
        return 0;
    for (;;) {
        char key[40];
        jout ko = {key, sizeof key, 0, 0};
        jout vo;
        int sub;
        key[0] = '\0';
        ws(p);
        if (parse_string(p, &ko) != 0)
            return -1;
        ws(p);
        if (p->i >= p->n || p->s[p->i] != ':')
            return -1;
        p->i++;
        ws(p);
        if (ko.truncated)
            target(NULL, CTX_NONE, key, &vo, &sub);
        else
            target(r, ctx, key, &vo, &sub);
        if (parse_value(p, sub, vo.dst ? &vo : NULL, r, depth + 1) != 0)
            return -1;
        more = next_member(p, '}');
        if (more <= 0)
            return more;
    }
}

static int parse_array(jp *p, int depth)
{
    int more;
    if (open_container(p, ']'))
        return 0;
    for (;;) {
        ws(p);
        if (parse_value(p, CTX_NONE, NULL, NULL, depth + 1) != 0)
            return -1;
        more = next_member(p, ']');
        if (more <= 0)
            return more;
    }
}

static int parse_value(jp *p, int ctx, jout *o, hil_dps_result *r, int depth)
{
    if (depth > HIL_JSON_DEPTH)
        return -1;
    ws(p);
    if (p->i >= p->n)
        return -1;
    switch (p->s[p->i]) {
    case '{':
        return parse_object(p, ctx, ctx == CTX_NONE ? NULL : r, depth);
    case '[':
        return parse_array(p, depth);
    case '"':
        return parse_string(p, o);
    case 't':
        return literal(p, "true");
    case 'f':
        return literal(p, "false");
    case 'n':
        return literal(p, "null");
    default:
        return parse_number(p, o);
    }
}

int hil_json_valid(const char *s, size_t n)
{
    jp p;
    p.s = s;
    p.n = n;
    p.i = 0;
    if (parse_value(&p, CTX_NONE, NULL, NULL, 0) != 0)
        return -1;
    ws(&p);
    return p.i == n ? 0 : -1;
}

int hil_json_parse_dps(const char *json, size_t n, hil_dps_result *out)
{
    jp p;
    memset(out, 0, sizeof *out);
    p.s = json;
    p.n = n;
    p.i = 0;
    ws(&p);
    if (p.i >= n || json[p.i] != '{')
        return -1;
    if (parse_value(&p, CTX_TOP, NULL, out, 0) != 0)
        return -1;
    ws(&p);
    return p.i == n ? 0 : -1;
}

/* ---- HTTP/1.1 responses ---- */

static int ieq_prefix(const char *s, size_t n, const char *name)
{
    size_t k, m = strlen(name);
    if (n < m)
        return 0;
    for (k = 0; k < m; k++) {
        char a = s[k], b = name[k];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
}

/* Parses a decimal number of at most 9 digits; -1 if not one. */
static long parse_dec(const char *s, size_t n)
{
    size_t k;
    long v = 0;
    if (n == 0 || n > 9)
        return -1;
    for (k = 0; k < n; k++) {
        if (!is_digit(s[k]))
            return -1;
        v = v * 10 + (s[k] - '0');
    }
    return v;
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* Walks a chunked body; returns the decoded length, -2 when more input is
 * needed, -1 when malformed. With decode set, compacts the data in place. */
static long chunked(char *b, size_t n, int decode)
{
    size_t i = 0, o = 0;
    for (;;) {
        size_t size = 0, k = 0, line_end;
        /* size line: hex [; ext] CRLF */
        for (line_end = i; line_end + 1 < n && !(b[line_end] == '\r' && b[line_end + 1] == '\n'); line_end++)
            ;
        if (line_end + 1 >= n)
            return -2;
        while (i + k < line_end && hexval(b[i + k]) >= 0) {
            if (k >= 7)
                return -1;
            size = size << 4 | (size_t)hexval(b[i + k]);
            k++;
        }
        if (k == 0)
            return -1;
        if (i + k < line_end && b[i + k] != ';' && b[i + k] != ' ' && b[i + k] != '\t')
            return -1;
        i = line_end + 2;
        if (size == 0) {
            /* trailers until an empty line */
            for (;;) {
                for (line_end = i; line_end + 1 < n && !(b[line_end] == '\r' && b[line_end + 1] == '\n'); line_end++)
                    ;
                if (line_end + 1 >= n)
                    return -2;
                if (line_end == i)
                    return (long)o;
                i = line_end + 2;
            }
        }
        if (n - i < size + 2)
            return -2;
        if (b[i + size] != '\r' || b[i + size + 1] != '\n')
            return -1;
        if (decode)
            memmove(b + o, b + i, size);
        o += size;
        i += size + 2;
    }
}

int hil_http_parse(char *buf, size_t len, int eof, hil_http_response *r)
{
    size_t i, head = 0, line_start;
    long content_length = -1;
    int is_chunked = 0;
    memset(r, 0, sizeof *r);
    r->retry_after = -1;
    for (i = 0; i + 3 < len; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
            head = i + 4;
            break;
        }
    }
    if (head == 0)
        return eof ? HIL_HTTP_BAD : HIL_HTTP_MORE;
    /* status line: HTTP/1.x SP 3DIGIT [SP reason] */
    if (head < 14 || memcmp(buf, "HTTP/1.", 7) != 0 || !is_digit(buf[7]) || buf[8] != ' ' ||
        !is_digit(buf[9]) || !is_digit(buf[10]) || !is_digit(buf[11]) ||
        (buf[12] != ' ' && buf[12] != '\r'))
        return HIL_HTTP_BAD;
    r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    /* headers */
    for (line_start = 0; line_start + 1 < head && !(buf[line_start] == '\r' && buf[line_start + 1] == '\n'); line_start++)
        ;
    line_start += 2;
    while (line_start + 2 < head) {
        size_t e = line_start, colon;
        const char *v;
        size_t vn;
        while (e + 1 < head && !(buf[e] == '\r' && buf[e + 1] == '\n'))
            e++;
        for (colon = line_start; colon < e && buf[colon] != ':'; colon++)
            ;
        if (colon == e || colon == line_start)
            return HIL_HTTP_BAD;
        v = buf + colon + 1;
        vn = e - colon - 1;
        trim(&v, &vn);
        if (colon - line_start == 14 && ieq_prefix(buf + line_start, 14, "content-length")) {
            content_length = parse_dec(v, vn);
            if (content_length < 0)
                return HIL_HTTP_BAD;
        } else if (colon - line_start == 17 && ieq_prefix(buf + line_start, 17, "transfer-encoding")) {
            size_t k;
            for (k = 0; k + 7 <= vn; k++)
                if (ieq_prefix(v + k, vn - k, "chunked"))
                    is_chunked = 1;
        } else if (colon - line_start == 11 && ieq_prefix(buf + line_start, 11, "retry-after")) {
            long ra = parse_dec(v, vn); /* delay-seconds only; an HTTP date counts as absent */
            r->retry_after = ra < 0 ? -1 : (int)ra;
        }
        line_start = e + 2;
    }
    r->head_len = head;
    r->body = buf + head;
    if (is_chunked) {
        long n = chunked(buf + head, len - head, 0);
        if (n == -1)
            return HIL_HTTP_BAD;
        if (n == -2)
            return eof ? HIL_HTTP_BAD : HIL_HTTP_MORE;
        n = chunked(buf + head, len - head, 1);
        r->body_len = (size_t)n;
        return HIL_HTTP_DONE;
    }
    if (content_length >= 0) {
        if (len - head < (size_t)content_length)
            return eof ? HIL_HTTP_BAD : HIL_HTTP_MORE;
        r->body_len = (size_t)content_length;
        return HIL_HTTP_DONE;
    }
    if ((r->status >= 100 && r->status < 200) || r->status == 204 || r->status == 304) {
        r->body_len = 0;
        return HIL_HTTP_DONE;
    }
    if (!eof)
        return HIL_HTTP_MORE;
    r->body_len = len - head;
    return HIL_HTTP_DONE;
}

/*
 * hil_core.h - the portable core of the hiltest firmware agent.
 *
 * C99, no ESP-IDF or POSIX headers, no heap: every buffer is a fixed array in
 * struct hil_agent, which the platform allocates once (statically on an ESP32).
 * The core speaks protocol v1 (protocol/PROTOCOL.md in the hiltest repository):
 * it reads console bytes, answers frames, builds SAS tokens and DPS requests,
 * and runs the DPS register/poll exchange through the transport hooks of
 * struct hil_platform. Everything the chip or the host OS does lives behind
 * those hooks.
 */
#ifndef HIL_CORE_H
#define HIL_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Build-time limits (override with -D, e.g. from Kconfig) ---------------- */

#define HIL_PROTO_VERSION 1
#define HIL_FW_NAME "hiltest-agent"
#ifndef HIL_FW_VERSION
#define HIL_FW_VERSION "1.0.0"
#endif

/* Maximum frame length, marker to LF inclusive (PROTOCOL.md §1, default 4096). */
#ifndef HIL_MAX_FRAME
#define HIL_MAX_FRAME 4096
#endif
/* Smallest maximum a host may announce in HELLO. */
#define HIL_MIN_FRAME 256
/* Number and size of blobs (PROTOCOL.md §1.2: at least 4 of at least 8192 bytes). */
#ifndef HIL_BLOB_COUNT
#define HIL_BLOB_COUNT 6
#endif
#ifndef HIL_BLOB_SIZE
#define HIL_BLOB_SIZE 8192
#endif
/* Largest HTTP response (head and body) the DPS client keeps. */
#ifndef HIL_HTTP_MAX
#define HIL_HTTP_MAX 6144
#endif

#define HIL_MAX_ARGS 16
#define HIL_BLOB_NAME_MAX 16
#define HIL_KEY_MAX 32
#define HIL_VERB_MAX 32
#define HIL_SCOPE_MAX 64
#define HIL_REGID_MAX 128
#define HIL_RESOURCE_MAX 256 /* raw resource bytes accepted by SAS */
#define HIL_SR_MAX (6 * HIL_RESOURCE_MAX + 1)
#define HIL_POLICY_MAX 64
#define HIL_SIG_MAX 45 /* base64 of 32 bytes + NUL */
#define HIL_TOKEN_MAX (64 + HIL_SR_MAX + 3 * 44 + 24 + HIL_POLICY_MAX)
#define HIL_HOST_MAX 128
#define HIL_APIVER_MAX 32
#define HIL_KEYBYTES_MAX 128 /* decoded symmetric keys (DPS: 16..64 bytes) */
#define HIL_REQ_MAX (HIL_BLOB_SIZE + HIL_TOKEN_MAX + 512)

/* ---- Errors ---------------------------------------------------------------- */

/* The fixed error codes of PROTOCOL.md §3; HIL_OK is success. */
typedef enum {
    HIL_OK = 0,
    HIL_E_BAD_FRAME,
    HIL_E_BAD_CRC,
    HIL_E_UNKNOWN_VERB,
    HIL_E_BAD_ARG,
    HIL_E_TOO_LONG,
    HIL_E_BUSY,
    HIL_E_NETWORK,
    HIL_E_TLS,
    HIL_E_HTTP,
    HIL_E_TIMEOUT,
    HIL_E_INTERNAL
} hil_err;

/* The wire name of an error ("BAD_ARG"); "INTERNAL" for unknown values. */
const char *hil_err_code(hil_err e);

/* ---- SAS dialects (PROTOCOL.md §4 SAS) -------------------------------------- */

typedef enum {
    HIL_DIALECT_DEFAULT = 0,      /* "default" */
    HIL_DIALECT_AZURE_SDK_FOR_C,  /* "azure-sdk-for-c" */
    HIL_DIALECT_AZURE_IOT_SDK_C   /* "azure-iot-sdk-c" */
} hil_dialect;

const char *hil_dialect_name(hil_dialect d);
/* Parses a dialect name; returns 0 on success, -1 if unknown. NULL or "" is default. */
int hil_dialect_parse(const char *s, hil_dialect *out);
/* The skn a dialect sends by default: "registration" or "" (none). */
const char *hil_dialect_default_policy(hil_dialect d);

/* ---- Platform hooks ----------------------------------------------------------- */

/* Return values of hil_platform.tls_read besides a byte count. */
#define HIL_IO_CLOSED 0
#define HIL_IO_ERROR (-1)
#define HIL_IO_TIMEOUT (-2)

typedef struct hil_platform {
    void *ctx; /* passed to every hook */

    /* Writes bytes to the console (a whole frame per call). 0 on success. */
    int (*console_write)(void *ctx, const uint8_t *buf, size_t len);

    /* Wall clock in unix seconds; setting it returns 0 on success. */
    int64_t (*time_get)(void *ctx);
    int (*time_set)(void *ctx, int64_t unix_seconds);
    /* Optional: 1 when the clock was set by the platform itself (e.g. SNTP). */
    int (*time_synced)(void *ctx);

    /* Monotonic milliseconds (wraps) and a sleep. */
    uint32_t (*millis)(void *ctx);
    void (*sleep_ms)(void *ctx, uint32_t ms);

    /* Reboots. May return (the host build reboots from its main loop); the
     * core stops processing input as soon as it returns. */
    void (*reset)(void *ctx);

    /* HMAC-SHA256. 0 on success. */
    int (*hmac_sha256)(void *ctx, const uint8_t *key, size_t key_len,
                       const uint8_t *msg, size_t msg_len, uint8_t out[32]);

    /* Optional: parses a NUL-terminated PEM bundle (len excludes the NUL) and
     * returns the number of certificates it holds, or < 0 when it holds none
     * that parse. NULL: the core counts BEGIN CERTIFICATE lines. */
    int (*ca_check)(void *ctx, const char *pem, size_t len);

    /* Optional: joins a Wi-Fi network and writes the dotted IP into ip. */
    hil_err (*wifi_join)(void *ctx, const char *ssid, const char *password,
                         uint32_t timeout_ms, char *ip, size_t ip_size);

    /* TLS transport. ca_pem is NUL-terminated (ca_len excludes the NUL) or
     * NULL when TLS.CA was never given. connect returns HIL_OK, HIL_E_NETWORK,
     * HIL_E_TLS or HIL_E_TIMEOUT. write returns bytes written or < 0. read
     * returns bytes read (> 0), HIL_IO_CLOSED, HIL_IO_TIMEOUT or HIL_IO_ERROR. */
    hil_err (*tls_connect)(void *ctx, const char *host, uint16_t port,
                           const char *ca_pem, size_t ca_len, uint32_t timeout_ms,
                           void **conn);
    int (*tls_write)(void *ctx, void *conn, const uint8_t *buf, size_t len);
    int (*tls_read)(void *ctx, void *conn, uint8_t *buf, size_t len, uint32_t timeout_ms);
    void (*tls_close)(void *ctx, void *conn);

    /* Optional: a short text saying why the last tls_connect failed (e.g.
     * "certificate is not yet valid"), NUL-terminated in buf; the core adds
     * it to the ERR frame's msg. */
    void (*tls_error)(void *ctx, char *buf, size_t cap);
} hil_platform;

/* ---- CRC-32, value encoding, base64 --------------------------------------------- */

/* CRC-32 (IEEE 802.3, as zlib): crc32("123456789") == 0xCBF43926. */
uint32_t hil_crc32(const void *data, size_t len);
uint32_t hil_crc32_update(uint32_t crc, const void *data, size_t len); /* start/finish with ~ */

/* Length of the wire encoding of a value (PROTOCOL.md §1, value). */
size_t hil_value_encoded_len(const uint8_t *v, size_t n);
/* Encodes v into dst; returns the length or (size_t)-1 when it does not fit. */
size_t hil_value_encode(char *dst, size_t cap, const uint8_t *v, size_t n);
/* Decodes a wire value; dst may equal src (decoding never grows). Returns 0,
 * or -1 on a '%' not followed by two hex digits. */
int hil_value_decode(uint8_t *dst, const char *src, size_t n, size_t *out_len);

/* Writes v in decimal (no NUL); returns the length (at most 20). */
size_t hil_fmt_i64(char *dst, int64_t v);

/* Standard base64 with padding. encode returns the length written (a NUL is
 * added when room) or (size_t)-1; decode is strict (padding required, no
 * whitespace, zero trailing bits) and returns 0 or -1. */
size_t hil_b64_encode(const uint8_t *src, size_t n, char *dst, size_t cap);
int hil_b64_decode(const char *src, size_t n, uint8_t *dst, size_t cap, size_t *out_len);

/* ---- Frames --------------------------------------------------------------------- */

typedef struct {
    const char *key;  /* points into the line; not NUL-terminated */
    size_t key_len;
    uint8_t *val;     /* decoded value, in place in the line (or a blob later) */
    size_t val_len;
} hil_arg;

typedef enum { HIL_KIND_REQ, HIL_KIND_OK, HIL_KIND_ERR, HIL_KIND_EVT } hil_kind;

typedef struct {
    hil_kind kind;
    uint16_t seq;
    char verb[HIL_VERB_MAX + 1];
    hil_arg args[HIL_MAX_ARGS];
    size_t nargs;
} hil_frame;

/* Why a line was rejected: the code, the seq (-1 when unreadable), the verb
 * ("" when unreadable) and a short reason. */
typedef struct {
    hil_err err;
    int seq;
    char verb[HIL_VERB_MAX + 1];
    const char *reason;
} hil_frame_error;

/* Parses one frame. line starts at the marker and has no LF (a trailing CR is
 * allowed); it is modified in place (values are decoded). Returns HIL_OK,
 * HIL_E_BAD_CRC or HIL_E_BAD_FRAME (details in *fe). */
hil_err hil_frame_parse(char *line, size_t len, hil_frame *f, hil_frame_error *fe);

/* Best-effort seq and verb of a (possibly broken or truncated) frame line. */
void hil_frame_peek(const char *line, size_t len, int *seq, char verb[HIL_VERB_MAX + 1]);

/* Frame writer into a caller buffer. */
typedef struct {
    char *buf;
    size_t cap;  /* the frame limit, LF included */
    size_t len;
    int overflow;
} hil_writer;

#define HIL_FRAME_TRAILER 11 /* " *XXXXXXXX\n" */

void hil_fw_begin(hil_writer *w, char *buf, size_t cap, hil_kind kind, uint16_t seq, const char *verb);
void hil_fw_arg(hil_writer *w, const char *key, const uint8_t *v, size_t n);
void hil_fw_arg_str(hil_writer *w, const char *key, const char *v);
void hil_fw_arg_int(hil_writer *w, const char *key, int64_t v);
/* Room left for one more argument "SP key=value" with this key, in encoded
 * value bytes; 0 when nothing fits. */
size_t hil_fw_room(const hil_writer *w, const char *key);
/* Appends " *CRC\n"; returns the frame length, or 0 if the frame overflowed. */
size_t hil_fw_end(hil_writer *w);

/* ---- Keys and SAS --------------------------------------------------------------- */

/* DPS registration id rules: 1..128 of A-Za-z0-9 - . _ :, last alnum or '-'. */
int hil_valid_reg_id(const uint8_t *s, size_t n);
/* Id scope: 1..64 letters and digits. */
int hil_valid_scope(const uint8_t *s, size_t n);

/* The dialect's URL encoder (PROTOCOL.md §4 table). Returns the length or
 * (size_t)-1 when it does not fit (a NUL is written when there is room). */
size_t hil_urlenc(hil_dialect d, const uint8_t *s, size_t n, char *dst, size_t cap);
/* The encoded resource (sr) for an id scope and a registration id. */
size_t hil_sas_resource(hil_dialect d, const uint8_t *scope, size_t scope_len,
                        const uint8_t *reg, size_t reg_len, char *dst, size_t cap);

/* device_key = base64(HMAC-SHA256(b64dec(group_key), reg_id)). out gets a
 * NUL-terminated base64 string. Returns HIL_OK or HIL_E_BAD_ARG with *bad
 * naming the argument ("group_key" or "reg_id"). */
hil_err hil_derive(const hil_platform *p, const uint8_t *group_key, size_t gk_len,
                   const uint8_t *reg, size_t reg_len, char out[HIL_SIG_MAX], const char **bad);

typedef struct {
    char sr[HIL_SR_MAX];
    size_t sr_len;
    char sts[HIL_SR_MAX + 24];
    size_t sts_len;
    char sig[HIL_SIG_MAX];
    int64_t se;
    char token[HIL_TOKEN_MAX];
    size_t token_len;
} hil_sas;

typedef struct {
    hil_dialect dialect;
    const uint8_t *scope; size_t scope_len;      /* scope + reg_id, or ... */
    const uint8_t *reg; size_t reg_len;
    const uint8_t *resource; size_t resource_len; /* ... a raw resource (non-NULL) */
    const uint8_t *key; size_t key_len;           /* base64 key */
    int64_t expiry;
    const uint8_t *policy; size_t policy_len;     /* NULL or empty: no skn */
} hil_sas_params;

/* Builds a token. Returns HIL_OK or HIL_E_BAD_ARG (*bad names the argument). */
hil_err hil_sas_build(const hil_platform *p, const hil_sas_params *in, hil_sas *out, const char **bad);

/* ---- DPS requests and responses ---------------------------------------------------- */

#define HIL_DPS_DEFAULT_HOST "global.azure-devices-provisioning.net"
#define HIL_DPS_DEFAULT_PORT 443
#define HIL_DPS_DEFAULT_API "2021-06-01"

typedef struct {
    char host[HIL_HOST_MAX];
    uint16_t port;
    char api_version[HIL_APIVER_MAX];
} hil_dps_config;

void hil_dps_config_default(hil_dps_config *c);

/* The exact register request bytes (PROTOCOL.md §4 DPS.REQUEST). Returns the
 * length or 0 when it does not fit. payload may be NULL. */
size_t hil_dps_register_request(char *dst, size_t cap, const hil_dps_config *c,
                                const uint8_t *scope, size_t scope_len,
                                const uint8_t *reg, size_t reg_len,
                                const char *token, size_t token_len,
                                const uint8_t *payload, size_t payload_len);
/* The operation status request (GET with Host and Authorization only). */
size_t hil_dps_operation_request(char *dst, size_t cap, const hil_dps_config *c,
                                 const uint8_t *scope, size_t scope_len,
                                 const uint8_t *reg, size_t reg_len,
                                 const char *op, const char *token, size_t token_len);

/* Fields of a DPS JSON answer (register, operation status, or error body). */
#define HIL_JSON_STR 160
typedef struct {
    char operation_id[HIL_JSON_STR];
    char status[32];
    char assigned_hub[HIL_JSON_STR];
    char device_id[HIL_JSON_STR];
    char rs_status[32];
    char rs_error_code[24];
    char rs_error_message[HIL_JSON_STR];
    char error_code[24];      /* top level errorCode */
    char message[HIL_JSON_STR];  /* top level message */
} hil_dps_result;

/* Parses a DPS JSON body (bounded: depth 16, strings truncated to their
 * field). Returns 0 when the body is valid JSON (an object), -1 otherwise. */
int hil_json_parse_dps(const char *json, size_t n, hil_dps_result *out);
/* 0 when s is one valid JSON value (with optional surrounding whitespace). */
int hil_json_valid(const char *s, size_t n);

/* An HTTP response parsed from buffer bytes. */
typedef struct {
    int status;        /* e.g. 202 */
    int retry_after;   /* seconds, -1 when absent or not delay-seconds */
    size_t head_len;   /* bytes of status line and headers incl. the blank line */
    char *body;        /* into the buffer (chunked bodies are decoded in place) */
    size_t body_len;
} hil_http_response;

/* Result of hil_http_parse. */
#define HIL_HTTP_DONE 1
#define HIL_HTTP_MORE 0
#define HIL_HTTP_BAD (-1)

/* Parses a response held in buf[0:len]. eof says the peer closed. Returns
 * HIL_HTTP_DONE, HIL_HTTP_MORE (read more) or HIL_HTTP_BAD. On DONE a chunked
 * body has been decoded in place. */
int hil_http_parse(char *buf, size_t len, int eof, hil_http_response *r);

/* ---- The agent -------------------------------------------------------------------- */

typedef struct {
    const char *board;   /* "esp32-devkitc", "host" */
    const char *chip;    /* "ESP32", "host" */
    const char *mac;     /* "24:0A:C4:12:34:56" */
    hil_dialect dialect;
} hil_identity;

typedef struct {
    char name[HIL_BLOB_NAME_MAX + 1]; /* "" = free */
    size_t len;
    uint32_t stamp; /* last write; the oldest blob is reused when all are taken */
    uint8_t data[HIL_BLOB_SIZE];
} hil_blob;

typedef struct hil_agent {
    const hil_platform *p;
    char board[32];
    char chip[24];
    char mac[24];
    hil_dialect dialect;

    /* input line assembly */
    char line[HIL_MAX_FRAME + 1];
    size_t line_len;
    int in_frame;       /* the marker was seen on this line */
    int overflow;       /* dropping the rest of an over-long line */
    char window[5];     /* last bytes before the marker */
    size_t window_len;

    char out[HIL_MAX_FRAME + 1];
    size_t host_max;
    uint16_t evt_seq;
    uint32_t blob_clock;
    int time_set;       /* TIME.SET since boot */
    int reset_requested;

    hil_frame frame;
    hil_blob blobs[HIL_BLOB_COUNT];
    char ca[HIL_BLOB_SIZE + 1];
    size_t ca_len;
    hil_dps_config dps;

    /* scratch */
    hil_sas sas;
    char req[HIL_REQ_MAX];
    char http[HIL_HTTP_MAX + 1];
    hil_dps_result res;
    char errmsg[192];
    char list_http[256];  /* comma-separated; exchanges past its end are not listed */
    char list_retry[256];
} hil_agent;

/* Sets up an agent (all state cleared: blobs, CA, DPS config). */
void hil_agent_init(hil_agent *a, const hil_platform *p, const hil_identity *id);
/* Sends the READY event; reason is "poweron", "sw", "hw", ... */
void hil_agent_ready(hil_agent *a, const char *reason);
/* Feeds console bytes. Returns 1 when a RESET was requested (the remaining
 * input is dropped, as a reboot would), else 0. */
int hil_agent_feed(hil_agent *a, const uint8_t *buf, size_t len);
/* Sends an EVT LOG frame (level "I", "W", "E"). */
void hil_agent_log(hil_agent *a, const char *level, const char *tag, const char *msg);

#ifdef __cplusplus
}
#endif

#endif /* HIL_CORE_H */

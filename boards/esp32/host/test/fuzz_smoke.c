/*
 * fuzz_smoke.c - a deterministic randomised test of the agent's parsers:
 * mutations of valid frames (with the CRC fixed up half of the time, so that
 * grammar errors get past the CRC check), random junk, over-long lines and
 * malformed HTTP/JSON answers, fed to LLVMFuzzerTestOneInput. Run under
 * ASan/UBSan by "make fuzz-smoke"; any memory error or a malformed output
 * frame aborts.
 */
#include "hil_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static const char *seeds[] = {
    "HELLO proto=1 max=4096",
    "PING data=%00%01%FF",
    "TIME.SET unix=1700000000",
    "TIME.GET",
    "DERIVE group_key=8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw== reg_id=sn-007",
    "SAS id_scope=0neFEEDC0DE reg_id=dev-1 key=Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc= ttl=3600 policy=",
    "SAS resource=a/b%20c key=AAAA expiry=99",
    "DPS.CONFIG host=127.0.0.1 port=8443 api_version=2021-10-01",
    "DPS.REQUEST id_scope=0ne1 reg_id=dev-1 key=AAAA expiry=5 payload={\"a\":[1,{\"b\":null}]}",
    "DPS.REGISTER id_scope=0ne1 reg_id=dev-1 group_key=AAAA ttl=60 timeout=30",
    "TLS.CA pem.blob=pem",
    "NET.WIFI ssid=lab password=x timeout=5",
    "BLOB.PUT name=pem off=0 data=-----BEGIN%20CERTIFICATE----- total=27",
    "BLOB.GET name=pem off=0 max=10",
    "BLOB.GET name=request off=3",
    "RESET",
};

static const char *answers[] = {
    "HTTP/1.1 202 Accepted\r\nRetry-After: 0\r\nContent-Length: 40\r\n\r\n{\"operationId\":\"x\",\"status\":\"assigning\"}",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n",
    "HTTP/1.1 401 Unauthorized\r\nContent-Length: 44\r\n\r\n{\"errorCode\":401002,\"message\":\"Unauthorized\"}",
    "HTTP/1.1 200 OK\r\n\r\n{\"operationId\":\"o\",\"status\":\"assigned\",\"registrationState\":{\"assignedHub\":\"h\",\"deviceId\":\"d\"}}",
};

static const char *json_seeds[] = {
    "{\"operationId\":\"4.d0a6.e717\",\"status\":\"assigning\"}",
    "{\"operationId\":\"5.31\",\"status\":\"assigned\",\"registrationState\":{\"x509\":{},\"registrationId\":\"d\","
    "\"assignedHub\":\"h.azure-devices.net\",\"deviceId\":\"d\",\"status\":\"assigned\",\"substatus\":\"initialAssignment\","
    "\"payload\":{\"a\":[1,2.5e3,-0.5E-2,true,false,null,\"\\u00e9\\ud83d\\ude00\\n\"]}}}",
    "{\"errorCode\":401002,\"trackingId\":\"8ad0\",\"message\":\"Invalid certificate.\",\"timestampUtc\":\"2020-04-10T05:24:22Z\"}",
    "{\"operationId\":\"op\",\"status\":\"failed\",\"registrationState\":{\"status\":\"failed\",\"errorCode\":400209,"
    "\"errorMessage\":\"Custom allocation failed\\\"x\\\"\"}}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
};

static size_t frame(char *dst, size_t cap, unsigned seq, const char *body)
{
    int n = snprintf(dst, cap, "@@HIL REQ %u %s ", seq, body);
    uint32_t crc;
    if (n < 0 || (size_t)n + 11 > cap)
        return 0;
    crc = hil_crc32(dst, (size_t)n);
    snprintf(dst + n, cap - (size_t)n, "*%08X\n", (unsigned)crc);
    return (size_t)n + 11;
}

/* Recomputes the CRC of every frame line that still has a " *XXXXXXXX" tail. */
static void fix_crcs(char *b, size_t n)
{
    size_t start = 0, i;
    for (i = 0; i <= n; i++) {
        if (i == n || b[i] == '\n') {
            char *m = NULL;
            size_t k;
            for (k = start; k + 5 <= i; k++)
                if (memcmp(b + k, "@@HIL", 5) == 0) { m = b + k; break; }
            if (m != NULL && i - start >= 10) {
                size_t end = i;
                if (end > start && b[end - 1] == '\r')
                    end--;
                if (end >= 10 && b[end - 10] == ' ' && b[end - 9] == '*' && (size_t)(b + end - 9 - m) > 0) {
                    uint32_t crc = hil_crc32(m, (size_t)(b + end - 9 - m));
                    char hex[9];
                    snprintf(hex, sizeof hex, "%08X", (unsigned)crc);
                    memcpy(b + end - 8, hex, 8);
                }
            }
            start = i + 1;
        }
    }
}

int main(int argc, char **argv)
{
    static char buf[3 * HIL_MAX_FRAME];
    long iters = argc > 1 ? atol(argv[1]) : 20000, it;
    size_t nseeds = sizeof seeds / sizeof seeds[0];
    for (it = 0; it < iters; it++) {
        size_t len = 0, k, nframes = 1 + next() % 4, m;
        if (it % 4 == 3) {
            /* a mutated DPS body or HTTP answer on its own: the whole input
             * goes to the JSON and HTTP parsers */
            const char *seed = next() % 2 ? json_seeds[next() % (sizeof json_seeds / sizeof json_seeds[0])]
                                          : answers[next() % (sizeof answers / sizeof answers[0])];
            len = strlen(seed);
            memcpy(buf, seed, len);
            m = 1 + next() % 4;
            for (k = 0; k < m && len > 0; k++) {
                size_t at = next() % len;
                static const char tokens[] = "{}[]\",:\\u0123456789eE.-+ tfn\r\n";
                switch (next() % 4) {
                case 0: buf[at] = tokens[next() % (sizeof tokens - 1)]; break;
                case 1: buf[at] = (char)next(); break;
                case 2: memmove(buf + at, buf + at + 1, len - at - 1); len--; break;
                default: len = at; break;
                }
            }
            LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
            continue;
        }
        for (k = 0; k < nframes; k++) {
            size_t n = frame(buf + len, sizeof buf - len, 1 + next() % 65535, seeds[next() % nseeds]);
            len += n;
        }
        /* mutations */
        m = next() % 8;
        for (k = 0; k < m && len > 0; k++) {
            size_t at = next() % len;
            switch (next() % 7) {
            case 0: buf[at] = (char)(buf[at] ^ (1 << (next() % 8))); break;
            case 1: buf[at] = (char)next(); break;
            case 2: if (len + 1 < sizeof buf) { memmove(buf + at + 1, buf + at, len - at); buf[at] = (char)next(); len++; } break;
            case 3: memmove(buf + at, buf + at + 1, len - at - 1); len--; break;
            case 4: len = at; break;
            case 5: { /* a run of one byte: over-long lines, '%' storms, spaces */
                static const char runs[] = "a% =@\r";
                size_t run = next() % (HIL_MAX_FRAME + 200);
                char c = runs[next() % (sizeof runs - 1)];
                if (len + run < sizeof buf) { memmove(buf + at + run, buf + at, len - at); memset(buf + at, c, run); len += run; }
                break;
            }
            default: { /* splice in a marker */
                if (len + 5 < sizeof buf) { memmove(buf + at + 5, buf + at, len - at); memcpy(buf + at, "@@HIL", 5); len += 5; }
                break;
            }
            }
        }
        if (next() % 2)
            fix_crcs(buf, len);
        /* an answer from the fake DPS after a 0x00, sometimes mutated */
        if (next() % 2 && len + 600 < sizeof buf) {
            const char *ans = answers[next() % (sizeof answers / sizeof answers[0])];
            size_t al = strlen(ans), j;
            buf[len++] = 0;
            memcpy(buf + len, ans, al);
            for (j = 0; j < next() % 4; j++)
                buf[len + next() % al] = (char)next();
            len += next() % 3 == 0 ? next() % al : al;
        }
        LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
    }
    printf("fuzz-smoke: %ld inputs, no crash, every output frame valid\n", iters);
    return 0;
}

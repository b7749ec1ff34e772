/*
 * host_crypto.c - HMAC-SHA256 and PEM checks for the host build, with mbedTLS
 * (Debian libmbedtls-dev). The same calls exist in ESP-IDF's mbedTLS.
 */
#include "host_platform.h"

#include <mbedtls/md.h>
#include <mbedtls/x509_crt.h>

int host_hmac_sha256(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *msg, size_t msg_len,
                     uint8_t out[32])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    (void)ctx;
    if (md == NULL)
        return -1;
    return mbedtls_md_hmac(md, key, key_len, msg, msg_len, out) == 0 ? 0 : -1;
}

int host_ca_check(void *ctx, const char *pem, size_t len)
{
    mbedtls_x509_crt crt;
    const mbedtls_x509_crt *c;
    int n = 0, rc;
    (void)ctx;
    mbedtls_x509_crt_init(&crt);
    /* PEM input must include its terminating NUL in the length */
    rc = mbedtls_x509_crt_parse(&crt, (const unsigned char *)pem, len + 1);
    if (rc >= 0) {
        for (c = &crt; c != NULL && c->raw.len > 0; c = c->next)
            n++;
    }
    mbedtls_x509_crt_free(&crt);
    return n > 0 ? n : -1;
}

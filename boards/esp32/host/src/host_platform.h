/*
 * host_platform.h - the host (Linux) implementation of the agent's platform
 * hooks: crypto and TLS with mbedTLS, a pty or a device as the console.
 */
#ifndef HOST_PLATFORM_H
#define HOST_PLATFORM_H

#include "hil_core.h"

int host_hmac_sha256(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *msg, size_t msg_len,
                     uint8_t out[32]);
int host_ca_check(void *ctx, const char *pem, size_t len);

hil_err host_tls_connect(void *ctx, const char *host, uint16_t port, const char *ca_pem, size_t ca_len,
                         uint32_t timeout_ms, void **conn);
int host_tls_write(void *ctx, void *conn, const uint8_t *buf, size_t len);
int host_tls_read(void *ctx, void *conn, uint8_t *buf, size_t len, uint32_t timeout_ms);
void host_tls_close(void *ctx, void *conn);
void host_tls_error(void *ctx, char *buf, size_t cap);

#endif

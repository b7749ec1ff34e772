/*
 * host_tls.c - the TLS transport of the host build: a TCP socket with a
 * connect timeout and an mbedTLS client session that trusts the PEM given by
 * TLS.CA (or, when none was given, the system bundle).
 */
#include "host_platform.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#define SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

typedef struct {
    mbedtls_net_context net;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
} host_conn;

/* Why the last connect failed, for the ERR frame (the agent is single-threaded). */
static char last_error[128];

static void set_error(const char *s)
{
    size_t n = strlen(s);
    if (n >= sizeof last_error)
        n = sizeof last_error - 1;
    memcpy(last_error, s, n);
    last_error[n] = '\0';
}

static void log_mbedtls(const char *what, int rc)
{
    char buf[160];
    mbedtls_strerror(rc, buf, sizeof buf);
    fprintf(stderr, "hiltest-agent: tls: %s: -0x%04X %s\n", what, (unsigned)-rc, buf);
    set_error(buf);
}

void host_tls_error(void *ctx, char *buf, size_t cap)
{
    size_t n = strlen(last_error);
    (void)ctx;
    if (cap == 0)
        return;
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, last_error, n);
    buf[n] = '\0';
}

static int is_ip_literal(const char *host)
{
    unsigned char tmp[16];
    return inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
}

/* TCP connect with a timeout. Returns the fd, or -1 (network) / -2 (timeout). */
static int tcp_connect(const char *host, uint16_t port, uint32_t timeout_ms)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[8];
    int fd = -1, result = -1;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0) {
        fprintf(stderr, "hiltest-agent: tls: cannot resolve %s\n", host);
        set_error("cannot resolve the host name");
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int flags, err = 0;
        socklen_t len = sizeof err;
        struct pollfd pfd;
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        flags = fcntl(fd, F_GETFL, 0);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                close(fd);
                fd = -1;
                continue;
            }
            pfd.fd = fd;
            pfd.events = POLLOUT;
            pfd.revents = 0;
            if (poll(&pfd, 1, (int)timeout_ms) <= 0) {
                close(fd);
                fd = -1;
                result = -2;
                continue;
            }
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
                close(fd);
                fd = -1;
                continue;
            }
        }
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        result = fd;
        break;
    }
    freeaddrinfo(res);
    if (result < 0) {
        fprintf(stderr, "hiltest-agent: tls: cannot connect to %s:%u%s\n", host, (unsigned)port,
                result == -2 ? " (timeout)" : "");
        set_error(result == -2 ? "TCP connect timed out" : "TCP connection refused or unreachable");
    }
    return result;
}

static void conn_free(host_conn *c)
{
    mbedtls_ssl_free(&c->ssl);
    mbedtls_ssl_config_free(&c->conf);
    mbedtls_x509_crt_free(&c->ca);
    mbedtls_ctr_drbg_free(&c->drbg);
    mbedtls_entropy_free(&c->entropy);
    mbedtls_net_free(&c->net);
    free(c);
}

hil_err host_tls_connect(void *ctx, const char *host, uint16_t port, const char *ca_pem, size_t ca_len,
                         uint32_t timeout_ms, void **conn)
{
    host_conn *c;
    int rc, fd;
    static const char pers[] = "hiltest-agent";
    (void)ctx;
    last_error[0] = '\0';
    if (timeout_ms > 30000)
        timeout_ms = 30000;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return HIL_E_INTERNAL;
    mbedtls_net_init(&c->net);
    mbedtls_ssl_init(&c->ssl);
    mbedtls_ssl_config_init(&c->conf);
    mbedtls_x509_crt_init(&c->ca);
    mbedtls_entropy_init(&c->entropy);
    mbedtls_ctr_drbg_init(&c->drbg);
    if (mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func, &c->entropy, (const unsigned char *)pers,
                              sizeof pers - 1) != 0) {
        conn_free(c);
        return HIL_E_INTERNAL;
    }
    if (ca_pem != NULL)
        rc = mbedtls_x509_crt_parse(&c->ca, (const unsigned char *)ca_pem, ca_len + 1);
    else
        rc = mbedtls_x509_crt_parse_file(&c->ca, SYSTEM_BUNDLE);
    if (rc < 0) {
        log_mbedtls(ca_pem != NULL ? "trust anchor from TLS.CA" : SYSTEM_BUNDLE, rc);
        conn_free(c);
        return HIL_E_TLS;
    }
    fd = tcp_connect(host, port, timeout_ms);
    if (fd < 0) {
        conn_free(c);
        return fd == -2 ? HIL_E_TIMEOUT : HIL_E_NETWORK;
    }
    c->net.fd = fd;
    if (mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0) {
        conn_free(c);
        return HIL_E_INTERNAL;
    }
    mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, NULL);
    mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &c->drbg);
    mbedtls_ssl_conf_read_timeout(&c->conf, timeout_ms);
    if (mbedtls_ssl_setup(&c->ssl, &c->conf) != 0) {
        conn_free(c);
        return HIL_E_INTERNAL;
    }
    /* The chain is always verified against the anchor. mbedTLS 2.x matches
     * the host name against DNS names only, so for an IP literal (a mock DPS
     * on the bench) no name is set and only the chain is checked. */
    if (!is_ip_literal(host) && mbedtls_ssl_set_hostname(&c->ssl, host) != 0) {
        conn_free(c);
        return HIL_E_INTERNAL;
    }
    mbedtls_ssl_set_bio(&c->ssl, &c->net, mbedtls_net_send, NULL, mbedtls_net_recv_timeout);
    while ((rc = mbedtls_ssl_handshake(&c->ssl)) != 0) {
        if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        log_mbedtls("handshake", rc);
        if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
            char info[256];
            size_t n;
            mbedtls_x509_crt_verify_info(info, sizeof info, "", mbedtls_ssl_get_verify_result(&c->ssl));
            fprintf(stderr, "hiltest-agent: tls: certificate: %s", info);
            /* the first reason, e.g. "The certificate is not correctly signed by the trusted CA" */
            n = strcspn(info, "\n");
            info[n] = '\0';
            set_error(info);
        }
        conn_free(c);
        if (rc == MBEDTLS_ERR_SSL_TIMEOUT)
            return HIL_E_TIMEOUT;
        if (rc == MBEDTLS_ERR_NET_CONN_RESET || rc == MBEDTLS_ERR_NET_RECV_FAILED || rc == MBEDTLS_ERR_NET_SEND_FAILED)
            return HIL_E_NETWORK;
        return HIL_E_TLS;
    }
    *conn = c;
    return HIL_OK;
}

int host_tls_write(void *ctx, void *conn, const uint8_t *buf, size_t len)
{
    host_conn *c = conn;
    int rc;
    (void)ctx;
    do {
        rc = mbedtls_ssl_write(&c->ssl, buf, len);
    } while (rc == MBEDTLS_ERR_SSL_WANT_WRITE || rc == MBEDTLS_ERR_SSL_WANT_READ);
    if (rc < 0) {
        log_mbedtls("write", rc);
        return -1;
    }
    return rc;
}

int host_tls_read(void *ctx, void *conn, uint8_t *buf, size_t len, uint32_t timeout_ms)
{
    host_conn *c = conn;
    int rc;
    (void)ctx;
    mbedtls_ssl_conf_read_timeout(&c->conf, timeout_ms > 0 ? timeout_ms : 1);
    do {
        rc = mbedtls_ssl_read(&c->ssl, buf, len);
    } while (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE);
    if (rc > 0)
        return rc;
    if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        return HIL_IO_CLOSED;
    if (rc == MBEDTLS_ERR_SSL_TIMEOUT)
        return HIL_IO_TIMEOUT;
    log_mbedtls("read", rc);
    return HIL_IO_ERROR;
}

void host_tls_close(void *ctx, void *conn)
{
    host_conn *c = conn;
    (void)ctx;
    if (c == NULL)
        return;
    mbedtls_ssl_close_notify(&c->ssl);
    conn_free(c);
}

/*
 * hiltest_agent_esp.c - ESP-IDF v5.x platform hooks for the hiltest agent
 * core: console (UART or USB-Serial-JTAG), clock and SNTP, Wi-Fi station,
 * TLS through esp-tls (the core writes the exact request bytes), HMAC through
 * mbedTLS, reboot. Thin by design: all protocol logic is in core/.
 *
 * This file is compiled only by ESP-IDF (idf.py build); the hiltest CI
 * builds and tests the core on the host instead.
 */
#include "sdkconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "freertos/FreeRTOS.h"
#include "freertos/event_groups.h"
#include "freertos/semphr.h"
#include "freertos/task.h"

#include "esp_event.h"
#include "esp_idf_version.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "esp_netif.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "esp_tls.h"
#include "esp_wifi.h"
#include "lwip/inet.h"
#include "mbedtls/md.h"
#include "mbedtls/ssl.h"
#include "mbedtls/x509_crt.h"

#ifdef CONFIG_MBEDTLS_CERTIFICATE_BUNDLE
#include "esp_crt_bundle.h"
#endif
#ifdef CONFIG_HILTEST_AGENT_SNTP
#include "esp_sntp.h"
#endif

#include "hil_core.h"
#include "hiltest_agent.h"

/* Console selection: follow the ESP-IDF console unless menuconfig says otherwise. */
#if defined(CONFIG_HILTEST_AGENT_CONSOLE_USB_SERIAL_JTAG) || \
    (defined(CONFIG_HILTEST_AGENT_CONSOLE_AUTO) && defined(CONFIG_ESP_CONSOLE_USB_SERIAL_JTAG))
#define AGENT_USJ 1
#include "driver/usb_serial_jtag.h"
#if ESP_IDF_VERSION >= ESP_IDF_VERSION_VAL(5, 3, 0)
#include "driver/usb_serial_jtag_vfs.h"
#else
#include "esp_vfs_usb_serial_jtag.h"
#endif
#else
#define AGENT_USJ 0
#include "driver/uart.h"
#if ESP_IDF_VERSION >= ESP_IDF_VERSION_VAL(5, 3, 0)
#include "driver/uart_vfs.h"
#else
#include "esp_vfs_dev.h"
#endif
#if defined(CONFIG_HILTEST_AGENT_CONSOLE_UART)
#define AGENT_UART_NUM CONFIG_HILTEST_AGENT_UART_NUM
#elif defined(CONFIG_ESP_CONSOLE_UART_NUM)
#define AGENT_UART_NUM CONFIG_ESP_CONSOLE_UART_NUM
#else
#define AGENT_UART_NUM 0
#endif
#endif

static const char *TAG = "hiltest";

#define WIFI_GOT_IP BIT0

typedef struct {
    SemaphoreHandle_t console_lock;
    EventGroupHandle_t wifi_events;
    esp_netif_t *sta;
    bool wifi_ready, wifi_started, wifi_wanted;
    char ip[16];
    volatile bool sntp_synced;
    bool manage_wifi;
    char board[32];
    char chip[24];
    char mac[24];
    hil_dialect dialect;
    uint32_t task_stack;
    unsigned task_priority;
} esp_ctx;

static esp_ctx s_ctx;
static char s_tls_error[128]; /* why the last TLS connect failed */
static hil_agent s_agent; /* large: blobs, CA, buffers; lives in .bss */
static hil_platform s_platform;
static bool s_started;

/* ---- console ---- */

static void console_raw_write(const uint8_t *buf, size_t len)
{
#if AGENT_USJ
    size_t off = 0;
    while (off < len) {
        int n = usb_serial_jtag_write_bytes(buf + off, len - off, pdMS_TO_TICKS(200));
        if (n <= 0)
            return; /* no host on the USB port: drop, as a UART would */
        off += (size_t)n;
    }
#else
    uart_write_bytes(AGENT_UART_NUM, (const char *)buf, len);
#endif
}

static int console_read(uint8_t *buf, size_t len, uint32_t timeout_ms)
{
#if AGENT_USJ
    return usb_serial_jtag_read_bytes(buf, len, pdMS_TO_TICKS(timeout_ms));
#else
    return uart_read_bytes(AGENT_UART_NUM, buf, len, pdMS_TO_TICKS(timeout_ms));
#endif
}

static void console_flush(void)
{
#if AGENT_USJ
    vTaskDelay(pdMS_TO_TICKS(50));
#else
    uart_wait_tx_done(AGENT_UART_NUM, pdMS_TO_TICKS(200));
#endif
}

static esp_err_t console_init(void)
{
    esp_err_t err;
#if AGENT_USJ
    usb_serial_jtag_driver_config_t cfg = {.tx_buffer_size = 4096, .rx_buffer_size = 4096};
    err = usb_serial_jtag_driver_install(&cfg);
    if (err != ESP_OK)
        return err;
#if ESP_IDF_VERSION >= ESP_IDF_VERSION_VAL(5, 3, 0)
    usb_serial_jtag_vfs_use_driver();
#else
    esp_vfs_usb_serial_jtag_use_driver();
#endif
#else
    if (!uart_is_driver_installed(AGENT_UART_NUM)) {
        err = uart_driver_install(AGENT_UART_NUM, 4096, 0, 0, NULL, 0);
        if (err != ESP_OK)
            return err;
    }
#if ESP_IDF_VERSION >= ESP_IDF_VERSION_VAL(5, 3, 0)
    uart_vfs_dev_use_driver(AGENT_UART_NUM);
#else
    esp_vfs_dev_uart_use_driver(AGENT_UART_NUM);
#endif
#endif
    return ESP_OK;
}

/* ESP_LOG lines go through the same lock as frames, so a log line from
 * another task never lands inside a frame. */
static int log_vprintf(const char *fmt, va_list ap)
{
    char line[256];
    int n = vsnprintf(line, sizeof line, fmt, ap);
    if (n < 0)
        return n;
    if ((size_t)n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    if (xSemaphoreTakeRecursive(s_ctx.console_lock, pdMS_TO_TICKS(500)) == pdTRUE) {
        console_raw_write((const uint8_t *)line, (size_t)n);
        xSemaphoreGiveRecursive(s_ctx.console_lock);
    }
    return n;
}

/* ---- platform hooks ---- */

static int p_console_write(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    if (xSemaphoreTakeRecursive(s_ctx.console_lock, portMAX_DELAY) != pdTRUE)
        return -1;
    console_raw_write(buf, len);
    xSemaphoreGiveRecursive(s_ctx.console_lock);
    return 0;
}

static int64_t p_time_get(void *ctx)
{
    struct timeval tv;
    (void)ctx;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec;
}

static int p_time_set(void *ctx, int64_t t)
{
    struct timeval tv = {.tv_sec = (time_t)t, .tv_usec = 0};
    (void)ctx;
    return settimeofday(&tv, NULL) == 0 ? 0 : -1;
}

static int p_time_synced(void *ctx)
{
    (void)ctx;
    return s_ctx.sntp_synced ? 1 : 0;
}

static uint32_t p_millis(void *ctx)
{
    (void)ctx;
    return (uint32_t)(esp_timer_get_time() / 1000);
}

static void p_sleep_ms(void *ctx, uint32_t ms)
{
    TickType_t t = pdMS_TO_TICKS(ms);
    (void)ctx;
    vTaskDelay(t > 0 ? t : 1);
}

static void p_reset(void *ctx)
{
    (void)ctx;
    console_flush();
    esp_restart();
}

static int p_hmac_sha256(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *msg, size_t msg_len,
                         uint8_t out[32])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    (void)ctx;
    if (md == NULL)
        return -1;
    return mbedtls_md_hmac(md, key, key_len, msg, msg_len, out) == 0 ? 0 : -1;
}

static int p_ca_check(void *ctx, const char *pem, size_t len)
{
    mbedtls_x509_crt crt;
    const mbedtls_x509_crt *c;
    int n = 0;
    (void)ctx;
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse(&crt, (const unsigned char *)pem, len + 1) >= 0) {
        for (c = &crt; c != NULL && c->raw.len > 0; c = c->next)
            n++;
    }
    mbedtls_x509_crt_free(&crt);
    return n > 0 ? n : -1;
}

/* ---- Wi-Fi station ---- */

#ifdef CONFIG_HILTEST_AGENT_SNTP
static void sntp_synced_cb(struct timeval *tv)
{
    (void)tv;
    s_ctx.sntp_synced = true;
}

static void sntp_start(void)
{
#if ESP_IDF_VERSION >= ESP_IDF_VERSION_VAL(5, 1, 0)
    if (esp_sntp_enabled())
        return;
    esp_sntp_setoperatingmode(ESP_SNTP_OPMODE_POLL);
    esp_sntp_setservername(0, CONFIG_HILTEST_AGENT_SNTP_SERVER);
    sntp_set_time_sync_notification_cb(sntp_synced_cb);
    esp_sntp_init();
#else
    if (sntp_enabled())
        return;
    sntp_setoperatingmode(SNTP_OPMODE_POLL);
    sntp_setservername(0, CONFIG_HILTEST_AGENT_SNTP_SERVER);
    sntp_set_time_sync_notification_cb(sntp_synced_cb);
    sntp_init();
#endif
}
#endif

static void wifi_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    if (base == WIFI_EVENT && id == WIFI_EVENT_STA_START) {
        esp_wifi_connect();
    } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
        xEventGroupClearBits(s_ctx.wifi_events, WIFI_GOT_IP);
        if (s_ctx.wifi_wanted)
            esp_wifi_connect();
    } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
        const ip_event_got_ip_t *e = (const ip_event_got_ip_t *)data;
        snprintf(s_ctx.ip, sizeof s_ctx.ip, IPSTR, IP2STR(&e->ip_info.ip));
        xEventGroupSetBits(s_ctx.wifi_events, WIFI_GOT_IP);
#ifdef CONFIG_HILTEST_AGENT_SNTP
        sntp_start();
#endif
    }
}

static esp_err_t wifi_init_once(void)
{
    wifi_init_config_t cfg = WIFI_INIT_CONFIG_DEFAULT();
    esp_err_t err;
    if (s_ctx.wifi_ready)
        return ESP_OK;
    s_ctx.wifi_events = xEventGroupCreate();
    if (s_ctx.wifi_events == NULL)
        return ESP_ERR_NO_MEM;
    err = esp_netif_init();
    if (err != ESP_OK && err != ESP_ERR_INVALID_STATE)
        return err;
    err = esp_event_loop_create_default();
    if (err != ESP_OK && err != ESP_ERR_INVALID_STATE)
        return err;
    s_ctx.sta = esp_netif_create_default_wifi_sta();
    if (s_ctx.sta == NULL)
        return ESP_FAIL;
    if ((err = esp_wifi_init(&cfg)) != ESP_OK)
        return err;
    esp_event_handler_instance_register(WIFI_EVENT, ESP_EVENT_ANY_ID, wifi_event, NULL, NULL);
    esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_GOT_IP, wifi_event, NULL, NULL);
    esp_wifi_set_storage(WIFI_STORAGE_RAM);
    if ((err = esp_wifi_set_mode(WIFI_MODE_STA)) != ESP_OK)
        return err;
    s_ctx.wifi_ready = true;
    return ESP_OK;
}

static hil_err p_wifi_join(void *ctx, const char *ssid, const char *password, uint32_t timeout_ms, char *ip,
                           size_t ip_size)
{
    wifi_config_t wc;
    EventBits_t bits;
    size_t ssid_len = strlen(ssid), pass_len = strlen(password);
    (void)ctx;
    if (wifi_init_once() != ESP_OK)
        return HIL_E_INTERNAL;
    memset(&wc, 0, sizeof wc);
    memcpy(wc.sta.ssid, ssid, ssid_len > sizeof wc.sta.ssid ? sizeof wc.sta.ssid : ssid_len);
    memcpy(wc.sta.password, password, pass_len > sizeof wc.sta.password ? sizeof wc.sta.password : pass_len);
    wc.sta.threshold.authmode = pass_len > 0 ? WIFI_AUTH_WPA_PSK : WIFI_AUTH_OPEN;
    s_ctx.wifi_wanted = false;
    if (s_ctx.wifi_started)
        esp_wifi_disconnect();
    xEventGroupClearBits(s_ctx.wifi_events, WIFI_GOT_IP);
    if (esp_wifi_set_config(WIFI_IF_STA, &wc) != ESP_OK)
        return HIL_E_INTERNAL;
    s_ctx.wifi_wanted = true;
    if (!s_ctx.wifi_started) {
        if (esp_wifi_start() != ESP_OK)
            return HIL_E_INTERNAL;
        s_ctx.wifi_started = true;
    } else {
        esp_wifi_connect();
    }
    bits = xEventGroupWaitBits(s_ctx.wifi_events, WIFI_GOT_IP, pdFALSE, pdTRUE, pdMS_TO_TICKS(timeout_ms));
    if (!(bits & WIFI_GOT_IP))
        return HIL_E_TIMEOUT;
    snprintf(ip, ip_size, "%s", s_ctx.ip);
    return HIL_OK;
}

/* ---- TLS through esp-tls; the core writes and reads the raw HTTP bytes ---- */

static bool is_ip_literal(const char *host)
{
    struct in_addr a4;
    return inet_aton(host, &a4) != 0;
}

static hil_err p_tls_connect(void *ctx, const char *host, uint16_t port, const char *ca_pem, size_t ca_len,
                             uint32_t timeout_ms, void **conn)
{
    esp_tls_cfg_t cfg;
    esp_tls_t *tls;
    esp_tls_error_handle_t eh = NULL;
    int code = 0, flags = 0;
    esp_err_t last;
    (void)ctx;
    s_tls_error[0] = '\0';
    memset(&cfg, 0, sizeof cfg);
    cfg.timeout_ms = (int)(timeout_ms > 30000 ? 30000 : timeout_ms);
    if (ca_pem != NULL) {
        cfg.cacert_buf = (const unsigned char *)ca_pem;
        cfg.cacert_bytes = (unsigned int)ca_len + 1; /* PEM: the NUL is part of the length */
    } else {
#ifdef CONFIG_MBEDTLS_CERTIFICATE_BUNDLE
        cfg.crt_bundle_attach = esp_crt_bundle_attach;
#else
        ESP_LOGE(TAG, "no trust anchor: send TLS.CA first");
        snprintf(s_tls_error, sizeof s_tls_error, "no trust anchor (send TLS.CA first)");
        return HIL_E_TLS;
#endif
    }
#ifdef CONFIG_HILTEST_AGENT_TLS_IP_SKIP_CN
    /* A mock DPS on the bench is usually reached by IP address; the chain is
     * still verified against the anchor. */
    if (is_ip_literal(host))
        cfg.skip_common_name = true;
#else
    (void)is_ip_literal;
#endif
    tls = esp_tls_init();
    if (tls == NULL)
        return HIL_E_INTERNAL;
    if (esp_tls_conn_new_sync(host, (int)strlen(host), port, &cfg, tls) == 1) {
        int fd = -1;
        *conn = tls;
        if (esp_tls_get_conn_sockfd(tls, &fd) == ESP_OK && fd >= 0) {
            struct timeval tv = {.tv_sec = 0, .tv_usec = 200000}; /* reads poll in 200 ms steps */
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        }
        return HIL_OK;
    }
    esp_tls_get_error_handle(tls, &eh);
    last = eh != NULL ? esp_tls_get_and_clear_last_error(eh, &code, &flags) : ESP_FAIL;
    esp_tls_conn_destroy(tls);
    ESP_LOGW(TAG, "TLS connect to %s:%u failed: %s (code -0x%x, verify flags 0x%x)", host, (unsigned)port,
             esp_err_to_name(last), (unsigned)-code, (unsigned)flags);
    if (flags != 0) {
        /* the first reason mbedTLS gives, e.g. "The certificate is not correctly signed by the trusted CA" */
        char info[256];
        mbedtls_x509_crt_verify_info(info, sizeof info, "", (uint32_t)flags);
        info[strcspn(info, "\n")] = '\0';
        snprintf(s_tls_error, sizeof s_tls_error, "%.120s", info);
    } else {
        snprintf(s_tls_error, sizeof s_tls_error, "%s", esp_err_to_name(last));
    }
    if (last == ESP_ERR_ESP_TLS_CONNECTION_TIMEOUT)
        return HIL_E_TIMEOUT;
    if (last == ESP_ERR_ESP_TLS_CANNOT_RESOLVE_HOSTNAME || last == ESP_ERR_ESP_TLS_CANNOT_CREATE_SOCKET ||
        last == ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST || last == ESP_ERR_ESP_TLS_SOCKET_SETOPT_FAILED)
        return HIL_E_NETWORK;
    return HIL_E_TLS;
}

static void p_tls_error(void *ctx, char *buf, size_t cap)
{
    (void)ctx;
    snprintf(buf, cap, "%s", s_tls_error);
}

static int p_tls_write(void *ctx, void *conn, const uint8_t *buf, size_t len)
{
    ssize_t n;
    (void)ctx;
    do {
        n = esp_tls_conn_write((esp_tls_t *)conn, buf, len);
    } while (n == ESP_TLS_ERR_SSL_WANT_WRITE || n == ESP_TLS_ERR_SSL_WANT_READ);
    return n < 0 ? -1 : (int)n;
}

static int p_tls_read(void *ctx, void *conn, uint8_t *buf, size_t len, uint32_t timeout_ms)
{
    int64_t deadline = esp_timer_get_time() + (int64_t)timeout_ms * 1000;
    (void)ctx;
    for (;;) {
        ssize_t n = esp_tls_conn_read((esp_tls_t *)conn, buf, len);
        if (n > 0)
            return (int)n;
        if (n == 0 || n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
            return HIL_IO_CLOSED;
        if (n != ESP_TLS_ERR_SSL_WANT_READ && n != ESP_TLS_ERR_SSL_WANT_WRITE)
            return HIL_IO_ERROR;
        if (esp_timer_get_time() >= deadline)
            return HIL_IO_TIMEOUT;
    }
}

static void p_tls_close(void *ctx, void *conn)
{
    (void)ctx;
    if (conn != NULL)
        esp_tls_conn_destroy((esp_tls_t *)conn);
}

/* ---- identity and boot ---- */

static const char *reset_reason(void)
{
    switch (esp_reset_reason()) {
    case ESP_RST_POWERON: return "poweron";
    case ESP_RST_SW: return "sw";
    case ESP_RST_EXT: return "hw";
    case ESP_RST_BROWNOUT: return "brownout";
    case ESP_RST_INT_WDT:
    case ESP_RST_TASK_WDT:
    case ESP_RST_WDT: return "watchdog";
    case ESP_RST_PANIC: return "panic";
    default: return "unknown";
    }
}

static void chip_name(char *dst, size_t cap)
{
    /* "esp32s3" -> "ESP32-S3" */
    const char *t = CONFIG_IDF_TARGET;
    size_t i, o = 0;
    for (i = 0; t[i] != '\0' && o + 2 < cap; i++) {
        if (i == 5)
            dst[o++] = '-';
        dst[o++] = (t[i] >= 'a' && t[i] <= 'z') ? (char)(t[i] - 'a' + 'A') : t[i];
    }
    dst[o] = '\0';
}

static void agent_task(void *arg)
{
    static uint8_t buf[512];
    hil_identity id;
    (void)arg;
    id.board = s_ctx.board;
    id.chip = s_ctx.chip;
    id.mac = s_ctx.mac;
    id.dialect = s_ctx.dialect;
    hil_agent_init(&s_agent, &s_platform, &id);
    hil_agent_ready(&s_agent, reset_reason());
    for (;;) {
        int n = console_read(buf, sizeof buf, 50);
        if (n > 0)
            hil_agent_feed(&s_agent, buf, (size_t)n);
    }
}

esp_err_t hiltest_agent_start(const hiltest_agent_config_t *config)
{
    hiltest_agent_config_t def = HILTEST_AGENT_CONFIG_DEFAULT();
    const char *dialect;
    uint8_t mac[6];
    esp_err_t err;
    if (s_started)
        return ESP_ERR_INVALID_STATE;
    if (config == NULL)
        config = &def;
#if defined(CONFIG_HILTEST_AGENT_DIALECT_AZURE_SDK_FOR_C)
    dialect = "azure-sdk-for-c";
#elif defined(CONFIG_HILTEST_AGENT_DIALECT_AZURE_IOT_SDK_C)
    dialect = "azure-iot-sdk-c";
#else
    dialect = "default";
#endif
    if (config->dialect != NULL)
        dialect = config->dialect;
    if (hil_dialect_parse(dialect, &s_ctx.dialect) != 0)
        return ESP_ERR_INVALID_ARG;
    snprintf(s_ctx.board, sizeof s_ctx.board, "%s",
             config->board_name != NULL ? config->board_name : CONFIG_HILTEST_AGENT_BOARD_NAME);
    chip_name(s_ctx.chip, sizeof s_ctx.chip);
    if (esp_read_mac(mac, ESP_MAC_WIFI_STA) != ESP_OK)
        memset(mac, 0, sizeof mac);
    snprintf(s_ctx.mac, sizeof s_ctx.mac, "%02X:%02X:%02X:%02X:%02X:%02X", mac[0], mac[1], mac[2], mac[3], mac[4],
             mac[5]);
    s_ctx.manage_wifi = config->manage_wifi;
    s_ctx.task_stack = config->task_stack ? config->task_stack : CONFIG_HILTEST_AGENT_TASK_STACK;
    s_ctx.task_priority = config->task_priority ? config->task_priority : CONFIG_HILTEST_AGENT_TASK_PRIORITY;

    s_ctx.console_lock = xSemaphoreCreateRecursiveMutex();
    if (s_ctx.console_lock == NULL)
        return ESP_ERR_NO_MEM;
    if ((err = console_init()) != ESP_OK)
        return err;
#ifdef CONFIG_HILTEST_AGENT_LOG_THROUGH_AGENT
    esp_log_set_vprintf(log_vprintf);
#else
    (void)log_vprintf;
#endif

    s_platform.ctx = &s_ctx;
    s_platform.console_write = p_console_write;
    s_platform.time_get = p_time_get;
    s_platform.time_set = p_time_set;
    s_platform.time_synced = p_time_synced;
    s_platform.millis = p_millis;
    s_platform.sleep_ms = p_sleep_ms;
    s_platform.reset = p_reset;
    s_platform.hmac_sha256 = p_hmac_sha256;
    s_platform.ca_check = p_ca_check;
    s_platform.wifi_join = s_ctx.manage_wifi ? p_wifi_join : NULL;
    s_platform.tls_connect = p_tls_connect;
    s_platform.tls_write = p_tls_write;
    s_platform.tls_read = p_tls_read;
    s_platform.tls_close = p_tls_close;
    s_platform.tls_error = p_tls_error;

    if (xTaskCreate(agent_task, "hiltest", s_ctx.task_stack, NULL, s_ctx.task_priority, NULL) != pdPASS)
        return ESP_ERR_NO_MEM;
    s_started = true;
    ESP_LOGI(TAG, "%s %s on %s (%s), dialect %s", HIL_FW_NAME, HIL_FW_VERSION, s_ctx.chip, s_ctx.board,
             hil_dialect_name(s_ctx.dialect));
    return ESP_OK;
}

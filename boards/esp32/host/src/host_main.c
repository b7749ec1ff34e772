/*
 * host_main.c - the host build of the hiltest agent: a second virtual board.
 *
 *   hiltest-agent [--link PATH] [--port DEV] [--dialect D] [--name N] [--mac MAC] [--clock boot|system]
 *
 * Without --port it creates a pty and serves the agent on it; with --link it
 * also makes PATH a symlink to the pty and listens on the unix socket
 * PATH.ctl for "rts 0|1" / "dtr 0|1" lines, which drive the ESP32 devkit
 * auto-reset circuit (RTS -> EN, DTR -> IO0; both asserted = no reset).
 * Once ready it prints exactly one line "PTY <path>" on stdout; logs go to stderr.
 */
#include "host_platform.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_CTL_CLIENTS 4

typedef struct {
    int fd;          /* console: pty master or device */
    int slave_fd;    /* kept open so the master never sees a hang-up */
    char path[256];  /* the console path users open */
    const char *link;
    char ctl_path[280];
    int ctl_fd;
    int ctl_clients[MAX_CTL_CLIENTS];
    char ctl_buf[MAX_CTL_CLIENTS][128];
    size_t ctl_len[MAX_CTL_CLIENTS];
    const char *name;
    char mac[24];
    hil_dialect dialect;
    int clock_system;

    /* clock: unix = base + (monotonic - mono_at_base) */
    int64_t clock_base;
    double mono_at_base;

    /* reset lines and board state */
    int rts, dtr;
    int in_reset;      /* EN held low */
    int download;      /* booted into the ROM download mode */
    int reboot_sw;     /* RESET was requested */
    int boot_pending;  /* EN released; the chip starts when EN has risen */
    double boot_at;
} host_ctx;

/* EN rises through an RC network on a devkit: the chip samples IO0 this
 * long after the release, so esptool's sequences that change DTR and RTS
 * in two steps still select the boot mode they mean. */
#define EN_RISE_S 0.02

static host_ctx H;
static hil_agent A;
static hil_platform P;
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- platform hooks ---- */

static int h_console_write(void *ctx, const uint8_t *buf, size_t len)
{
    host_ctx *h = ctx;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(h->fd, buf + off, len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd;
            pfd.fd = h->fd;
            pfd.events = POLLOUT;
            pfd.revents = 0;
            /* nobody reads the console: drop output rather than hang */
            if (poll(&pfd, 1, 2000) <= 0) {
                fprintf(stderr, "hiltest-agent: console output dropped (%zu bytes): nobody is reading\n", len - off);
                return -1;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return -1;
    }
    return 0;
}

static void console_text(const char *s) { h_console_write(&H, (const uint8_t *)s, strlen(s)); }

static int64_t h_time_get(void *ctx)
{
    host_ctx *h = ctx;
    return h->clock_base + (int64_t)(mono_s() - h->mono_at_base);
}

static int h_time_set(void *ctx, int64_t t)
{
    host_ctx *h = ctx;
    h->clock_base = t;
    h->mono_at_base = mono_s();
    return 0;
}

static int h_time_synced(void *ctx) { return ((host_ctx *)ctx)->clock_system; }

static uint32_t h_millis(void *ctx)
{
    (void)ctx;
    return (uint32_t)(uint64_t)(mono_s() * 1000.0);
}

static void h_sleep_ms(void *ctx, uint32_t ms)
{
    struct timespec ts;
    (void)ctx;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop_signal)
        ;
}

static void h_reset(void *ctx) { ((host_ctx *)ctx)->reboot_sw = 1; }

static hil_err h_wifi_join(void *ctx, const char *ssid, const char *password, uint32_t timeout_ms, char *ip,
                           size_t ip_size)
{
    (void)ctx; (void)password; (void)timeout_ms;
    fprintf(stderr, "hiltest-agent: NET.WIFI ssid=%s (simulated: loopback)\n", ssid);
    snprintf(ip, ip_size, "127.0.0.1");
    return HIL_OK;
}

/* ---- boot ---- */

static void boot(const char *reason)
{
    hil_identity id;
    char line[256];
    const char *rst = strcmp(reason, "sw") == 0 ? "rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"
                                                : "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)";
    H.reboot_sw = 0;
    H.download = 0;
    /* As on an ESP32, the RTC keeps the clock across a software reset; a
     * power-on or EN reset starts it near 0 (no SNTP). TIME.GET says set=0
     * after any boot. */
    if (strcmp(reason, "sw") != 0)
        h_time_set(&H, H.clock_system ? (int64_t)time(NULL) : 0);
    id.board = "host";
    id.chip = "host";
    id.mac = H.mac;
    id.dialect = H.dialect;
    hil_agent_init(&A, &P, &id);
    console_text("ets Jun  8 2016 00:22:57\r\n\r\n");
    snprintf(line, sizeof line, "%s\r\n", rst);
    console_text(line);
    console_text("I (29) boot: hiltest-agent host build, no bootloader\r\n");
    snprintf(line, sizeof line, "I (31) hiltest: %s %s name=%s board=host chip=host dialect=%s\r\n", HIL_FW_NAME,
             HIL_FW_VERSION, H.name, hil_dialect_name(H.dialect));
    console_text(line);
    hil_agent_ready(&A, reason);
    fprintf(stderr, "hiltest-agent: boot (reason=%s)\n", reason);
}

/* ESP32 devkit auto-reset circuit: EN low when RTS is asserted and DTR is
 * not; IO0 low when DTR is asserted and RTS is not. */
static void apply_lines(void)
{
    int en_low = H.rts && !H.dtr;
    if (en_low) {
        H.boot_pending = 0;
        if (!H.in_reset)
            fprintf(stderr, "hiltest-agent: EN low: held in reset\n");
        H.in_reset = 1;
        return;
    }
    if (H.in_reset && !H.boot_pending) {
        H.boot_pending = 1;
        H.boot_at = mono_s() + EN_RISE_S;
    }
}

/* Starts the chip once EN has risen: IO0 low selects the ROM download mode. */
static void boot_if_due(void)
{
    int io0_low = H.dtr && !H.rts;
    if (!H.boot_pending || mono_s() < H.boot_at)
        return;
    H.boot_pending = 0;
    if (H.in_reset) {
        H.in_reset = 0;
        if (io0_low) {
            H.download = 1;
            console_text("ets Jun  8 2016 00:22:57\r\n\r\n"
                         "rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"
                         "waiting for download\r\n");
            fprintf(stderr, "hiltest-agent: EN released with IO0 low: download mode\n");
        } else {
            boot("hw");
        }
    }
}

static void ctl_line(int fd, char *line)
{
    const char *reply = "ok\n";
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
        line[--n] = '\0';
    if (strcmp(line, "rts 1") == 0) H.rts = 1;
    else if (strcmp(line, "rts 0") == 0) H.rts = 0;
    else if (strcmp(line, "dtr 1") == 0) H.dtr = 1;
    else if (strcmp(line, "dtr 0") == 0) H.dtr = 0;
    else if (n == 0) return;
    else reply = "error: want rts 0|1 or dtr 0|1\n";
    if (reply[0] == 'o')
        apply_lines();
    if (write(fd, reply, strlen(reply)) < 0) {
        /* the client went away; it is closed on its next read */
    }
}

/* ---- setup ---- */

static int make_raw(int fd)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0)
        return -1;
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_oflag &= ~(tcflag_t)OPOST;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    t.c_cflag |= CS8;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    return tcsetattr(fd, TCSANOW, &t);
}

static int open_pty(void)
{
    const char *name;
    H.fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (H.fd < 0 || grantpt(H.fd) != 0 || unlockpt(H.fd) != 0 || (name = ptsname(H.fd)) == NULL) {
        perror("hiltest-agent: pty");
        return -1;
    }
    snprintf(H.path, sizeof H.path, "%s", name);
    H.slave_fd = open(H.path, O_RDWR | O_NOCTTY);
    if (H.slave_fd < 0 || make_raw(H.slave_fd) != 0) {
        perror("hiltest-agent: pty slave");
        return -1;
    }
    fcntl(H.fd, F_SETFL, fcntl(H.fd, F_GETFL, 0) | O_NONBLOCK);
    return 0;
}

static int open_port(const char *dev)
{
    H.fd = open(dev, O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (H.fd < 0) {
        fprintf(stderr, "hiltest-agent: open %s: %s\n", dev, strerror(errno));
        return -1;
    }
    if (make_raw(H.fd) != 0)
        fprintf(stderr, "hiltest-agent: %s is not a terminal; using it as is\n", dev);
    snprintf(H.path, sizeof H.path, "%s", dev);
    H.slave_fd = -1;
    return 0;
}

static int open_ctl(void)
{
    struct sockaddr_un sa;
    snprintf(H.ctl_path, sizeof H.ctl_path, "%s.ctl", H.link);
    if (strlen(H.ctl_path) >= sizeof sa.sun_path) {
        fprintf(stderr, "hiltest-agent: control socket path too long: %s\n", H.ctl_path);
        return -1;
    }
    unlink(H.ctl_path);
    H.ctl_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, H.ctl_path);
    if (H.ctl_fd < 0 || bind(H.ctl_fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(H.ctl_fd, 4) != 0) {
        fprintf(stderr, "hiltest-agent: control socket %s: %s\n", H.ctl_path, strerror(errno));
        return -1;
    }
    return 0;
}

static void cleanup(void)
{
    if (H.link != NULL) {
        struct stat st;
        if (lstat(H.link, &st) == 0 && S_ISLNK(st.st_mode))
            unlink(H.link);
        if (H.ctl_fd >= 0)
            unlink(H.ctl_path);
    }
}

static int usage(const char *msg)
{
    fprintf(stderr, "hiltest-agent: %s\nusage: hiltest-agent [--link PATH] [--port DEV] [--dialect D] [--name N] "
                    "[--mac MAC] [--clock boot|system]\n", msg);
    return 2;
}

static int valid_mac(const char *s)
{
    int i;
    if (strlen(s) != 17)
        return 0;
    for (i = 0; i < 17; i++) {
        char c = s[i];
        if (i % 3 == 2) {
            if (c != ':')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

int main(int argc, char **argv)
{
    const char *port = NULL, *dialect = "default", *mac = NULL, *clock_mode = "boot";
    struct sigaction sa;
    uint8_t buf[4096];
    int i, stdout_pipe;

    memset(&H, 0, sizeof H);
    H.name = "host-1";
    H.ctl_fd = -1;
    H.slave_fd = -1;
    for (i = 0; i < MAX_CTL_CLIENTS; i++)
        H.ctl_clients[i] = -1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("usage: hiltest-agent [--link PATH] [--port DEV] [--dialect D] [--name N] [--mac MAC] "
                   "[--clock boot|system]\n");
            return 0;
        }
        if (v == NULL)
            return usage("missing value after a flag");
        if (strcmp(a, "--link") == 0) H.link = v;
        else if (strcmp(a, "--port") == 0) port = v;
        else if (strcmp(a, "--dialect") == 0) dialect = v;
        else if (strcmp(a, "--name") == 0) H.name = v;
        else if (strcmp(a, "--mac") == 0) mac = v;
        else if (strcmp(a, "--clock") == 0) clock_mode = v;
        else return usage("unknown flag");
        i++;
    }
    if (hil_dialect_parse(dialect, &H.dialect) != 0)
        return usage("unknown --dialect (want default, azure-sdk-for-c or azure-iot-sdk-c)");
    if (strcmp(clock_mode, "boot") == 0) H.clock_system = 0;
    else if (strcmp(clock_mode, "system") == 0) H.clock_system = 1;
    else return usage("--clock must be boot or system");
    if (mac != NULL) {
        if (!valid_mac(mac))
            return usage("--mac must look like 02:00:00:00:00:01 (uppercase hex)");
        snprintf(H.mac, sizeof H.mac, "%s", mac);
    } else {
        /* a locally administered MAC derived from the name */
        uint32_t c = hil_crc32(H.name, strlen(H.name));
        snprintf(H.mac, sizeof H.mac, "02:%02X:%02X:%02X:%02X:01", (unsigned)(c >> 24) & 0xFF,
                 (unsigned)(c >> 16) & 0xFF, (unsigned)(c >> 8) & 0xFF, (unsigned)c & 0xFF);
    }

    if ((port != NULL ? open_port(port) : open_pty()) != 0)
        return 1;
    if (H.link != NULL && port == NULL) {
        unlink(H.link);
        if (symlink(H.path, H.link) != 0) {
            fprintf(stderr, "hiltest-agent: symlink %s: %s\n", H.link, strerror(errno));
            return 1;
        }
    }
    if (H.link != NULL && open_ctl() != 0) {
        cleanup();
        return 1;
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    P.ctx = &H;
    P.console_write = h_console_write;
    P.time_get = h_time_get;
    P.time_set = h_time_set;
    P.time_synced = h_time_synced;
    P.millis = h_millis;
    P.sleep_ms = h_sleep_ms;
    P.reset = h_reset;
    P.hmac_sha256 = host_hmac_sha256;
    P.ca_check = host_ca_check;
    P.wifi_join = h_wifi_join;
    P.tls_connect = host_tls_connect;
    P.tls_write = host_tls_write;
    P.tls_read = host_tls_read;
    P.tls_close = host_tls_close;
    P.tls_error = host_tls_error;

    boot("poweron");
    printf("PTY %s\n", H.path);
    fflush(stdout);

    {
        /* Launched with stdout on a pipe (by hiltest): exit when the launcher
         * is gone, instead of serving a pty nobody will open again. */
        struct stat st;
        stdout_pipe = fstat(STDOUT_FILENO, &st) == 0 && S_ISFIFO(st.st_mode);
    }

    while (!stop_signal) {
        struct pollfd pf[3 + MAX_CTL_CLIENTS];
        int n = 0, k;
        pf[n].fd = H.fd;
        pf[n].events = POLLIN;
        pf[n++].revents = 0;
        if (H.ctl_fd >= 0) {
            pf[n].fd = H.ctl_fd;
            pf[n].events = POLLIN;
            pf[n++].revents = 0;
        }
        for (k = 0; k < MAX_CTL_CLIENTS; k++) {
            pf[n].fd = H.ctl_clients[k];
            pf[n].events = POLLIN;
            pf[n++].revents = 0;
        }
        pf[n].fd = stdout_pipe ? STDOUT_FILENO : -1;
        pf[n].events = 0; /* POLLERR when the pipe's reader has gone */
        pf[n++].revents = 0;
        if (poll(pf, (nfds_t)n, H.boot_pending ? 5 : 500) < 0) {
            if (errno == EINTR)
                continue;
            perror("hiltest-agent: poll");
            break;
        }
        if (pf[n - 1].revents & (POLLERR | POLLHUP)) {
            fprintf(stderr, "hiltest-agent: stdout closed: the launcher is gone, exiting\n");
            break;
        }
        boot_if_due();
        if (pf[0].revents & POLLIN) {
            ssize_t r = read(H.fd, buf, sizeof buf);
            if (r > 0 && !H.in_reset && !H.download) {
                if (hil_agent_feed(&A, buf, (size_t)r) || H.reboot_sw)
                    boot("sw");
            } else if (r == 0 && port != NULL) {
                fprintf(stderr, "hiltest-agent: %s closed\n", H.path);
                break;
            }
        } else if (pf[0].revents & (POLLHUP | POLLERR)) {
            if (port != NULL) {
                fprintf(stderr, "hiltest-agent: %s hung up\n", H.path);
                break;
            }
            h_sleep_ms(&H, 100);
        }
        if (H.ctl_fd >= 0 && (pf[1].revents & POLLIN)) {
            int c = accept(H.ctl_fd, NULL, NULL);
            if (c >= 0) {
                for (k = 0; k < MAX_CTL_CLIENTS && H.ctl_clients[k] >= 0; k++)
                    ;
                if (k == MAX_CTL_CLIENTS) {
                    close(c);
                } else {
                    H.ctl_clients[k] = c;
                    H.ctl_len[k] = 0;
                }
            }
        }
        for (k = 0; k < MAX_CTL_CLIENTS; k++) {
            int idx = (H.ctl_fd >= 0 ? 2 : 1) + k;
            ssize_t r;
            size_t j;
            if (H.ctl_clients[k] < 0 || !(pf[idx].revents & (POLLIN | POLLHUP)))
                continue;
            r = read(H.ctl_clients[k], H.ctl_buf[k] + H.ctl_len[k], sizeof H.ctl_buf[k] - 1 - H.ctl_len[k]);
            if (r <= 0) {
                close(H.ctl_clients[k]);
                H.ctl_clients[k] = -1;
                continue;
            }
            H.ctl_len[k] += (size_t)r;
            for (;;) {
                char *nl = memchr(H.ctl_buf[k], '\n', H.ctl_len[k]);
                if (nl == NULL)
                    break;
                *nl = '\0';
                ctl_line(H.ctl_clients[k], H.ctl_buf[k]);
                j = (size_t)(nl - H.ctl_buf[k]) + 1;
                memmove(H.ctl_buf[k], H.ctl_buf[k] + j, H.ctl_len[k] - j);
                H.ctl_len[k] -= j;
            }
            if (H.ctl_len[k] == sizeof H.ctl_buf[k] - 1)
                H.ctl_len[k] = 0; /* an over-long line: drop it */
        }
    }
    if (stop_signal)
        fprintf(stderr, "hiltest-agent: signal %d, exiting\n", (int)stop_signal);
    cleanup();
    return 0;
}

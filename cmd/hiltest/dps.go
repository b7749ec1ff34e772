package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hiltest/hiltest/mockdps"
	"github.com/spf13/cobra"
)

func newDPSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dps",
		Short: "Run or load-test the mock Device Provisioning Service",
		Long: `The mock DPS serves the DPS device API (register, operation status,
registration status) over HTTPS with a freshly generated CA, verifies SAS
tokens as the service does, and records why each rejected request failed.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newDPSServeCmd(), newDPSBenchCmd())
	return cmd
}

func newDPSServeCmd() *cobra.Command {
	var (
		listen, enrollments, caOut, capture string
		sans                                []string
		assignDelay, clockSkew              time.Duration
		retryAfter                          int
		rateLimit                           float64
		explain, plain                      bool
	)
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR] [--enrollments FILE] [--ca-out ca.pem]",
		Short: "Serve a mock DPS for boards on the bench LAN",
		Long: `Serve the mock DPS until interrupted (SIGINT or SIGTERM), then stop
cleanly and flush the capture file.

Without --enrollments the built-in demo enrollments are served (id scope
0ne00DEMO01, see mockdps/testdata/enrollments.yaml). The server certificate
is signed by a CA generated at start; --ca-out writes it for the boards'
trust store. Its SANs are localhost, 127.0.0.1, ::1, every --san, and, when
listening on all interfaces, every address of this host.

Rejected requests get the service's terse answer (401002 "Unauthorized");
the cause is printed here, kept at GET /_mock/diagnoses, written to the
capture file, and with --explain sent in the header x-hiltest-diagnosis.`,
		Example: `  hiltest dps serve --listen 0.0.0.0:8443 --enrollments bench.yaml --ca-out ca.pem --capture requests.jsonl
  hiltest dps serve --listen 127.0.0.1:8443 --ca-out ca.pem --assign-delay 2s --retry-after 1 --explain`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if retryAfter < 0 {
				return usageErr(fmt.Errorf("dps serve: --retry-after %d is negative", retryAfter))
			}
			if assignDelay < 0 || clockSkew < 0 || rateLimit < 0 {
				return usageErr(errors.New("dps serve: --assign-delay, --clock-skew and --rate-limit must not be negative"))
			}
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return usageErr(fmt.Errorf("dps serve: --listen %q: %w", listen, err))
			}
			opts := mockdps.Options{
				Listen: listen, AssignDelay: assignDelay, RetryAfter: retryAfter, Plain: plain,
				SANs: sans, Explain: explain, ClockSkew: clockSkew, CapturePath: capture, RateLimit: rateLimit,
			}
			if retryAfter == 0 {
				opts.RetryAfter = mockdps.RetryImmediately
			}
			source := "built-in demo enrollments"
			if enrollments != "" {
				e, err := mockdps.LoadEnrollments(enrollments)
				if err != nil {
					return usageErr(err)
				}
				opts.Enrollments, source = e, enrollments
			}
			var lanIPs []string
			if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
				lanIPs = dpsHostIPs()
				opts.SANs = append(opts.SANs, lanIPs...)
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			opts.Logf = func(format string, args ...any) { fmt.Fprintf(errOut, "mockdps: "+format+"\n", args...) }

			ctx, stop := signal.NotifyContext(dpsContext(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := mockdps.Start(opts)
			if err != nil {
				return failErr(err)
			}
			if caOut != "" && !plain {
				if err := os.WriteFile(caOut, s.CAPEM(), 0o644); err != nil {
					_ = s.Close()
					return failErr(fmt.Errorf("dps serve: --ca-out: %w", err))
				}
			}
			fmt.Fprintf(out, "mock DPS listening on %s\n", s.URL())
			_, port, _ := net.SplitHostPort(s.Host())
			scheme := strings.SplitN(s.URL(), ":", 2)[0]
			for _, ip := range lanIPs {
				if parsed := net.ParseIP(ip); parsed != nil && !parsed.IsLoopback() {
					fmt.Fprintf(out, "  also at %s://%s\n", scheme, net.JoinHostPort(ip, port))
				}
			}
			fmt.Fprintf(out, "id scope: %s\n", s.IDScope())
			fmt.Fprintf(out, "enrollments: %s\n", source)
			if caOut != "" && !plain {
				fmt.Fprintf(out, "CA certificate: %s\n", caOut)
			}
			if capture != "" {
				fmt.Fprintf(out, "capture: %s\n", capture)
			}
			fmt.Fprintf(out, "diagnoses: %s/_mock/diagnoses\n", s.URL())

			// Print diagnoses as they happen, until stopped.
			done := make(chan struct{})
			go func() {
				defer close(done)
				dpsPrintDiagnoses(ctx, s, errOut)
			}()
			<-ctx.Done()
			<-done
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = s.Shutdown(sctx)
			fmt.Fprintf(out, "stopped: %d requests, %d rejected\n", len(s.Requests()), len(s.Diagnoses()))
			if err != nil {
				return failErr(fmt.Errorf("dps serve: %w", err))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8443", "address to listen on (0.0.0.0:8443 for the bench LAN)")
	f.StringVar(&enrollments, "enrollments", "", "enrollments YAML file (default: the built-in demo enrollments)")
	f.StringVar(&caOut, "ca-out", "", "write the generated CA certificate (PEM) to this file")
	f.StringArrayVar(&sans, "san", nil, "extra DNS name or IP address for the server certificate (repeatable)")
	f.DurationVar(&assignDelay, "assign-delay", 0, "how long an operation stays \"assigning\"")
	f.IntVar(&retryAfter, "retry-after", mockdps.DefaultRetryAfter, "Retry-After seconds sent with 202 (0 = poll at once)")
	f.StringVar(&capture, "capture", "", "write every request (redacted) as JSON lines to this file")
	f.BoolVar(&explain, "explain", false, "add the diagnosis of rejected requests in the header x-hiltest-diagnosis")
	f.BoolVar(&plain, "plain", false, "serve plain HTTP instead of HTTPS")
	f.DurationVar(&clockSkew, "clock-skew", 0, "accept tokens this long after their expiry")
	f.Float64Var(&rateLimit, "rate-limit", 0, "requests per second before answering 429 (0 = unlimited)")
	return cmd
}

// dpsContext is the command's context, or Background when run without one.
func dpsContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// dpsPrintDiagnoses prints each new diagnosis until ctx ends.
func dpsPrintDiagnoses(ctx context.Context, s *mockdps.Server, w io.Writer) {
	seen := 0
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for last := false; !last; {
		select {
		case <-ctx.Done():
			last = true // one more pass for what came in since the last tick
		case <-tick.C:
		}
		ds := s.Diagnoses()
		if len(ds) < seen {
			seen = 0 // the ring wrapped
		}
		for _, d := range ds[seen:] {
			fmt.Fprintf(w, "rejected %s %s -> %d: %s\n", d.Method, d.RequestURI, d.Status, d.String())
		}
		seen = len(ds)
	}
}

// dpsHostIPs lists this host's interface addresses.
func dpsHostIPs() []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
			out = append(out, n.IP.String())
		}
	}
	return out
}

func newDPSBenchCmd() *cobra.Command {
	var (
		devices, conns int
		duration       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bench [--devices N] [--duration D] [--conns N]",
		Short: "Load-test the mock DPS on loopback against a bare TLS ceiling",
		Long: `Start a mock DPS on loopback (assignment immediate, Retry-After 0, so one
flow is a PUT register and a GET operation status) and drive full flows from
N concurrent devices over keep-alive TLS, and the same load against a bare
TLS handler that does no work, in three alternating rounds so that other
load on the machine affects both alike. Each device connects and runs one
untimed flow first. Reports flows/s, p50/p99 flow latency and errors for
both, and the mock's share of the ceiling (bare requests/s divided by
requests per flow). Exits 1 if any flow failed.`,
		Example: `  hiltest dps bench --devices 64 --duration 5s
  hiltest dps bench --devices 1000 --duration 10s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if devices < 1 || devices > 5000 {
				return usageErr(fmt.Errorf("dps bench: --devices %d: want 1 to 5000", devices))
			}
			if conns < 0 || conns > 5000 {
				return usageErr(fmt.Errorf("dps bench: --conns %d: want 0 (one per device) to 5000", conns))
			}
			if duration <= 0 || duration > 5*time.Minute {
				return usageErr(fmt.Errorf("dps bench: --duration %s: want more than 0 and at most 5m", duration))
			}
			ctx, stop := signal.NotifyContext(dpsContext(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := mockdps.RunBench(ctx, mockdps.BenchOptions{Devices: devices, Conns: conns, Duration: duration})
			if err != nil {
				return failErr(err)
			}
			out := cmd.OutOrStdout()
			c := conns
			if c == 0 {
				c = devices
			}
			fmt.Fprintf(out, "mock DPS bench: %d devices, %d connections, %s per server in 3 alternating rounds, TLS keep-alive, loopback\n", devices, c, duration)
			fmt.Fprintf(out, "%-10s %10s %10s %10s %10s %10s %8s\n", "", "flows/s", "req/s", "p50", "p99", "max", "errors")
			row := func(name string, r mockdps.LoadResult) {
				fmt.Fprintf(out, "%-10s %10.0f %10.0f %10s %10s %10s %8d\n", name, r.FlowsPerSec, r.RequestsPerSec,
					r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond), r.Errors)
			}
			row("mock", rep.Mock)
			row("bare TLS", rep.Ceiling)
			fmt.Fprintf(out, "ceiling: %.0f flows/s (bare req/s / %.2f requests per flow); mock at %.2f of the ceiling\n",
				rep.CeilingFlowsPerSec, rep.Mock.RequestsPerFlow(), rep.Ratio)
			if n := rep.Mock.Errors + rep.Ceiling.Errors; n > 0 {
				return failErr(fmt.Errorf("dps bench: %d flows failed (first: %s%s)", n, rep.Mock.FirstError, rep.Ceiling.FirstError))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&devices, "devices", 64, "concurrent devices")
	f.IntVar(&conns, "conns", 0, "connections (0 = one per device)")
	f.DurationVar(&duration, "duration", 5*time.Second, "load time per server (mock and bare TLS each)")
	return cmd
}

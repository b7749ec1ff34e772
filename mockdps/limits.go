package mockdps

import (
	"sync"
	"sync/atomic"
	"time"
)

// FaultMode selects an injected failure for harness tests.
type FaultMode string

const (
	// FaultNone serves normally.
	FaultNone FaultMode = ""
	// FaultServerError answers DPS requests with a 5xx (Fault.Status,
	// default 500) and an Azure-shaped error body.
	FaultServerError FaultMode = "5xx"
	// FaultSlow waits Fault.Delay (default 2s) before serving normally.
	FaultSlow FaultMode = "slow"
	// FaultDrop closes the connection without any response.
	FaultDrop FaultMode = "drop"
)

// Fault describes injected failures. Faults apply to DPS routes only, not
// to the /_mock/ admin endpoints.
type Fault struct {
	Mode   FaultMode
	Status int           // FaultServerError: 500..599; 0 = 500
	Delay  time.Duration // FaultSlow: 0 = 2s
	// Every applies the fault to every Nth DPS request only (0 or 1 = all).
	Every int
	// Count stops injecting after this many faults (0 = no limit).
	Count int
}

type faultState struct {
	f        Fault
	seen     atomic.Int64
	injected atomic.Int64
}

// SetFault switches the fault mode at runtime (Fault{} turns faults off).
func (s *Server) SetFault(f Fault) {
	if f.Mode == FaultNone {
		s.fault.Store(nil)
		return
	}
	if f.Mode == FaultServerError && (f.Status < 500 || f.Status > 599) {
		f.Status = 500
	}
	if f.Mode == FaultSlow && f.Delay <= 0 {
		f.Delay = 2 * time.Second
	}
	s.fault.Store(&faultState{f: f})
}

// activeFault reports the fault to inject into this request, if any.
func (s *Server) activeFault() (Fault, bool) {
	fs := s.fault.Load()
	if fs == nil {
		return Fault{}, false
	}
	n := fs.seen.Add(1)
	if fs.f.Every > 1 && n%int64(fs.f.Every) != 0 {
		return Fault{}, false
	}
	if fs.f.Count > 0 && fs.injected.Add(1) > int64(fs.f.Count) {
		return Fault{}, false
	}
	return fs.f, true
}

// limiter is a token bucket over all DPS requests.
type limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	if rate <= 0 {
		return nil
	}
	b := float64(burst)
	if b <= 0 {
		b = max(1, rate)
	}
	return &limiter{rate: rate, burst: b, now: now, tokens: b}
}

// allow takes one token; a nil limiter allows everything.
func (l *limiter) allow() bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+t.Sub(l.last).Seconds()*l.rate)
	}
	l.last = t
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

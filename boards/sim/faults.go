package sim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Trigger says when a fault fires: at a rate (probability per request), on
// the N-th request since start, and/or on the first request with a verb.
// The zero Trigger never fires.
type Trigger struct {
	Rate      float64 // 0..1, rolled once per request with the board's seeded source
	AtRequest int     // fire on this request (1 = the first request since Start), 0 = off
	Verb      string  // fire once, on the first request with this verb, "" = off
}

// Off reports whether t never fires.
func (t Trigger) Off() bool { return t.Rate == 0 && t.AtRequest == 0 && t.Verb == "" }

func (t Trigger) String() string {
	var p []string
	if t.Rate > 0 {
		p = append(p, strconv.FormatFloat(t.Rate, 'g', -1, 64))
	}
	if t.AtRequest > 0 {
		p = append(p, "@"+strconv.Itoa(t.AtRequest))
	}
	if t.Verb != "" {
		p = append(p, "@"+t.Verb)
	}
	return strings.Join(p, "+")
}

// Faults is a parsed fault spec.
type Faults struct {
	Noise    Trigger // garbage bytes at boot (74880-baud ROM noise) and junk before an answer
	Corrupt  Trigger // flip one byte inside the answer frame (the host sees BAD_CRC)
	Drop     Trigger // drop one byte from the answer frame
	Brownout Trigger // brown-out once the request's work is done: no answer, reboot, READY reason=brownout
	Hang     Trigger // stop answering for HangFor (0 = until reset)
	Slow     Trigger // delay the answer by SlowDelay
	Overlong Trigger // print a log line longer than 4096 bytes before the answer
	Unplug   Trigger // the port disappears for UnplugFor, then comes back and the board boots
	// SlowDelay is the delay of a slow answer (default 200ms).
	SlowDelay time.Duration
	// HangFor is how long a hang lasts; 0 = until reset.
	HangFor time.Duration
	// UnplugFor is how long the port stays away (default 1s).
	UnplugFor time.Duration
	// Skew is added to the clock TIME.SET sets.
	Skew time.Duration
}

const (
	defaultSlowDelay = 200 * time.Millisecond
	defaultUnplugFor = time.Second
)

// FaultSpecHelp describes the fault spec grammar.
const FaultSpecHelp = `comma-separated name=value pairs:
  noise, corrupt, drop, brownout, hang, slow, overlong, unplug = RATE (0..1, per request)
      or @N (the N-th request since start) or @VERB (the first request with VERB);
      several triggers join with '+', e.g. brownout=0.05+@DPS.REGISTER
  slow=DURATION (every answer delayed), slow_delay=DURATION (default 200ms)
  hang_for=DURATION (default: until reset), unplug_for=DURATION (default 1s)
  skew=SECONDS or DURATION (added to the clock TIME.SET sets, e.g. skew=-3600)`

// ParseFaults parses a fault spec such as
// "noise=0.3,corrupt=0.02,drop=0.01,brownout=@3,hang=0.01,hang_for=2s,slow=200ms,overlong=0.01,unplug=0.01,skew=-3600".
// An empty spec means no faults.
func ParseFaults(spec string) (Faults, error) {
	f := Faults{SlowDelay: defaultSlowDelay, UnplugFor: defaultUnplugFor}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return f, nil
	}
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, val, ok := strings.Cut(item, "=")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if !ok || val == "" {
			return Faults{}, fmt.Errorf("fault spec %q: %q: want name=value", spec, item)
		}
		if seen[name] {
			return Faults{}, fmt.Errorf("fault spec %q: %q given twice", spec, name)
		}
		seen[name] = true
		var err error
		switch name {
		case "noise":
			f.Noise, err = parseTrigger(val)
		case "corrupt":
			f.Corrupt, err = parseTrigger(val)
		case "drop":
			f.Drop, err = parseTrigger(val)
		case "brownout":
			f.Brownout, err = parseTrigger(val)
		case "hang":
			f.Hang, err = parseTrigger(val)
		case "overlong":
			f.Overlong, err = parseTrigger(val)
		case "unplug":
			f.Unplug, err = parseTrigger(val)
		case "slow":
			if d, derr := time.ParseDuration(val); derr == nil {
				if d <= 0 {
					err = fmt.Errorf("delay %s is not positive", val)
				}
				f.Slow, f.SlowDelay = Trigger{Rate: 1}, d
				seen["slow_delay"] = true
			} else {
				f.Slow, err = parseTrigger(val)
			}
		case "slow_delay", "hang_for", "unplug_for":
			var d time.Duration
			d, err = time.ParseDuration(val)
			if err == nil && d < 0 {
				err = fmt.Errorf("duration %s is negative", val)
			}
			switch name {
			case "slow_delay":
				f.SlowDelay = d
			case "hang_for":
				f.HangFor = d
			case "unplug_for":
				f.UnplugFor = d
			}
		case "skew":
			if n, perr := strconv.ParseInt(val, 10, 64); perr == nil {
				f.Skew = time.Duration(n) * time.Second
			} else if d, derr := time.ParseDuration(val); derr == nil {
				f.Skew = d
			} else {
				err = fmt.Errorf("want seconds (-3600) or a duration (-1h), got %q", val)
			}
		default:
			return Faults{}, fmt.Errorf("fault spec %q: unknown fault %q (want noise, corrupt, drop, brownout, hang, hang_for, slow, slow_delay, overlong, unplug, unplug_for, skew)", spec, name)
		}
		if err != nil {
			return Faults{}, fmt.Errorf("fault spec %q: %s: %w", spec, name, err)
		}
	}
	return f, nil
}

func parseTrigger(val string) (Trigger, error) {
	var t Trigger
	for _, p := range strings.Split(val, "+") {
		p = strings.TrimSpace(p)
		switch {
		case strings.HasPrefix(p, "@"):
			w := p[1:]
			if n, err := strconv.Atoi(w); err == nil {
				if n < 1 {
					return t, fmt.Errorf("%q: request numbers start at 1", p)
				}
				t.AtRequest = n
				continue
			}
			if w == "" || !validVerbName(w) {
				return t, fmt.Errorf("%q: want @N or @VERB (e.g. @3, @DPS.REGISTER)", p)
			}
			t.Verb = w
		default:
			r, err := strconv.ParseFloat(p, 64)
			if err != nil || r < 0 || r > 1 {
				return t, fmt.Errorf("%q: want a rate between 0 and 1, @N or @VERB", p)
			}
			t.Rate = r
		}
	}
	return t, nil
}

func validVerbName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_') {
			return false
		}
	}
	return len(s) <= 32
}

// String renders f as a spec ParseFaults accepts.
func (f Faults) String() string {
	var p []string
	add := func(name string, t Trigger) {
		if !t.Off() {
			p = append(p, name+"="+t.String())
		}
	}
	add("noise", f.Noise)
	add("corrupt", f.Corrupt)
	add("drop", f.Drop)
	add("brownout", f.Brownout)
	add("hang", f.Hang)
	if f.HangFor > 0 {
		p = append(p, "hang_for="+f.HangFor.String())
	}
	add("slow", f.Slow)
	if !f.Slow.Off() && f.SlowDelay != defaultSlowDelay {
		p = append(p, "slow_delay="+f.SlowDelay.String())
	}
	add("overlong", f.Overlong)
	add("unplug", f.Unplug)
	if !f.Unplug.Off() && f.UnplugFor != defaultUnplugFor {
		p = append(p, "unplug_for="+f.UnplugFor.String())
	}
	if f.Skew != 0 {
		p = append(p, "skew="+strconv.FormatInt(int64(f.Skew/time.Second), 10))
	}
	return strings.Join(p, ",")
}

// firer rolls triggers: it is used by one goroutine at a time.
type firer struct {
	rng       *rand.Rand
	verbFired map[string]bool // fault name -> its @VERB trigger fired
}

// fire rolls t for request number n with verb; name keys the one-shot state.
func (fr *firer) fire(name string, t Trigger, n int, verb string) bool {
	if t.Off() {
		return false
	}
	hit := false
	if t.Rate > 0 && fr.rng.Float64() < t.Rate {
		hit = true
	}
	if t.AtRequest > 0 && t.AtRequest == n {
		hit = true
	}
	if t.Verb != "" && t.Verb == verb && !fr.verbFired[name] {
		fr.verbFired[name] = true
		hit = true
	}
	return hit
}

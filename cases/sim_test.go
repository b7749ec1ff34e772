package cases

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/boards/sim"
	"github.com/hiltest/hiltest/harness"
	"github.com/hiltest/hiltest/reference"
)

// openSim starts a simulated board and opens a session to it over its pty.
func openSim(t *testing.T, cfg sim.Config) *harness.Session {
	t.Helper()
	// The simulator lives as long as the context it starts with.
	b, err := sim.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	prof, ok := boards.LookupProfile("sim")
	if !ok {
		t.Fatal("no sim profile")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s, err := harness.Open(ctx, harness.SessionConfig{Name: cfg.Name, Port: b.Link(), Profile: prof})
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// runAll runs every built-in case on a board and returns the results.
func runAll(t *testing.T, b harness.Board, env *harness.Env) map[string]*harness.T {
	t.Helper()
	cs, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*harness.T{}
	for _, c := range cs {
		out[c.ID] = runCase(t, c, b, env)
	}
	return out
}

func TestBuiltinOnHealthySimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end on the simulator")
	}
	cs, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range reference.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			env := mockEnv(t, 1)
			s := openSim(t, sim.Config{Name: "sim-" + string(d), Dialect: string(d)})
			res := runAll(t, s, env)
			for _, c := range cs {
				ct := res[c.ID]
				switch ct.Status() {
				case harness.StatusPass:
				case harness.StatusSkip:
					// A case may skip only for a reason that is not the
					// simulator's fault: a vector for another dialect.
					if !strings.Contains(ct.SkipReason(), "the vector is for") {
						t.Errorf("%s", describe(c, ct))
					}
				default:
					t.Errorf("%s", describe(c, ct))
				}
			}
		})
	}
}

// simBugDiagnoses is what a diagnosis must say for each seeded bug of the
// simulator.
var simBugDiagnoses = map[string]string{
	sim.BugGroupKeySigning:      "signed with the group key instead of the derived device key",
	sim.BugDeriveFromBase64Text: "from the group key's base64 text instead of its decoded bytes",
	sim.BugSRNotEncoded:         "sr not URL-encoded",
	sim.BugSigNotEncoded:        "signature not URL-encoded",
	sim.BugMissingSKN:           "missing skn",
	sim.BugWrongResource:        `wrong resource: sr names scope "` + sim.WrongScope + `"`,
	sim.BugUnsetClockExpiry:     "expiry from an unset clock",
	sim.BugWrongAPIVersion:      "wrong api-version " + sim.WrongAPIVersion,
	sim.BugBodyIDMismatch:       "body registrationId",
	sim.BugIgnoreRetryAfter:     "ignores Retry-After",
	sim.BugTruncateKey64:        "its base64 text cut to 64 of 88 characters",
}

func TestSimulatorBugsAreDiagnosed(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end on the simulator")
	}
	for _, bug := range sim.Bugs() {
		t.Run(bug.Name, func(t *testing.T) {
			t.Parallel()
			phrase, ok := simBugDiagnoses[bug.Name]
			if !ok {
				t.Fatalf("no expected diagnosis for the simulator bug %q (%s)", bug.Name, bug.Description)
			}
			env := mockEnv(t, 1)
			env.Declared.Dialect = string(reference.DialectDefault)
			s := openSim(t, sim.Config{Name: "sim-" + bug.Name, Dialect: "default", Bugs: []string{bug.Name}})
			res := runAll(t, s, env)
			failed, named := 0, false
			for id, ct := range res {
				if ct.Status() != harness.StatusFail {
					continue
				}
				failed++
				for _, f := range ct.Failures() {
					if strings.Contains(f.Diagnosis, phrase) {
						named = true
					}
				}
				t.Logf("%s", describe(harness.Case{ID: id}, ct))
			}
			if !named {
				t.Errorf("bug %s: %d cases failed, none with a diagnosis naming %q", bug.Name, failed, phrase)
			}
		})
	}
}

package harness_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/harness"
	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

// A custom check on real boards: open the bench described in bench.yaml
// (its DPS and a session to every board, each prepared with its clock, the
// DPS trust anchor and endpoint), then call verbs on a board and compare
// with the reference. It needs the boards of bench.yaml, so it has no
// Output to check.
func ExampleOpenBench() {
	ctx := context.Background()
	bench, err := boards.LoadBench("bench.yaml")
	if err != nil {
		log.Fatal(err)
	}
	bs, err := harness.OpenBench(ctx, bench, harness.BenchOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer bs.Close()
	for _, m := range bs.Boards {
		if m.SetupErr != nil {
			fmt.Printf("%s: %v\n", m.Name(), m.SetupErr)
			continue
		}
		f, err := m.Board.Call(ctx, protocol.VerbDerive,
			protocol.String("group_key", "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="),
			protocol.String("reg_id", "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"))
		if err != nil {
			fmt.Printf("%s: %v\n", m.Name(), err)
			continue
		}
		fmt.Printf("%s: device key %s\n", m.Name(), reference.Redact(f.String("device_key")))
	}
}

// The same against a simulated board, which needs no hardware: a bench
// entry with sim: starts a simulated ESP32 on a pseudo-terminal.
func ExampleOpenBench_simulated() {
	ctx := context.Background()
	bench := &boards.Bench{Boards: []boards.BenchBoard{{Name: "sim-1", Profile: "sim", Dialect: "default", Sim: &boards.SimSpec{}}}}
	linkDir, err := os.MkdirTemp("", "example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(linkDir)
	bs, err := harness.OpenBench(ctx, bench, harness.BenchOptions{LinkDir: linkDir})
	if err != nil {
		log.Fatal(err)
	}
	defer bs.Close()
	b := bs.Board("sim-1")
	f, err := b.Call(ctx, protocol.VerbDerive,
		protocol.String("group_key", "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="),
		protocol.String("reg_id", "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.Info().Dialect, f.String("device_key"))
	// Output: default Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=
}

// TestCustomCaseOnSimulatedBench is what a user's own _test.go looks like:
// open a bench, call verbs on its boards, assert with testify.
func TestCustomCaseOnSimulatedBench(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bench := &boards.Bench{Boards: []boards.BenchBoard{
		{Name: "sim-1", Profile: "sim", Dialect: "default", Sim: &boards.SimSpec{}},
		{Name: "sim-2", Profile: "sim", Dialect: "azure-iot-sdk-c", Sim: &boards.SimSpec{}},
	}}
	bs, err := harness.OpenBench(ctx, bench, harness.BenchOptions{LinkDir: t.TempDir()})
	require.NoError(t, err)
	defer bs.Close()

	const regID = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
	for _, m := range bs.Boards {
		require.NoError(t, m.SetupErr)
		t.Run(m.Name(), func(t *testing.T) {
			key, err := reference.DeriveDeviceKey(m.Env.DPS.Enrollments.Groups[0].PrimaryKey, regID)
			require.NoError(t, err)
			expiry := time.Now().Add(time.Hour).Unix()
			f, err := m.Board.Call(ctx, protocol.VerbSAS,
				protocol.String("id_scope", m.Env.DPS.IDScope), protocol.String("reg_id", regID),
				protocol.String("key", key), protocol.Int("expiry", expiry))
			require.NoError(t, err)
			want, err := reference.NewSAS(reference.SASParams{
				Dialect: reference.Dialect(m.Board.Info().Dialect), IDScope: m.Env.DPS.IDScope, RegistrationID: regID,
				Key: key, Expiry: expiry, KeyName: reference.Dialect(m.Board.Info().Dialect).DefaultKeyName(),
			})
			require.NoError(t, err)
			assert.Equal(t, want.Token, f.String("token"))
			assert.Equal(t, want.StringToSign, f.String("sts"))
		})
	}
}

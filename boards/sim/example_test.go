package sim_test

import (
	"context"
	"fmt"
	"os"

	"github.com/hiltest/hiltest/boards/sim"
)

// Start a simulated board; a host opens b.Link() with go.bug.st/serial and
// resets the board through b.ControlPath().
func ExampleStart() {
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	b, err := sim.Start(context.Background(), sim.Config{Name: "sim-1", LinkDir: dir, Seed: 1, Dialect: "azure-sdk-for-c"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	fmt.Println(b.Link() == dir+"/sim-1", b.ControlPath() == dir+"/sim-1.ctl", b.Dialect())
	// Output: true true azure-sdk-for-c
}

// A bench of boards, one with a seeded firmware bug and line noise.
func ExampleStartBench() {
	boards, err := sim.StartBench(context.Background(), []sim.Config{
		{Name: "good", Seed: 1},
		{Name: "buggy", Seed: 1, Bugs: []string{sim.BugSRNotEncoded}, Faults: "noise=0.2,corrupt=0.01"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, b := range boards {
		fmt.Println(b.Name(), b.RegistrationID() != "", b.Config().Bugs)
		b.Close()
	}
	// Output:
	// good true []
	// buggy true [sr-not-encoded]
}

func ExampleParseFaults() {
	f, err := sim.ParseFaults("brownout=@DPS.REGISTER,hang=0.01,hang_for=5s,skew=-3600")
	fmt.Println(f.Brownout.Verb, f.Hang.Rate, f.HangFor, f.Skew, err)
	_, err = sim.ParseFaults("noise=lots")
	fmt.Println(err)
	// Output:
	// DPS.REGISTER 0.01 5s -1h0m0s <nil>
	// fault spec "noise=lots": noise: "lots": want a rate between 0 and 1, @N or @VERB
}

func ExampleBugs() {
	for _, b := range sim.Bugs()[:2] {
		fmt.Println(b.Name)
	}
	// Output:
	// group-key-signing
	// derive-from-base64-text
}

// Reset a board by its control lines, as esptool's HardReset does on a devkit.
func ExampleBoard_Control() {
	b, err := sim.Start(context.Background(), sim.Config{Name: "sim-ctl"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	for _, line := range []string{"rts 1", "rts 0"} {
		a, err := b.Control(context.Background(), line)
		fmt.Println(a, err)
	}
	// Output:
	// ok rts=1 dtr=0 en=low io0=high state=reset <nil>
	// ok rts=0 dtr=0 en=high io0=high state=booting <nil>
}

package mockdps

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// server, connection and load generator goroutine must have ended.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

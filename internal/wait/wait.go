// Package wait lets tests wait for a condition under a deadline instead
// of sleeping.
package wait

import (
	"testing"
	"time"
)

// interval is how often For checks its condition.
const interval = 5 * time.Millisecond

// For checks cond until it holds, and fails t if it does not hold within
// the given time; what names the condition in the failure.
func For(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s", what, within)
		}
		time.Sleep(interval) // polling a condition under a deadline
	}
}

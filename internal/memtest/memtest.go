// Package memtest measures memory in tests that bound what a hostile
// server can make mailpoller allocate.
package memtest

import "runtime"

// Allocated runs f and returns the bytes the whole process allocated
// meanwhile (an in-process test server's included, so bounds are
// generous).
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

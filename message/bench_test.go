package message

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func BenchmarkParse(b *testing.B) {
	b.Run("corpus", func(b *testing.B) {
		files, _ := filepath.Glob(filepath.Join(corpusDir, "*.eml"))
		var raws [][]byte
		var n int64
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			raws = append(raws, raw)
			n += int64(len(raw))
		}
		b.SetBytes(n)
		b.ReportAllocs()
		for b.Loop() {
			for _, raw := range raws {
				Parse(raw, nil)
			}
		}
	})
	b.Run("20MB-5-attachments", func(b *testing.B) { benchBig(b, bigMessage(3<<20, 3<<20, 3<<20, 3<<20, 3<<20)) })
	b.Run("35MB-25MB-attachment", func(b *testing.B) { benchBig(b, bigMessage(25<<20, 1<<20)) })
}

// benchBig reports, beside B/op, the bytes allocated per input byte.
func benchBig(b *testing.B, raw []byte) {
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		Parse(raw, nil)
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(len(raw)), "alloc/input-byte")
}

// TestLargeMessageAllocation bounds what a 30 MB message with a 25 MB
// attachment costs: the decoded content is kept (it goes to the object
// store), everything else must stay a small multiple of the input.
func TestLargeMessageAllocation(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 100 MB")
	}
	raw := bigMessage(25<<20, 1<<20) // about 35 MB of base64
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := Parse(raw, nil)
	runtime.ReadMemStats(&after)
	if len(m.Attachments) != 2 || m.Attachments[0].Size != 25<<20 || m.Attachments[0].SHA256 != sum(blob(0, 25<<20)) || len(m.Problems) != 0 {
		t.Fatalf("attachments %d, problems %+v", len(m.Attachments), m.Problems)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*uint64(len(raw)) {
		t.Errorf("parsing %d bytes allocated %d bytes, want at most 4× the input", len(raw), alloc)
	}
	t.Logf("input %d bytes, allocated %d", len(raw), after.TotalAlloc-before.TotalAlloc)
}

package message

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds the corpus, mutated, to Parse: it must not panic, and
// whatever it returns must be valid UTF-8, serialisable, and carry only
// documented problem codes.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.eml"))
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkInvariants(t, Parse(raw, &Options{MaxDepth: 8, MaxParts: 50}))
		checkInvariants(t, Parse(raw, nil))
	})
}

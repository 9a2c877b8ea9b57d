package ews

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes through the envelope decoder and every
// operation decoder: none may panic, and a decoded GetItem always has one
// item per id.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "ews", "*.xml"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><Fault><faultcode>x:</faultcode></Fault></Body></Envelope>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := decodeEnvelope(bytes.NewReader(data))
		if err != nil {
			return
		}
		if env.fault != nil {
			_ = env.fault.Error()
			IsTransient(env.fault)
			return
		}
		decodeSync(env.body)
		ids := []ItemID{{ID: "a"}, {ID: "b"}, {ID: "c"}}
		for _, mime := range []bool{true, false} {
			for n := 1; n <= len(ids); n++ {
				if items, err := decodeGetItem(env.body, ids[:n], mime); err == nil && len(items) != n {
					t.Fatalf("decodeGetItem returned %d items for %d ids", len(items), n)
				}
			}
		}
		decodeFindFolder(env.body)
		for _, op := range []string{"UpdateItem", "MoveItem", "DeleteItem", "GetFolder"} {
			if msgs, err := responseMessages(env.body, op); err == nil {
				for _, m := range msgs {
					if e := messageError(m); e != nil {
						_ = e.Error()
					}
					itemID(m.child(nsMessages, "Items").first().child(nsTypes, "ItemId"))
					folder(m.child(nsMessages, "Folders").first())
				}
			}
		}
	})
}

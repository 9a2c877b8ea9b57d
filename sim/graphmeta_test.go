package sim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// The Graph JSON the simulator emits is checked against the property
// names and EDM types of Graph v1.0's CSDL. testdata/graph-properties.json
// holds those facts for message, mailFolder and the types they use
// (inherited properties included); TestGraphPropertiesCurrent regenerates
// it from the CSDL when ../../shared/graph/graph-v1.0-metadata.xml exists
// (GRAPH_PROPERTIES_UPDATE=1 rewrites it), so CI on a clean clone checks
// against the committed file.

const (
	graphCSDL  = "../../shared/graph/graph-v1.0-metadata.xml"
	graphFacts = "testdata/graph-properties.json"
)

// graphProps is the fact file: type → property → EDM type, enum → members.
type graphProps struct {
	Types map[string]map[string]string `json:"types"`
	Enums map[string][]string          `json:"enums"`
}

// genGraphProps reads the CSDL and keeps message, mailFolder and every
// complex or enum type their properties use.
func genGraphProps(r io.Reader) (*graphProps, error) {
	type typ struct {
		base  string
		props map[string]string
	}
	types, enums := map[string]*typ{}, map[string][]string{}
	dec := xml.NewDecoder(r)
	var cur *typ
	var enum string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("csdl: %w", err)
		}
		attr := func(e xml.StartElement, n string) string {
			for _, a := range e.Attr {
				if a.Name.Local == n {
					return a.Value
				}
			}
			return ""
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "EntityType", "ComplexType":
				cur = &typ{base: strings.TrimPrefix(attr(t, "BaseType"), "graph."), props: map[string]string{}}
				types[attr(t, "Name")] = cur
			case "Property":
				if cur != nil {
					cur.props[attr(t, "Name")] = attr(t, "Type")
				}
			case "EnumType":
				enum = attr(t, "Name")
				enums[enum] = []string{}
			case "Member":
				if enum != "" {
					enums[enum] = append(enums[enum], attr(t, "Name"))
				}
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "EntityType", "ComplexType":
				cur = nil
			case "EnumType":
				enum = ""
			}
		}
	}
	out := &graphProps{Types: map[string]map[string]string{}, Enums: map[string][]string{}}
	var add func(name string)
	add = func(name string) {
		if _, done := out.Types[name]; done || types[name] == nil {
			return
		}
		props := map[string]string{}
		out.Types[name] = props
		for t := types[name]; t != nil; t = types[t.base] {
			for p, ty := range t.props {
				if _, ok := props[p]; !ok {
					props[p] = ty
				}
			}
			if t.base == "" {
				break
			}
		}
		for _, ty := range props {
			n := strings.TrimPrefix(strings.TrimSuffix(strings.TrimPrefix(ty, "Collection("), ")"), "graph.")
			if m, ok := enums[n]; ok {
				out.Enums[n] = m
			} else {
				add(n)
			}
		}
	}
	add("message")
	add("mailFolder")
	return out, nil
}

func marshalProps(p *graphProps) []byte {
	b, _ := json.MarshalIndent(p, "", " ")
	return append(b, '\n')
}

func TestGraphPropertiesCurrent(t *testing.T) {
	f, err := os.Open(graphCSDL)
	if err != nil {
		t.Skipf("no CSDL here (%v): checking against the committed %s only", err, graphFacts)
	}
	defer f.Close()
	p, err := genGraphProps(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Types["message"]) < 20 || p.Types["message"]["id"] != "Edm.String" {
		t.Fatalf("message from the CSDL: %v", p.Types["message"])
	}
	want := marshalProps(p)
	if os.Getenv("GRAPH_PROPERTIES_UPDATE") == "1" {
		if err := os.WriteFile(graphFacts, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(graphFacts)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what the CSDL gives: run GRAPH_PROPERTIES_UPDATE=1 go test ./sim/ -run TestGraphPropertiesCurrent", graphFacts)
	}
}

// checkEDM checks one JSON value against an EDM type of the facts.
func checkEDM(p *graphProps, path, ty string, v any) error {
	if v == nil {
		return nil
	}
	if inner, ok := strings.CutPrefix(ty, "Collection("); ok {
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an array of %s", path, v, ty)
		}
		for i, x := range arr {
			if err := checkEDM(p, fmt.Sprintf("%s[%d]", path, i), strings.TrimSuffix(inner, ")"), x); err != nil {
				return err
			}
		}
		return nil
	}
	name := strings.TrimPrefix(ty, "graph.")
	switch {
	case ty == "Edm.String" || ty == "Edm.Binary":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s: %T, want %s", path, v, ty)
		}
	case ty == "Edm.DateTimeOffset":
		s, ok := v.(string)
		if _, err := time.Parse(time.RFC3339, s); !ok || err != nil {
			return fmt.Errorf("%s: %v, want %s", path, v, ty)
		}
	case ty == "Edm.Boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: %T, want %s", path, v, ty)
		}
	case ty == "Edm.Int32" || ty == "Edm.Int64":
		if n, ok := v.(float64); !ok || n != float64(int64(n)) {
			return fmt.Errorf("%s: %v, want %s", path, v, ty)
		}
	case p.Enums[name] != nil:
		if s, ok := v.(string); !ok || !slices.Contains(p.Enums[name], s) {
			return fmt.Errorf("%s: %v, not a member of %s", path, v, name)
		}
	case p.Types[name] != nil:
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T, want %s", path, v, name)
		}
		for k, x := range obj {
			if strings.Contains(k, "@") {
				continue // annotations
			}
			pt, ok := p.Types[name][k]
			if !ok {
				return fmt.Errorf("%s.%s: no such property of %s", path, k, name)
			}
			if err := checkEDM(p, path+"."+k, pt, x); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%s: type %s not in the facts", path, ty)
	}
	return nil
}

// TestGraphJSONMatchesMetadata checks every property the simulator emits
// for a message and a mailFolder, over the wire.
func TestGraphJSONMatchesMetadata(t *testing.T) {
	b, err := os.ReadFile(graphFacts)
	if err != nil {
		t.Fatal(err)
	}
	var p graphProps
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	e := newGraphEnv(t)
	raw := []byte("From: A <a@example.net>\r\nTo: <support@contoso.test>, B <b@example.net>\r\nCc: c@example.net\r\nReply-To: r@example.net\r\n" +
		"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <x@example.net>\r\n\r\nHello.\r\n")
	e.s.Store().CreateFolder("support@contoso.test", "Inbox/Sub")
	m, _ := e.s.Store().Deliver("support@contoso.test", "INBOX", raw, time.Time{})
	var msg, folder map[string]any
	e.do("GET", support+"/messages/"+m.ItemID, nil, &msg)
	e.do("GET", support+"/mailFolders/inbox", nil, &folder)
	if msg["subject"] != "Grüße" || len(msg) < 25 {
		t.Fatalf("message: %v", msg)
	}
	for _, c := range []struct {
		ty string
		v  map[string]any
	}{{"message", msg}, {"mailFolder", folder}} {
		if err := checkEDM(&p, c.ty, "graph."+c.ty, c.v); err != nil {
			t.Error(err)
		}
	}
	var d deltaPage
	e.do("GET", support+"/mailFolders/inbox/messages/delta", nil, &d)
	for _, it := range d.Value {
		if err := checkEDM(&p, "delta", "graph.message", it); err != nil {
			t.Error(err)
		}
	}
}

package config

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const schemaPath = "../configs/config.schema.json"

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	sch, err := jsonschema.NewCompiler().Compile(schemaPath)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaPath, err)
	}
	return sch
}

// yamlToJSON turns a YAML document into the value jsonschema validates.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func TestSchemaAcceptsExamples(t *testing.T) {
	sch := compileSchema(t)
	for _, path := range []string{"../configs/example.yaml", "../configs/demo.yaml", "testdata/full.yaml"} {
		if err := sch.Validate(yamlToJSON(t, readFile(t, path))); err != nil {
			t.Errorf("%s does not match the schema: %v", path, err)
		}
	}
}

func TestSchemaRejects(t *testing.T) {
	sch := compileSchema(t)
	for name, data := range map[string][]byte{
		"unknown top key":         base("natz: {}"),
		"unknown account key":     base("    mailboxes: [a@b.c]"),
		"unknown entry key":       base("    additional_users:", "      - {address: a@b.c, folders: x}"),
		"unknown defaults key":    base("defaults: {pol_interval: 5s}"),
		"bad protocol":            base("    protocol: pop3"),
		"bad duration":            base("    poll_interval: 60"),
		"bad size":                base("    max_message_bytes: 5 megs"),
		"two credentials":         base("    federated_token_file: /t"),
		"bad client id":           y("accounts:", "  - {name: a, tenant_id: contoso.com, client_id: app, client_secret: x, mailbox: a@b.c}"),
		"no accounts":             y("log: {level: info}"),
		"bad name":                y("accounts:", "  - {name: A B, tenant_id: contoso.com, client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d, client_secret: x, mailbox: a@b.c}"),
		"certificate without key": base("    certificate: {cert_file: a}"),
	} {
		if err := sch.Validate(yamlToJSON(t, data)); err == nil {
			t.Errorf("%s: schema accepts it", name)
		}
	}
}

// schemaObject collects the properties a schema node allows, following local
// $refs and the branches of allOf/anyOf/oneOf.
func schemaObject(root, node map[string]any, props map[string]map[string]any) {
	if ref, ok := node["$ref"].(string); ok {
		name, _ := strings.CutPrefix(ref, "#/$defs/")
		schemaObject(root, root["$defs"].(map[string]any)[name].(map[string]any), props)
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if list, ok := node[k].([]any); ok {
			for _, b := range list {
				schemaObject(root, b.(map[string]any), props)
			}
		}
	}
	if p, ok := node["properties"].(map[string]any); ok {
		for k, v := range p {
			props[k] = v.(map[string]any)
		}
	}
}

func schemaItems(root, node map[string]any) map[string]any {
	if ref, ok := node["$ref"].(string); ok {
		name, _ := strings.CutPrefix(ref, "#/$defs/")
		return schemaItems(root, root["$defs"].(map[string]any)[name].(map[string]any))
	}
	items, _ := node["items"].(map[string]any)
	return items
}

// The schema has exactly the keys of the Go types, at every level.
func TestSchemaMatchesTypes(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(readFile(t, schemaPath), &root); err != nil {
		t.Fatal(err)
	}
	var walk func(typ reflect.Type, node map[string]any, path string)
	walk = func(typ reflect.Type, node map[string]any, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			if typ.Kind() == reflect.Slice {
				path += "[]"
				node = schemaItems(root, node)
				if node == nil {
					t.Errorf("schema: %s has no items", path)
					return
				}
			}
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct {
			return
		}
		props := map[string]map[string]any{}
		schemaObject(root, node, props)
		fields := fieldsOf(typ)
		for key, f := range fields {
			sub, ok := props[key]
			if !ok {
				t.Errorf("schema lacks %s", join(path, key))
				continue
			}
			walk(typ.FieldByIndex(f.index).Type, sub, join(path, key))
		}
		var extra []string
		for key := range props {
			if _, ok := fields[key]; !ok {
				extra = append(extra, join(path, key))
			}
		}
		slices.Sort(extra)
		for _, p := range extra {
			t.Errorf("schema has %s, which the Go types do not", p)
		}
	}
	walk(reflect.TypeFor[Config](), root, "")
}

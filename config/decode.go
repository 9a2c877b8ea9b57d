package config

import (
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder turns a yaml.Node tree into a Config, field by field, so that every
// problem carries the line it was found on. It collects problems instead of
// stopping at the first one.
type decoder struct {
	file    string
	errs    []Error
	lines   map[string]int  // key path → line of the key (or of the list item)
	nulls   map[string]bool // key paths present in the file with a null value
	bad     map[string]bool // key paths that already have a problem
	lookup  func(string) (string, bool)
	secrets []string // secret values seen, scrubbed from every message at the end
	work    int      // nodes decoded, to stop documents that aliases blow up
}

// maxWork bounds the nodes decoded for one document, aliases counted each
// time they are used. Real configs stay far below it.
const maxWork = 200_000

// maxErrors bounds the problems listed for one document.
const maxErrors = 500

var (
	durationType = reflect.TypeFor[Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	refType      = reflect.TypeFor[MailboxRef]()
)

// add records a problem.
func (d *decoder) add(line int, key, msg, fix string) {
	d.bad[key] = true
	switch {
	case len(d.errs) < maxErrors:
		d.errs = append(d.errs, Error{File: d.file, Line: line, Key: key, Msg: msg, Fix: fix})
	case len(d.errs) == maxErrors:
		d.errs = append(d.errs, Error{File: d.file, Line: line, Msg: "too many problems; stopped listing them here"})
	}
}

// at records a problem on the line of key, or of the nearest enclosing key
// found in the file when key itself is absent. It says nothing when key
// already has a problem (a value that could not be read is not also "missing").
func (d *decoder) at(key, msg, fix string) {
	if d.bad[key] {
		return
	}
	d.add(d.lineOf(key), key, msg, fix)
}

// lineOf returns the line of path or of its nearest ancestor present in the file.
func (d *decoder) lineOf(path string) int {
	for path != "" {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := max(strings.LastIndexByte(path, '.'), strings.LastIndexByte(path, '['))
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// has reports whether path was given a non-null value in the file.
func (d *decoder) has(path string) bool {
	_, ok := d.lines[path]
	return ok && !d.nulls[path]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// decode fills v from n. secret marks values that must never appear in a message.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, secret bool) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if d.work++; d.work > maxWork {
		if d.work == maxWork+1 {
			d.add(n.Line, path, "the document expands to too many values (aliases used too often)", "write the values out instead of repeating *aliases")
		}
		return
	}
	t := v.Type()
	switch {
	case t == durationType:
		if s, ok := d.scalar(n, path, false); ok {
			dur, err := parseDuration(s)
			if err != nil {
				d.add(n.Line, path, err.Error(), `write a number with a unit, e.g. "30s", "5m" or "1h"`)
				return
			}
			v.SetInt(int64(dur))
		}
	case t == byteSizeType:
		if s, ok := d.scalar(n, path, false); ok {
			b, err := ParseByteSize(s)
			if err != nil {
				d.add(n.Line, path, err.Error(), `write a number of bytes with an optional unit, e.g. "1024", "512KiB", "50MiB", "10MB" or "1GiB"`)
				return
			}
			v.SetInt(b)
		}
	case t == refType && n.Kind == yaml.ScalarNode:
		if s, ok := d.scalar(n, path, false); ok {
			v.FieldByName("Address").SetString(s)
		}
	case t.Kind() == reflect.String:
		if s, ok := d.scalar(n, path, secret); ok {
			v.SetString(s)
		}
	case t.Kind() == reflect.Bool:
		if s, ok := d.scalar(n, path, false); ok {
			switch strings.ToLower(s) {
			case "true":
				v.SetBool(true)
			case "false":
				v.SetBool(false)
			default:
				d.add(n.Line, path, strconv.Quote(s)+" is not a boolean", "write true or false")
			}
		}
	case t.Kind() == reflect.Pointer:
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem(), path, secret)
		v.Set(p)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.add(n.Line, path, "must be a list", "write one item per line starting with \"- \", or [a, b]")
			return
		}
		if len(n.Content) == 0 {
			return // [] reads as nil, like a missing key
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			ip := path + "[" + strconv.Itoa(i) + "]"
			d.lines[ip] = item.Line
			d.decode(item, s.Index(i), ip, secret)
		}
		v.Set(s)
	case t.Kind() == reflect.Struct:
		d.decodeStruct(n, v, path)
	default:
		panic("config: no decoder for " + t.String())
	}
}

// scalar returns the ${ENV}-expanded text of a scalar node.
func (d *decoder) scalar(n *yaml.Node, path string, secret bool) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.add(n.Line, path, "must be a single value, not a list or a mapping", "")
		return "", false
	}
	if secret && n.Value != "" {
		d.secrets = append(d.secrets, n.Value)
	}
	s, err := expandEnv(n.Value, d.lookup)
	if err != nil {
		d.add(n.Line, path, err.Error(), "export the variable before starting mailpoller, or give a default with ${NAME:-default}")
		return "", false
	}
	if secret && s != "" {
		d.secrets = append(d.secrets, s)
	}
	return s, true
}

// field is one YAML key of a struct.
type field struct {
	index  []int
	secret bool
}

// fieldsOf maps the YAML keys of t (inline structs flattened) to their fields.
func fieldsOf(t reflect.Type) map[string]field {
	m := map[string]field{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if opts == "inline" {
			for k, sub := range fieldsOf(f.Type) {
				m[k] = field{index: append([]int{i}, sub.index...), secret: sub.secret}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = field{index: []int{i}, secret: f.Tag.Get("secret") == "true"}
	}
	return m
}

// pair is one key/value of a mapping after merge keys ("<<") are applied.
type pair struct{ key, val *yaml.Node }

// pairs lists the entries of mapping n. Keys from "<<: *anchor" merges come
// after the explicit ones and only when not overridden by them.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	return d.mergedPairs(n, path, map[*yaml.Node]bool{n: true})
}

// mergedPairs is pairs with the set of mappings already merged, so that each
// is merged once and self-references end.
func (d *decoder) mergedPairs(n *yaml.Node, path string, seen map[*yaml.Node]bool) []pair {
	var out, merged []pair
	explicit := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, d.mergePairs(v, path, seen)...)
			continue
		}
		out = append(out, pair{k, v})
		if k.Kind == yaml.ScalarNode {
			explicit[k.Value] = true
		}
	}
	for _, p := range merged {
		if !explicit[p.key.Value] {
			explicit[p.key.Value] = true
			out = append(out, p)
		}
	}
	return out
}

func (d *decoder) mergePairs(v *yaml.Node, path string, seen map[*yaml.Node]bool) []pair {
	v = resolve(v)
	if v == nil || seen[v] {
		return nil
	}
	seen[v] = true
	switch v.Kind {
	case yaml.MappingNode:
		return d.mergedPairs(v, path, seen)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range v.Content {
			out = append(out, d.mergePairs(item, path, seen)...)
		}
		return out
	}
	d.add(v.Line, path, "<< must merge a mapping or a list of mappings", "")
	return nil
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		what := "this"
		if path != "" {
			what = path
		}
		d.add(n.Line, path, "must be a mapping of keys to values", "indent the keys of "+what+" under it")
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]int{}
	for _, p := range d.pairs(n, path) {
		if d.work++; d.work > maxWork {
			return
		}
		k := resolve(p.key)
		if k.Kind != yaml.ScalarNode {
			d.add(k.Line, path, "keys must be plain words", "")
			continue
		}
		kp := join(path, k.Value)
		if first, ok := seen[k.Value]; ok {
			d.add(k.Line, kp, "set twice (first on line "+strconv.Itoa(first)+")", "keep one of them")
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			d.add(k.Line, kp, "unknown key", unknownKeyFix(k.Value, fields))
			continue
		}
		d.lines[kp] = k.Line
		if isNull(resolve(p.val)) {
			d.nulls[kp] = true
		}
		d.decode(p.val, v.FieldByIndex(f.index), kp, f.secret)
	}
}

// unknownKeyFix suggests the closest valid key and lists all of them.
func unknownKeyFix(key string, fields map[string]field) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	best, bestD := "", 4
	for _, k := range names {
		if dist := editDistance(strings.ToLower(key), k); dist < bestD {
			best, bestD = k, dist
		}
	}
	fix := "valid keys here: " + strings.Join(names, ", ")
	if best != "" {
		fix = "did you mean " + best + "? " + fix
	}
	return fix
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

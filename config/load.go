package config

import (
	"cmp"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the config file at path and returns it with ${ENV} references
// expanded, secrets read from their *_file keys, defaults applied and every
// value checked. It is the only function of this package that reads the
// config file itself.
//
// When the file cannot be read, the error wraps the os error. Every problem
// with its content is returned at once as a *Errors (use errors.As), each
// with line, key path and a fix; no message holds a secret value.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data, path)
	if c != nil {
		c.Path = path
	}
	return c, err
}

// Parse does everything Load does, given the file's bytes; name is used in
// messages (and as Config.Path). It reads the environment and the files the
// config names (secret files, tls.ca_file, certificates), but not the config
// file. It never panics on any input.
//
// On error the returned *Config is nil.
func Parse(data []byte, name string) (*Config, error) {
	return parse(data, name, os.LookupEnv)
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func parse(data []byte, name string, lookup func(string) (string, bool)) (*Config, error) {
	d := &decoder{file: name, lines: map[string]int{}, nulls: map[string]bool{}, bad: map[string]bool{}, lookup: lookup}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			line = strings.TrimSpace(line)
			if m := yamlLineErr.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				d.add(n, "", "YAML syntax: "+m[2], "check indentation (spaces only, no tabs) and quoting on this line and the lines just before it")
			} else if line != "" && line != "yaml: unmarshal errors:" {
				d.add(0, "", "YAML syntax: "+strings.TrimPrefix(line, "yaml: "), "")
			}
		}
		return nil, d.result()
	}
	c := &Config{Path: name}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind != yaml.DocumentNode {
		d.decode(root, reflect.ValueOf(c).Elem(), "", false)
	}
	d.readSecrets(c)
	d.applyDefaults(c)
	d.validate(c)
	if err := d.result(); err != nil {
		return nil, err
	}
	return c, nil
}

// result sorts the problems by line, scrubs secret values from them and
// returns them as *Errors, or nil when there are none.
func (d *decoder) result() error {
	if len(d.errs) == 0 {
		return nil
	}
	secrets := slices.DeleteFunc(slices.Clone(d.secrets), func(s string) bool { return len(s) < minScrubLen })
	// Longest first, so a secret containing another is removed whole.
	slices.SortFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	scrub := func(s string) string {
		for _, sec := range secrets {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
		return s
	}
	for i := range d.errs {
		e := &d.errs[i]
		e.Key, e.Msg, e.Fix = scrub(e.Key), scrub(e.Msg), scrub(e.Fix)
	}
	slices.SortStableFunc(d.errs, func(a, b Error) int { return cmp.Compare(a.Line, b.Line) })
	return &Errors{File: d.file, List: d.errs}
}

// minScrubLen is the shortest secret scrubbed from messages as a second line
// of defence; shorter ones would garble the text and are not real secrets.
const minScrubLen = 6

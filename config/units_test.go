package config

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"1024", 1024},
		{"0", 0},
		{"50MiB", 50 << 20},
		{"10MB", 10_000_000},
		{"512KiB", 512 << 10},
		{"1GiB", 1 << 30},
		{"2TiB", 2 << 40},
		{"3 kb", 3000},
		{"7B", 7},
		{" 8 GB ", 8_000_000_000},
	} {
		if got, err := ParseByteSize(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5GiB", "10 megabytes", "1e6", "9223372036854775808", "9000000TiB", "0x10"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, nil; want an error", in, got)
		}
	}
	if got, err := ParseByteSize("9223372036854775807"); err != nil || got != math.MaxInt64 {
		t.Errorf("ParseByteSize(max) = %d, %v", got, err)
	}
	for _, tt := range []struct {
		in   ByteSize
		want string
	}{{50 << 20, "50MiB"}, {1500, "1500"}, {1 << 30, "1GiB"}, {0, "0"}, {3 << 10, "3KiB"}} {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"60s": time.Minute, "5m": 5 * time.Minute, "1h30m": 90 * time.Minute, "1.5s": 1500 * time.Millisecond} {
		c := mustParse(t, base("    poll_interval: "+in), nil)
		if got := c.Accounts[0].PollInterval.D(); got != want {
			t.Errorf("poll_interval %s = %v, want %v", in, got, want)
		}
	}
	for _, in := range []string{"60", "-5s", "0s", "soon", "5 minutes"} {
		es := problems(t, base("    poll_interval: "+in), nil)
		if len(es.List) != 1 || es.List[0].Key != "accounts[0].poll_interval" || es.List[0].Line != 7 {
			t.Errorf("poll_interval %q: errors =\n%v", in, es)
		}
	}
	if s := Duration(90 * time.Second).String(); s != "1m30s" {
		t.Errorf("Duration.String() = %q", s)
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "x", "E": ""}
	look := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for in, want := range map[string]string{
		"plain":            "plain",
		"${A}":             "x",
		"a${A}b${A}":       "axbx",
		"${E}":             "",
		"${E:-d}":          "d",
		"${U:-}":           "",
		"${U:-a:-b}":       "a:-b",
		"$A $ {A} $":       "$A $ {A} $",
		"$${A}":            "${A}",
		"p@$$w0rd${A}":     "p@$$w0rdx",
		"${A:-${B}":        "x", // no nesting: the default is "${B"
		"\u00e9${A}\u00e9": "\u00e9x\u00e9",
	} {
		if got, err := expandEnv(in, look); err != nil || got != want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"${U}":        "environment variable U is not set",
		"${U}${V}":    "environment variables U, V are not set",
		"${}":         "must hold an environment variable name",
		"${1A}":       "must hold an environment variable name",
		"${A":         "unterminated",
		"${A B:-x}":   "must hold an environment variable name",
		"s3cr3t${U}x": "U is not set",
	} {
		_, err := expandEnv(in, look)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("expandEnv(%q) error = %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("expandEnv error repeats the value: %v", err)
		}
	}
}

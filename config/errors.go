package config

import (
	"fmt"
	"strings"
)

// Error is one problem found in a config file.
type Error struct {
	File string // the config file name as given to Load or Parse
	Line int    // 1-based line; 0 when the problem has no place in the file
	Key  string // key path such as accounts[1].additional_users[0].folder; "" for syntax errors
	Msg  string // what is wrong; never holds a secret value
	Fix  string // what to do about it; may be ""
}

// Error formats the problem as "file:line: key: msg; fix".
func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Errors is every problem found in one config file. Load and Parse return
// it (as an error) whenever List is not empty.
type Errors struct {
	File string
	List []Error
}

// Error prints one problem per line, in file order.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, p := range e.List {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems as individual errors, for errors.As.
func (e *Errors) Unwrap() []error {
	errs := make([]error, len(e.List))
	for i, p := range e.List {
		errs[i] = p
	}
	return errs
}

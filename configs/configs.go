// Package configs holds the example configs and the JSON Schemas of the
// config and the event. Demo is embedded so `mailpoller demo` runs from an
// installed binary, away from the checkout.
package configs

import _ "embed"

// Demo is demo.yaml: the config `mailpoller demo` runs when given no -c.
//
//go:embed demo.yaml
var Demo []byte

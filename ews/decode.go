package ews

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mailpoller/mailpoller/internal/redact"
)

// envelope is a decoded SOAP response: the first element of the body, or
// the fault it carries.
type envelope struct {
	body  *node // the operation's response element, e.g. m:GetItemResponse
	fault *ResponseError
}

// decodeEnvelope parses a SOAP 1.1 envelope.
func decodeEnvelope(r io.Reader) (*envelope, error) {
	root, err := parseTree(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errDecode, err)
	}
	if !root.is(nsSOAP, "Envelope") {
		return nil, fmt.Errorf("%w: root element is %s, want a SOAP Envelope", errDecode, root.name.Local)
	}
	body := root.child(nsSOAP, "Body")
	if body == nil {
		return nil, fmt.Errorf("%w: SOAP Envelope has no Body", errDecode)
	}
	first := body.first()
	if first == nil {
		return nil, fmt.Errorf("%w: SOAP Body is empty", errDecode)
	}
	if first.is(nsSOAP, "Fault") {
		return &envelope{fault: decodeFault(first)}, nil
	}
	return &envelope{body: first}, nil
}

// decodeFault reads faultcode, faultstring and the EWS detail
// (e:ResponseCode, e:Message, t:MessageXml). faultcode, faultstring and
// detail are unqualified in SOAP 1.1; some servers qualify them, so the
// SOAP namespace is accepted too.
func decodeFault(f *node) *ResponseError {
	e := &ResponseError{Class: "Fault"}
	code := f.child(nsSOAP, "faultcode").value()
	if i := strings.LastIndexByte(code, ':'); i >= 0 {
		code = code[i+1:]
	}
	e.Code = cleanCode(code)
	e.Message = redact.Secrets(f.child(nsSOAP, "faultstring").value())
	if d := f.child(nsSOAP, "detail"); d != nil {
		if rc := d.child(nsErrors, "ResponseCode").value(); rc != "" {
			e.Code = cleanCode(rc)
		}
		if m := d.child(nsErrors, "Message").value(); m != "" && e.Message == "" {
			e.Message = redact.Secrets(m)
		}
		e.BackOff = backOff(d.child(nsTypes, "MessageXml"))
	}
	if e.Code == "" {
		e.Code = "SOAPFault"
	}
	return e
}

// backOff reads t:Value Name="BackOffMilliseconds" from a MessageXml, at
// most maxBackoff; zero when absent, not a number or not positive.
func backOff(mx *node) time.Duration {
	for _, v := range mx.all(nsTypes, "Value") {
		if v.attr("Name") != "BackOffMilliseconds" {
			continue
		}
		ms, err := strconv.ParseInt(v.value(), 10, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) || ms <= 0 {
			return 0
		}
		return time.Duration(min(ms, maxBackoff.Milliseconds())) * time.Millisecond
	}
	return 0
}

// cleanCode keeps a response code that looks like one (letters, digits
// and _, at most 80): codes go into errors and logs unscrubbed, since the
// scrubber would take long codes for secrets, so anything else (a server
// echoing a token there, say) becomes ErrorUnrecognizedCode.
func cleanCode(code string) string {
	if code == "" {
		return ""
	}
	if len(code) > 80 {
		return "ErrorUnrecognizedCode"
	}
	for _, r := range code {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return "ErrorUnrecognizedCode"
		}
	}
	return code
}

// responseMessages returns the m:*ResponseMessage elements of an
// operation's response, in order.
func responseMessages(body *node, op string) ([]*node, error) {
	if !body.is(nsMessages, op+"Response") {
		return nil, fmt.Errorf("%w: got %s, want %sResponse", errDecode, body.name.Local, op)
	}
	rms := body.child(nsMessages, "ResponseMessages")
	if rms == nil {
		return nil, fmt.Errorf("%w: %sResponse has no ResponseMessages", errDecode, op)
	}
	return rms.children, nil
}

// messageError returns the error a response message carries, or nil when
// its ResponseClass is Success. Warnings are treated as errors: EWS uses
// them for partial results (ErrorBatchProcessingStopped).
func messageError(m *node) *ResponseError {
	class := m.attr("ResponseClass")
	if class == "Success" {
		return nil
	}
	code := cleanCode(m.child(nsMessages, "ResponseCode").value())
	if class == "" && (code == "" || code == "NoError") {
		return nil
	}
	if code == "" {
		code = "ErrorUnknown"
	}
	e := &ResponseError{
		Class:   class,
		Code:    code,
		Message: redact.Secrets(m.child(nsMessages, "MessageText").value()),
		BackOff: backOff(m.child(nsMessages, "MessageXml")),
	}
	if e.Code == "ErrorAccessDenied" && ewsBlockedText(e.Message) {
		return blocked(0, e.Message, "")
	}
	return e
}

// itemID reads a t:ItemId-shaped element.
func itemID(n *node) ItemID {
	return ItemID{ID: n.attr("Id"), ChangeKey: n.attr("ChangeKey")}
}

// parseBool accepts xs:boolean: true, false, 1, 0.
func parseBool(s string) (bool, bool) {
	switch strings.TrimSpace(s) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

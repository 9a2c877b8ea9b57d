package ews

import (
	"encoding/xml"
	"strings"
)

// request builds the XML of one SOAP request. Element names are written
// with the prefixes "soap", "m" and "t" declared on the envelope.
type request struct {
	b strings.Builder
}

// newRequest starts an envelope for mailbox, impersonating it unless the
// client uses delegate access.
func (c *Client) newRequest(mailbox string) *request {
	return startRequest(c.opts.Version, mailbox, !c.opts.Delegate)
}

// startRequest starts an envelope, with the ExchangeImpersonation header
// for mailbox when impersonate is set.
func startRequest(version, mailbox string, impersonate bool) *request {
	r := &request{}
	r.b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	r.b.WriteString(`<soap:Envelope xmlns:soap="` + nsSOAP + `" xmlns:m="` + nsMessages + `" xmlns:t="` + nsTypes + `">`)
	r.b.WriteString(`<soap:Header>`)
	r.empty("t:RequestServerVersion", "Version", version)
	if impersonate {
		r.open("t:ExchangeImpersonation")
		r.open("t:ConnectingSID")
		r.elem("t:PrimarySmtpAddress", mailbox)
		r.close("t:ConnectingSID")
		r.close("t:ExchangeImpersonation")
	}
	r.b.WriteString(`</soap:Header><soap:Body>`)
	return r
}

// bytes ends the envelope and returns it.
func (r *request) bytes() []byte {
	r.b.WriteString(`</soap:Body></soap:Envelope>`)
	return []byte(r.b.String())
}

// open writes a start tag with attribute name/value pairs.
func (r *request) open(name string, attrs ...string) {
	r.b.WriteByte('<')
	r.b.WriteString(name)
	for i := 0; i+1 < len(attrs); i += 2 {
		r.b.WriteByte(' ')
		r.b.WriteString(attrs[i])
		r.b.WriteString(`="`)
		r.text(attrs[i+1])
		r.b.WriteByte('"')
	}
	r.b.WriteByte('>')
}

// empty writes an element without content.
func (r *request) empty(name string, attrs ...string) {
	r.open(name, attrs...)
	r.close(name)
}

func (r *request) close(name string) {
	r.b.WriteString("</")
	r.b.WriteString(name)
	r.b.WriteByte('>')
}

// elem writes <name>text</name>.
func (r *request) elem(name, text string) {
	r.open(name)
	r.text(text)
	r.close(name)
}

func (r *request) text(s string) {
	_ = xml.EscapeText(&r.b, []byte(s)) // writes to a strings.Builder never fail
}

// folderID writes a t:FolderId or t:DistinguishedFolderId; a distinguished
// folder names its mailbox so the request is explicit even without
// impersonation.
func (r *request) folderID(f FolderID, mailbox string) {
	if f.Distinguished == "" {
		if f.ChangeKey != "" {
			r.empty("t:FolderId", "Id", f.ID, "ChangeKey", f.ChangeKey)
		} else {
			r.empty("t:FolderId", "Id", f.ID)
		}
		return
	}
	r.open("t:DistinguishedFolderId", "Id", f.Distinguished)
	r.open("t:Mailbox")
	r.elem("t:EmailAddress", mailbox)
	r.close("t:Mailbox")
	r.close("t:DistinguishedFolderId")
}

// itemIDs writes m:ItemIds with Id attributes only: GetItem, MoveItem and
// DeleteItem do not need the ChangeKey, and a stale one would only hurt.
func (r *request) itemIDs(ids []ItemID) {
	r.open("m:ItemIds")
	for _, id := range ids {
		r.empty("t:ItemId", "Id", id.ID)
	}
	r.close("m:ItemIds")
}

// fieldURIs writes t:AdditionalProperties with one t:FieldURI each.
func (r *request) fieldURIs(uris ...string) {
	r.open("t:AdditionalProperties")
	for _, u := range uris {
		r.empty("t:FieldURI", "FieldURI", u)
	}
	r.close("t:AdditionalProperties")
}

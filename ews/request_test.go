package ews

import (
	"bytes"
	"testing"
)

// TestRequestEscaping checks that values with XML metacharacters survive
// the round trip through our request writer and a real XML parser.
func TestRequestEscaping(t *testing.T) {
	mailbox := `o'brien&"co"@contoso.com`
	r := startRequest("Exchange2013_SP1", mailbox, true)
	r.open("m:SyncFolderItems")
	r.open("m:SyncFolderId")
	r.folderID(FolderID{ID: `id<with>&"quotes"`}, mailbox)
	r.close("m:SyncFolderId")
	r.elem("m:SyncState", "a<b>&c]]>")
	r.close("m:SyncFolderItems")
	root, err := parseTree(bytes.NewReader(r.bytes()))
	if err != nil {
		t.Fatalf("request does not parse: %v", err)
	}
	if got := strictPath(root, nsSOAP, "Header", "ExchangeImpersonation", "ConnectingSID", "PrimarySmtpAddress"); got != nil {
		t.Fatal("impersonation header found in the SOAP namespace; want types")
	}
	h := strictChild(root, nsSOAP, "Header")
	if got := strictPath(h, nsTypes, "ExchangeImpersonation", "ConnectingSID", "PrimarySmtpAddress").value(); got != mailbox {
		t.Errorf("PrimarySmtpAddress = %q, want %q", got, mailbox)
	}
	op := strictPath(root, nsSOAP, "Body").first()
	if got := strictPath(op, nsMessages, "SyncFolderId").child(nsTypes, "FolderId").attr("Id"); got != `id<with>&"quotes"` {
		t.Errorf("FolderId Id = %q", got)
	}
	if got := strictChild(op, nsMessages, "SyncState").value(); got != "a<b>&c]]>" {
		t.Errorf("SyncState = %q", got)
	}
}

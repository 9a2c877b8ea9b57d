package imap

import "testing"

// The example from Microsoft's "Authenticate an IMAP, POP or SMTP
// connection using OAuth" page (PROTOCOLS.md §3.1).
func TestXOAUTH2MicrosoftVector(t *testing.T) {
	got := encodeIR("test@contoso.onmicrosoft.com", "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA")
	want := "dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVyIEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUwYmpMQldaV0NjbFJDM0VvQUEBAQ=="
	if got != want {
		t.Fatalf("XOAUTH2 initial response = %s, want %s", got, want)
	}
}

// Package ews is the Exchange Web Services transport: a small SOAP 1.1
// client for the operations a mail poller needs (SyncFolderItems, GetItem
// with MIME content, UpdateItem, MoveItem, DeleteItem, FindFolder,
// GetFolder), and a source.Source that reads one folder of one mailbox with
// SyncFolderItems and keeps the sync state as its checkpoint.
//
// Every request is app-only: a bearer token from the caller, the
// ExchangeImpersonation SOAP header and the X-AnchorMailbox HTTP header name
// the mailbox (MS-OXWSCDATA ExchangeImpersonation; PROTOCOLS.md §4.2).
// Responses are decoded by namespace URI and local name, so any prefix the
// server picks is accepted.
//
// EWS in Exchange Online is blocked per tenant from 1 October 2026 unless
// the admin allows the app (EwsEnabled, EwsAllowedAppIDs) and ends for
// everyone on 1 April 2027; the client reports a blocked app as
// ErrEWSBlocked with the fix.
package ews

// XML namespaces of EWS (PROTOCOLS.md §4.2).
const (
	nsSOAP     = "http://schemas.xmlsoap.org/soap/envelope/"
	nsMessages = "http://schemas.microsoft.com/exchange/services/2006/messages"
	nsTypes    = "http://schemas.microsoft.com/exchange/services/2006/types"
	nsErrors   = "http://schemas.microsoft.com/exchange/services/2006/errors"
)

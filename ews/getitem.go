package ews

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// getItemBatch is how many items one GetItem asks for; Microsoft advises
// about 10 for sync clients (PROTOCOLS.md §4.3).
const getItemBatch = 10

// GetItemsMIME fetches the MIME content, DateTimeReceived, Size and IsRead
// of ids, in batches of 10. It returns one MIMEItem per id, in the order of
// ids; an item the server could not return has Err set (a *ResponseError,
// e.g. ErrItemNotFound). The error result is for failures of a whole
// request.
func (c *Client) GetItemsMIME(ctx context.Context, mailbox string, ids []ItemID) ([]MIMEItem, error) {
	out := make([]MIMEItem, 0, len(ids))
	for start := 0; start < len(ids); start += getItemBatch {
		batch := ids[start:min(start+getItemBatch, len(ids))]
		items, err := c.getItems(ctx, mailbox, batch, true, c.opts.MaxResponseBytes)
		if err != nil {
			return nil, fmt.Errorf("get %d items from %s: %w", len(batch), mailbox, err)
		}
		out = append(out, items...)
	}
	return out, nil
}

// GetItemsHeaders is GetItemsMIME for messages too large to download: it
// asks for item:InternetMessageHeaders instead of the MIME content and
// returns the header block ("Name: value" lines and a blank line) as
// MIMEItem.MIME.
func (c *Client) GetItemsHeaders(ctx context.Context, mailbox string, ids []ItemID) ([]MIMEItem, error) {
	out := make([]MIMEItem, 0, len(ids))
	for start := 0; start < len(ids); start += getItemBatch {
		batch := ids[start:min(start+getItemBatch, len(ids))]
		items, err := c.getItems(ctx, mailbox, batch, false, c.opts.MaxResponseBytes)
		if err != nil {
			return nil, fmt.Errorf("get headers of %d items from %s: %w", len(batch), mailbox, err)
		}
		out = append(out, items...)
	}
	return out, nil
}

// getItems sends one GetItem for ids, accepting a response of up to limit
// bytes.
func (c *Client) getItems(ctx context.Context, mailbox string, ids []ItemID, mime bool, limit int64) ([]MIMEItem, error) {
	r := c.newRequest(mailbox)
	r.open("m:GetItem")
	r.open("m:ItemShape")
	r.elem("t:BaseShape", "IdOnly")
	props := syncProperties
	if mime {
		r.elem("t:IncludeMimeContent", "true")
	} else {
		props = append(props[:len(props):len(props)], "item:InternetMessageHeaders")
	}
	r.fieldURIs(props...)
	r.close("m:ItemShape")
	r.itemIDs(ids)
	r.close("m:GetItem")
	body, err := c.callLimit(ctx, "GetItem", mailbox, r.bytes(), limit)
	if err != nil {
		return nil, err
	}
	return decodeGetItem(body, ids, mime)
}

func decodeGetItem(body *node, ids []ItemID, mime bool) ([]MIMEItem, error) {
	msgs, err := responseMessages(body, "GetItem")
	if err != nil {
		return nil, err
	}
	if len(msgs) != len(ids) {
		return nil, fmt.Errorf("%w: %d response messages for %d items", errDecode, len(msgs), len(ids))
	}
	out := make([]MIMEItem, len(ids))
	for i, m := range msgs {
		out[i].ItemID = ids[i]
		if e := messageError(m); e != nil {
			out[i].Err = e
			continue
		}
		it := m.child(nsMessages, "Items").first()
		if it == nil {
			out[i].Err = fmt.Errorf("%w: GetItem response message %d has no item", errDecode, i)
			continue
		}
		if id := itemID(it.child(nsTypes, "ItemId")); id.ID != "" {
			out[i].ItemID = id
		}
		if mime {
			mc := it.child(nsTypes, "MimeContent")
			if mc == nil {
				out[i].Err = fmt.Errorf("%w: item %d has no MimeContent", errDecode, i)
				continue
			}
			raw, err := decodeBase64(mc.text)
			mc.text = nil // the tree may live on; the encoded copy need not
			if err != nil {
				out[i].Err = fmt.Errorf("%w: MimeContent of item %d: %w", errDecode, i, err)
				continue
			}
			out[i].MIME = raw
		} else {
			out[i].MIME = headerBlock(it.child(nsTypes, "InternetMessageHeaders"))
		}
		out[i].Received = parseTime(it.child(nsTypes, "DateTimeReceived").value())
		out[i].Size, _ = strconv.ParseInt(it.child(nsTypes, "Size").value(), 10, 64)
		out[i].IsRead, _ = parseBool(it.child(nsTypes, "IsRead").value())
	}
	return out, nil
}

// decodeBase64 decodes base64 text, ignoring the line breaks some servers
// put into it. It strips them from b in place (b is not used afterwards),
// so a large MimeContent costs its decoded size and no second copy.
func decodeBase64(b []byte) ([]byte, error) {
	w := 0
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			b[w] = c
			w++
		}
	}
	b = b[:w]
	out := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Decode(out, b)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

// headerBlock turns t:InternetMessageHeaders into an RFC 5322 header
// section. Exchange returns each field unfolded; CR and LF inside a value
// are replaced by spaces so the block stays well formed.
func headerBlock(h *node) []byte {
	var b strings.Builder
	for _, f := range h.all(nsTypes, "InternetMessageHeader") {
		name := f.attr("HeaderName")
		if name == "" || strings.ContainsAny(name, ": \t\r\n") {
			continue
		}
		v := strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, f.value())
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

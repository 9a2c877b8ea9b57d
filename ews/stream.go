package ews

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Subscribe opens a streaming notification subscription on folder for new
// mail (NewMailEvent, CreatedEvent) and returns its SubscriptionId.
func (c *Client) Subscribe(ctx context.Context, mailbox string, folder FolderID) (string, error) {
	r := newRequest(c.opts.Version, mailbox)
	r.open("m:Subscribe")
	r.open("m:StreamingSubscriptionRequest")
	r.open("t:FolderIds")
	r.folderID(folder, mailbox)
	r.close("t:FolderIds")
	r.open("t:EventTypes")
	r.elem("t:EventType", "NewMailEvent")
	r.elem("t:EventType", "CreatedEvent")
	r.close("t:EventTypes")
	r.close("m:StreamingSubscriptionRequest")
	r.close("m:Subscribe")
	body, err := c.call(ctx, "Subscribe", mailbox, r.bytes())
	if err != nil {
		return "", fmt.Errorf("subscribe to %s in %s: %w", folder, mailbox, err)
	}
	msgs, err := responseMessages(body, "Subscribe")
	if err != nil {
		return "", err
	}
	if len(msgs) != 1 {
		return "", fmt.Errorf("%w: %d subscribe responses", errDecode, len(msgs))
	}
	if e := messageError(msgs[0]); e != nil {
		return "", e
	}
	id := strings.TrimSpace(msgs[0].child(nsMessages, "SubscriptionId").value())
	if id == "" {
		return "", fmt.Errorf("%w: no SubscriptionId", errDecode)
	}
	return id, nil
}

// ErrSubscriptionGone means the server no longer knows the subscription:
// subscribe again.
var ErrSubscriptionGone = errors.New("streaming subscription expired")

// WaitEvents holds a GetStreamingEvents connection open for at most limit
// (whole minutes, 1–30, as EWS counts ConnectionTimeout) and reports
// whether a new-mail notification arrived. The connection does not take
// a slot of MaxInFlight: Exchange limits hanging connections separately
// (10 per app in Exchange Online).
func (c *Client) WaitEvents(ctx context.Context, mailbox, subscriptionID string, limit time.Duration) (bool, error) {
	minutes := min(30, max(1, int(limit/time.Minute)))
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	r := newRequest(c.opts.Version, mailbox)
	r.open("m:GetStreamingEvents")
	r.open("m:SubscriptionIds")
	r.elem("t:SubscriptionId", subscriptionID)
	r.close("m:SubscriptionIds")
	r.elem("m:ConnectionTimeout", strconv.Itoa(minutes))
	r.close("m:GetStreamingEvents")
	tok, err := c.opts.Token(ctx)
	if err != nil {
		return false, fmt.Errorf("get token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opts.URL, bytes.NewReader(r.bytes()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-AnchorMailbox", mailbox)
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		_, err := c.response(resp, data)
		return false, err
	}
	// The body is a stream of SOAP envelopes: notifications, keep-alives
	// (ConnectionStatus OK) and finally ConnectionStatus Closed.
	dec := xml.NewDecoder(io.LimitReader(resp.Body, c.opts.MaxResponseBytes))
	var inCode, inStatus bool
	for {
		tok, err := dec.Token()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return false, nil
			}
			if strings.Contains(err.Error(), "multiple root") || strings.Contains(err.Error(), "unexpected EOF") {
				return false, nil
			}
			return false, fmt.Errorf("read streaming events: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "NewMailEvent", "CreatedEvent":
				return true, nil
			case "ResponseCode":
				inCode = true
			case "ConnectionStatus":
				inStatus = true
			}
		case xml.CharData:
			s := strings.TrimSpace(string(t))
			if inCode && (s == "ErrorSubscriptionNotFound" || s == "ErrorExpiredSubscription" || s == "ErrorInvalidSubscription") {
				return false, ErrSubscriptionGone
			}
			if inStatus && s == "Closed" {
				return false, nil
			}
		case xml.EndElement:
			inCode, inStatus = false, false
		}
	}
}

// Wait implements source.Waiter with EWS streaming notifications:
// notifications say when, SyncFolderItems (the next Poll) says what. When
// the server refuses streaming (Exchange allows 10 hanging connections per
// app), the source keeps polling every max instead.
func (s *Source) Wait(ctx context.Context, limit time.Duration) error {
	if s.noPush {
		t := time.NewTimer(limit)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		return nil
	}
	if s.subID == "" {
		id, err := s.c.Subscribe(ctx, s.opts.Mailbox, s.folder)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Info("EWS streaming notifications unavailable, polling instead", "err", err)
			}
			s.noPush = true
			return s.Wait(ctx, limit)
		}
		s.subID = id
		// Mail that arrived between the last sync and the subscription
		// raised no notification: sync once more now.
		return nil
	}
	changed, err := s.c.WaitEvents(ctx, s.opts.Mailbox, s.subID, limit)
	if err != nil {
		s.subID = "" // subscribe again next time
		if !errors.Is(err, ErrSubscriptionGone) && ctx.Err() == nil {
			s.log.Debug("streaming connection failed; polling this round", "err", err)
			s.noPush = true
			defer func() { s.noPush = false }()
			return s.Wait(ctx, limit)
		}
	}
	if changed {
		s.log.Debug("new mail notification")
	}
	return nil
}

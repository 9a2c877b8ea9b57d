package ews

import (
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
	r := c.newRequest(mailbox)
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

// ErrStreamSilent means a streaming connection was ended because nothing,
// not even a keep-alive, arrived on it for Options.StreamIdleTimeout.
var ErrStreamSilent = errors.New("streaming connection silent")

// Stream holds a GetStreamingEvents connection open for at most limit
// (whole minutes, 1–30, as EWS counts ConnectionTimeout): it calls up once
// the server has accepted the connection, and notify for every new-mail
// notification (NewMailEvent, CreatedEvent). It returns nil when the server
// closes the connection or ctx ends, ErrSubscriptionGone when the server
// no longer knows the subscription, and an error matching ErrStreamSilent
// when nothing arrived for Options.StreamIdleTimeout. The connection does
// not take a slot of MaxInFlight: Exchange limits hanging connections
// separately (10 per app in Exchange Online).
//
// The connection is not bound by the HTTPClient's Timeout, which would cut
// every stream after it: its deadlines are the connection timeout plus a
// minute, and StreamIdleTimeout between two reads.
func (c *Client) Stream(ctx context.Context, mailbox, subscriptionID string, limit time.Duration, up, notify func()) error {
	if c.err != nil {
		return c.err
	}
	minutes := min(30, max(1, int(limit/time.Minute)))
	ctx, cancelTimeout := context.WithTimeout(ctx, time.Duration(minutes)*time.Minute+time.Minute)
	defer cancelTimeout()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := c.opts.StreamIdleTimeout
	timer := time.AfterFunc(idle, func() { cancel(ErrStreamSilent) })
	defer timer.Stop()
	ended := func(err error) error {
		switch {
		case errors.Is(context.Cause(ctx), ErrStreamSilent):
			return fmt.Errorf("%w: nothing arrived for %s, not even a keep-alive; the connection is presumed dead", ErrStreamSilent, idle)
		case ctx.Err() != nil:
			return nil // ctx ended, or the connection reached its time
		}
		return err
	}

	r := c.newRequest(mailbox)
	r.open("m:GetStreamingEvents")
	r.open("m:SubscriptionIds")
	r.elem("t:SubscriptionId", subscriptionID)
	r.close("m:SubscriptionIds")
	r.elem("m:ConnectionTimeout", strconv.Itoa(minutes))
	r.close("m:GetStreamingEvents")
	tok, err := c.token(ctx)
	if err != nil {
		return ended(err)
	}
	resp, err := c.post(ctx, c.stream, mailbox, tok, r.bytes())
	if err != nil {
		return ended(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, err := c.response(resp, tok, &cappedReader{r: resp.Body, left: 1 << 20, limit: 1 << 20})
		return ended(err)
	}
	// The body is a stream of SOAP envelopes: notifications, keep-alives
	// (ConnectionStatus OK) and finally ConnectionStatus Closed. Every read
	// that brings bytes pushes the inactivity deadline back.
	body := &activeReader{r: resp.Body, timer: timer, idle: idle}
	dec := xml.NewDecoder(&tagLimiter{r: io.LimitReader(body, c.opts.MaxResponseBytes), max: maxTagBytes})
	var inCode, inStatus, isUp bool
	for {
		tok, err := dec.Token()
		if err != nil {
			if err := ended(err); err == nil || errors.Is(err, ErrStreamSilent) {
				return err
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "unexpected EOF") {
				return nil
			}
			return fmt.Errorf("read streaming events: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "NewMailEvent", "CreatedEvent":
				notify()
			case "ResponseCode":
				inCode = true
			case "ConnectionStatus":
				inStatus = true
			}
		case xml.CharData:
			s := strings.TrimSpace(string(t))
			switch {
			case inCode && (s == "ErrorSubscriptionNotFound" || s == "ErrorExpiredSubscription" || s == "ErrorInvalidSubscription"):
				return ErrSubscriptionGone
			case (inCode && s == "NoError" || inStatus && s == "OK") && !isUp:
				isUp = true // the first successful response message
				up()
			case inStatus && s == "Closed":
				return nil
			}
		case xml.EndElement:
			inCode, inStatus = false, false
		}
	}
}

// activeReader pushes an inactivity timer back whenever bytes arrive.
type activeReader struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
}

func (a *activeReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.timer.Reset(a.idle)
	}
	return n, err
}

// streamLimit is how long one streaming connection is held open; the
// source opens the next one when it ends.
const streamLimit = 30 * time.Minute

// streamUpTimeout bounds the wait for the server to accept a streaming
// connection; after it the source polls for a round. A variable for tests.
var streamUpTimeout = time.Minute

// streamMinLife and maxChurn: a streaming connection that ends sooner than
// streamMinLife after it was up, or a subscription the server forgets, is
// churn. A little is normal (Exchange expires a subscription: the
// connection ends, the next one is told the subscription is gone); from
// the maxChurn-th in a row on, the source waits the poll interval before
// the next connection, so that a server closing every connection at once
// does not get a connection and a sync in a tight loop. A connection that
// lives streamMinLife ends the run. Variables for tests.
var (
	streamMinLife = 30 * time.Second
	maxChurn      = 3
)

// stream is a Source's open GetStreamingEvents connection, owned by one
// goroutine that Close stops.
type stream struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the connection has ended
	err    error         // why it ended; read after done
	upAt   time.Time     // when the server accepted it
}

// Wait implements source.Waiter with EWS streaming notifications:
// notifications say when, SyncFolderItems (the next Poll) says what. One
// connection stays open across notifications, so none is lost between
// two connections; whenever a connection (or the subscription) is new,
// Wait returns at once so that mail that arrived before it is synced.
// When the server refuses streaming (Exchange allows 10 hanging
// connections per app), the source keeps polling every limit instead.
func (s *Source) Wait(ctx context.Context, limit time.Duration) error {
	if s.noPush {
		return sleep(ctx, limit)
	}
	if s.subID == "" {
		id, err := s.c.Subscribe(ctx, s.opts.Address, s.folder)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Info("EWS streaming notifications unavailable, polling instead", "err", err)
			}
			s.noPush = true
			return s.Wait(ctx, limit)
		}
		s.subID = id
	}
	if s.stream == nil {
		st, err := s.openStream(ctx)
		if err != nil {
			return s.streamFailed(ctx, limit, err)
		}
		s.stream = st
		return nil // sync what came before the connection
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-s.newMail:
		return nil
	case <-s.stream.done: // the connection ended: a notification may be lost
		err, lived := s.stream.err, time.Since(s.stream.upAt)
		s.stream = nil
		if lived >= streamMinLife {
			s.churn = 0
		} else {
			s.churn++
		}
		if errors.Is(err, ErrStreamSilent) {
			s.log.Info("streaming connection went silent; reconnecting", "err", err)
			err = nil
		}
		if err == nil && s.churn >= maxChurn {
			err = fmt.Errorf("streaming connections end within %s of being up (%d in a row)", streamMinLife, s.churn)
		}
		if err != nil {
			return s.streamFailed(ctx, limit, err)
		}
		return nil // sync, then reconnect
	case <-t.C:
		return nil
	case <-ctx.Done():
		return nil
	}
}

// openStream starts the streaming connection's goroutine and returns once
// the server has accepted the connection.
func (s *Source) openStream(ctx context.Context) (*stream, error) {
	sctx, cancel := context.WithCancel(context.Background()) // ended by Close or the server
	st := &stream{cancel: cancel, done: make(chan struct{})}
	up := make(chan struct{})
	go func() {
		defer close(st.done)
		st.err = s.c.Stream(sctx, s.opts.Address, s.subID, streamLimit, func() { close(up) }, func() {
			select {
			case s.newMail <- struct{}{}:
			default: // one pending notification is enough: the sync reads all
			}
		})
	}()
	timeout := time.NewTimer(streamUpTimeout)
	defer timeout.Stop()
	select {
	case <-up:
		st.upAt = time.Now()
		return st, nil
	case <-timeout.C:
		cancel()
		<-st.done
		return nil, fmt.Errorf("streaming connection not accepted within %s", streamUpTimeout)
	case <-st.done:
		cancel()
		if st.err == nil {
			st.err = errors.New("streaming connection closed before it was up")
		}
		return nil, st.err
	case <-ctx.Done():
		cancel()
		<-st.done
		return nil, ctx.Err()
	}
}

// streamFailed handles a streaming connection that could not open or
// broke: an expired subscription is renewed next time; after any other
// failure (such as Exchange's limit of hanging connections per app) the
// subscription is kept, for the server still holds it and counts it
// against the mailbox (20 in Exchange Online), and this round waits the
// poll interval instead.
func (s *Source) streamFailed(ctx context.Context, limit time.Duration, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if errors.Is(err, ErrSubscriptionGone) {
		s.subID = ""
		if s.churn++; s.churn < maxChurn {
			return nil // subscribe again, then sync
		}
		s.log.Debug("streaming subscriptions keep vanishing; polling this round", "churn", s.churn)
		return sleep(ctx, limit)
	}
	s.log.Debug("streaming connection failed; polling this round", "err", err)
	return sleep(ctx, limit)
}

// sleep waits until limit passes or ctx ends.
func sleep(ctx context.Context, limit time.Duration) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return nil
}

// closeStream ends the streaming connection, if any, and waits for its
// goroutine.
func (s *Source) closeStream() {
	if s.stream != nil {
		s.stream.cancel()
		<-s.stream.done
		s.stream = nil
	}
}

package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/mailpoller/mailpoller/source"
)

// maxBatch is Graph's limit of requests in one $batch.
const maxBatch = 20

// batchRetries bounds the rounds of a $batch whose items were throttled.
const batchRetries = 5

// AfterRead implements source.Source: mark read (PATCH isRead), move
// (POST move) or delete (DELETE, to Deleted Items), up to 20 messages in
// one $batch request. A message already gone counts as done.
func (s *Source) AfterRead(ctx context.Context, items []source.Item) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	switch s.mb.AfterRead {
	case source.None:
		return nil
	case source.MarkRead:
		return s.each(ctx, items, "mark read", func(p string) batchRequest {
			return batchRequest{Method: "PATCH", URL: p, Body: map[string]any{"isRead": true}}
		})
	case source.Delete:
		return s.each(ctx, items, "delete", func(p string) batchRequest { return batchRequest{Method: "DELETE", URL: p} })
	case source.Move:
		return s.move(ctx, items, s.mb.MoveTo, "move")
	}
	return fmt.Errorf("graph: unknown after_read %q", s.mb.AfterRead)
}

// Quarantine implements source.Quarantiner: it moves items to folder,
// creating the folder (each missing level of its path) when it is missing.
func (s *Source) Quarantine(ctx context.Context, items []source.Item, folder string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.move(ctx, items, folder, "quarantine")
}

func (s *Source) move(ctx context.Context, items []source.Item, folder, what string) error {
	id, err := s.folderID(ctx, folder, what == "quarantine") // a missing quarantine folder is made
	if err != nil {
		return fmt.Errorf("%s to %s: %w", what, folder, err)
	}
	return s.each(ctx, items, what, func(p string) batchRequest {
		return batchRequest{Method: "POST", URL: p + "/move", Body: map[string]any{"destinationId": id}}
	})
}

type batchRequest struct {
	ID      string            `json:"id"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    any               `json:"body,omitempty"`
}

type batchResponse struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// each sends one request per item, in $batch requests of up to 20;
// throttled items are sent again after the wait their answer asks for.
func (s *Source) each(ctx context.Context, items []source.Item, what string, req func(path string) batchRequest) error {
	for start := 0; start < len(items); start += maxBatch {
		chunk := items[start:min(start+maxBatch, len(items))]
		todo := map[string]batchRequest{}
		for i, it := range chunk {
			r := req(userPath(s.mb.Address) + "/messages/" + url.PathEscape(it.ServerID))
			r.ID = fmt.Sprint(i + 1)
			r.Headers = map[string]string{"Prefer": `IdType="ImmutableId"`}
			if r.Body != nil {
				r.Headers["Content-Type"] = "application/json"
			}
			todo[r.ID] = r
		}
		if err := s.batch(ctx, todo, what); err != nil {
			return err
		}
	}
	return nil
}

// batch sends todo until every request is answered; it fails on the
// first answer that is neither 2xx, 404 nor a throttle.
func (s *Source) batch(ctx context.Context, todo map[string]batchRequest, what string) error {
	b := s.c.box(s.mb.Address)
	refreshed := false
	for round := 0; len(todo) > 0; round++ {
		reqs := make([]batchRequest, 0, len(todo))
		for _, r := range todo {
			reqs = append(reqs, r)
		}
		var out struct {
			Responses []batchResponse `json:"responses"`
		}
		err := s.c.getJSON(ctx, request{method: "POST", url: "/$batch", body: map[string]any{"requests": reqs},
			mailbox: s.mb.Address, op: what + " ($batch) in"}, &out)
		if err != nil {
			return err
		}
		var wait time.Duration
		var last *Error
		refused := false
		for _, r := range out.Responses {
			if _, ok := todo[r.ID]; !ok {
				continue
			}
			if r.Status/100 == 2 || r.Status == http.StatusNotFound {
				delete(todo, r.ID)
				continue
			}
			e := &Error{Status: r.Status, Op: what, Mailbox: s.mb.Address}
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if json.Unmarshal(r.Body, &body) == nil {
				e.Code, e.Message = body.Error.Code, body.Error.Message
			}
			h := http.Header{}
			for k, v := range r.Headers {
				h.Set(k, v)
			}
			e.wait, e.hasWait = retryAfter(h, time.Now())
			if r.Status == http.StatusUnauthorized && !refreshed {
				// Graph checks a batch's token once, for all its items;
				// should an item be refused anyway, a fresh token gets
				// it one more round, as a request on its own would.
				refused, last = true, e
				continue
			}
			if !e.transient() {
				return e
			}
			last = e
			wait = max(wait, e.wait, minWait)
		}
		if len(todo) == 0 {
			return nil
		}
		if last == nil {
			return fmt.Errorf("graph %s ($batch) in %s: %d requests got no answer", what, s.mb.Address, len(todo))
		}
		if refused {
			refreshed = true
			if tok, _, err := s.c.tok.Token(ctx, s.c.scp); err == nil {
				s.c.tok.Invalidate(s.c.scp, tok)
			}
		}
		if round >= batchRetries || wait > retryMaxWait {
			return last
		}
		s.c.backOff(b, wait) // the next round's hold waits it out
	}
	return nil
}

package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// graphBatchMax is the most requests a JSON $batch may hold.
const graphBatchMax = 20

type batchRequest struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers"`
	Body      json.RawMessage   `json:"body"`
	DependsOn []string          `json:"dependsOn"`
}

// batch serves POST /v1.0/$batch: each item is authorised, counted and
// throttled on its own (a 429 item carries its own Retry-After); items run
// one after another in dependsOn order, and an item whose dependency
// failed answers 424.
func (g *GraphServer) batch(q *graphReq) *graphResponse {
	crid := q.header.Get("client-request-id")
	if _, e := g.authorize(q.header, true); e != nil {
		return errorResponse(e, crid)
	}
	var req struct {
		Requests []batchRequest `json:"requests"`
	}
	if err := json.Unmarshal(q.body, &req); err != nil {
		return errorResponse(gerr(400, "BadRequest", "Invalid batch payload format."), crid)
	}
	if len(req.Requests) > graphBatchMax {
		return errorResponse(gerr(400, "BadRequest", fmt.Sprintf("The number of batch requests exceeds the limit of %d.", graphBatchMax)), crid)
	}
	byID := map[string]*batchRequest{}
	for i := range req.Requests {
		r := &req.Requests[i]
		if r.ID == "" || byID[r.ID] != nil {
			return errorResponse(gerr(400, "BadRequest", "Batch request ids must be present and unique."), crid)
		}
		byID[r.ID] = r
	}
	for _, r := range req.Requests {
		for _, d := range r.DependsOn {
			if byID[d] == nil {
				return errorResponse(gerr(400, "BadRequest", fmt.Sprintf("Request %s depends on unknown request %s.", r.ID, d)), crid)
			}
		}
	}
	status := map[string]int{}
	var responses []any
	mailboxes := map[string]bool{}
	var run func(r *batchRequest, depth int)
	run = func(r *batchRequest, depth int) {
		if _, done := status[r.ID]; done {
			return
		}
		resp := (*graphResponse)(nil)
		for _, d := range r.DependsOn {
			if depth > graphBatchMax {
				break
			}
			run(byID[d], depth+1)
			if st := status[d]; st < 200 || st > 299 {
				resp = errorResponse(gerr(424, "FailedDependency", "The request failed because the request it depends on failed."), crid)
			}
		}
		if resp == nil {
			resp = g.batchItem(q, r, mailboxes)
		}
		status[r.ID] = resp.status
		item := map[string]any{"id": r.ID, "status": resp.status, "headers": flatHeaders(resp.header)}
		if len(resp.body) > 0 {
			if strings.HasPrefix(resp.header.Get("Content-Type"), "application/json") {
				item["body"] = json.RawMessage(resp.body)
			} else {
				item["body"] = string(resp.body)
			}
		}
		responses = append(responses, item)
	}
	for i := range req.Requests {
		run(&req.Requests[i], 0)
	}
	g.mu.Lock()
	for m := range mailboxes {
		g.requests[m]++
		if g.kinds[m] == nil {
			g.kinds[m] = map[string]int{}
		}
		g.kinds[m]["batch"]++
	}
	g.mu.Unlock()
	if responses == nil {
		responses = []any{}
	}
	return jsonResponse(200, map[string]any{"responses": responses})
}

// batchItem serves one item with the batch's Authorization and its own headers.
func (g *GraphServer) batchItem(q *graphReq, r *batchRequest, mailboxes map[string]bool) *graphResponse {
	u, err := url.Parse(r.URL)
	if err != nil || !strings.HasPrefix(u.Path, "/") {
		return errorResponse(gerr(400, "BadRequest", "Invalid request URI."), "")
	}
	h := http.Header{}
	for k, v := range r.Headers {
		h.Set(k, v)
	}
	h.Set("Authorization", q.header.Get("Authorization"))
	path := strings.TrimPrefix(u.EscapedPath(), graphPrefix)
	item := &graphReq{method: strings.ToUpper(r.Method), segs: splitPath(path), query: u.Query(), header: h,
		body: r.Body, base: q.base, outer: q.outer}
	if len(item.segs) >= 2 && item.segs[0] == "users" && g.store.HasMailbox(item.segs[1]) {
		mailboxes[strings.ToLower(item.segs[1])] = true
	}
	return g.serve(item, true)
}

func flatHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for k := range h {
		out[k] = h.Get(k)
	}
	return out
}

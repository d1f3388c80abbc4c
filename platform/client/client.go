package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/weirstream/weir/platform/api"
	"github.com/weirstream/weir/runtime/clock"
)

// Client talks to one Weir server with one API key. Its exported fields
// may be changed before the first request; it is then safe for concurrent
// use.
type Client struct {
	baseURL string
	token   string
	hc      *http.Client

	// PollInterval is how often WaitOperation asks (default 250ms).
	PollInterval time.Duration
	// MaxRetries bounds the retries of one request (see the package doc for
	// which are retried); default 3, negative: none.
	MaxRetries int
	// Clock times retry delays and polls (default clock.Real).
	Clock clock.Clock
	// UserAgent is sent with every request (default "weir-client").
	UserAgent string
}

// New returns a client of the server at baseURL (such as
// "http://127.0.0.1:8080"; a trailing slash and a trailing "/v1" are
// ignored) that authenticates with token. A nil httpClient means
// http.DefaultClient.
func New(baseURL, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	base := strings.TrimRight(baseURL, "/")
	base = strings.TrimSuffix(base, "/v1")
	return &Client{baseURL: base, token: token, hc: httpClient, MaxRetries: 3}
}

// BaseURL is the server's address as the client uses it.
func (c *Client) BaseURL() string { return c.baseURL }

func (c *Client) clock() clock.Clock {
	if c.Clock == nil {
		return clock.Real{}
	}
	return c.Clock
}

// NewRequestID returns a random request id for a long operation: one per
// user action, reused by every retry of it.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "req-" + hex.EncodeToString(b[:])
}

// ProblemError is an error answer of the server: its RFC 9457 problem
// document, or, for an answer that is not one (a proxy's error page), the
// status with the start of the body as Detail.
type ProblemError struct {
	api.Problem
	// RetryAfter is the answer's Retry-After (429), 0 when absent.
	RetryAfter time.Duration
}

// Code is the problem's stable code: its type without the
// "urn:weir:problem:" prefix ("not-found", "quota-exceeded"), or "" for an
// answer that was no problem document.
func (e *ProblemError) Code() string {
	code, ok := strings.CutPrefix(e.Type, api.ProblemTypePrefix)
	if !ok {
		return e.Type
	}
	return code
}

// Error is a one-liner: "400 invalid-job-spec: nodes[1].inputs[0].partition:
// unknown partitioning "hash"; name: required". Field errors, when there
// are any, say it all and replace the detail.
func (e *ProblemError) Error() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(e.Status))
	b.WriteByte(' ')
	if code := e.Code(); code != "" {
		b.WriteString(code)
	} else {
		b.WriteString(strings.ToLower(http.StatusText(e.Status)))
	}
	switch {
	case len(e.Errors) > 0:
		b.WriteString(": ")
		for i, f := range e.Errors {
			if i > 0 {
				b.WriteString("; ")
			}
			if f.Field != "" {
				b.WriteString(f.Field)
				b.WriteString(": ")
			}
			b.WriteString(f.Problem)
		}
	case e.Detail != "":
		b.WriteString(": ")
		b.WriteString(e.Detail)
	case e.Title != "":
		b.WriteString(": ")
		b.WriteString(e.Title)
	}
	if e.Quota != "" && !strings.Contains(b.String(), e.Quota) {
		fmt.Fprintf(&b, " (quota %s)", e.Quota)
	}
	return b.String()
}

// ProblemCode is err's problem code when err is (or wraps) a *ProblemError,
// else "".
func ProblemCode(err error) string {
	var pe *ProblemError
	if errors.As(err, &pe) {
		return pe.Code()
	}
	return ""
}

// request is one API call.
type request struct {
	method, path string // path starts with /v1/
	query        url.Values
	body         []byte
	contentType  string
	requestID    string // sent as Idempotency-Key
	accept       string
}

// resendable says a transport failure may be retried: the server may have
// done the request already, so only requests it would not do twice.
func (r *request) resendable() bool {
	switch r.method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
		return true
	}
	return r.requestID != ""
}

// maxErrorBody bounds how much of a non-problem error body becomes Detail.
const maxErrorBody = 512

// send performs a request, retrying as the package doc says, and returns
// the status and body of a 2xx answer; any other answer is a *ProblemError.
func (c *Client) send(ctx context.Context, r request) (int, []byte, error) {
	u := c.baseURL + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	if !strings.HasPrefix(c.baseURL, "http://") && !strings.HasPrefix(c.baseURL, "https://") {
		return 0, nil, fmt.Errorf("server address %q: it must start with http:// or https://", c.baseURL)
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, r.method, u, bytes.NewReader(r.body))
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if r.body != nil {
			req.Header.Set("Content-Type", r.contentType)
		}
		if r.requestID != "" {
			req.Header.Set("Idempotency-Key", r.requestID)
		}
		accept := r.accept
		if accept == "" {
			accept = "application/json, application/problem+json"
		}
		req.Header.Set("Accept", accept)
		ua := c.UserAgent
		if ua == "" {
			ua = "weir-client"
		}
		req.Header.Set("User-Agent", ua)
		retry := attempt < c.MaxRetries
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil || !retry || !r.resendable() {
				return 0, nil, err // a *url.Error names the method and URL
			}
			if werr := c.wait(ctx, backoff(attempt)); werr != nil {
				return 0, nil, err
			}
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			if ctx.Err() == nil && retry && r.resendable() {
				if c.wait(ctx, backoff(attempt)) == nil {
					continue
				}
			}
			return 0, nil, fmt.Errorf("%s %s: reading the answer: %w", r.method, u, err)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp.StatusCode, body, nil
		}
		pe := problemOf(resp, body)
		// A 429 is the rate limit, refused before anything was done: every
		// request may be resent.
		if resp.StatusCode == http.StatusTooManyRequests && retry {
			d := pe.RetryAfter
			if d <= 0 {
				d = backoff(attempt)
			}
			if c.wait(ctx, min(d, maxRetryAfter)) == nil {
				continue
			}
		}
		return resp.StatusCode, nil, pe
	}
}

// maxRetryAfter caps how long one retry waits, whatever the server says.
const maxRetryAfter = 30 * time.Second

func backoff(attempt int) time.Duration {
	return 200 * time.Millisecond << min(attempt, 5)
}

func (c *Client) wait(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.clock().After(d):
		return nil
	}
}

// problemOf decodes an error answer.
func problemOf(resp *http.Response, body []byte) *ProblemError {
	pe := &ProblemError{}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			pe.RetryAfter = time.Duration(n) * time.Second
		}
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		if err := json.Unmarshal(body, &pe.Problem); err == nil && pe.Type != "" {
			if pe.Status == 0 {
				pe.Status = resp.StatusCode
			}
			return pe
		}
	}
	pe.Problem = api.Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
	text := strings.TrimSpace(string(body))
	if len(text) > maxErrorBody {
		text = text[:maxErrorBody] + "..."
	}
	pe.Detail = strings.Join(strings.Fields(text), " ")
	return pe
}

// call sends a request and decodes a JSON answer into out (nil: the answer
// is ignored). It returns the status.
func (c *Client) call(ctx context.Context, r request, out any) (int, error) {
	status, body, err := c.send(ctx, r)
	if err != nil {
		return status, err
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return status, fmt.Errorf("%s %s: decoding the answer: %w", r.method, r.path, err)
		}
	}
	return status, nil
}

func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	_, err := c.call(ctx, request{method: http.MethodGet, path: path, query: query}, out)
	return err
}

// sendJSON sends v (nil: no body) as JSON.
func (c *Client) sendJSON(ctx context.Context, method, path, requestID string, v, out any) (int, error) {
	r := request{method: method, path: path, requestID: requestID}
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return 0, fmt.Errorf("%s %s: encoding the body: %w", method, path, err)
		}
		r.body, r.contentType = b, "application/json"
	}
	return c.call(ctx, r, out)
}

// Page is one page of a list answer.
type Page[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"next_page_token"`
}

// listPageSize is the page size list methods ask for: the server's maximum,
// so a long list takes few requests.
const listPageSize = 500

// listAll reads every page of a list.
func listAll[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	all := []T{}
	token := ""
	for {
		q := url.Values{"page_size": {strconv.Itoa(listPageSize)}}
		if token != "" {
			q.Set("page_token", token)
		}
		var p Page[T]
		if err := c.get(ctx, path, q, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.NextPageToken == "" {
			return all, nil
		}
		if p.NextPageToken == token {
			return nil, fmt.Errorf("GET %s: the server gave page token %q twice", path, token)
		}
		token = p.NextPageToken
	}
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }

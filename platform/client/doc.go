// Package client is a typed Go client of Weir's REST API (docs/API.md):
// one method per route, the server's own request and response types
// (platform/api, platform/jobs, platform/registry, tenants), list methods
// that follow the pages, and problem documents (RFC 9457) decoded into
// *ProblemError. The `weir tenant|key|module|job ...` commands are built on
// it.
//
// It owns the HTTP conversation with a Weir server and nothing else: it
// must not know how the server stores or enforces anything, and it never
// reaches into the server's packages for behaviour — only for the types
// that describe the wire format, so that the client and the server cannot
// disagree on a field.
//
// # Decisions
//
//   - Retries are few and safe: a 429 is retried after its Retry-After (the
//     server's rate limit), and a transport failure only for requests that
//     are idempotent — GET, PUT, DELETE, and long operations that carry a
//     request id (the server returns the same operation for the same id).
//     A deploy or an upload is never resent on its own: it could create a
//     second job.
//   - Long operations take a request id; Client methods send it as the
//     Idempotency-Key header, and callers that retry (the CLI) generate one
//     per command, not per attempt (NewRequestID).
//   - Waiting (WaitOperation, retry delays) is timed by the Client's
//     injected clock and bounded by the context; the poll interval is a
//     field, so tests poll fast.
package client

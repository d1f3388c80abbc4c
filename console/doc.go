// Package console is Weir's web console: server-rendered pages
// (html/template, assets embedded with go:embed, a little vanilla
// JavaScript, no build step) served on the platform's HTTP server under /.
//
// It owns pages, sessions and forms, and nothing else.
//
// # Decisions
//
//   - The console is a client of the REST API, in process: every page calls
//     the API through platform/client with the signed-in key, over a
//     transport that hands the request to the API's handler directly. So the
//     console cannot show or do anything the key could not do with curl:
//     tenancy, roles, quotas and the rate limit are the API's, enforced in
//     one place, and the console's errors are the API's problems.
//   - Sign-in takes an API key. The key stays on the server, in a session
//     kept in memory; the browser gets a random session id in a cookie that
//     is HttpOnly, SameSite=Lax, Path=/ (and Secure behind TLS). Sessions
//     expire (12 h by default) and end at sign-out or when the process
//     restarts: signing in again is one paste.
//   - Every form that changes something carries a per-session CSRF token,
//     compared in constant time; a POST without it is refused. Requests
//     with an Origin header must come from the console's own origin.
//   - Read-only pages are complete HTML without JavaScript. Scripts only add
//     to them: drag-and-drop upload, live refresh of the job page, and
//     confirmation dialogs (forms also confirm with a server-rendered page
//     when scripts are off).
package console

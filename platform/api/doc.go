// Package api is the platform's REST API under /v1 (docs/API.md), on echo:
// authentication by API key, roles, the per-tenant rate limit, problem
// documents (RFC 9457) from one error catalogue, pagination, and the
// OpenAPI document, which is generated from the same route table the
// server registers, so the two cannot drift apart.
//
// It owns HTTP and nothing else: what a tenant, a module or a job is, and
// every rule about them, live in tenants, platform/registry and
// platform/jobs. Handlers decode, call, and encode.
//
// # Decisions
//
//   - Another tenant's resource is 404, never 403: a tenant must not learn
//     that an id exists elsewhere.
//   - Admin keys belong to no tenant. They manage tenants, keys and quotas;
//     tenant resources (modules, jobs) need a tenant key, so that every
//     action on them is attributable to the tenant's own keys.
//   - Quota problems are 403 quota-exceeded naming the quota, except an
//     oversized module upload (413) and the request rate (429 with
//     Retry-After).
//   - JSON bodies are decoded strictly: an unknown field is a 400 naming it,
//     because a misspelt option that is silently ignored is worse than an
//     error. Every 400 about a part of the request names it in `errors`
//     by its JSON path ("quotas.call_timeout", "from_savepoint", "version"),
//     including job spec problems the YAML parser reports only by line
//     (specfields.go finds the field at that line).
//   - Page tokens are opaque offsets (base64) into a stable order; log pages
//     continue from a sequence number, so a follower never misses a line
//     the ring still holds.
package api

// Package tenants owns the platform's tenants, their API keys and roles, and
// their quotas: the limits themselves, the checks against them (Check,
// QuotaError) and the per-tenant API rate limit (Service.Allow).
//
// It must not know HTTP (the REST layer in platform/api maps its sentinel
// errors and QuotaError to problems), jobs, modules or how usage is counted
// (the platform fills Usage and calls Check), nor the storage layout: it
// persists its records through the small KV interface, which the metadata
// store (platform/meta) satisfies.
//
// # Keys
//
// A token is "weir_" + key id + "_" + secret: a 12-character key id (a-z,
// 2-7) and 32 random bytes in unpadded base64url. It is shown once, when the
// key is created; the store keeps the key id and the SHA-256 of the secret.
// The id makes lookup a map access, and the fixed layout lets Authenticate
// parse a token without splitting it.
//
// Why SHA-256 and not bcrypt or argon2: slow hashes protect low-entropy
// passwords from guessing after a leak of the hashes. The secret has 256
// random bits; no guessing reaches it, so a slow hash would only add
// milliseconds of CPU to every request. The comparison is constant-time, and
// the hash is computed even for an unknown key id, so a wrong secret and an
// unknown key take the same time and give the same error.
//
// # Memory first, written through
//
// Every request authenticates and passes the rate limiter, so both must
// cost a map lookup, not a Pebble read. The service keeps every tenant and
// key in an immutable in-memory snapshot read through an atomic pointer
// (readers take no lock). The sets are small (tenants and keys, not data).
// A write commits to the store first, atomically, and publishes a new
// snapshot only after the commit succeeded: memory never holds what the
// store does not, and a restart reloads exactly what was acknowledged. One
// service must own the store's tenant and key records; two processes
// writing them would not see each other's changes.
//
// # Rate limit
//
// A token bucket per tenant (requests_per_second, request_burst), kept as
// one theoretical-arrival-time per tenant (GCRA), updated by compare-and-swap
// and driven by the injected clock, so tests step time instead of sleeping.
package tenants

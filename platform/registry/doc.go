// Package registry is the platform's module registry: the Wasm modules
// tenants upload, their names and versions, their bytes in storage, and the
// compiled modules jobs run. It serves the "Modules" section of docs/API.md
// (platform/api is the HTTP layer over it) and gives the jobs of a tenant
// their runtime.ModuleLoader (Loader).
//
// It owns:
//
//   - the version records in the metadata store (platform/meta);
//   - the module objects in the checkpoint storage (a local directory or
//     S3): tenants/<tenant>/modules/sha256-<hex>.wasm;
//   - validation of uploads (wasmhost.Runtime.Compile) and the cache of
//     compiled modules.
//
// It must not know HTTP (status codes, problem types: the API maps
// ErrNotFound, ErrBadRef, ErrInvalidName, *LimitError, *InUseError and
// *wasmhost.ModuleError), API keys or roles, how quotas are configured (an
// upload is given its Limits), or which jobs exist (a delete is given an
// inUse function).
//
// # Records
//
// Metadata keys, all under the tenant's prefix:
//
//	modules/<tenant>/v/<name>/<version>          the Version record (JSON)
//	modules/<tenant>/n/<name>                    the last version number given
//	modules/<tenant>/d/<hex>/<name>/<version>    digest index (empty value)
//
// <version> is zero-padded to 10 digits, so key order is version order. An
// upload commits the three keys in one meta.Store.Commit; a delete removes
// the version and index keys in one commit and keeps the counter.
//
// # Decisions
//
//   - Content addressing. A module is its bytes: the digest (sha256) is
//     computed at upload, recorded, and checked again whenever the bytes
//     are read back (Bytes), so storage corruption is reported, naming the
//     object, instead of being run. "sha256:<hex>" references are how the
//     platform pins a job to exact bytes whatever happens to names.
//   - Version numbering. Each name counts 1, 2, 3, ... and a number is never
//     given twice, even after its version (or the whole name) was deleted:
//     "wordcount@3" means one thing forever, so a job spec or a savepoint's
//     record that names it can never silently get other bytes. The counter
//     is its own key because the highest remaining version is not the
//     highest ever given.
//   - Idempotent uploads. Uploading bytes that already are a version of the
//     name returns that version (created == false) and charges no quota: a
//     client retrying after a lost response does not mint versions.
//   - Compile before store. An upload is compiled and validated (Wasm, the
//     ABI version, the operator table: wasmhost does all of it) before any
//     byte is written, so a rejected module costs no storage and leaves no
//     trace; the operator table in the record comes from that validation.
//     The object is written before the records are committed, so a record
//     never points at missing bytes; an object a failed upload wrote is
//     deleted again, and a crash between the two leaves only an
//     unreferenced object, which the next upload of those bytes overwrites.
//   - Object sharing. Objects are per tenant and per digest: the versions of
//     a tenant with the same bytes (the same module under two names, or
//     re-uploaded after a delete) share one object, deleted with the last
//     version that references it. Objects are not shared across tenants, so
//     deleting a tenant is deleting its folder, and no tenant's storage
//     depends on another's.
//   - Compiled modules are shared across tenants. Compiled code is immutable
//     and every task gets its own instance, so a module is compiled once
//     per digest and shared by every job that runs those bytes. A tenant
//     reaches a compiled module only through its own records (Resolve in
//     its namespace), and it is compiled from that tenant's verified bytes:
//     knowing another tenant's digest gives nothing. A compiled module is
//     closed when every tenant that loaded it has deleted its last version
//     with that digest (a delete is refused while a job uses the digest).
//   - Isolation. Every key and object name starts with the tenant; there is
//     no lookup without a tenant, and another tenant's module is
//     ErrNotFound, as if it did not exist.
//   - Writes are serialised per tenant (uploads are rare; compiling inside
//     the lock keeps "check quota, then create" atomic). Reads take no
//     lock.
package registry

// Package deploy holds Weir's deployment files, not Go code: the image
// build (Dockerfile), the Kubernetes manifests of cluster mode
// (kubernetes/, applied with kubectl apply -k) and their guide
// (README.md). It is a top-level folder because deployment is an
// architectural concern of its own, owned next to the code it ships.
//
// The package's only Go code is the test that validates the manifests
// (go test ./deploy/). Manifests are configuration that no compiler reads:
// a worker pointed at the wrong Service port, a selector that matches no
// pod or a Secret key that does not exist is found only when a cluster
// fails to start. The test parses every document with the subset of the
// Kubernetes schema the manifests use (an unknown field is an error, so a
// misspelt one cannot be silently ignored) and checks what `weir
// coordinator` and `weir worker` need of each other: the flags each
// command has, the ports they listen on and the Services that reach them,
// the cluster secret they share, the storage and its credentials, the
// volumes their directories live on.
//
// This package must not know Weir's internals. Its test relies on what
// the binary promises on its command line (a table that mirrors cmd/weir's
// flag sets), parses the storage URL with checkpoint.OpenStorage exactly
// as the binary will, and keeps two tripwires on files of the repository:
// the health route the probes use (platform/api/routes.go) and the Go
// version the Dockerfile builds with (go.mod).
package deploy

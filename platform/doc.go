// Package platform will own the coordinator and worker services (gRPC
// control plane), the job lifecycle and failover, the metadata store and the
// REST API. It is empty until the cluster and platform issues; today jobs
// run in-process through `weir run` (cmd/weir -> runtime).
package platform

package cluster

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// ProtocolVersion is the version of the cluster protocol this build
// speaks. Members with another version refuse each other: a coordinator
// and its workers are upgraded together.
const ProtocolVersion = "1"

// Metadata keys every cluster call carries.
const (
	mdProtocol = "weir-protocol"
	mdSecret   = "weir-cluster-secret"
	mdWorker   = "weir-worker" // the calling worker's id (data plane)
)

// ErrNoSecret is returned when a member is configured without a secret.
var ErrNoSecret = errors.New("cluster: a cluster secret is required (--cluster-secret-file or WEIR_CLUSTER_SECRET)")

// auth checks the protocol version and the shared secret of every call a
// member receives, and adds them to every call it makes.
type auth struct {
	secret   []byte
	protocol string // what this member sends (ProtocolVersion; tests change it)
	log      *slog.Logger
}

// check returns the status a refused call gets, or nil.
func (a *auth) check(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	from := "unknown address"
	if p, ok := peer.FromContext(ctx); ok {
		from = p.Addr.String()
	}
	if v := md.Get(mdProtocol); len(v) != 1 || v[0] != ProtocolVersion {
		got := "none"
		if len(v) > 0 {
			got = v[0]
		}
		a.log.Warn("cluster: refused a peer speaking another protocol version", "peer", from, "peer_protocol", got, "protocol", ProtocolVersion)
		return status.Errorf(codes.FailedPrecondition, "cluster protocol version %s is not supported: this member speaks version %s", got, ProtocolVersion)
	}
	if v := md.Get(mdSecret); len(v) != 1 || subtle.ConstantTimeCompare([]byte(v[0]), a.secret) != 1 {
		a.log.Warn("cluster: refused a peer with a wrong cluster secret", "peer", from)
		return status.Error(codes.Unauthenticated, "wrong cluster secret")
	}
	return nil
}

// serverOptions install the checks on a gRPC server.
func (a *auth) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := a.check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := a.check(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}),
		grpc.MaxRecvMsgSize(maxMessage),
	}
}

// perRPC adds the version and the secret to outgoing calls.
type perRPC struct{ a *auth }

func (p perRPC) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{mdProtocol: p.a.protocol, mdSecret: string(p.a.secret)}, nil
}

// RequireTransportSecurity is false: the secret authenticates members on
// a private network; see docs/CLUSTER.md for what that implies.
func (perRPC) RequireTransportSecurity() bool { return false }

// maxMessage bounds one message (a batch may exceed exchange.batchBytes by
// one large record; module bytes are bounded by the registry).
const maxMessage = 300 << 20

// refusal turns a refused call into an error that says what to fix.
func refusal(err error) error {
	switch status.Code(err) {
	case codes.Unauthenticated:
		return fmt.Errorf("refused: wrong cluster secret (%v)", status.Convert(err).Message())
	case codes.FailedPrecondition:
		return fmt.Errorf("refused: %s", status.Convert(err).Message())
	}
	return err
}

// refused reports whether err is a refusal no retry can fix.
func refused(err error) bool {
	c := status.Code(err)
	return c == codes.Unauthenticated || c == codes.FailedPrecondition
}

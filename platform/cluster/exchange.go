package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/weirstream/weir/platform/cluster/clusterpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// dataPlane is a worker's side of the network exchange: one bidirectional
// stream per pair of workers (whichever sends first dials), carrying every
// channel of every attempt between them: batches one way, credits the
// other. A batch's bytes are those of a local channel.
type dataPlane struct {
	self string
	log  *slog.Logger
	dial func(worker string) (clusterpb.WorkerClient, error)

	mu        sync.Mutex
	links     map[string]*link // by peer worker id
	receivers map[chanKey]func([]byte)
	senders   map[chanKey]func()
	attempts  map[string]*attemptLinks
}

type chanKey struct {
	attempt string
	ch      uint32
}

// attemptLinks is what the data plane knows of one attempt: the peers its
// channels use, and how to fail it when a link breaks.
type attemptLinks struct {
	peers map[string]bool
	fail  func(error)
}

// frameStream is either end of an Exchange stream.
type frameStream interface {
	Send(*clusterpb.Frame) error
	Recv() (*clusterpb.Frame, error)
}

// link is the stream to one peer. Sends are serialised; one goroutine
// receives.
type link struct {
	peer string
	mu   sync.Mutex
	s    frameStream
	done chan struct{} // closed when the stream broke
	err  error
}

func newDataPlane(self string, log *slog.Logger, dial func(string) (clusterpb.WorkerClient, error)) *dataPlane {
	return &dataPlane{self: self, log: log, dial: dial, links: map[string]*link{},
		receivers: map[chanKey]func([]byte){}, senders: map[chanKey]func(){}, attempts: map[string]*attemptLinks{}}
}

// link returns the stream to peer, dialling it if there is none.
func (d *dataPlane) link(peer string) (*link, error) {
	d.mu.Lock()
	if l := d.links[peer]; l != nil {
		d.mu.Unlock()
		return l, nil
	}
	d.mu.Unlock()
	c, err := d.dial(peer)
	if err != nil {
		return nil, err
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), mdWorker, d.self)
	s, err := c.Exchange(ctx, grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage))
	if err != nil {
		return nil, fmt.Errorf("data plane to worker %s: %w", peer, refusal(err))
	}
	l := &link{peer: peer, s: s, done: make(chan struct{})}
	d.mu.Lock()
	if cur := d.links[peer]; cur != nil {
		// The peer dialled meanwhile: keep receiving on both streams
		// (closing one would look like a broken link to the peer), send
		// on the registered one.
		d.mu.Unlock()
		go d.receive(l)
		return cur, nil
	}
	d.links[peer] = l
	d.mu.Unlock()
	go d.receive(l)
	return l, nil
}

// accept serves a stream a peer dialled until it breaks.
func (d *dataPlane) accept(s clusterpb.Worker_ExchangeServer) error {
	md, _ := metadata.FromIncomingContext(s.Context())
	peers := md.Get(mdWorker)
	if len(peers) != 1 {
		return fmt.Errorf("data plane: the stream does not name its worker")
	}
	l := &link{peer: peers[0], s: s, done: make(chan struct{})}
	d.mu.Lock()
	if d.links[l.peer] == nil {
		d.links[l.peer] = l
	}
	d.mu.Unlock()
	d.receive(l)
	return l.err
}

// receive dispatches the frames of l until it breaks; then every attempt
// with a channel to the peer fails (its tasks cannot go on without it).
func (d *dataPlane) receive(l *link) {
	for {
		f, err := l.s.Recv()
		if err != nil {
			l.err = err
			close(l.done)
			d.broken(l, err)
			return
		}
		k := chanKey{f.GetAttempt(), f.GetChannel()}
		d.mu.Lock()
		deliver, credit := d.receivers[k], d.senders[k]
		d.mu.Unlock()
		switch {
		case len(f.GetData()) > 0 && deliver != nil:
			deliver(f.GetData())
		case f.GetCredits() > 0 && credit != nil:
			for range f.GetCredits() {
				credit()
			}
		}
		// Frames of attempts that ended here are dropped.
	}
}

func (d *dataPlane) broken(l *link, err error) {
	d.mu.Lock()
	if d.links[l.peer] != l {
		// A duplicate stream ended; the registered one carries on (if the
		// peer is gone, that one breaks too).
		d.mu.Unlock()
		return
	}
	delete(d.links, l.peer)
	var fails []func(error)
	for _, a := range d.attempts {
		if a.peers[l.peer] {
			fails = append(fails, a.fail)
		}
	}
	d.mu.Unlock()
	for _, f := range fails {
		f(fmt.Errorf("data plane to worker %s broke: %w", l.peer, err))
	}
}

func (l *link) send(f *clusterpb.Frame) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return fmt.Errorf("data plane to worker %s broke: %w", l.peer, l.err)
	default:
	}
	if err := l.s.Send(f); err != nil {
		return fmt.Errorf("data plane to worker %s: %w", l.peer, err)
	}
	return nil
}

// forAttempt returns the runtime.Exchange of one attempt; fail fails it.
func (d *dataPlane) forAttempt(attempt string, fail func(error)) *attemptExchange {
	d.mu.Lock()
	d.attempts[attempt] = &attemptLinks{peers: map[string]bool{}, fail: fail}
	d.mu.Unlock()
	return &attemptExchange{d: d, attempt: attempt}
}

// release forgets an attempt's channels.
func (d *dataPlane) release(attempt string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.attempts, attempt)
	for k := range d.receivers {
		if k.attempt == attempt {
			delete(d.receivers, k)
		}
	}
	for k := range d.senders {
		if k.attempt == attempt {
			delete(d.senders, k)
		}
	}
}

// attemptExchange implements runtime.Exchange for one attempt.
type attemptExchange struct {
	d       *dataPlane
	attempt string
}

func (e *attemptExchange) usePeer(peer string) {
	if a := e.d.attempts[e.attempt]; a != nil {
		a.peers[peer] = true
	}
}

// Sender implements runtime.Exchange.
func (e *attemptExchange) Sender(to string, ch uint32, credit func()) func([]byte) error {
	d := e.d
	d.mu.Lock()
	d.senders[chanKey{e.attempt, ch}] = credit
	e.usePeer(to)
	d.mu.Unlock()
	var l *link
	return func(batch []byte) error {
		if l == nil {
			var err error
			if l, err = d.link(to); err != nil {
				return err
			}
		}
		return l.send(&clusterpb.Frame{Attempt: e.attempt, Channel: ch, Data: batch})
	}
}

// Receive implements runtime.Exchange.
func (e *attemptExchange) Receive(from string, ch uint32, deliver func([]byte)) func() {
	d := e.d
	d.mu.Lock()
	d.receivers[chanKey{e.attempt, ch}] = deliver
	e.usePeer(from)
	d.mu.Unlock()
	var l *link
	return func() {
		if l == nil {
			var err error
			if l, err = d.link(from); err != nil {
				d.log.Warn("data plane: returning a credit", "peer", from, "err", err)
				d.fail(e.attempt, err)
				return
			}
		}
		if err := l.send(&clusterpb.Frame{Attempt: e.attempt, Channel: ch, Credits: 1}); err != nil {
			d.fail(e.attempt, err)
		}
	}
}

func (d *dataPlane) fail(attempt string, err error) {
	d.mu.Lock()
	a := d.attempts[attempt]
	d.mu.Unlock()
	if a != nil {
		a.fail(err)
	}
}

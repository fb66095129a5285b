package fleetnet

// The link: the manager's connection to one agent, held open. States go
// down the agent's stdin (one JSON line each), acknowledgements come up
// its stdout ("applied <sum>"), both through the engine's attach API, so
// a start waits for one round trip instead of an archive write, the
// agent's next read of its file, and archive reads of its answer.
//
//	send(state) ─▶ seq n ─▶ stdin ─▶ agent applies ─▶ stdout "applied sum"
//	                                                       │
//	wait(n) ◀── acked = seq of sum (and every seq before) ◀┘
//
// The agent applies states in the order sent, so the acknowledgement of
// state n means every state up to n is applied. A link that breaks (the
// agent restarted, the engine went away) is dropped and opened again on
// the next push; meanwhile states go by the archive API as before.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/sdn"
)

// linkWriteTimeout bounds a write to the agent's stdin: an agent that
// stopped reading breaks its link rather than holding a push.
const linkWriteTimeout = 5 * time.Second

// agentLink is a held attach to one agent container.
type agentLink struct {
	conn    net.Conn
	writeMu sync.Mutex

	mu      sync.Mutex
	seq     uint64        // of the last state sent
	acked   uint64        // every state up to this one is applied
	sent    []sentState   // not yet acknowledged, in the order sent
	changed chan struct{} // closed (and replaced) when acked grows or the link ends
	err     error         // why the link ended; nil while it is up
}

// sentState is one state sent on a link.
type sentState struct {
	seq uint64
	sum string // sdn.AppliedSum of the line
}

// openLink attaches to the agent container id on h.
func openLink(ctx context.Context, h *hosts.Host, id string) (*agentLink, error) {
	res, err := h.Client().ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true})
	if err != nil {
		return nil, engineError(h, "attach to the agent", err)
	}
	l := newLink(res.Conn)
	go l.read(res.Reader)
	return l, nil
}

// newLink is a link over conn; its reader is started by the caller.
func newLink(conn net.Conn) *agentLink {
	return &agentLink{conn: conn, changed: make(chan struct{})}
}

// read takes the acknowledgements off the agent's multiplexed stdout
// until it ends, then ends the link.
func (l *agentLink) read(r io.Reader) {
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, io.Discard, r)
		pw.CloseWithError(err)
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if sum, ok := strings.CutPrefix(sc.Text(), sdn.AgentAckPrefix); ok {
			l.ack(sum)
		}
	}
	err := sc.Err()
	if err == nil {
		err = io.EOF
	}
	_ = pr.CloseWithError(err)
	l.end(fmt.Errorf("agent link ended: %w", err))
}

// ack records that the state of sum, and so every one sent before it,
// is applied.
func (l *agentLink) ack(sum string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, st := range l.sent {
		if st.sum == sum {
			l.acked = st.seq
			l.sent = l.sent[i+1:]
			close(l.changed)
			l.changed = make(chan struct{})
			return
		}
	}
}

// end closes the link for err (the first reason stays).
func (l *agentLink) end(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	l.err = err
	_ = l.conn.Close()
	close(l.changed)
}

// alive tells whether the link is up.
func (l *agentLink) alive() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err == nil
}

// send writes data, a state, as one line; its seq is what wait waits for.
// A write that fails ends the link.
func (l *agentLink) send(data []byte) (uint64, error) {
	// writeMu keeps the lines in seq order; mu is not held while writing,
	// so acknowledgements are taken meanwhile.
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.Lock()
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return 0, err
	}
	l.seq++
	seq := l.seq
	l.sent = append(l.sent, sentState{seq, sdn.AppliedSum(data)})
	l.mu.Unlock()
	_ = l.conn.SetWriteDeadline(time.Now().Add(linkWriteTimeout))
	line := make([]byte, 0, len(data)+1)
	line = append(append(line, data...), '\n')
	if _, err := l.conn.Write(line); err != nil {
		l.end(fmt.Errorf("agent link: write a state: %w", err))
		return 0, err
	}
	return seq, nil
}

// errLinkDown is wait's answer when the link ended first.
var errLinkDown = errors.New("agent link down")

// wait waits until state seq is applied: nil then, errLinkDown when the
// link ended, ctx's error when it ended first.
func (l *agentLink) wait(ctx context.Context, seq uint64) error {
	for {
		l.mu.Lock()
		acked, err, changed := l.acked, l.err, l.changed
		l.mu.Unlock()
		switch {
		case acked >= seq:
			return nil
		case err != nil:
			return errLinkDown
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

package fleetnet

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/clocker/clocker/sdn"
)

// frame is one stdout frame of an engine's multiplexed attach stream.
func frame(s string) []byte {
	b := make([]byte, 8, 8+len(s))
	b[0] = 1 // stdout
	binary.BigEndian.PutUint32(b[4:], uint32(len(s)))
	return append(b, s...)
}

// TestLinkWaitsForAcknowledgements: an acknowledgement of a state means
// it and every state sent before it are applied; a later one is still
// waited for; a link whose stream ends answers errLinkDown at once.
func TestLinkWaitsForAcknowledgements(t *testing.T) {
	manager, agent := net.Pipe()
	l := newLink(manager)
	go l.read(manager)
	lines := bufio.NewReader(agent)

	var seqs []uint64
	states := []string{`{"Host":"a"}`, `{"Host":"b"}`, `{"Host":"a"}`} // the first state again, third
	for _, st := range states {
		done := make(chan uint64, 1)
		go func() {
			seq, err := l.send([]byte(st))
			if err != nil {
				t.Error(err)
			}
			done <- seq
		}()
		got, err := lines.ReadString('\n')
		if err != nil || got != st+"\n" {
			t.Fatalf("agent read %q, %v; want %q", got, err, st)
		}
		seqs = append(seqs, <-done)
	}
	// The agent acknowledges the second: the first is applied too, the
	// third (the first's bytes again) is not.
	if _, err := agent.Write(frame(sdn.AgentAckPrefix + sdn.AppliedSum([]byte(states[1])) + "\n")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, seq := range seqs[:2] {
		if err := l.wait(ctx, seq); err != nil {
			t.Fatalf("wait(%d): %v", seq, err)
		}
	}
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if err := l.wait(short, seqs[2]); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the third state, not acknowledged: wait = %v", err)
	}
	// Its acknowledgement (split over two frames) ends the wait.
	ack := sdn.AgentAckPrefix + sdn.AppliedSum([]byte(states[2])) + "\n"
	if _, err := agent.Write(append(frame(ack[:10]), frame(ack[10:])...)); err != nil {
		t.Fatal(err)
	}
	if err := l.wait(ctx, seqs[2]); err != nil {
		t.Fatalf("wait(%d): %v", seqs[2], err)
	}
	// The agent goes away: waits and sends fail at once.
	_ = agent.Close()
	if err := l.wait(ctx, seqs[2]+1); !errors.Is(err, errLinkDown) {
		t.Fatalf("after the stream ended: wait = %v", err)
	}
	if l.alive() {
		t.Error("the link is alive after its stream ended")
	}
	if _, err := l.send([]byte(`{}`)); err == nil {
		t.Error("a send on an ended link succeeded")
	}
}

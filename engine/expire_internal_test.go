package engine

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/pushd/pushd/cluster"
	"github.com/pushd/pushd/shardstore"
)

// startExpiryNode starts a standalone node with -uaid-ttl ttl (0: off), stopped
// when the test ends.
func startExpiryNode(t *testing.T, ttl time.Duration) *Node {
	t.Helper()
	n, err := New(Config{
		WSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), UAIDTTL: ttl,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	return n
}

// A use within a step of the last touch is not written; the cutoff leaves
// room for it, so a UAID is never dropped within the TTL of its last use.
func TestExpiryCountsFromTheLastUseNotTheLastTouch(t *testing.T) {
	const ttl = 16 * time.Second // a step of 2s
	n := startExpiryNode(t, ttl)
	u := uuid.New()
	if _, err := n.store.Register(u, uuid.New()); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(time.Hour).Truncate(time.Second) // clear of the node's start
	step := n.expiryStep()
	for _, at := range []time.Time{t0, t0.Add(step - 500*time.Millisecond)} { // the second is not written
		if _, err := n.store.Touch(u, at, step); err != nil {
			t.Fatal(err)
		}
	}
	lastUse := t0.Add(step - 500*time.Millisecond)
	seen := shardstore.UAIDSeen{UAID: u, Seen: t0.Unix()}
	if got := n.expire(seen, lastUse.Add(ttl-100*time.Millisecond)); got != expireKept {
		t.Fatalf("%v within the TTL of the last use: outcome %d, want kept", ttl-100*time.Millisecond, got)
	}
	if got := n.expire(seen, t0.Add(time.Second+ttl+2*step+100*time.Millisecond)); got != expireDropped {
		t.Fatalf("past the cutoff: outcome %d, want dropped", got)
	}
}

// Seen times are not taken to be older than the node's start: a node that
// was down does not drop the UAIDs whose devices could not reach it.
func TestExpiryCountsFromTheNodesStart(t *testing.T) {
	const ttl = 16 * time.Second
	n := startExpiryNode(t, ttl)
	u := uuid.New()
	if _, err := n.store.Register(u, uuid.New()); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-24 * time.Hour)
	if _, err := n.store.Touch(u, old, n.expiryStep()); err != nil {
		t.Fatal(err)
	}
	seen := shardstore.UAIDSeen{UAID: u, Seen: old.Unix()}
	if got := n.expire(seen, time.Now().Add(ttl/2)); got != expireKept {
		t.Fatalf("half a TTL after the start: outcome %d, want kept", got)
	}
	if got := n.expire(seen, time.Now().Add(ttl+2*n.expiryStep()+2*time.Second)); got != expireDropped {
		t.Fatalf("past the cutoff counted from the start: outcome %d, want dropped", got)
	}
}

// Nor older than the time this node came to own the UAID's partition: a
// replica that takes over may hold seen times its lost notes left stale.
func TestExpiryCountsFromTheOwnershipGain(t *testing.T) {
	const ttl = 16 * time.Second
	n := startExpiryNode(t, ttl)
	u := uuid.New()
	if _, err := n.store.Register(u, uuid.New()); err != nil {
		t.Fatal(err)
	}
	if _, err := n.store.Touch(u, time.Now(), n.expiryStep()); err != nil {
		t.Fatal(err)
	}
	gainedAt := time.Now().Add(time.Hour)
	n.expiry.gain(map[int]bool{cluster.PartitionOf(shardstore.RingHash(u)): true}, gainedAt)
	seen := shardstore.UAIDSeen{UAID: u, Seen: time.Now().Unix()}
	if got := n.expire(seen, gainedAt.Add(ttl/2)); got != expireKept {
		t.Fatalf("half a TTL after the gain: outcome %d, want kept", got)
	}
	if got := n.expire(seen, gainedAt.Add(ttl+2*n.expiryStep()+2*time.Second)); got != expireDropped {
		t.Fatalf("past the cutoff counted from the gain: outcome %d, want dropped", got)
	}
}

func TestExpiryTTLBelowASecondIsRefused(t *testing.T) {
	_, err := New(Config{
		WSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), UAIDTTL: 10 * time.Millisecond,
	})
	if err == nil {
		t.Fatal("New accepted a 10ms -uaid-ttl")
	}
}

// The end of a connection is a use, written when it happens, whatever the
// last touch: the UAID is idle from then on, not from its hello.
func TestExpiryRecordsTheEndOfAConnection(t *testing.T) {
	n := startExpiryNode(t, 16*time.Second) // a step of 2s: the register is not written
	d := websocket.Dialer{Subprotocols: []string{"push-notification"}}
	conn, _, err := d.Dial("ws://"+n.WSAddr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var m map[string]any
	if err := conn.WriteJSON(map[string]any{"messageType": "hello", "uaid": "", "channelIDs": []string{}}); err != nil {
		t.Fatal(err)
	}
	if err := conn.ReadJSON(&m); err != nil {
		t.Fatal(err)
	}
	u := uuid.MustParse(m["uaid"].(string))
	if err := conn.WriteJSON(map[string]any{"messageType": "register", "channelID": uuid.NewString()}); err != nil {
		t.Fatal(err)
	}
	if err := conn.ReadJSON(&m); err != nil || m["status"] != float64(200) {
		t.Fatalf("register: %v %v", m, err)
	}
	registered, err := n.store.Seen(u)
	if err != nil || registered == 0 {
		t.Fatalf("seen after the register: %d, %v", registered, err)
	}
	time.Sleep(1100 * time.Millisecond) // into a later second
	conn.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		seen, err := n.store.Seen(u)
		if err != nil {
			t.Fatal(err)
		}
		if seen > registered {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("seen still %d after the connection ended, the second of its register", seen)
		}
	}
}

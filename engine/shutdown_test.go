package engine_test

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pushd/pushd/engine"
)

// TestShutdownClosesClientsAndLeaksNothing starts a node, connects clients
// mid-conversation, shuts down, and checks that the clients saw 1001 and
// that every goroutine the node started is gone.
func TestShutdownClosesClientsAndLeaksNothing(t *testing.T) {
	// gnet and fasthttp start package-level goroutines (a worker pool, a
	// date ticker) on first use that live as long as the process: let a
	// first node start them.
	runAndStop(t, 0)
	before := runtime.NumGoroutine()
	runAndStop(t, 5)
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after shutdown:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runAndStop runs a node with nclients connected clients, each with an
// unacknowledged notification, shuts it down and checks the clients saw
// 1001.
func runAndStop(t *testing.T, nclients int) {
	t.Helper()
	n, err := engine.New(engine.Config{
		WSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Workers: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	var clients []*wsClient
	for i := 0; i < nclients; i++ {
		c := dial(t, n)
		c.hello("")
		ep := localEndpoint(n, c.register(uuid.NewString()))
		if st := putVersion(t, ep, 3); st != 200 {
			t.Fatalf("PUT: %d", st)
		}
		c.expectNotification() // left unacked: in flight at shutdown
		clients = append(clients, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
	for _, c := range clients {
		c.expectClose(1001)
		c.conn.Close()
	}
}

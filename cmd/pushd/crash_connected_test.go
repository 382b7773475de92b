package main_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestKill9LosesNoVersionAcceptedForConnectedClient: the same as the
// offline test, but the device stays connected and acks, so PUTs are
// answered 200 (delivered) or 503 (in flight). Every version answered 200
// must have reached the device before the kill, or reach it after the
// restart.
func TestKill9LosesNoVersionAcceptedForConnectedClient(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	dataDir := t.TempDir()
	p := startPushd(t, dataDir, "")

	const channels = 8
	dev, uaid, chids, paths := registeredDevice(t, p.WSAddr, channels)
	index := map[string]int{}
	for i, ch := range chids {
		index[ch] = i
	}

	var (
		mu       sync.Mutex
		accepted = make([]uint64, channels) // highest version answered 200
		received = make([]uint64, channels) // highest version the device got
		next     = make([]uint64, channels)
		okCount  int
	)
	// The device acks everything it receives, until the node dies.
	go func() {
		for {
			_ = dev.conn.SetReadDeadline(time.Now().Add(time.Minute))
			var m map[string]any
			if dev.conn.ReadJSON(&m) != nil {
				return
			}
			if m["messageType"] != "notification" {
				continue
			}
			mu.Lock()
			for ch, v := range decodeUpdates(t, m) {
				received[index[ch]] = max(received[index[ch]], v)
			}
			mu.Unlock()
			_ = dev.conn.WriteJSON(map[string]any{"messageType": "ack", "updates": m["updates"]})
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				ch := rand.IntN(channels)
				next[ch]++
				v := next[ch]
				mu.Unlock()
				st, err := putVersion(ctx, p.HTTPAddr, paths[ch], v)
				if err == nil && st == 200 {
					mu.Lock()
					accepted[ch] = max(accepted[ch], v)
					okCount++
					mu.Unlock()
				}
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := okCount
		mu.Unlock()
		if n >= 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
	p.Kill()
	cancel()
	wg.Wait()
	mu.Lock()
	if okCount == 0 {
		mu.Unlock()
		t.Fatalf("no PUT was answered 200 before the kill:\n%s", p.Output())
	}
	t.Logf("%d PUTs answered 200 before SIGKILL", okCount)
	mu.Unlock()

	// Restart; the device comes back and gets what it had not acked.
	p2 := startPushd(t, dataDir, "")
	dev2 := connect(t, p2.WSAddr)
	hello := dev2.roundTrip(map[string]any{"messageType": "hello", "uaid": uaid, "channelIDs": chids})
	if hello["uaid"] != uaid {
		t.Fatalf("UAID changed after restart: %v", hello)
	}
	// Pending versions, if any, come right after the hello; a register
	// (idempotent) answered afterwards marks the end of them.
	if err := dev2.conn.WriteJSON(map[string]any{"messageType": "register", "channelID": chids[0]}); err != nil {
		t.Fatal(err)
	}
	for {
		m := dev2.read()
		if m["messageType"] == "register" {
			break
		}
		if m["messageType"] != "notification" {
			continue
		}
		mu.Lock()
		for ch, v := range decodeUpdates(t, m) {
			received[index[ch]] = max(received[index[ch]], v)
		}
		mu.Unlock()
		_ = dev2.conn.WriteJSON(map[string]any{"messageType": "ack", "updates": m["updates"]})
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range chids {
		if received[i] < accepted[i] {
			t.Errorf("channel %d: version %d was answered 200, the device only ever got %d", i, accepted[i], received[i])
		}
	}
}

package main_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestKill9LosesNoAcceptedVersion PUTs from many goroutines while pushd is
// killed with SIGKILL, restarts it on the same data directory, and checks
// that every version answered 200/202 (or a newer one of its channel) is
// delivered to the client.
func TestKill9LosesNoAcceptedVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	dataDir := t.TempDir()
	p := startPushd(t, dataDir, "")

	// A device registers its channels, then goes offline.
	const channels = 16
	dev, uaid, chids, paths := registeredDevice(t, p.WSAddr, channels)
	dev.conn.Close()

	// PUT storm: each channel gets increasing versions; remember the
	// highest version answered 200/202 per channel.
	var (
		mu       sync.Mutex
		accepted = make([]uint64, channels)
		next     = make([]uint64, channels)
		okCount  int
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
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
				if err != nil {
					continue // the node is gone; this PUT was never answered
				}
				if st == 200 || st == 202 {
					mu.Lock()
					accepted[ch] = max(accepted[ch], v)
					okCount++
					mu.Unlock()
				}
			}
		}()
	}
	// Kill once a good number of PUTs were accepted, at a random moment.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := okCount
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
	p.Kill()
	cancel()
	wg.Wait()
	if okCount == 0 {
		t.Fatalf("no PUT was accepted before the kill:\n%s", p.Output())
	}
	t.Logf("%d PUTs accepted before SIGKILL", okCount)

	// Restart on the same data; the device comes back.
	p2 := startPushd(t, dataDir, "")
	dev2 := connect(t, p2.WSAddr)
	hello := dev2.roundTrip(map[string]any{"messageType": "hello", "uaid": uaid, "channelIDs": chids})
	if hello["uaid"] != uaid {
		t.Fatalf("UAID changed after restart: %v (registrations lost)", hello)
	}
	delivered := map[string]uint64{}
	for len(delivered) < channels {
		got := decodeUpdates(t, dev2.read())
		acks := []map[string]any{}
		for ch, v := range got {
			delivered[ch] = max(delivered[ch], v)
			acks = append(acks, map[string]any{"channelID": ch, "version": v})
		}
		if err := dev2.conn.WriteJSON(map[string]any{"messageType": "ack", "updates": acks}); err != nil {
			t.Fatal(err)
		}
	}
	for i, ch := range chids {
		if accepted[i] > 0 && delivered[ch] < accepted[i] {
			t.Errorf("channel %d: version %d was accepted, only %d delivered after restart", i, accepted[i], delivered[ch])
		}
	}
}
